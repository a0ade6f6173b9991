"""mock_server.py on its own: CLI, routes, error shapes, canned behaviour, shutdown."""

import http.client
import json
import os
import signal
import subprocess
import sys
import threading

import pytest

import tokenhub
from conftest import ROOT, mock_cli, raw_exchange, raw_request
from mock_server import MODELS, MockServer

HI = [{"role": "user", "content": "Hi"}]


def test_cli_prints_url_first_and_stops_on_sigterm():
    with mock_cli("--quiet") as (proc, url):
        assert url.startswith("http://127.0.0.1:")
        with tokenhub.TokenHub(api_key="k", base_url=url) as client:
            assert client.chat.completions.create(model="glm-5", messages=HI).choices[0].message.content
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert proc.stderr.read() == ""


def test_cli_api_key_and_help():
    out = subprocess.run(
        [sys.executable, os.path.join(ROOT, "mock_server.py"), "--help"],
        capture_output=True, text=True, timeout=30,
    )
    assert out.returncode == 0
    for flag in ("--host", "--port", "--api-key"):
        assert flag in out.stdout


def test_models_listing(mock):
    for path in ("/v1/models", "/api/v1/models"):
        status, _, body = raw_request(mock, "GET", path)
        assert status == 200
        assert [m["id"] for m in body["data"]] == [m[0] for m in MODELS]
        assert body["object"] == "list" and body["has_more"] is False
    status, _, model = raw_request(mock, "GET", "/v1/models/glm-5")
    assert status == 200 and model["id"] == "glm-5" and model["owned_by"] == "zhipu"
    status, _, body = raw_request(mock, "GET", "/v1/models/nope")
    assert status == 404 and "nope" in body["error"]["message"]


def test_unknown_path_404_in_protocol_shape(mock):
    status, headers, body = raw_request(mock, "POST", "/v1/completions", {"x": 1})
    assert status == 404
    assert body["error"]["type"] == "not_found_error" and "/v1/completions" in body["error"]["message"]
    assert headers["x-request-id"].startswith("req_mock_")
    status, _, body = raw_request(mock, "POST", "/v1/messages/batches", {}, {"x-api-key": "k"})
    assert status == 404 and body["type"] == "error" and body["error"]["type"] == "not_found_error"


def test_wrong_method_is_refused(mock):
    status, _, body = raw_request(mock, "GET", "/v1/chat/completions")
    assert status == 405 and "POST" in body["error"]["message"]


def test_malformed_json_is_400(mock):
    status, _, body = raw_request(mock, "POST", "/v1/chat/completions", b"{not json", {"Content-Type": "application/json"})
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, _, body = raw_request(mock, "POST", "/v1/messages", b"[1, 2]")
    assert status == 400 and body["type"] == "error" and "JSON object" in body["error"]["message"]


@pytest.mark.parametrize("path,body,field", [
    ("/v1/chat/completions", {"messages": HI}, "model"),
    ("/v1/chat/completions", {"model": "glm-5"}, "messages"),
    ("/v1/chat/completions", {"model": "glm-5", "messages": []}, "messages"),
    ("/v1/messages", {"model": "glm-5", "messages": HI}, "max_tokens"),
    ("/v1/messages", {"model": 5, "max_tokens": 5, "messages": HI}, "model"),
])
def test_missing_or_wrong_field_is_named(mock, path, body, field):
    status, _, reply = raw_request(mock, "POST", path, body)
    assert status == 400
    error = reply["error"]
    assert "'%s'" % field in error["message"]


def test_chunked_request_body_is_read(mock):
    host, port = mock.url.rsplit("/", 1)[1].rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    payload = json.dumps({"model": "glm-5", "messages": HI}).encode()
    conn.request("POST", "/v1/chat/completions", body=iter([payload[:10], payload[10:]]),
                 headers={"Transfer-Encoding": "chunked"}, encode_chunked=True)
    response = conn.getresponse()
    assert response.status == 200 and json.loads(response.read())["object"] == "chat.completion"
    conn.close()
    assert mock.requests[0].body["model"] == "glm-5"


def test_lenient_openai_request(client):
    reply = client.chat.completions.create(
        model="glm-5",
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": [{"type": "text", "text": "Hello in parts"}]},
        ],
        metadata={"a": "b"}, store=False, modalities=["text"], prediction=None,
    )
    assert "Hello in parts" in reply.choices[0].message.content


def test_same_request_same_reply(client):
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    ask = [{"role": "user", "content": "weather please"}]
    first = client.chat.completions.create(model="glm-5", messages=ask, tools=tools).to_dict()
    second = client.chat.completions.create(model="glm-5", messages=ask, tools=tools).to_dict()
    first.pop("created"), second.pop("created")
    assert first == second
    other = client.chat.completions.create(model="glm-5", messages=ask + [], tools=tools, seed=1)
    assert other.id != first["id"]


def tool(name, schema=None):
    return {"type": "function", "function": {"name": name, "parameters": schema or {"type": "object"}}}


def called(reply):
    return [c.function.name for c in reply.choices[0].message.tool_calls or []]


