"""The Anthropic Messages protocol: tokenhub's client against the mock server."""

import json

import pytest

import tokenhub
from mock_server import redacted
from conftest import sse_response

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

WEATHER = {
    "name": "get_weather",
    "description": "Obtain weather information for a specified city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}
ASK_WEATHER = [{"role": "user", "content": "What is the weather like in Beijing today?"}]
HI = [{"role": "user", "content": [{"type": "text", "text": "Hi, how are you?"}]}]

# message_start, ping?, then per block start/delta*/stop, message_delta, message_stop.
ORDER = {
    None: {"message_start"},
    "message_start": {"ping", "content_block_start", "message_delta"},
    "ping": {"ping", "content_block_start", "message_delta"},
    "content_block_start": {"content_block_delta", "content_block_stop"},
    "content_block_delta": {"content_block_delta", "content_block_stop"},
    "content_block_stop": {"content_block_start", "message_delta"},
    "message_delta": {"message_stop"},
}


def assert_documented_order(events):
    previous = None
    for event in events:
        assert event.type in ORDER[previous], (previous, event.type)
        previous = event.type
    assert previous == "message_stop"


def test_plain_message(client, mock):
    message = client.messages.create(
        model="deepseek-v3.2", max_tokens=1000, system="You are a helpful assistant.", messages=HI
    )
    assert message.type == "message" and message.role == "assistant"
    assert message.stop_reason == "end_turn"
    assert [b.type for b in message.content] == ["text"]
    assert "Hi, how are you?" in message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    request = mock.requests[0]
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == redacted("test-key")
    assert request.headers["anthropic-version"] == "2023-06-01"
    assert "authorization" not in request.headers
    assert request.body["max_tokens"] == 1000


def test_streamed_message_in_documented_order(client):
    with client.messages.create(
        model="deepseek-v3.2", max_tokens=1000, messages=HI, stream=True
    ) as events:
        received = list(events)
    assert_documented_order(received)
    assert not any(e.type == "ping" for e in received)  # the mock sends one; consumed, as the SDK does
    text = "".join(
        e.delta.text for e in received
        if e.type == "content_block_delta" and e.delta.type == "text_delta"
    )
    plain = client.messages.create(model="deepseek-v3.2", max_tokens=1000, messages=HI)
    assert text == plain.content[0].text
    start, delta = received[0], [e for e in received if e.type == "message_delta"][0]
    assert start.message.usage.input_tokens == plain.usage.input_tokens
    assert delta.usage.output_tokens == plain.usage.output_tokens
    assert delta.delta.stop_reason == "end_turn"


def test_thinking_block_comes_first(client):
    message = client.messages.create(model="kimi-k2.6", max_tokens=2000, messages=HI)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert message.content[0].thinking
    events = list(client.messages.create(model="kimi-k2.6", max_tokens=2000, messages=HI, stream=True))
    thinking = "".join(
        e.delta.thinking for e in events
        if e.type == "content_block_delta" and e.delta.type == "thinking_delta"
    )
    assert thinking == message.content[0].thinking


def test_thinking_disabled(client):
    message = client.messages.create(
        model="kimi-k2.6", max_tokens=2000, messages=HI, thinking={"type": "disabled"}
    )
    assert [b.type for b in message.content] == ["text"]


def test_minimax_thinks_even_when_disabled(client):
    message = client.messages.create(
        model="minimax-m2.7", max_tokens=2000, messages=HI, thinking={"type": "disabled"}
    )
    assert [b.type for b in message.content] == ["thinking", "text"]


def test_tool_use_round(client):
    message = client.messages.create(
        model="deepseek-v3.2", max_tokens=1000, messages=ASK_WEATHER, tools=[WEATHER]
    )
    assert message.stop_reason == "tool_use"
    (use,) = [b for b in message.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Beijing"}
    assert use.id.startswith("toolu_")
    messages = ASK_WEATHER + [
        {"role": "assistant", "content": message.content},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use.id, "content": "22 degrees and sunny"},
        ]},
    ]
    final = client.messages.create(model="deepseek-v3.2", max_tokens=1000, messages=messages, tools=[WEATHER])
    assert final.stop_reason == "end_turn"
    assert "22 degrees and sunny" in final.content[-1].text


