"""mock_server fidelity: parameters that shape a reply, validation, auth, ids, scale."""

import json
import socket
import threading

import pytest

import tokenhub
from conftest import host_port, post_bytes, raw_exchange, raw_request, wire_bytes
from mock_server import MockServer
from test_mock_fixtures import anthropic_call, openai_call, openai_result
from test_mock_server import check

ASK = [{"role": "user", "content": "Tell me about the sea. Then stop here. And more words after."}]


# ---------------------------------------------------------------------------
# Parameters that change the reply's shape
# ---------------------------------------------------------------------------


def test_n_choices_plain_and_streamed(client):
    reply = client.chat.completions.create(model="deepseek-v3.2", messages=ASK, n=3)
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert len({c.message.content for c in reply.choices}) == 1
    single = client.chat.completions.create(model="deepseek-v3.2", messages=ASK)
    assert reply.usage.completion_tokens == 3 * single.usage.completion_tokens
    assert reply.usage.prompt_tokens == single.usage.prompt_tokens
    chunks = list(client.chat.completions.create(model="deepseek-v3.2", messages=ASK, n=2, stream=True))
    order = [chunk.choices[0].index for chunk in chunks]
    assert order[:4] == [0, 1, 0, 1]  # interleaved, as the service sends them
    for index in (0, 1):
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices[0].index == index)
        assert text == single.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks].count("stop") == 2


def test_openai_stop_cuts_the_text(client):
    full = openai_call(client, messages=ASK)[0]
    assert "stop here" in full
    for stream in (False, True):
        text, _, _, finish, usage = openai_call(client, stream, messages=ASK, stop=["zzz", "stop here"],
                                                stream_options={"include_usage": True} if stream else None)
        assert text == full[: full.index("stop here")] and finish == "stop"
        assert usage.completion_tokens < openai_call(client, messages=ASK)[4].completion_tokens
    assert openai_call(client, messages=ASK, stop="sea")[0] == full[: full.index("sea")]


def test_anthropic_stop_sequences_say_which_one(mock):
    with tokenhub.Anthropic(api_key="k", base_url=mock.url) as client:
        full = client.messages.create(model="deepseek-v3.2", max_tokens=500, messages=ASK).content[0].text
        message = client.messages.create(model="deepseek-v3.2", max_tokens=500, messages=ASK, stop_sequences=["Then"])
        assert message.content[0].text == full[: full.index("Then")]
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "Then")
        events = list(client.messages.create(model="deepseek-v3.2", max_tokens=500, messages=ASK,
                                             stop_sequences=["Then"], stream=True))
        delta = [e for e in events if e.type == "message_delta"][0].delta
        assert (delta.stop_reason, delta.stop_sequence) == ("stop_sequence", "Then")


def test_max_tokens_cuts_and_says_so(client, mock):
    for stream in (False, True):
        text, _, _, finish, usage = openai_call(client, stream, messages=ASK, max_tokens=4,
                                                stream_options={"include_usage": True} if stream else None)
        assert finish == "length" and usage.completion_tokens == 4
        assert text == "This is the TokenHub"
        assert openai_call(client, stream, messages=ASK, max_completion_tokens=2)[0] == "This is"
    with tokenhub.Anthropic(api_key="k", base_url=mock.url) as anthropic:
        for stream in (False, True):
            text, _, _, stop, output = anthropic_call(anthropic, stream, messages=ASK, max_tokens=3)
            assert (text, stop, output) == ("This is the", "max_tokens", 3)


def test_reasoning_shares_max_tokens_and_can_leave_no_answer(client):
    """Seed 004: a small max_tokens on a thinking model may leave content empty."""
    text, reasoning, _, finish, usage = openai_call(client, model="deepseek-v4-flash", messages=ASK, max_tokens=5)
    assert text == "" and finish == "length" and usage.completion_tokens == 5
    assert reasoning == "The user said 'Tell" and usage.completion_tokens_details.reasoning_tokens == 5


def test_max_tokens_drops_tool_calls_that_do_not_fit(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}]
    ask = [{"role": "user", "content": "weather in Paris"}]
    assert openai_call(client, messages=ask, tools=tools)[2]
    _, _, calls, finish, _ = openai_call(client, messages=ask, tools=tools, max_tokens=2)
    assert calls == [] and finish == "length"


