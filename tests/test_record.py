"""Record against an upstream (a second mock on loopback), then replay offline, byte for byte."""

import json
import os
import signal
import time

import pytest

import tokenhub
from conftest import mock_cli, raw_exchange
from mock_server import MockServer

KEY = "sk-secret-key-0123456789"
TEAM = "team-token-abcdef"
HI = [{"role": "user", "content": "Hello there, recorder"}]
SDK_HI = [{"role": "user", "content": "Hello from an SDK-shaped client"}]
OPENAI_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "input_schema": OPENAI_TOOLS[0]["function"]["parameters"]}]
WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]


def exchanges():
    """(path, body, headers) of plain, streamed and tool-call requests in both protocols."""
    openai = {"Authorization": "Bearer " + KEY, "X-Team-Token": TEAM}
    anthropic = {"x-api-key": KEY, "anthropic-version": "2023-06-01", "X-Team-Token": TEAM}
    tool_round = WEATHER + [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    anthropic_round = WEATHER + [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]},
    ]
    for stream in (False, True):
        yield "/v1/chat/completions", {"model": "glm-5", "messages": HI, "stream": stream}, openai
        yield "/v1/chat/completions", {"model": "deepseek-v3.2", "messages": WEATHER, "tools": OPENAI_TOOLS, "stream": stream}, openai
        yield "/v1/chat/completions", {"model": "deepseek-v3.2", "messages": tool_round, "tools": OPENAI_TOOLS, "stream": stream}, openai
        for messages, tools in ((HI, None), (WEATHER, ANTHROPIC_TOOLS), (anthropic_round, ANTHROPIC_TOOLS)):
            body = {"model": "glm-5", "max_tokens": 500, "messages": messages, "stream": stream}
            if tools:
                body["tools"] = tools
            yield "/v1/messages", body, anthropic
        responses_tools = [dict(OPENAI_TOOLS[0]["function"], type="function")]
        responses_round = WEATHER + [
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{\"city\": \"Paris\"}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
        ]
        for items, tools in (("Hi", None), (WEATHER, responses_tools), (responses_round, responses_tools)):
            body = {"model": "glm-5", "input": items, "stream": stream}
            if tools:
                body["tools"] = tools
            yield "/v1/responses", body, openai


def everything_in(directory):
    text = ""
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), encoding="utf-8") as file:
            text += file.read()
    return text


def test_record_then_replay_byte_for_byte(tmp_path):
    directory = str(tmp_path / "cassette")
    upstream = MockServer(api_key=KEY).start()  # it answers only with the key: auth passed through
    try:
        with MockServer(record=upstream.url, record_to=directory, redact_headers=["X-Team-Token"]) as recorder:
            recorded = [raw_exchange(recorder, "POST", path, body, headers) for path, body, headers in exchanges()]
            # Their own requests (recorded once each): an earlier identical request's
            # recording would answer first, with its own "created" time.
            with tokenhub.OpenAI(api_key=KEY, base_url=recorder.url + "/v1", max_retries=0) as sdk_shaped:
                live = sdk_shaped.chat.completions.create(model="glm-5", messages=SDK_HI)
            with tokenhub.Anthropic(api_key=KEY, base_url=recorder.url, max_retries=0) as sdk_shaped:
                live_message = sdk_shaped.messages.stream(model="glm-5", max_tokens=500, messages=SDK_HI).get_final_message()
    finally:
        upstream.stop()  # replay runs with the upstream gone
    count = len(list(exchanges()))  # six per protocol, plain and streamed
    assert count == 18 and [status for status, _, _ in recorded] == [200] * count
    assert len(os.listdir(directory)) == count + 2
    text = everything_in(directory)
    assert KEY not in text and TEAM not in text and "Bearer" not in text

    with MockServer(cassette=directory) as replay:
        for (path, body, headers), (status, sent_headers, sent) in zip(exchanges(), recorded):
            again = raw_exchange(replay, "POST", path, body, headers)
            assert again[0] == status and again[2] == sent  # the same bytes
            assert again[1]["content-type"] == sent_headers["content-type"]
            assert again[1]["x-request-id"] == sent_headers["x-request-id"]
        with tokenhub.OpenAI(api_key="any", base_url=replay.url + "/v1", max_retries=0) as sdk_shaped:
            assert sdk_shaped.chat.completions.create(model="glm-5", messages=SDK_HI) == live
        with tokenhub.Anthropic(api_key="any", base_url=replay.url, max_retries=0) as sdk_shaped:
            assert sdk_shaped.messages.stream(model="glm-5", max_tokens=500, messages=SDK_HI).get_final_message() == live_message


