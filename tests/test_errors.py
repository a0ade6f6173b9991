"""Errors: status classes, in-stream errors, cut streams, bad data, retries, timeouts."""

import json
import socket
import threading

import pytest

import tokenhub
from conftest import CLOSE, HANG, http_response, sse_response
from mock_server import MockServer

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

HI = [{"role": "user", "content": "Hi"}]
JSON = {"Content-Type": "application/json"}


def chat(url, **kw):
    kw.setdefault("max_retries", 0)
    client = tokenhub.TokenHub(api_key="secret-key-123", base_url=url, max_retries=kw.pop("max_retries"))
    try:
        return client.chat.completions.create(model="m", messages=HI, **kw)
    finally:
        client.close()


@pytest.mark.parametrize("status,cls", [
    (400, tokenhub.BadRequestError),
    (401, tokenhub.AuthenticationError),
    (403, tokenhub.PermissionDeniedError),
    (404, tokenhub.NotFoundError),
    (409, tokenhub.ConflictError),
    (422, tokenhub.UnprocessableEntityError),
    (429, tokenhub.RateLimitError),
    (418, tokenhub.APIStatusError),
    (500, tokenhub.InternalServerError),
    (503, tokenhub.InternalServerError),
    (529, tokenhub.OverloadedError),
])
def test_status_maps_to_class(raw_server, status, cls):
    body = {"error": {"message": "server says %d" % status, "type": "some_error"}}
    reply = http_response(status, json.dumps(body), dict(JSON, **{"x-request-id": "req-%d" % status}))
    with raw_server(reply) as srv, pytest.raises(cls) as info:
        chat(srv.url)
    error = info.value
    assert type(error) is cls
    assert isinstance(error, tokenhub.APIStatusError) and isinstance(error, tokenhub.APIError)
    assert error.status_code == status
    assert error.body == body
    assert error.request_id == "req-%d" % status
    assert "server says %d" % status in str(error) and "req-%d" % status in str(error)


def test_html_error_page_gives_status_class_and_excerpt(raw_server):
    page = "<html><body><h1>502 Bad Gateway</h1>\n<p>nginx</p></body></html>"
    with raw_server(http_response(502, page, {"Content-Type": "text/html"})) as srv:
        with pytest.raises(tokenhub.InternalServerError) as info:
            chat(srv.url)
    assert info.value.status_code == 502
    assert info.value.body == page
    assert "502 Bad Gateway" in str(info.value)


def test_mock_401_in_each_protocol_shape():
    with MockServer(api_key="right") as srv:
        client = tokenhub.TokenHub(api_key="bad-key-7f3a", base_url=srv.url, max_retries=0)
        with pytest.raises(tokenhub.AuthenticationError) as openai_error:
            client.chat.completions.create(model="glm-5", messages=HI)
        with pytest.raises(tokenhub.AuthenticationError) as anthropic_error:
            client.messages.create(model="glm-5", max_tokens=5, messages=HI)
        ok = tokenhub.TokenHub(api_key="right", base_url=srv.url)
        assert ok.messages.create(model="glm-5", max_tokens=5, messages=HI).type == "message"
        assert ok.chat.completions.create(model="glm-5", messages=HI).object == "chat.completion"
    assert openai_error.value.body["error"]["type"] == "authentication_error"
    assert anthropic_error.value.body["type"] == "error"
    assert anthropic_error.value.body["error"]["type"] == "authentication_error"
    assert openai_error.value.request_id.startswith("req_mock_")
    assert "invalid API key" in str(anthropic_error.value)
    assert "bad-key-7f3a" not in str(anthropic_error.value) + str(openai_error.value)


def test_missing_required_field_names_it(client):
    with pytest.raises(tokenhub.BadRequestError, match="'messages'") as info:
        client.chat.completions.create(model="glm-5", messages="not a list")
    assert info.value.body["error"]["param"] == "messages"
    with pytest.raises(tokenhub.BadRequestError, match="'max_tokens'"):
        client.messages.create(model="glm-5", max_tokens="many", messages=HI)


def test_missing_key_names_the_variable(mock):
    for cls, variable in [
        (tokenhub.TokenHub, "TOKENHUB_API_KEY"),
        (tokenhub.OpenAI, "OPENAI_API_KEY"),
        (tokenhub.Anthropic, "ANTHROPIC_API_KEY"),
    ]:
        client = cls(base_url=mock.url)  # constructing without a key is fine
        with pytest.raises(tokenhub.APIError, match=variable):
            client.chat.completions.create(model="glm-5", messages=HI)
    assert mock.requests == []  # nothing was sent without a key


