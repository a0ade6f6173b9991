"""mock_server fixtures: the file format, matching, sequences, raw replies, --strict."""

import json
import os
import signal
import subprocess
import sys

import pytest

import tokenhub
from conftest import ROOT, dechunk, mock_cli, post_bytes, raw_exchange, raw_request, wire_bytes
from mock_server import Fixture, MockServer

# The issue's own example, spelled exactly as the public format documents it.
WEATHER_FIXTURES = {"fixtures": [
    {"match": {"user": "weather", "tools": ["get_weather"], "has_tool_result": False},
     "response": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}},
    {"match": {"has_tool_result": True}, "response": {"text": "It is sunny.", "reasoning": "The tool said so."}},
]}
OPENAI_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
ASK = [{"role": "user", "content": "What's the weather like?"}]


def openai_result(reply):
    """(text, reasoning, [(id, name, arguments)], finish, usage) of a completion or its chunks;
    the reasoning in whichever shape it came (reasoning_content, reasoning_details, <think>)."""
    if not isinstance(reply, list):
        message = reply.choices[0].message
        calls = [(c.id, c.function.name, c.function.arguments) for c in message.tool_calls or []]
        thought, text = tokenhub._split_think(message.content or "")
        reasoning = (message.reasoning_content or "") + "".join(d.text for d in message.reasoning_details or ()) + thought
        return text, reasoning, calls, reply.choices[0].finish_reason, reply.usage
    text, reasoning, calls, finish, usage = "", "", {}, None, None
    for chunk in reply:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            delta = choice.delta
            text += delta.content or ""
            reasoning += (delta.reasoning_content or "") + "".join(d.text for d in delta.reasoning_details or ())
            for piece in delta.tool_calls or []:
                call = calls.setdefault(piece["index"], ["", "", ""])
                call[0] = piece.get("id") or call[0]
                call[1] = (piece.get("function") or {}).get("name") or call[1]
                call[2] += (piece.get("function") or {}).get("arguments") or ""
            finish = choice.finish_reason or finish
    thought, text = tokenhub._split_think(text)
    return text, reasoning + thought, [tuple(calls[i]) for i in sorted(calls)], finish, usage


def anthropic_result(reply):
    """(text, thinking, [(id, name, input)], stop_reason, output_tokens) of a message or its events."""
    if not isinstance(reply, list):
        blocks = reply.content
        text = "".join(b.text for b in blocks if b.type == "text")
        thinking = "".join(b.thinking for b in blocks if b.type == "thinking")
        calls = [(b.id, b.name, b.input) for b in blocks if b.type == "tool_use"]
        return text, thinking, calls, reply.stop_reason, reply.usage.output_tokens
    blocks, stop, output = {}, None, None
    for event in reply:
        if event.type == "content_block_start":
            blocks[event.index] = dict(event.content_block, partial="")
        elif event.type == "content_block_delta":
            block, delta = blocks[event.index], event.delta
            for field in ("text", "thinking", "partial_json"):
                key = "partial" if field == "partial_json" else field
                block[key] = block.get(key, "") + (delta.get(field) or "")
        elif event.type == "message_delta":
            stop, output = event.delta.stop_reason, event.usage.output_tokens
    ordered = [blocks[i] for i in sorted(blocks)]
    text = "".join(b["text"] for b in ordered if b["type"] == "text")
    thinking = "".join(b["thinking"] for b in ordered if b["type"] == "thinking")
    calls = [(b["id"], b["name"], json.loads(b["partial"])) for b in ordered if b["type"] == "tool_use"]
    return text, thinking, calls, stop, output


def openai_call(client, stream=False, **params):
    params.setdefault("model", "deepseek-v3.2")
    params.setdefault("messages", ASK)
    reply = client.chat.completions.create(stream=stream, **params)
    return openai_result(list(reply) if stream else reply)


def anthropic_call(client, stream=False, **params):
    params.setdefault("model", "deepseek-v3.2")
    params.setdefault("messages", ASK)
    params.setdefault("max_tokens", 1000)
    reply = client.messages.create(stream=stream, **params)
    return anthropic_result(list(reply) if stream else reply)