def test_a_recording_is_an_ordinary_fixture_file(tmp_path):
    upstream = MockServer().start()
    try:
        with MockServer(record=upstream.url, record_to=str(tmp_path)) as recorder:
            with tokenhub.TokenHub(api_key="k", base_url=recorder.url, max_retries=0) as client:
                list(client.chat.completions.create(model="glm-5", messages=HI, stream=True))
    finally:
        upstream.stop()
    (name,) = os.listdir(str(tmp_path))
    assert name == "0001-openai-glm-5.json"
    with open(str(tmp_path / name), encoding="utf-8") as file:
        (fixture,) = json.load(file)["fixtures"]
    assert fixture["match"] == {"protocol": "openai", "model": "glm-5", "user_is": HI[0]["content"], "tools": [],
                                "has_tool_result": False, "turn": 1, "stream": True}
    raw = fixture["response"]["raw"]
    assert raw["status"] == 200 and raw["headers"]["Content-Type"].startswith("text/event-stream")
    assert raw["events"][-1] == "data: [DONE]\n\n" and len(raw["offsets"]) == len(raw["events"])
    assert raw["offsets"] == sorted(raw["offsets"])
    assert fixture["recorded"]["request"] == "POST /v1/chat/completions"


def test_redacted_reply_headers_are_not_written(tmp_path):
    upstream = MockServer().start()
    try:
        with MockServer(record=upstream.url, record_to=str(tmp_path), redact_headers=["X-Request-Id"]) as recorder:
            status, headers, _ = raw_exchange(recorder, "POST", "/v1/chat/completions", {"model": "m", "messages": HI})
    finally:
        upstream.stop()
    assert status == 200 and headers["x-request-id"].startswith("req_mock_")  # the client still gets it
    (name,) = os.listdir(str(tmp_path))
    with open(str(tmp_path / name), encoding="utf-8") as file:
        recorded = json.load(file)["fixtures"][0]["response"]["raw"]["headers"]
    assert recorded == {"Content-Type": "application/json"}


def test_events_are_forwarded_the_moment_they_arrive(tmp_path):
    upstream = MockServer().start()
    upstream.add("one two three four five six", fault="stall-after=3,seconds=60")
    try:
        with MockServer(record=upstream.url, record_to=str(tmp_path)) as recorder:
            with tokenhub.TokenHub(api_key="k", base_url=recorder.url, max_retries=0,
                                   timeout=tokenhub.Timeout(idle=10)) as client:
                stream = client.chat.completions.create(model="m", messages=HI, stream=True)
                # Three events arrive while the upstream is still stalled: nothing waits for its end.
                assert [next(stream).choices[0].delta.get("content") for _ in range(3)] == ["", "one ", "two "]
                stream.close()
    finally:
        upstream.stop()


def test_upstream_failures_pass_through_and_are_recorded_only_when_asked(tmp_path):
    upstream = MockServer().start()
    url = upstream.url
    try:
        for record_errors, folder in ((False, "plain"), (True, "errors")):
            directory = str(tmp_path / folder)
            with MockServer(record=url, record_to=directory, record_errors=record_errors) as recorder:
                upstream.fail_next("status=503,message=upstream busy")
                with tokenhub.TokenHub(api_key="k", base_url=recorder.url, max_retries=0) as client:
                    with pytest.raises(tokenhub.InternalServerError, match="upstream busy") as caught:
                        client.chat.completions.create(model="m", messages=HI)
                    assert caught.value.status_code == 503
            assert len(os.listdir(directory)) == (1 if record_errors else 0)
    finally:
        upstream.stop()
    for record_errors, folder in ((False, "gone"), (True, "gone-errors")):  # now refused
        directory = str(tmp_path / folder)
        with MockServer(record=url, record_to=directory, record_errors=record_errors) as recorder:
            status, _, body = raw_exchange(recorder, "POST", "/v1/messages",
                                           {"model": "m", "max_tokens": 5, "messages": HI}, {"x-api-key": "k"})
        error = json.loads(body)
        assert status == 502 and error["type"] == "error" and "could not reach its upstream" in error["error"]["message"]
        assert len(os.listdir(directory)) == (1 if record_errors else 0)