def test_streamed_tool_input_arrives_as_json_fragments(client):
    events = list(client.messages.create(
        model="deepseek-v3.2", max_tokens=1000, messages=ASK_WEATHER, tools=[WEATHER], stream=True
    ))
    assert_documented_order(events)
    (start,) = [e for e in events if e.type == "content_block_start"]
    assert start.content_block.type == "tool_use" and start.content_block.input == {}
    fragments = [
        e.delta.partial_json for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    ]
    assert len(fragments) > 1
    assert json.loads("".join(fragments)) == {"city": "Beijing"}
    assert [e for e in events if e.type == "message_delta"][0].delta.stop_reason == "tool_use"


def test_ignored_fields_are_accepted(client, mock):
    """Fields TokenHub ignores must not break a request (real clients send them)."""
    message = client.messages.create(
        model="glm-5", max_tokens=100,
        system=[{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {"role": "system", "content": "an inline system entry"},
            {"role": "user", "content": [{"type": "text", "text": "Hi", "cache_control": {"type": "ephemeral"}}]},
        ],
        metadata={"user_id": "u-1"}, top_k=5, service_tier="auto", container=None,
        mcp_servers=[], context_management={"edits": []},
        tools=[dict(WEATHER, cache_control={"type": "ephemeral"})],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
        extra_query={"beta": "true"},
        extra_headers={"anthropic-beta": "context-management-2025-06-27"},
    )
    assert message.content[-1].type == "text"
    assert mock.requests[0].path == "/v1/messages?beta=true"
    assert mock.requests[0].headers["anthropic-beta"] == "context-management-2025-06-27"


def test_auth_token_is_sent_as_bearer(mock):
    client = tokenhub.Anthropic(auth_token="token-1", base_url=mock.url)
    client.messages.create(model="glm-5", max_tokens=10, messages=HI)
    headers = mock.requests[0].headers
    assert headers["authorization"] == "Bearer " + redacted("token-1")
    assert "x-api-key" not in headers
    client.close()


def test_unknown_events_are_passed_through(raw_server):
    wire = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"m","content":[]}}\n\n'
        "event: ping\ndata: {\"type\": \"ping\"}\n\n"
        'event: brand_new_event\ndata: {"detail": 1}\n\n'
        'event: message_stop\ndata: {"type":"message_stop"}\n\n'
    )
    with raw_server(sse_response(wire)) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url)
        events = list(client.messages.create(model="m", max_tokens=1, messages=HI, stream=True))
    assert [e.type for e in events] == ["message_start", "brand_new_event", "message_stop"]  # ping consumed
    assert events[1].detail == 1


def test_stream_stops_at_message_stop(raw_server):
    wire = 'event: message_stop\ndata: {"type":"message_stop"}\n\ndata: not json at all\n\n'
    with raw_server(sse_response(wire)) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url)
        events = list(client.messages.create(model="m", max_tokens=1, messages=HI, stream=True))
    assert [e.type for e in events] == ["message_stop"]


@pytest.mark.parametrize("model", ["deepseek-v4-pro", "glm-5.1", "kimi-k2.5", "minimax-m2.5"])
def test_thinking_by_default(client, model):
    message = client.messages.create(model=model, max_tokens=2000, messages=HI)
    assert message.content[0].type == "thinking"


@pytest.mark.parametrize("model", ["deepseek-v3.2", "hy-mt2-plus", "ep-abc12345"])
def test_no_thinking_by_default(client, model):
    message = client.messages.create(model=model, max_tokens=2000, messages=HI)
    assert [b.type for b in message.content] == ["text"]