# ---------------------------------------------------------------------------
# The documented format, end to end
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
def test_the_documented_example_in_the_openai_protocol(tmp_path, stream):
    path = tmp_path / "weather.json"
    path.write_text(json.dumps(WEATHER_FIXTURES))
    with MockServer(fixtures=str(path)) as srv, tokenhub.TokenHub(api_key="k", base_url=srv.url) as client:
        text, _, calls, finish, _ = openai_call(client, stream, messages=ASK, tools=OPENAI_TOOLS)
        assert (text, finish) == ("", "tool_calls")
        ((call_id, name, arguments),) = calls
        assert call_id.startswith("call_") and name == "get_weather" and json.loads(arguments) == {"city": "Paris"}
        history = ASK + [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]},
            {"role": "tool", "tool_call_id": call_id, "content": "22C and clear"},
        ]
        text, reasoning, calls, finish, _ = openai_call(client, stream, messages=history, tools=OPENAI_TOOLS)
        assert (text, reasoning, calls, finish) == ("It is sunny.", "The tool said so.", [], "stop")
        assert [r.fixture for r in srv.requests] == ["weather.json[0]", "weather.json[1]"]


@pytest.mark.parametrize("stream", [False, True])
def test_the_documented_example_in_the_anthropic_protocol(stream):
    with MockServer(fixtures=WEATHER_FIXTURES) as srv, tokenhub.Anthropic(api_key="k", base_url=srv.url) as client:
        text, _, calls, stop, _ = anthropic_call(client, stream, tools=ANTHROPIC_TOOLS)
        ((call_id, name, arguments),) = calls
        assert (text, stop, name, arguments) == ("", "tool_use", "get_weather", {"city": "Paris"})
        assert call_id.startswith("toolu_")
        history = ASK + [
            {"role": "assistant", "content": [{"type": "tool_use", "id": call_id, "name": name, "input": arguments}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call_id, "content": "22C"}]},
        ]
        text, thinking, calls, stop, _ = anthropic_call(client, stream, messages=history, tools=ANTHROPIC_TOOLS)
        assert (text, thinking, calls, stop) == ("It is sunny.", "The tool said so.", [], "end_turn")