def test_logprobs_cover_the_content_exactly(client):
    for stream in (False, True):
        reply = client.chat.completions.create(model="glm-5", messages=ASK, logprobs=True, top_logprobs=3, stream=stream)
        if stream:
            chunks = list(reply)
            entries = [e for c in chunks if c.choices and c.choices[0].logprobs for e in c.choices[0].logprobs.content]
            content = openai_result(chunks)[0]
        else:
            entries, content = reply.choices[0].logprobs.content, reply.choices[0].message.content
        assert "".join(e.token for e in entries) == content
        for entry in entries:
            assert entry.logprob < 0 and bytes(entry.bytes).decode() == entry.token
            assert len(entry.top_logprobs) == 3 and entry.top_logprobs[0].token == entry.token
            assert [t.logprob for t in entry.top_logprobs] == sorted((t.logprob for t in entry.top_logprobs), reverse=True)
    plain = client.chat.completions.create(model="glm-5", messages=ASK)
    assert plain.choices[0].logprobs is None


def test_response_format_json_object_and_json_schema(client):
    reply = client.chat.completions.create(model="glm-5", messages=ASK, response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.choices[0].message.content), dict)
    schema = {"type": "object", "properties": {"name": {"type": "string", "minLength": 3},
                                               "age": {"type": "integer", "minimum": 18},
                                               "tags": {"type": "array", "items": {"type": "string"}}},
              "required": ["name", "age", "tags"]}
    fmt = {"type": "json_schema", "json_schema": {"name": "person", "schema": schema, "strict": True}}
    for stream in (False, True):
        text = openai_call(client, stream, model="glm-5", messages=[{"role": "user", "content": "Describe Ada"}],
                           response_format=fmt)[0]
        value = json.loads(text)
        check(schema, value)
        assert value["name"] == "Ada"


@pytest.mark.parametrize("model,thinking,thinks", [
    ("deepseek-v4-flash", None, True), ("deepseek-v4-flash", {"type": "disabled"}, False),
    ("deepseek-v3.2", None, False), ("deepseek-v3.2", {"type": "enabled"}, True),
    ("minimax-m2.7", {"type": "disabled"}, True),  # cannot be disabled (PROTOCOL.md)
])
def test_thinking_per_model_and_request(client, mock, model, thinking, thinks):
    extra = {"thinking": thinking} if thinking else {}
    for stream in (False, True):
        assert bool(openai_call(client, stream, model=model, **extra)[1]) is thinks
    with tokenhub.Anthropic(api_key="k", base_url=mock.url) as anthropic:
        assert bool(anthropic_call(anthropic, True, model=model, **extra)[1]) is thinks


# ---------------------------------------------------------------------------
# Validation like the service: a 400 in the protocol's shape naming the field
# ---------------------------------------------------------------------------

OPENAI_BASE = {"model": "glm-5", "messages": [{"role": "user", "content": "hi"}]}
ANTHROPIC_BASE = dict(OPENAI_BASE, max_tokens=10)
ORPHAN_TOOL = [{"role": "user", "content": "hi"},
               {"role": "assistant", "content": None, "tool_calls": [
                   {"id": "call_a", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "call_b", "content": "x"}]
ORPHAN_RESULT = [{"role": "user", "content": "hi"},
                 {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_a", "name": "f", "input": {}}]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_b", "content": "x"}]}]