@pytest.mark.parametrize("text,choice,parallel,expected", [
    ("What's the weather?", "auto", None, ["get_weather"]),
    ("Tell me a joke", "auto", None, []),
    ("Tell me a joke", "required", None, ["get_weather"]),
    ("Tell me a joke", {"type": "function", "function": {"name": "lookup_stock_price"}}, None, ["lookup_stock_price"]),
    ("What's the weather and the stock price?", "auto", None, ["get_weather", "lookup_stock_price"]),
    ("What's the weather and the stock price?", "auto", False, ["get_weather"]),
    ("What's the weather?", "none", None, []),
    ("call lookup_stock_price now", "auto", None, ["lookup_stock_price"]),
    ("I'll get you later", "auto", None, []),  # "get" alone does not name get_weather
])
def test_when_the_mock_calls_tools(client, text, choice, parallel, expected):
    params = {"tool_choice": choice}
    if parallel is not None:
        params["parallel_tool_calls"] = parallel
    reply = client.chat.completions.create(
        model="deepseek-v3.2", messages=[{"role": "user", "content": text}],
        tools=[tool("get_weather"), tool("lookup_stock_price")],
        **params,
    )
    assert called(reply) == expected
    assert reply.choices[0].finish_reason == ("tool_calls" if expected else "stop")


def test_anthropic_tool_choice_any_and_tool(client):
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}},
             {"name": "getTime", "input_schema": {"type": "object"}}]
    ask = [{"role": "user", "content": "Tell me a joke"}]
    any_reply = client.messages.create(model="glm-5", max_tokens=200, messages=ask, tools=tools, tool_choice={"type": "any"})
    assert [b.name for b in any_reply.content if b.type == "tool_use"] == ["get_weather"]
    named = client.messages.create(model="glm-5", max_tokens=200, messages=ask, tools=tools,
                                   tool_choice={"type": "tool", "name": "getTime"})
    assert [b.name for b in named.content if b.type == "tool_use"] == ["getTime"]
    camel = client.messages.create(model="glm-5", max_tokens=200, tools=tools,
                                   messages=[{"role": "user", "content": "what time is it"}])
    assert [b.name for b in camel.content if b.type == "tool_use"] == ["getTime"]


RICH_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "minLength": 2},
        "days": {"type": "integer", "minimum": 3, "maximum": 10},
        "ratio": {"type": "number", "maximum": 0.5},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "detailed": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
        "when": {"type": "string", "format": "date"},
        "nested": {"type": "object", "properties": {"code": {"type": ["null", "integer"]}}, "required": ["code"]},
        "choice": {"anyOf": [{"type": "null"}, {"type": "string", "const": "fixed"}]},
        "short": {"type": "string", "maxLength": 3},
    },
    "required": ["city", "days", "unit"],
}


def check(schema, value):
    """A small JSON-schema check covering what RICH_SCHEMA uses."""
    kinds = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if "const" in schema:
        assert value == schema["const"]
    if "enum" in schema:
        assert value in schema["enum"]
    if "anyOf" in schema:
        assert any(_ok(s, value) for s in schema["anyOf"])
        return
    kind = schema.get("type")
    allowed = kind if isinstance(kind, list) else [kind]
    if "integer" in allowed and isinstance(value, int) and not isinstance(value, bool):
        kind = "integer"
    elif "number" in allowed and isinstance(value, (int, float)) and not isinstance(value, bool):
        kind = "number"
    else:
        kind = next(k for k in allowed if isinstance(value, kinds[k]))
    assert schema.get("minimum", float("-inf")) <= value if kind in ("integer", "number") else True
    assert value <= schema.get("maximum", float("inf")) if kind in ("integer", "number") else True
    if kind == "string":
        assert schema.get("minLength", 0) <= len(value) <= schema.get("maxLength", 10 ** 9)
    if kind == "array":
        assert len(value) >= schema.get("minItems", 0)
        for item in value:
            check(schema["items"], item)
    if kind == "object":
        for name in schema.get("required", []):
            assert name in value
        for name, sub in schema.get("properties", {}).items():
            if name in value:
                check(sub, value[name])


def _ok(schema, value):
    try:
        check(schema, value)
        return True
    except (AssertionError, StopIteration):
        return False


def test_tool_arguments_satisfy_the_schema(client):
    reply = client.chat.completions.create(
        model="deepseek-v3.2",
        messages=[{"role": "user", "content": "Forecast for Lisbon please"}],
        tools=[tool("forecast", RICH_SCHEMA)],
    )
    arguments = json.loads(reply.choices[0].message.tool_calls[0].function.arguments)
    check(RICH_SCHEMA, arguments)
    assert arguments["city"] == "Lisbon"


def test_requests_are_recorded(mock, client):
    client.messages.create(model="glm-5", max_tokens=5, messages=HI, extra_query={"beta": "true"})
    (request,) = mock.requests
    assert request.method == "POST" and request.path == "/v1/messages?beta=true"
    assert request.body["max_tokens"] == 5 and json.loads(request.raw) == request.body
    assert request.headers["content-type"] == "application/json"
    assert "POST /v1/messages?beta=true" in repr(request)


