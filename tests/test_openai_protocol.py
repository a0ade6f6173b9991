"""The OpenAI Chat Completions protocol: tokenhub's client against the mock server."""

import copy
import json
import pickle

import pytest

import tokenhub
from mock_server import redacted

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Obtain weather information for a specified city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK_WEATHER = [{"role": "user", "content": "What is the weather like in Beijing today?"}]
HELLO = [{"role": "user", "content": "Hello, please introduce yourself"}]


def stream_text(stream, field="content"):
    """Join a delta field over a chunk stream."""
    return "".join(
        c.choices[0].delta[field] or "" for c in stream if c.choices and field in c.choices[0].delta
    )


def test_plain_reply(client, mock):
    reply = client.chat.completions.create(model="deepseek-v3.2", messages=HELLO)
    assert reply.object == "chat.completion"
    assert reply.model == "deepseek-v3.2"
    choice = reply.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert "Hello, please introduce yourself" in choice.message.content
    assert choice.message.reasoning_content is None  # deepseek-v3.2 does not think by default
    usage = reply.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    request = mock.requests[0]
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == "Bearer " + redacted("test-key")
    assert request.headers["user-agent"] == "tokenhub-python/%s" % tokenhub.__version__
    assert request.body == {"model": "deepseek-v3.2", "messages": HELLO}


def test_response_object_access_styles(client):
    reply = client.chat.completions.create(model="deepseek-v3.2", messages=HELLO)
    assert reply.choices[0].message.content == reply["choices"][0]["message"]["content"]
    assert reply.usage.prompt_tokens_details.cached_tokens == 0  # nested unknown-to-us fields kept
    assert reply.not_a_field is None
    with pytest.raises(KeyError):
        reply["not_a_field"]
    plain = reply.to_dict()
    assert type(plain) is dict and type(plain["choices"][0]) is dict
    assert plain == reply.model_dump() == json.loads(reply.to_json())
    assert reply.model_dump_json(indent=None) == json.dumps(plain, ensure_ascii=False)
    text = repr(reply)
    assert text.startswith("<chat.completion {") and len(text) < 200


def test_response_objects_copy_and_pickle(client):
    reply = client.chat.completions.create(model="deepseek-v4-flash", messages=HELLO)
    for clone in (copy.deepcopy(reply), pickle.loads(pickle.dumps(reply))):
        assert clone == reply and type(clone) is tokenhub.APIObject
        assert clone.choices[0].message.reasoning_content == reply.choices[0].message.reasoning_content
    clone.choices[0].message.content = "changed"  # attribute assignment sets the key
    assert clone["choices"][0]["message"]["content"] == "changed"
    assert reply.choices[0].message.content != "changed"
    del clone.choices[0].message.content
    assert "content" not in clone.choices[0].message
    with pytest.raises(AttributeError):
        del clone.choices[0].message.content
    assert "reasoning_content" in dir(reply.choices[0].message)


def test_message_goes_back_into_the_conversation(client, mock):
    first = client.chat.completions.create(model="deepseek-v3.2", messages=HELLO)
    history = HELLO + [first.choices[0].message, {"role": "user", "content": "And again?"}]
    second = client.chat.completions.create(model="deepseek-v3.2", messages=history)
    assert "And again?" in second.choices[0].message.content
    assert mock.requests[1].body["messages"][1] == first["choices"][0]["message"]


def test_streamed_reply_matches_plain_reply(client):
    plain = client.chat.completions.create(model="glm-5", messages=HELLO)
    with client.chat.completions.create(model="glm-5", messages=HELLO, stream=True) as stream:
        chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    content = "".join(c.choices[0].delta.content or "" for c in chunks)
    reasoning = "".join(c.choices[0].delta.reasoning_content or "" for c in chunks)
    assert content == plain.choices[0].message.content
    assert reasoning == plain.choices[0].message.reasoning_content
    assert stream.received == len(chunks)