def test_one_neutral_response_renders_the_same_four_ways(client, mock):
    mock.add({
        "text": "Two calls coming.", "reasoning": "Let me think.",
        "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}, "id": "call_fixed"},
                       {"name": "get_time", "arguments": "{\"tz\": \"CET\"}"}],
        "finish_reason": "tool_calls",
        "usage": {"prompt_tokens": 11, "completion_tokens": 22, "reasoning_tokens": 3, "cached_tokens": 4},
    })
    anthropic = tokenhub.Anthropic(api_key="k", base_url=mock.url)
    for stream in (False, True):
        text, reasoning, calls, finish, usage = openai_call(client, stream, stream_options={"include_usage": True} if stream else None)
        assert (text, reasoning, finish) == ("Two calls coming.", "Let me think.", "tool_calls")
        assert [(n, json.loads(a)) for _, n, a in calls] == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
        assert calls[0][0] == "call_fixed" and calls[1][0].startswith("call_")
        assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (11, 22, 33)
        assert usage.completion_tokens_details.reasoning_tokens == 3 and usage.prompt_tokens_details.cached_tokens == 4
        text, thinking, calls, stop, output = anthropic_call(anthropic, stream)
        assert (text, thinking, stop, output) == ("Two calls coming.", "Let me think.", "tool_use", 22)
        assert [(n, a) for _, n, a in calls] == [("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})]
    message = anthropic.messages.create(model="m", max_tokens=99, messages=ASK)
    assert message.usage.input_tokens == 11 and message.usage.cache_read_input_tokens == 4
    anthropic.close()


@pytest.mark.parametrize("given,openai,anthropic", [
    ("end_turn", "stop", "end_turn"), ("max_tokens", "length", "max_tokens"), ("length", "length", "max_tokens"),
    ("stop_sequence", "stop", "stop_sequence"), ("content_filter", "content_filter", "content_filter"),
])
def test_finish_reason_in_either_vocabulary(client, mock, given, openai, anthropic):
    key = "stop_reason" if given in ("end_turn", "max_tokens") else "finish_reason"
    mock.add({"text": "Done.", key: given})
    assert openai_call(client)[3] == openai
    assert openai_call(client, stream=True)[3] == openai
    with tokenhub.Anthropic(api_key="k", base_url=mock.url) as other:
        assert anthropic_call(other)[3] == anthropic
        assert anthropic_call(other, stream=True)[3] == anthropic


def test_a_plain_string_is_the_text_and_usage_is_counted(client, mock):
    mock.add("Just this.")
    text, reasoning, calls, finish, usage = openai_call(client)
    assert (text, reasoning, calls, finish) == ("Just this.", "", [], "stop")
    assert usage.completion_tokens == 3 and usage.prompt_tokens > 0  # "Just", "this", "."


# ---------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------

SYSTEM_ASK = [{"role": "system", "content": "You are a Pirate."}, {"role": "user", "content": "Ahoy THERE"}]


@pytest.mark.parametrize("match,hit,miss", [
    ({"model": "glm-5"}, {"model": "GLM-5"}, {"model": "glm-5.1"}),
    ({"model": "/^glm-5(\\.1)?$/"}, {"model": "glm-5.1"}, {"model": "glm-5-turbo"}),
    ({"user": "there"}, {"messages": SYSTEM_ASK}, {}),
    ({"user": "/^Ahoy [A-Z]+$/"}, {"messages": SYSTEM_ASK}, {"messages": [{"role": "user", "content": "ahoy there"}]}),
    ({"user": "/^ahoy there$/i"}, {"messages": SYSTEM_ASK}, {}),
    ({"system": "pirate"}, {"messages": SYSTEM_ASK}, {}),
    ({"protocol": "openai"}, {}, {"protocol": "anthropic"}),
    ({"path": "/api/v1/chat/completions"}, {"path": "/api/v1/chat/completions"}, {}),
    ({"tools": ["get_weather"]}, {"tools": OPENAI_TOOLS}, {}),
    ({"tools": []}, {}, {"tools": OPENAI_TOOLS}),
    ({"has_tool_result": False}, {}, {"messages": "tool result"}),
    ({"turn": 2}, {"messages": "tool result"}, {}),
    ({"stream": True}, {"stream": True}, {}),
    ({"headers": {"X-Test-Case": "/^case-[0-9]+$/"}}, {"headers": {"X-Test-Case": "case-7"}}, {"headers": {"X-Test-Case": "other"}}),
])
def test_each_match_key(mock, match, hit, miss):
    mock.add("matched", match=match)
    assert _ask(mock, **hit) == "matched"
    assert _ask(mock, **miss) != "matched"


def _ask(srv, *, protocol="openai", path=None, model="deepseek-v3.2", messages=None, tools=None, stream=False, headers=None):
    """The reply text of one raw request built from the parameters."""
    if messages == "tool result":
        messages = [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ]
    body = {"model": model, "messages": messages or [{"role": "user", "content": "hello"}]}
    if tools:
        body["tools"] = tools
    if protocol == "anthropic":
        body["max_tokens"] = 100
        path = path or "/v1/messages"
    if stream:
        body["stream"] = True
    status, _, data = raw_exchange(srv, "POST", path or "/v1/chat/completions", body, headers)
    assert status == 200, data
    if stream:
        return "".join(
            json.loads(line[6:])["choices"][0]["delta"].get("content") or "" if protocol == "openai" else
            (json.loads(line[6:]).get("delta") or {}).get("text") or ""
            for line in data.decode().splitlines()
            if line.startswith("data: {") and (protocol != "openai" or json.loads(line[6:])["choices"])
        )
    reply = json.loads(data)
    if protocol == "anthropic":
        return "".join(b.get("text", "") for b in reply["content"])
    return reply["choices"][0]["message"]["content"]


def test_anthropic_requests_match_on_system_turn_and_tool_results(mock):
    mock.add("second turn", match={"protocol": "anthropic", "turn": 2, "has_tool_result": True, "system": "terse"})
    history = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "w", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
    ]
    status, _, reply = raw_request(mock, "POST", "/v1/messages", {
        "model": "m", "max_tokens": 50, "system": [{"type": "text", "text": "Be terse."}], "messages": history})
    assert status == 200 and reply["content"] == [{"type": "text", "text": "second turn"}]


def test_first_match_wins_and_added_fixtures_come_before_the_file(tmp_path):
    (tmp_path / "a.json").write_text(json.dumps({"fixtures": [{"response": "from the file"}]}))
    with MockServer(fixtures=str(tmp_path)) as srv:
        assert _ask(srv) == "from the file"
        srv.add("specific", match={"user": "special"})
        srv.add("also specific", match={"user": "special"})
        assert _ask(srv, messages=[{"role": "user", "content": "a special one"}]) == "specific"
        assert _ask(srv) == "from the file"
        assert [f.name for f in srv.fixtures] == ["srv.add #1", "srv.add #2", "a.json[0]"]


def test_times_makes_a_one_shot_fixture(mock):
    fixture = mock.add("once", times=1)
    assert _ask(mock) == "once"
    assert _ask(mock).startswith("This is the TokenHub mock server")  # the canned reply again
    assert fixture.used == 1 and "used 1 of 1" in repr(fixture)


def test_a_sequence_serves_its_responses_in_turn_then_stops_matching(mock):
    mock.add(["first", {"text": "second"}, "third"], match={"user": "hello"})
    assert [_ask(mock) for _ in range(3)] == ["first", "second", "third"]
    assert _ask(mock).startswith("This is the TokenHub mock server")


def test_a_sequence_with_more_times_repeats_its_last_response(mock):
    mock.add(["first", "then always this"], times=4)
    replies = [_ask(mock) for _ in range(5)]
    assert replies[:4] == ["first"] + ["then always this"] * 3
    assert replies[4].startswith("This is the TokenHub mock server")
    assert mock.fixtures[0].used == 4


def test_a_folder_of_fixture_files_loads_in_name_order(tmp_path):
    (tmp_path / "b.json").write_text(json.dumps([{"response": "from b"}]))
    (tmp_path / "a.json").write_text(json.dumps({"match": {"user": "zzz"}, "response": "from a"}))
    (tmp_path / "notes.txt").write_text("not a fixture")
    with MockServer(fixtures=str(tmp_path)) as srv:
        assert [f.name for f in srv.fixtures] == ["a.json[0]", "b.json[0]"]
        assert _ask(srv) == "from b"


def test_named_fixtures_and_the_journal_name_them(mock):
    mock.load({"fixtures": [{"name": "greeting", "response": "hi"}]})
    _ask(mock)
    assert mock.requests[0].fixture == "greeting"
    status, _, journal = raw_request(mock, "GET", "/_mock/requests")
    assert status == 200 and journal["requests"][0]["fixture"] == "greeting"


# ---------------------------------------------------------------------------
# Raw replies, byte for byte
# ---------------------------------------------------------------------------


def test_a_raw_body_is_replayed_byte_for_byte(mock):
    body = '{"id":"x",  "choices":[],\n "odd": "sp\u00e9cial"}'
    mock.add({"raw": {"status": 202, "headers": {"X-Custom": "yes", "Content-Type": "application/json; charset=utf-8"},
                      "body": body}})
    status, headers, data = raw_exchange(mock, "POST", "/v1/chat/completions", {"model": "m", "messages": ASK})
    assert status == 202 and data == body.encode()
    assert headers["x-custom"] == "yes" and headers["content-type"] == "application/json; charset=utf-8"
    assert headers["x-request-id"].startswith("req_mock_")


def test_a_raw_sse_transcript_is_replayed_byte_for_byte_whatever_the_request_says(mock):
    transcript = (": a comment\r\n\r\nevent: message_start\ndata: {\"type\":\"message_start\"}\n\n"
                  "data: {\"weird\":  1}\r\rdata: tail-without-blank-line")
    mock.add({"raw": {"sse": transcript}})
    data = wire_bytes(mock, post_bytes("/v1/messages", {"model": "m", "max_tokens": 5, "messages": ASK}))
    body, ended = dechunk(data)
    assert body == transcript.encode() and ended
    assert b"content-type: text/event-stream" in data.lower()
    assert data.count(b"\r\n") > 8  # one chunk per event: four events, four chunks


def test_raw_events_and_a_fault_count_the_same_events(mock):
    events = ["data: {\"n\": %d}\n\n" % i for i in range(5)]
    mock.add({"raw": {"events": events}}, fault="truncate-after=2")
    body, ended = dechunk(wire_bytes(mock, post_bytes("/v1/chat/completions", {"model": "m", "messages": ASK})))
    assert body == "".join(events[:2]).encode() and ended


# ---------------------------------------------------------------------------
# --strict, and the fixtures' own errors
# ---------------------------------------------------------------------------


def test_strict_mode_refuses_unmatched_requests_naming_them():
    with MockServer(strict=True, fixtures={"match": {"user": "known"}, "response": "ok"}) as srv:
        status, _, body = raw_request(srv, "POST", "/v1/chat/completions", {
            "model": "glm-5", "messages": [{"role": "user", "content": "something unexpected"}]})
        assert status == 404 and body["error"]["type"] == "not_found_error"
        message = body["error"]["message"]
        assert "no fixture matched" in message and '"something unexpected"' in message and "glm-5" in message
        status, _, body = raw_request(srv, "POST", "/v1/messages", {
            "model": "glm-5", "max_tokens": 5, "messages": [{"role": "user", "content": "nope"}]})
        assert status == 404 and body["type"] == "error" and '"nope"' in body["error"]["message"]
        assert _ask(srv, messages=[{"role": "user", "content": "known"}]) == "ok"


@pytest.mark.parametrize("spec,words", [
    ({"match": {"usr": "x"}, "response": "a"}, ["[0].match", "unknown key 'usr'", "user"]),
    ({"match": {"user": "/(/"}, "response": "a"}, ["[0].match.user", "not a valid regular expression"]),
    ({"match": {"turn": "2"}, "response": "a"}, ["[0].match.turn", "expected a turn number", '"2"']),
    ({"match": {"protocol": "grpc"}, "response": "a"}, ["[0].match.protocol", '"grpc"']),
    ({"match": {}}, ["expected a 'response' or a 'fault', got neither"]),
    ({"response": "a", "times": 0}, ["[0].times", "positive count"]),
    ({"response": {"txt": "a"}}, ["[0].response[0]", "unknown key 'txt'"]),
    ({"response": {"raw": {"body": "x"}, "text": "y"}}, ["'raw' is replayed as written"]),
    ({"response": {"raw": {"body": "x", "sse": "y"}}}, ["expected one of 'body', 'sse' or 'events'"]),
    ({"response": {"tool_calls": [{"arguments": {}}]}}, ["tool_calls[0].name", "expected a tool name"]),
    ({"response": {"usage": {"tokens": 5}}}, ["[0].response[0].usage", "unknown key 'tokens'"]),
    ({"response": "a", "fault": "status=99"}, ["[0].fault", "'status' expects an integer from 400 to 599", '"99"']),
    ({"response": "a", "fault": "explode-after=1"}, ["unknown fault 'explode-after'"]),
    ({"response": "a", "fault": "seconds=3"}, ["'seconds' goes with 'stall-after'"]),
    ({"response": "a", "fault": "status=500,truncate-after=2"}, ["'status' answers at once"]),
])
def test_a_malformed_fixture_is_refused_saying_where_and_what(spec, words):
    with pytest.raises(ValueError) as caught:
        MockServer(fixtures={"fixtures": [spec]})
    for word in words:
        assert word in str(caught.value)


def test_unreadable_fixture_files_are_refused_clearly(tmp_path):
    with pytest.raises(ValueError, match="cannot read fixtures from .*missing.json"):
        MockServer(fixtures=str(tmp_path / "missing.json"))
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ValueError, match="bad.json: not valid JSON"):
        MockServer(fixtures=str(tmp_path / "bad.json"))
    with pytest.raises(ValueError, match="fail_next: .*unknown fault 'bogus'"):
        MockServer().fail_next("bogus=1")