def test_key_never_in_repr_or_errors(raw_server):
    client = tokenhub.TokenHub(api_key="secret-key-123", base_url="http://127.0.0.1:9")
    assert "secret-key-123" not in repr(client) and "api_key=<set>" in repr(client)
    echo = {"error": {"message": "bad request"}}
    with raw_server(http_response(400, json.dumps(echo), JSON)) as srv:
        with pytest.raises(tokenhub.APIStatusError) as info:
            chat(srv.url)
    assert "secret-key-123" not in str(info.value) + repr(info.value)
    assert "secret-key-123" not in repr(info.value.headers)


def test_in_stream_anthropic_error_maps_to_class(raw_server):
    wire = (
        'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\n'
        'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    with raw_server(sse_response(wire)) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url)
        stream = client.messages.create(model="m", max_tokens=1, messages=HI, stream=True)
        assert next(stream).type == "message_start"
        with pytest.raises(tokenhub.OverloadedError, match="Overloaded") as info:
            next(stream)
    assert info.value.status_code == 529


def test_in_stream_openai_error_maps_to_class(raw_server):
    wire = (
        'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
        'data: {"error":{"message":"Rate limit reached","type":"rate_limit_error"}}\n\n'
    )
    with raw_server(sse_response(wire)) as srv:
        with pytest.raises(tokenhub.RateLimitError, match="Rate limit reached") as info:
            list(chat(srv.url, stream=True))
    assert info.value.status_code == 429


def test_stream_without_done_is_incomplete(raw_server):
    wire = 'data: {"choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
    with raw_server(sse_response(wire)) as srv:
        stream = chat(srv.url, stream=True)
        assert next(stream).choices[0].delta.content == "Hi"
        with pytest.raises(tokenhub.IncompleteStreamError) as info:
            next(stream)
    assert info.value.received == 1
    assert isinstance(info.value, tokenhub.APIError)


def test_anthropic_stream_without_message_stop_is_incomplete(raw_server):
    wire = 'event: message_start\ndata: {"type":"message_start","message":{"id":"m"}}\n\n'
    with raw_server(sse_response(wire)) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url)
        with pytest.raises(tokenhub.IncompleteStreamError):
            list(client.messages.create(model="m", max_tokens=1, messages=HI, stream=True))


def test_mid_stream_reset_is_a_connection_error(raw_server):
    def cut(conn):
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        event = b'data: {"choices":[]}\n\n'
        conn.sendall(head + b"%x\r\n%s\r\n" % (len(event), event) + b"ff\r\npartial")
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()  # mid-chunk, with linger 0: a reset

    with raw_server(cut) as srv:
        stream = chat(srv.url, stream=True)
        next(stream)
        with pytest.raises(tokenhub.APIConnectionError) as info:
            next(stream)
    assert not isinstance(info.value, tokenhub.StreamError)


def test_invalid_json_chunk_quotes_the_line(raw_server):
    wire = "data: {\"choices\": [ broken\n\n"
    with raw_server(sse_response(wire)) as srv:
        with pytest.raises(tokenhub.StreamError, match=r"invalid JSON.*broken"):
            list(chat(srv.url, stream=True))


def test_stream_request_answered_with_json_error(raw_server):
    body = {"error": {"message": "quota exhausted", "type": "insufficient_quota"}}
    with raw_server(http_response(200, json.dumps(body), JSON)) as srv:
        with pytest.raises(tokenhub.RateLimitError, match="quota exhausted"):
            chat(srv.url, stream=True)


def test_stream_request_answered_with_plain_text(raw_server):
    with raw_server(http_response(200, "hello", {"Content-Type": "text/plain"})) as srv:
        with pytest.raises(tokenhub.StreamError, match="expected a text/event-stream.*text/plain: hello"):
            chat(srv.url, stream=True)


def test_non_json_success_body_is_a_protocol_error(raw_server):
    with raw_server(http_response(200, "<html>login</html>", {"Content-Type": "text/html"})) as srv:
        with pytest.raises(tokenhub.ProtocolError, match="expected a JSON body, got 18 bytes of text/html that do not parse.*login"):
            chat(srv.url)


def test_redirect_is_not_followed(raw_server):
    reply = http_response(302, "", {"Location": "http://127.0.0.1:9/elsewhere"})
    with raw_server(reply) as srv:
        with pytest.raises(tokenhub.APIStatusError, match="not followed") as info:
            chat(srv.url)
        assert len(srv.requests) == 1
    assert info.value.status_code == 302


