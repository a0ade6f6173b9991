"""mock_server faults: by header, by queue, by fixture; HTTP errors and broken streams."""

import json
import threading
import time

import pytest

import tokenhub
from conftest import dechunk, post_bytes, raw_exchange, raw_request, wire_bytes
from mock_server import MockServer

HI = [{"role": "user", "content": "Hello there, how are you today?"}]
OPENAI_BODY = {"model": "glm-5", "messages": HI}
ANTHROPIC_BODY = {"model": "glm-5", "max_tokens": 500, "messages": HI}
RESPONSES_BODY = {"model": "glm-5", "input": HI}
EVENTS = ["data: {\"n\": %d}\n\n" % i for i in range(6)]


def call(client, protocol, *, stream, fault=None, timeout=None):
    """Start one request (with an X-Mock-Fault header); a stream is returned unread."""
    extra = {"extra_headers": {"X-Mock-Fault": fault}} if fault else {}
    if timeout is not None:
        extra["timeout"] = timeout
    if protocol == "openai":
        return client.chat.completions.create(stream=stream, **OPENAI_BODY, **extra)
    if protocol == "responses":
        return client.responses.create(stream=stream, **RESPONSES_BODY, **extra)
    return client.messages.create(stream=stream, **ANTHROPIC_BODY, **extra)


def drain(stream):
    """(items read, the exception that ended the stream or None)."""
    items = []
    try:
        for item in stream:
            items.append(item)
    except tokenhub.APIError as exc:
        return items, exc
    return items, None


PROTOCOLS = ["openai", "anthropic", "responses"]


def yielded(protocol, count):
    """How many of the first ``count`` events a client yields: an Anthropic stream's
    second event is a ping, which the client consumes (as the SDK does)."""
    return count - 1 if protocol == "anthropic" and count >= 2 else count


# ---------------------------------------------------------------------------
# HTTP errors in the protocol's own shape
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("status,error", [
    (400, tokenhub.BadRequestError), (401, tokenhub.AuthenticationError), (403, tokenhub.PermissionDeniedError),
    (404, tokenhub.NotFoundError), (429, tokenhub.RateLimitError), (500, tokenhub.InternalServerError),
    (503, tokenhub.InternalServerError), (529, tokenhub.OverloadedError),
])
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_status_faults_streamed_or_not(client, protocol, status, error):
    for stream in (False, True):
        with pytest.raises(error) as caught:
            call(client, protocol, stream=stream, fault="status=%d" % status)
        assert caught.value.status_code == status and "injected by the mock server" in str(caught.value)
        assert caught.value.request_id.startswith("req_mock_")


def test_status_fault_bodies_and_retry_headers(mock):
    fault = {"X-Mock-Fault": "status=429,retry-after=1,retry-after-ms=1500,message=slow down"}
    status, headers, body = raw_request(mock, "POST", "/v1/chat/completions", OPENAI_BODY, fault)
    assert status == 429 and headers["retry-after"] == "1" and headers["retry-after-ms"] == "1500"
    assert body == {"error": {"message": "slow down", "type": "rate_limit_error", "param": None, "code": None}}
    status, _, body = raw_request(mock, "POST", "/v1/messages", ANTHROPIC_BODY, {"X-Mock-Fault": "status=529"})
    assert status == 529 and body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    assert body["request_id"].startswith("req_mock_")
    status, _, body = raw_request(mock, "POST", "/v1/messages", ANTHROPIC_BODY, {"X-Mock-Fault": "status=503,type=api_error"})
    assert status == 503 and body["error"]["type"] == "api_error"


def test_an_error_status_waits_for_its_ttfb(mock):
    started = time.monotonic()
    status, _, _ = raw_request(mock, "POST", "/v1/chat/completions", OPENAI_BODY, {"X-Mock-Fault": "status=503,ttfb=0.2"})
    assert status == 503 and time.monotonic() - started >= 0.2


def test_fail_next_is_what_retries_see(mock):
    mock.fail_next("status=503,retry-after-ms=5", times=2)
    with tokenhub.TokenHub(api_key="k", base_url=mock.url, max_retries=2) as client:
        reply = client.chat.completions.create(**OPENAI_BODY)
    assert reply.choices[0].message.content and len(mock.requests) == 3
    mock.fail_next("status=429,retry-after-ms=5")
    with tokenhub.TokenHub(api_key="k", base_url=mock.url, max_retries=0) as client:
        with pytest.raises(tokenhub.RateLimitError):
            client.chat.completions.create(**OPENAI_BODY)
        assert client.chat.completions.create(**OPENAI_BODY).choices  # the queue is spent


def test_the_header_wins_over_the_queue_and_leaves_it(mock, client):
    mock.fail_next("status=500")
    with pytest.raises(tokenhub.RateLimitError):
        call(client, "openai", stream=False, fault="status=429")
    with pytest.raises(tokenhub.InternalServerError):
        call(client, "openai", stream=False)