def test_fixture_object_is_public_and_usable_alone():
    fixture = Fixture({"match": {"user": "x"}, "response": ["a", "b"]}, name="pair")
    assert fixture.name == "pair" and fixture.times == 2 and fixture.used == 0


# ---------------------------------------------------------------------------
# Tool-call arguments as the model wrote them
# ---------------------------------------------------------------------------


def test_string_arguments_are_sent_exactly_even_when_not_json(client, mock):
    mock.add({"tool_calls": [{"name": "get_weather", "arguments": "{\"city\": \"Par"}]})
    for stream in (False, True):
        assert openai_call(client, stream)[2][0][2] == "{\"city\": \"Par"
    with tokenhub.Anthropic(api_key="k", base_url=mock.url) as anthropic:
        events = list(anthropic.messages.create(model="m", max_tokens=50, messages=ASK, stream=True))
    fragments = "".join(e.delta.partial_json for e in events if e.type == "content_block_delta")
    assert fragments == "{\"city\": \"Par"
    status, _, body = raw_request(mock, "POST", "/v1/messages", {"model": "m", "max_tokens": 50, "messages": ASK})
    assert status == 500 and "not a JSON object" in body["error"]["message"]


# ---------------------------------------------------------------------------
# Fixtures over HTTP, reset, and the command line
# ---------------------------------------------------------------------------