@pytest.mark.parametrize("change,field,words", [
    ({"temperature": 2.5}, "temperature", "from 0 to 2, got 2.5"),
    ({"temperature": "hot"}, "temperature", 'a number from 0 to 2, got "hot"'),
    ({"top_p": 1.5}, "top_p", "from 0 to 1"),
    ({"frequency_penalty": -3}, "frequency_penalty", "from -2 to 2"),
    ({"presence_penalty": 2.5}, "presence_penalty", "from -2 to 2"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4 strings, got 5"),
    ({"stop": 5}, "stop", "a string or a list of strings"),
    ({"top_logprobs": 2}, "top_logprobs", "needs 'logprobs': true"),
    ({"logprobs": True, "top_logprobs": 21}, "top_logprobs", "from 0 to 20"),
    ({"logprobs": "yes"}, "logprobs", "true or false"),
    ({"n": 0}, "n", "an integer from 1 to 128, got 0"),
    ({"max_tokens": 0}, "max_tokens", "at least 1"),
    ({"response_format": {"type": "xml"}}, "response_format", "json_object or json_schema"),
    ({"response_format": {"type": "json_schema"}}, "response_format", "'schema'"),
    ({"messages": ORPHAN_TOOL}, "messages[2].tool_call_id", '"call_b", which matches no tool call'),
    ({"messages": ["hi"]}, "messages", "messages[0] must be an object"),
])
def test_openai_validation(mock, change, field, words):
    status, _, body = raw_request(mock, "POST", "/v1/chat/completions", dict(OPENAI_BASE, **change))
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error" and body["error"]["param"] == field
    assert words in body["error"]["message"] and field.split("[")[0] in body["error"]["message"]


@pytest.mark.parametrize("change,words", [
    ({"temperature": -1}, "'temperature' must be a number from 0 to 2"),
    ({"top_p": 2}, "'top_p' must be a number from 0 to 1"),
    ({"max_tokens": "10"}, "'max_tokens' must be an integer"),
    ({"max_tokens": 0}, "'max_tokens' must be an integer at least 1"),
    ({"stop_sequences": "END"}, None),  # a single string is taken, as the gateway does
    ({"messages": ORPHAN_RESULT}, 'tool_use_id "toolu_b", which matches no tool_use block'),
])
def test_anthropic_validation(mock, change, words):
    status, _, body = raw_request(mock, "POST", "/v1/messages", dict(ANTHROPIC_BASE, **change))
    if words is None:
        assert status == 200
        return
    assert status == 400 and body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert words in body["error"]["message"]


def test_validation_errors_reach_tokenhub_as_bad_request(client):
    with pytest.raises(tokenhub.BadRequestError, match="temperature") as caught:
        client.chat.completions.create(model="glm-5", messages=ASK, temperature=9)
    assert caught.value.status_code == 400 and caught.value.body["error"]["param"] == "temperature"


def test_unknown_fields_and_system_messages_are_accepted(mock):
    extras = {"metadata": {"user_id": "u"}, "context_management": {"edits": []}, "service_tier": "auto",
              "thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 5, "whatever_next": [1]}
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": {"type": "ephemeral"}}]}]
    for path, base in (("/v1/chat/completions", OPENAI_BASE), ("/v1/messages", ANTHROPIC_BASE)):
        body = dict(base, messages=messages, **extras)
        if path == "/v1/messages":
            body["system"] = [{"type": "text", "text": "Also terse.", "cache_control": {"type": "ephemeral"}}]
        status, _, reply = raw_request(mock, "POST", path, body)
        assert status == 200, reply


def test_auth_takes_bearer_or_x_api_key_and_says_what_is_missing():
    with MockServer(api_key="sekret") as srv:
        for headers in ({"Authorization": "Bearer sekret"}, {"x-api-key": "sekret"}):
            assert raw_request(srv, "POST", "/v1/messages", ANTHROPIC_BASE, headers)[0] == 200
            assert raw_request(srv, "POST", "/v1/chat/completions", OPENAI_BASE, headers)[0] == 200
        status, _, body = raw_request(srv, "POST", "/v1/messages", ANTHROPIC_BASE)
        assert status == 401 and body["error"]["type"] == "authentication_error" and "got none" in body["error"]["message"]
        status, _, body = raw_request(srv, "POST", "/v1/chat/completions", OPENAI_BASE, {"Authorization": "Bearer no"})
        assert status == 401 and "got a wrong one" in body["error"]["message"]


def test_ids_usage_and_ping_look_like_the_real_service(client, mock):
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    ask = [{"role": "user", "content": "weather?"}]
    with tokenhub.Anthropic(api_key="k", base_url=mock.url) as anthropic:
        events = list(anthropic.messages.create(model="glm-5", max_tokens=500, messages=ask, tools=tools, stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    wire = wire_bytes(mock, post_bytes("/v1/messages", {"model": "glm-5", "max_tokens": 500, "messages": ask,
                                                        "stream": True}, {"x-api-key": "k"}))
    assert b"event: message_start" in wire and wire.index(b"event: ping") > wire.index(b"event: message_start")
    assert "ping" not in kinds  # sent by the mock, consumed by the client as the SDK does
    start = events[0].message
    assert start.id.startswith("msg_") and start.usage.input_tokens > 1
    assert events[-2].usage.output_tokens > 1
    tool_use = [e.content_block for e in events if e.type == "content_block_start" and e.content_block.type == "tool_use"]
    assert tool_use[0].id.startswith("toolu_")
    reply = client.chat.completions.create(model="glm-5", messages=ask, tools=[
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])
    assert reply.id.startswith("chatcmpl-") and reply.choices[0].message.tool_calls[0].id.startswith("call_")


# ---------------------------------------------------------------------------
# Inspection and scale
# ---------------------------------------------------------------------------


def test_the_journal_over_http(mock, client):
    client.chat.completions.create(model="glm-5", messages=ASK, extra_headers={"X-Trace": "t1"})
    status, _, journal = raw_request(mock, "GET", "/_mock/requests")
    (entry,) = journal["requests"]
    assert status == 200 and entry["method"] == "POST" and entry["path"] == "/v1/chat/completions"
    assert entry["headers"]["x-trace"] == "t1" and entry["body"]["model"] == "glm-5"
    assert json.loads(entry["raw"]) == entry["body"] and entry["fixture"] is None


def test_a_hundred_concurrent_streams():
    with MockServer() as srv:
        results, errors = [], []

        def one(number):
            try:
                with tokenhub.TokenHub(api_key="k", base_url=srv.url, max_retries=0) as client:
                    chunks = list(client.chat.completions.create(
                        model="glm-5", stream=True, messages=[{"role": "user", "content": "stream %d" % number}]))
                    results.append(openai_result(chunks)[0])
            except Exception as exc:  # collected, and the test fails naming it
                errors.append(repr(exc))

        threads = [threading.Thread(target=one, args=(n,)) for n in range(100)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == [] and len(results) == 100
        assert sorted(results) == sorted("This is the TokenHub mock server (glm-5). You said: stream %d" % n for n in range(100))
        assert len(srv.requests) == 100


def test_a_body_over_the_limit_gets_413_and_the_server_goes_on():
    with MockServer(max_body=1000) as srv:
        big = dict(OPENAI_BASE, padding="x" * 2000)
        status, headers, body = raw_request(srv, "POST", "/v1/chat/completions", big)
        assert status == 413 and "at most 1000 bytes" in body["error"]["message"]
        assert headers["connection"] == "close"
        status, _, body = raw_request(srv, "POST", "/v1/messages", dict(ANTHROPIC_BASE, padding="x" * 2000))
        assert status == 413 and body["error"]["type"] == "request_too_large"
        assert raw_request(srv, "POST", "/v1/chat/completions", OPENAI_BASE)[0] == 200


def test_garbage_on_the_socket_gets_a_400_and_the_server_goes_on(mock):
    reply = wire_bytes(mock, b"\x16\x03\x01\x02\x00 garbage\r\n\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"cannot read this request" in body and json.loads(body)["error"]["type"] == "invalid_request_error"
    reply = wire_bytes(mock, b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 501 ") and json.loads(reply.partition(b"\r\n\r\n")[2])["error"]
    assert raw_request(mock, "POST", "/v1/chat/completions", OPENAI_BASE)[0] == 200


def test_a_silent_client_is_hung_up_on():
    with MockServer(client_timeout=0.2) as srv:
        with socket.create_connection(host_port(srv), timeout=10) as sock:
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"mod")
            assert sock.recv(1024) == b""  # the server closed: the thread is free again
        with socket.create_connection(host_port(srv), timeout=10) as sock:
            assert sock.recv(1024) == b""  # silent from the start: the same
        assert raw_exchange(srv, "GET", "/v1/models")[0] == 200