def test_fixture_faults_beside_or_instead_of_a_response(mock, client):
    mock.add("fixture text", match={"user": "beside"}, fault="truncate-after=2")
    mock.add(match={"user": "instead"}, fault={"status": 529})
    mock.add(match={"user": "only pacing"}, fault="ttfb=0.01")
    chunks, error = drain(client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": "beside"}], stream=True))
    assert isinstance(error, tokenhub.IncompleteStreamError) and len(chunks) == 2
    assert chunks[1].choices[0].delta.content == "fixture "
    with pytest.raises(tokenhub.OverloadedError):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "instead"}])
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": "only pacing"}])
    assert reply.choices[0].message.content.startswith("This is the TokenHub mock server")  # the canned reply
    assert [r.fixture for r in mock.requests] == ["srv.add #1", "srv.add #2", "srv.add #3"]


def test_faults_apply_to_the_model_list_too(client, mock):
    status, _, body = raw_request(mock, "GET", "/v1/models", None, {"X-Mock-Fault": "status=500"})
    assert status == 500 and body["error"]["type"] == "api_error"


@pytest.mark.parametrize("spec,words", [
    ("status=abc", "'status' expects an integer from 400 to 599"),
    ("boom=1", "unknown fault 'boom'"),
    ("drip", "expected key=value items"),
    ("drip=-1", "'drip' expects a number of seconds from 0 to 86400"),
    ("truncate-after=1.5", "'truncate-after' expects an integer"),
])
def test_a_bad_fault_header_is_a_400_saying_why(mock, spec, words):
    status, _, body = raw_request(mock, "POST", "/v1/chat/completions", OPENAI_BODY, {"X-Mock-Fault": spec})
    assert status == 400 and "X-Mock-Fault header" in body["error"]["message"] and words in body["error"]["message"]


# ---------------------------------------------------------------------------
# Broken streams: the N events always arrive first
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("spec,error,count", [
    ("disconnect-after=3", tokenhub.APIConnectionError, 3),
    ("truncate-after=3", tokenhub.IncompleteStreamError, 3),
    ("error-after=3,type=overloaded_error", tokenhub.OverloadedError, 3),
    ("error-after=4", tokenhub.InternalServerError, 4),
    ("malformed-after=3", tokenhub.StreamError, 3),
    ("disconnect-after=0", tokenhub.APIConnectionError, 0),
])
def test_stream_faults_through_tokenhub(client, protocol, spec, error, count):
    items, raised = drain(call(client, protocol, stream=True, fault=spec))
    assert len(items) == yielded(protocol, count) and type(raised) is error, raised
    assert not isinstance(raised, tokenhub.APITimeoutError)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_stall_trips_the_idle_timeout_and_a_short_one_does_not(client, protocol):
    stream = call(client, protocol, stream=True, fault="stall-after=2,seconds=30", timeout=tokenhub.Timeout(idle=0.3))
    items, raised = drain(stream)
    assert len(items) == yielded(protocol, 2) and isinstance(raised, tokenhub.APITimeoutError)
    assert "Timeout.idle" in str(raised)
    items, raised = drain(call(client, protocol, stream=True, fault="stall-after=2,seconds=0.05"))
    assert raised is None and len(items) > 5


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_drip_and_ttfb_delay_but_deliver_everything(client, protocol):
    whole = drain(call(client, protocol, stream=True))[0]
    started = time.monotonic()
    items, raised = drain(call(client, protocol, stream=True, fault="drip=0.01,ttfb=0.1"))
    def unstamped(value):  # the clock's fields, at any depth, set aside
        if isinstance(value, dict):
            return {k: unstamped(v) for k, v in value.items() if k not in ("created", "created_at")}
        return [unstamped(v) for v in value] if isinstance(value, list) else value

    assert raised is None and unstamped(items) == unstamped(whole)  # same events, but the clock
    assert time.monotonic() - started >= 0.1 + 0.01 * (len(whole) - 1)


def test_stream_fault_bytes_on_the_wire(mock):
    mock.add({"raw": {"events": EVENTS}})
    request = post_bytes("/v1/chat/completions", OPENAI_BODY, {"X-Mock-Fault": "disconnect-after=2"})
    assert dechunk(wire_bytes(mock, request)) == ("".join(EVENTS[:2]).encode(), False)
    request = post_bytes("/v1/chat/completions", OPENAI_BODY, {"X-Mock-Fault": "truncate-after=2"})
    assert dechunk(wire_bytes(mock, request)) == ("".join(EVENTS[:2]).encode(), True)
    request = post_bytes("/v1/chat/completions", OPENAI_BODY, {"X-Mock-Fault": "error-after=2,type=rate_limit_error"})
    body, ended = dechunk(wire_bytes(mock, request))
    assert ended and body.startswith("".join(EVENTS[:2]).encode())
    assert json.loads(body[len("".join(EVENTS[:2])) + 6:])["error"]["type"] == "rate_limit_error"
    request = post_bytes("/v1/messages", ANTHROPIC_BODY, {"X-Mock-Fault": "malformed-after=2"})
    body, ended = dechunk(wire_bytes(mock, request))
    assert ended and body == ("".join(EVENTS[:2]) + 'data: {"n"\n\n' + "".join(EVENTS[3:])).encode()