JSON_TYPE = {"Content-Type": "application/json"}


def test_fixtures_over_http_and_reset(tmp_path):
    with MockServer(fixtures=[{"name": "base", "match": {"user": "base"}, "response": "base reply"}]) as srv:
        status, _, added = raw_request(srv, "POST", "/_mock/fixtures", {"fixtures": [{"name": "extra", "response": "extra reply"}]}, JSON_TYPE)
        assert status == 200 and added == {"added": ["extra"]}
        assert _ask(srv) == "extra reply"
        assert _ask(srv, messages=[{"role": "user", "content": "base"}]) == "extra reply"  # tried first
        status, _, listed = raw_request(srv, "GET", "/_mock/fixtures")
        assert listed["fixtures"] == [{"name": "extra", "used": 2, "times": None}, {"name": "base", "used": 0, "times": None}]
        status, _, error = raw_request(srv, "POST", "/_mock/fixtures", {"fixtures": [{"match": {"bad": 1}, "response": "x"}]}, JSON_TYPE)
        assert status == 400 and "unknown key 'bad'" in error["error"]["message"]
        srv.fail_next("status=500")
        assert raw_request(srv, "POST", "/_mock/reset", {}, JSON_TYPE)[2] == {"reset": True}
        assert srv.requests == [] and [f.name for f in srv.fixtures] == ["base"]
        assert _ask(srv, messages=[{"role": "user", "content": "base"}]) == "base reply"  # no queued 500 either
        status, _, body = raw_request(srv, "GET", "/_mock/nothing")
        assert status == 404 and "/_mock/requests" in body["error"]["message"]