def test_stream_usage_chunk_with_include_usage(client):
    stream = client.chat.completions.create(
        model="deepseek-v3.2", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    last = chunks[-1]
    assert last.choices == [] and last.usage.total_tokens > 0
    assert all(c.usage is None for c in chunks[:-1])
    plain = client.chat.completions.create(model="deepseek-v3.2", messages=HELLO)
    assert last.usage == plain.usage


def test_stream_can_be_closed_early_and_client_reused(client, mock):
    stream = client.chat.completions.create(model="glm-5", messages=HELLO, stream=True)
    first = next(stream)
    assert first.choices[0].delta.role == "assistant"
    stream.close()
    assert list(stream) == []
    reply = client.chat.completions.create(model="glm-5", messages=HELLO)
    assert reply.choices[0].message.content
    assert len(mock.requests) == 2


def test_tool_call_round(client, mock):
    reply = client.chat.completions.create(
        model="deepseek-v3.2", messages=ASK_WEATHER, tools=[WEATHER], tool_choice="auto"
    )
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.id.startswith("call_")
    assert json.loads(call.function.arguments) == {"city": "Beijing"}

    messages = ASK_WEATHER + [
        choice.message,
        {"role": "tool", "tool_call_id": call.id, "content": '{"temperature": 22, "weather": "Sunny"}'},
    ]
    final = client.chat.completions.create(model="deepseek-v3.2", messages=messages, tools=[WEATHER])
    assert final.choices[0].finish_reason == "stop"
    assert '"weather": "Sunny"' in final.choices[0].message.content
    assert not final.choices[0].message.tool_calls


def test_streamed_tool_call_fragments_join_by_index(client):
    tools = [WEATHER, dict(WEATHER, function=dict(WEATHER["function"], name="get_time"))]
    stream = client.chat.completions.create(
        model="deepseek-v3.2",
        messages=[{"role": "user", "content": "weather and time in Paris?"}],
        tools=tools,
        stream=True,
    )
    calls = {}
    finish = None
    for chunk in stream:
        choice = chunk.choices[0]
        finish = choice.finish_reason or finish
        for piece in choice.delta.tool_calls or []:
            entry = calls.setdefault(piece.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = piece.id or entry["id"]
            entry["name"] = (piece.function.name if piece.function else None) or entry["name"]
            entry["arguments"] += (piece.function.arguments or "") if piece.function else ""
    assert finish == "tool_calls"
    assert [calls[i]["name"] for i in sorted(calls)] == ["get_weather", "get_time"]
    for entry in calls.values():
        assert entry["id"].startswith("call_")
        assert json.loads(entry["arguments"]) == {"city": "Paris"}


def test_thinking_model_reasons_outside_content(client):
    reply = client.chat.completions.create(model="deepseek-v4-flash", messages=HELLO)
    message = reply.choices[0].message
    assert message.reasoning_content and message.content
    assert message.reasoning_content not in message.content
    assert reply.usage.completion_tokens_details.reasoning_tokens > 0


def test_thinking_disabled_through_extra_body(client, mock):
    reply = client.chat.completions.create(
        model="deepseek-v4-flash", messages=HELLO, extra_body={"thinking": {"type": "disabled"}}
    )
    assert reply.choices[0].message.reasoning_content is None
    assert reply.usage.completion_tokens_details.reasoning_tokens == 0
    assert mock.requests[0].body["thinking"] == {"type": "disabled"}


def test_every_parameter_passes_through_untouched(client, mock):
    params = dict(
        temperature=0.3, top_p=0.9, max_tokens=2000, n=1, stop=["11."], seed=42,
        frequency_penalty=0.5, presence_penalty=-0.5, logit_bias={"1234": -100},
        logprobs=True, top_logprobs=2, response_format={"type": "json_object"},
        tools=[WEATHER], tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False, thinking={"type": "enabled"}, reasoning_effort="high",
        user="user-1", stream_options=None, some_future_field={"x": [1, None]},
    )
    client.chat.completions.create(
        model="glm-5", messages=HELLO,
        extra_body={"extra_flag": True, "temperature": 0.1},
        extra_headers={"X-Trace": "abc", "User-Agent": "my-app/1.0"},
        extra_query={"probe": "1"},
        **params,
    )
    request = mock.requests[0]
    expected = dict(model="glm-5", messages=HELLO, **params)
    expected.update(extra_flag=True, temperature=0.1)
    assert request.body == expected
    assert request.path == "/v1/chat/completions?probe=1"
    assert request.headers["x-trace"] == "abc"
    assert request.headers["user-agent"] == "my-app/1.0"


def test_extra_headers_none_removes_a_header(client, mock):
    client.chat.completions.create(model="glm-5", messages=HELLO, extra_headers={"User-Agent": None})
    assert "user-agent" not in mock.requests[0].headers


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1/chat/completions"])
def test_base_url_forms_reach_the_endpoint(mock, suffix):
    client = tokenhub.TokenHub(api_key="k", base_url=mock.url + suffix)
    client.chat.completions.create(model="glm-5", messages=HELLO)
    client.messages.create(model="glm-5", max_tokens=10, messages=HELLO)
    assert [r.path for r in mock.requests] == ["/v1/chat/completions", "/v1/messages"]
    client.close()


@pytest.mark.parametrize("suffix", ["/api", "/api/v1", "/api/v1/"])
def test_store_style_base_url(mock, suffix):
    client = tokenhub.OpenAI(api_key="th-key", base_url=mock.url + suffix)
    reply = client.chat.completions.create(model="deepseek/deepseek-v4-flash", messages=HELLO)
    assert reply.choices[0].message.reasoning_content  # the alias still names a thinking model
    assert mock.requests[0].path == "/api/v1/chat/completions"
    client.close()