def test_realtime_replay_keeps_the_recorded_pace(tmp_path):
    upstream = MockServer().start()
    upstream.add("a b c d e", fault="drip=0.05")
    try:
        with MockServer(record=upstream.url, record_to=str(tmp_path)) as recorder:
            with tokenhub.TokenHub(api_key="k", base_url=recorder.url, max_retries=0) as client:
                recorded = list(client.chat.completions.create(model="m", messages=HI, stream=True))
    finally:
        upstream.stop()
    (name,) = os.listdir(str(tmp_path))
    with open(str(tmp_path / name), encoding="utf-8") as file:
        span = json.load(file)["fixtures"][0]["response"]["raw"]["offsets"][-1]
    assert span >= 0.05 * (len(recorded) - 1)
    with MockServer(cassette=str(tmp_path), realtime=True) as replay:
        with tokenhub.TokenHub(api_key="k", base_url=replay.url, max_retries=0) as client:
            started = time.monotonic()
            assert list(client.chat.completions.create(model="m", messages=HI, stream=True)) == recorded
            assert time.monotonic() - started >= span


def test_cassette_modes(tmp_path):
    cassette = str(tmp_path / "c")
    with pytest.raises(ValueError, match="does not exist yet: pass upstream="):
        MockServer(cassette=cassette)
    with pytest.raises(ValueError, match="mode='replay' does not record"):
        MockServer(cassette=cassette, upstream="http://127.0.0.1:9", mode="replay")
    with pytest.raises(ValueError, match="mode must be 'auto', 'replay' or 'record'"):
        MockServer(cassette=cassette, mode="rewind")
    upstream = MockServer().start()
    try:
        with MockServer(cassette=cassette, upstream=upstream.url) as first:  # missing: it records
            with tokenhub.TokenHub(api_key="k", base_url=first.url, max_retries=0) as client:
                recorded = client.chat.completions.create(model="glm-5", messages=HI)
    finally:
        upstream.stop()
    with MockServer(cassette=cassette, upstream="http://127.0.0.1:9") as second:  # present: it replays
        with tokenhub.TokenHub(api_key="k", base_url=second.url, max_retries=0) as client:
            assert client.chat.completions.create(model="glm-5", messages=HI) == recorded
            with pytest.raises(tokenhub.NotFoundError) as caught:
                client.chat.completions.create(model="glm-5", messages=[{"role": "user", "content": "unrecorded"}])
    message = str(caught.value)
    assert "no recording in cassette %s matched" % cassette in message and '"unrecorded"' in message


def test_bytes_that_are_not_utf8_survive_the_recording(tmp_path):
    upstream = MockServer().start()
    upstream.add({"raw": {"body": '{"text": "caf\udcc3 \udcff"}'}})  # b'{"text": "caf\xc3 \xff"}' on the wire
    try:
        with MockServer(record=upstream.url, record_to=str(tmp_path)) as recorder:
            sent = raw_exchange(recorder, "POST", "/v1/chat/completions", {"model": "m", "messages": HI})[2]
    finally:
        upstream.stop()
    assert sent == b'{"text": "caf\xc3 \xff"}'
    with MockServer(cassette=str(tmp_path)) as replay:
        assert raw_exchange(replay, "POST", "/v1/chat/completions", {"model": "m", "messages": HI})[2] == sent


def test_the_command_line_records(tmp_path):
    upstream = MockServer().start()
    try:
        with mock_cli("--record", upstream.url, "--fixtures", str(tmp_path), "--quiet") as (proc, url):
            with tokenhub.TokenHub(api_key="k", base_url=url, max_retries=0) as client:
                assert client.messages.create(model="glm-5", max_tokens=50, messages=HI).content
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
    finally:
        upstream.stop()
    assert os.listdir(str(tmp_path)) == ["0001-anthropic-glm-5.json"]
    with mock_cli("--record", "singapore") as (proc, _):
        assert proc.wait(timeout=20) == 2
        assert "--record needs one --fixtures DIR" in proc.stderr.read()