def test_url_needs_a_started_server():
    srv = MockServer()
    with pytest.raises(RuntimeError, match="not started"):
        srv.url


def test_stop_ends_open_connections_and_threads():
    before = threading.active_count()
    with MockServer() as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url)
        client.chat.completions.create(model="glm-5", messages=HI)  # leaves a kept-alive connection
        stream = client.chat.completions.create(model="glm-5", messages=HI, stream=True)
        next(stream)  # and a stream half read
        assert threading.active_count() > before
    assert threading.active_count() == before
    stream.close()
    client.close()


def test_usage_is_consistent_across_protocols_and_modes(client):
    ask = [{"role": "user", "content": "Count my words, please"}]
    plain = client.chat.completions.create(model="glm-5", messages=ask).usage
    streamed = list(client.chat.completions.create(
        model="glm-5", messages=ask, stream=True, stream_options={"include_usage": True}))[-1].usage
    assert plain == streamed
    assert plain.total_tokens == plain.prompt_tokens + plain.completion_tokens
    assert plain.completion_tokens_details.reasoning_tokens < plain.completion_tokens
    message = client.messages.create(model="glm-5", max_tokens=100, messages=ask)
    assert message.usage.output_tokens == plain.completion_tokens


def test_the_root_answers_get_and_head(mock):
    status, headers, data = raw_exchange(mock, "HEAD", "/")
    assert status == 200 and data == b"" and int(headers["content-length"]) > 0
    status, _, data = raw_exchange(mock, "GET", "/")
    assert status == 200 and json.loads(data)["name"] == "TokenHub mock server"
    status, headers, data = raw_exchange(mock, "HEAD", "/v1/models")
    assert status == 200 and data == b""
    assert raw_exchange(mock, "HEAD", "/v1/chat/completions")[0] == 405


def test_system_reminders_are_not_the_user_speaking(client):
    """Claude Code puts <system-reminder> blocks (naming every tool) in the user's message."""
    reminder = "<system-reminder>\nTools: get_weather is available.\n</system-reminder>"
    reply = client.chat.completions.create(
        model="deepseek-v3.2", tools=[tool("get_weather")],
        messages=[{"role": "user", "content": [{"type": "text", "text": reminder}, {"type": "text", "text": "Say hello"}]}])
    assert called(reply) == [] and reply.choices[0].message.content.endswith("You said: Say hello")


def test_verbose_logs_one_line_per_request_with_the_users_words(capsys):
    with MockServer(verbose=2) as srv:
        raw_request(srv, "POST", "/v1/chat/completions",
                    {"model": "glm-5", "messages": [{"role": "user", "content": "Log me"}]}, {"X-Mock-Fault": "ttfb=0"})
    (line,) = capsys.readouterr().err.splitlines()
    assert line.startswith("mock_server: POST /v1/chat/completions -> 200 glm-5")
    assert 'fault="ttfb=0"' in line and 'user="Log me"' in line and line.endswith(" ms)")
    with MockServer() as srv:  # quiet by default
        raw_request(srv, "GET", "/v1/models")
    assert capsys.readouterr().err == ""


def _request_head(*header_lines, version="HTTP/1.1", body=b'{"model":"glm-5","messages":[{"role":"user","content":"hi"}]}'):
    head = "POST /v1/chat/completions %s\r\nContent-Type: application/json\r\nConnection: close\r\n" % version
    head += "".join(line + "\r\n" for line in header_lines)
    return (head + "Content-Length: %d\r\n\r\n" % len(body)).encode() + body


def test_the_mock_reads_request_heads_as_http_server_does(mock):
    from conftest import wire_bytes

    # Plain header lines, read by the mock's own reader.
    reply = wire_bytes(mock, _request_head("X-Team:   data  ", "authorization: Bearer k"))
    assert reply.startswith(b"HTTP/1.1 200 ") and b"You said: hi" in reply
    assert mock.requests[-1].headers["x-team"] == "data  "  # leading blanks go, trailing stay, as in http.server
    # A folded (obs-fold) line goes through the email parser, as before.
    reply = wire_bytes(mock, _request_head("X-Folded: one", " two"))
    assert reply.startswith(b"HTTP/1.1 200 ") and mock.requests[-1].headers["x-folded"] == "one\r\n two"  # as before
    # curl's Expect: 100-continue gets its interim reply before the body is sent.
    reply = wire_bytes(mock, _request_head("Expect: 100-continue"))
    assert reply.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 ")
    # What http.server refuses, refused the same way.
    assert wire_bytes(mock, _request_head(version="HTTP/2.0")).startswith(b"HTTP/1.1 505 ")
    assert wire_bytes(mock, _request_head(version="HTTP/x.1")).startswith(b"HTTP/1.1 400 ")
    assert wire_bytes(mock, _request_head(*("X-%d: v" % n for n in range(101)))).startswith(b"HTTP/1.1 431 ")
    assert wire_bytes(mock, _request_head("X-Long: " + "v" * 70000)).startswith(b"HTTP/1.1 431 ")
    assert wire_bytes(mock, b"POST /v1/chat/completions\r\n\r\n").startswith(b"HTTP/1.1 400 ")  # HTTP/0.9, not GET