def test_cli_fixtures_strict_and_one_log_line_per_request(tmp_path):
    (tmp_path / "f.json").write_text(json.dumps(WEATHER_FIXTURES))
    with mock_cli("--fixtures", str(tmp_path), "--strict") as (proc, url):
        with tokenhub.TokenHub(api_key="k", base_url=url, max_retries=0) as client:
            reply = client.chat.completions.create(model="glm-5", messages=ASK, tools=OPENAI_TOOLS)
            assert reply.choices[0].message.tool_calls[0].function.name == "get_weather"
            with pytest.raises(tokenhub.NotFoundError, match="no fixture matched"):
                client.chat.completions.create(model="glm-5", messages=[{"role": "user", "content": "hi"}])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = proc.stderr.read().splitlines()
    assert len(log) == 2
    assert "POST /v1/chat/completions -> 200 glm-5" in log[0] and 'fixture="f.json[0]"' in log[0]
    assert "-> 404" in log[1]


def test_cli_refuses_a_bad_fixture_file_with_exit_2(tmp_path):
    (tmp_path / "f.json").write_text(json.dumps({"fixtures": [{"match": {"usr": "x"}, "response": "y"}]}))
    out = subprocess.run([sys.executable, os.path.join(ROOT, "mock_server.py"), "--fixtures", str(tmp_path / "f.json")],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and out.stdout == ""
    assert "f.json[0].match: unknown key 'usr'" in out.stderr