def test_retries_503_then_succeeds(raw_server):
    ok = {"object": "chat.completion", "choices": [{"index": 0, "message": {"content": "fine"}}]}
    with raw_server(
        http_response(503, "{}", dict(JSON, **{"retry-after-ms": "0"})),
        http_response(429, "{}", dict(JSON, **{"retry-after": "0"})),
        http_response(200, json.dumps(ok), JSON),
    ) as srv:
        reply = chat(srv.url, max_retries=2)
        assert len(srv.requests) == 3
    assert reply.choices[0].message.content == "fine"


def test_retries_run_out(raw_server):
    busy = http_response(503, '{"error": {"message": "busy"}}', dict(JSON, **{"retry-after-ms": "0"}))
    with raw_server(busy, busy) as srv:
        with pytest.raises(tokenhub.InternalServerError, match="busy"):
            chat(srv.url, max_retries=1)
        assert len(srv.requests) == 2


def test_should_retry_header_and_client_errors(raw_server):
    no = http_response(503, "{}", dict(JSON, **{"x-should-retry": "false"}))
    bad = http_response(400, "{}", dict(JSON, **{"retry-after-ms": "0"}))
    yes = http_response(400, "{}", dict(JSON, **{"x-should-retry": "true", "retry-after-ms": "0"}))
    ok = http_response(200, '{"choices": []}', JSON)
    with raw_server(no, bad, yes, ok) as srv:
        with pytest.raises(tokenhub.InternalServerError):
            chat(srv.url, max_retries=3)
        with pytest.raises(tokenhub.BadRequestError):
            chat(srv.url, max_retries=3)
        assert chat(srv.url, max_retries=3).choices == []
        assert len(srv.requests) == 4


def test_too_long_server_delay_is_raised_not_slept(raw_server):
    with raw_server(http_response(429, "{}", dict(JSON, **{"retry-after": "3600"}))) as srv:
        with pytest.raises(tokenhub.RateLimitError) as info:
            chat(srv.url, max_retries=2)
        assert len(srv.requests) == 1
    assert info.value.retry_after == 3600


def test_connection_refused_is_a_connection_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    with pytest.raises(tokenhub.APIConnectionError, match="ConnectionRefused"):
        chat("http://127.0.0.1:%d" % port)


def test_per_call_timeout(raw_server):
    with raw_server(HANG) as srv:
        with pytest.raises(tokenhub.APITimeoutError, match="timed out"):
            chat(srv.url, timeout=0.3)


def test_stale_keep_alive_connection_is_replaced(raw_server):
    """A server that dropped an idle kept-alive connection is not a failed attempt."""
    ok = http_response(200, '{"choices": []}', JSON, close=False)
    with raw_server(ok, CLOSE, ok) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url, max_retries=0)
        client.chat.completions.create(model="m", messages=HI)
        client.chat.completions.create(model="m", messages=HI)
        client.close()
        assert len(srv.requests) == 3 and srv.connections == 2


def test_client_is_thread_safe(mock):
    client = tokenhub.TokenHub(api_key="k", base_url=mock.url)
    results, errors = [], []

    def work(n):
        try:
            for i in range(5):
                text = "thread %d call %d" % (n, i)
                reply = client.chat.completions.create(model="glm-5", messages=[{"role": "user", "content": text}])
                results.append(text in reply.choices[0].message.content)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    assert errors == [] and results == [True] * 20


@pytest.mark.parametrize("status,retried", [
    (408, True), (409, True), (429, True), (500, True), (502, True), (503, True), (504, True),
    (529, True), (400, False), (401, False), (403, False), (404, False), (422, False),
])
def test_which_statuses_are_retried(raw_server, status, retried):
    first = http_response(status, "{}", dict(JSON, **{"retry-after-ms": "0"}))
    ok = http_response(200, '{"choices": []}', JSON)
    with raw_server(first, ok) as srv:
        if retried:
            assert chat(srv.url, max_retries=1).choices == []
        else:
            with pytest.raises(tokenhub.APIStatusError):
                chat(srv.url, max_retries=1)
        assert len(srv.requests) == (2 if retried else 1)


def test_connection_error_is_retried(raw_server):
    ok = http_response(200, '{"choices": []}', JSON)
    with raw_server(CLOSE, ok) as srv:
        assert chat(srv.url, max_retries=1).choices == []
        assert len(srv.requests) == 2 and srv.connections == 2