def test_an_anthropic_error_event_has_the_documented_shape(mock):
    request = post_bytes("/v1/messages", dict(ANTHROPIC_BODY, stream=True), {"X-Mock-Fault": "error-after=1,type=overloaded_error,message=busy"})
    body, ended = dechunk(wire_bytes(mock, request))
    last = body.decode().split("\n\n")[-2]
    assert ended and last == 'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}'


# ---------------------------------------------------------------------------
# The same faults on a non-streamed reply: its body counts as 32-byte events
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("spec,error,words", [
    ("disconnect-after=3", tokenhub.APIConnectionError, "more expected"),
    ("truncate-after=3", tokenhub.ProtocolError, "got 96 bytes of application/json that do not parse"),
    ("malformed-after=3", tokenhub.ProtocolError, "do not parse"),
    ("error-after=3,type=overloaded_error", tokenhub.OverloadedError, "HTTP 529"),
])
def test_body_faults_through_tokenhub(client, protocol, spec, error, words):
    with pytest.raises(error, match=words) as caught:
        call(client, protocol, stream=False, fault=spec)
    assert type(caught.value) is error


def test_body_fault_bytes_on_the_wire(mock):
    body = json.dumps({"pad": "x" * 200}).encode()
    mock.add({"raw": {"body": body.decode()}})
    reply = wire_bytes(mock, post_bytes("/v1/messages", ANTHROPIC_BODY, {"X-Mock-Fault": "disconnect-after=2"}))
    head, _, received = reply.partition(b"\r\n\r\n")
    assert b"Content-Length: %d" % len(body) in head and received == body[:64]
    reply = wire_bytes(mock, post_bytes("/v1/messages", ANTHROPIC_BODY, {"X-Mock-Fault": "truncate-after=2"}))
    head, _, received = reply.partition(b"\r\n\r\n")
    assert b"Content-Length: 64" in head and received == body[:64]
    reply = wire_bytes(mock, post_bytes("/v1/messages", ANTHROPIC_BODY, {"X-Mock-Fault": "malformed-after=1"}))
    received = reply.partition(b"\r\n\r\n")[2]
    assert received == body[:32] + b"\x00<not JSON>\x00" + body[32:]


def test_drip_paces_a_body_and_delivers_it_whole(mock):
    plain = raw_exchange(mock, "POST", "/v1/messages", ANTHROPIC_BODY)[2]
    started = time.monotonic()
    status, _, body = raw_exchange(mock, "POST", "/v1/messages", ANTHROPIC_BODY, {"X-Mock-Fault": "drip=0.01"})
    assert status == 200 and body == plain
    assert time.monotonic() - started >= 0.01 * (len(plain) // 32 - 1)  # one pause between 32-byte pieces


def test_a_stalled_body_trips_the_read_timeout(client):
    with pytest.raises(tokenhub.APITimeoutError, match="Timeout.read"):
        call(client, "anthropic", stream=False, fault="stall-after=1,seconds=30", timeout=tokenhub.Timeout(read=0.3))


def test_ttfb_trips_a_short_read_timeout_before_any_byte(mock):
    with tokenhub.TokenHub(api_key="k", base_url=mock.url, max_retries=0, timeout=tokenhub.Timeout(read=0.2)) as client:
        with pytest.raises(tokenhub.APITimeoutError):
            call(client, "openai", stream=False, fault="ttfb=30")
    assert raw_exchange(mock, "POST", "/v1/chat/completions", OPENAI_BODY, {"X-Mock-Fault": "ttfb=0.01"})[0] == 200


def test_stopping_the_server_cuts_a_stall_short():
    srv = MockServer().start()
    client = tokenhub.TokenHub(api_key="k", base_url=srv.url, max_retries=0)
    stream = call(client, "openai", stream=True, fault="stall-after=1,seconds=600")
    next(stream)
    started = time.monotonic()
    before = threading.active_count()
    srv.stop()
    assert time.monotonic() - started < 20  # not the stall's 600 s
    assert threading.active_count() < before
    items, raised = drain(stream)
    assert items == [] and isinstance(raised, tokenhub.APIConnectionError)
    client.close()
