"""Transport: deadlines, retries by header, failover, proxies, TLS, and what is never silent.

Servers here are scripted byte by byte on 127.0.0.1. A "drip" server paces its bytes
with Event.wait (it simulates a slow network; no test waits on a sleep to synchronise).
"""

import email.utils
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import tokenhub
from conftest import timed, CERTS, CLOSE, HANG, ROOT, http_response, server_tls
from mock_server import MockServer, redacted

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

HI = [{"role": "user", "content": "Hi"}]
JSON = {"Content-Type": "application/json"}
MARGIN = 1.5  # seconds a deadline may overrun on a loaded machine
SSE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
CHUNK = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n'


def make_client(url, **kw):
    kw.setdefault("max_retries", 0)
    return tokenhub.TokenHub(api_key="k", base_url=url, **kw)


def drip(pieces, every, stop):
    """A script step: the SSE head, then each piece after ``every`` seconds, then hold."""
    def step(conn):
        conn.sendall(SSE_HEAD)
        for piece in pieces:
            if stop.wait(every):
                return
            conn.sendall(piece)
        stop.wait()
    return step


# -- Timeout ------------------------------------------------------------------


def test_timeout_object():
    assert tokenhub.Timeout() == tokenhub.Timeout(connect=5.0, read=600.0, idle=None, total=None)
    assert "read=600.0" in repr(tokenhub.Timeout())
    with pytest.raises(ValueError, match="Timeout.read must be a number of seconds > 0 or None, got -1"):
        tokenhub.Timeout(read=-1)
    with pytest.raises(ValueError, match="timeout must be a number"):
        tokenhub.TokenHub(api_key="k", base_url="http://127.0.0.1:9", timeout="soon")
    client = tokenhub.TokenHub(api_key="k", base_url="http://127.0.0.1:9", timeout=30)
    assert client.timeout == tokenhub.Timeout(connect=5.0, read=30.0)
    assert tokenhub.TokenHub(api_key="k", base_url="http://127.0.0.1:9", timeout=2).timeout.connect == 2.0
    assert tokenhub.TokenHub(api_key="k", base_url="http://127.0.0.1:9", timeout=None).timeout.read is None


def test_read_timeout_before_the_reply(raw_server):
    with raw_server(HANG) as srv:
        client = make_client(srv.url, timeout=tokenhub.Timeout(read=0.4))
        with pytest.raises(tokenhub.APITimeoutError, match=r"timed out after 0.4s \(Timeout.read\)"):
            timed(lambda: client.chat.completions.create(model="m", messages=HI))
        assert len(srv.requests) == 1
    assert 0.35 <= timed.elapsed < 0.4 + MARGIN


def test_timeout_before_the_first_byte_is_retried(raw_server):
    ok = http_response(200, '{"choices": []}', JSON)
    with raw_server(HANG, ok) as srv:
        client = make_client(srv.url, timeout=0.3, max_retries=1)
        assert client.chat.completions.create(model="m", messages=HI).choices == []
        assert len(srv.requests) == 2


def test_connect_timeout():
    """A listener whose accept queue is full never completes a handshake."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    fillers = []
    try:
        for _ in range(8):  # fill the backlog; further SYNs are dropped
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        url = "http://127.0.0.1:%d" % listener.getsockname()[1]
        client = make_client(url, timeout=tokenhub.Timeout(connect=0.4, read=30))
        with pytest.raises(tokenhub.APITimeoutError, match=r"connecting to .* \(Timeout.connect\)"):
            timed(lambda: client.chat.completions.create(model="m", messages=HI))
        assert timed.elapsed < 0.4 + MARGIN
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_stream_stall_after_an_event(raw_server):
    stop = threading.Event()
    with raw_server(drip([CHUNK], 0, stop)) as srv:
        client = make_client(srv.url, timeout=tokenhub.Timeout(read=0.4))
        stream = client.chat.completions.create(model="m", messages=HI, stream=True)
        assert next(stream).choices[0].delta.content == "x"
        with pytest.raises(tokenhub.APITimeoutError, match=r"Timeout.read"):
            timed(lambda: next(stream))
        stop.set()
    assert 0.35 <= timed.elapsed < 0.4 + MARGIN


def test_slow_drip_hits_the_idle_limit(raw_server):
    """Bytes keep coming, one every 50 ms, but never a whole event."""
    stop = threading.Event()
    pieces = [CHUNK] + [b":"] * 400  # a comment line that never ends
    with raw_server(drip(pieces, 0.05, stop)) as srv:
        client = make_client(srv.url, timeout=tokenhub.Timeout(read=10, idle=0.6))
        stream = client.chat.completions.create(model="m", messages=HI, stream=True)
        assert next(stream).choices[0].delta.content == "x"
        with pytest.raises(tokenhub.APITimeoutError, match=r"no stream event for 0.6s \(Timeout.idle\)"):
            timed(lambda: next(stream))
        stop.set()
    assert 0.5 <= timed.elapsed < 0.6 + MARGIN


def test_idle_limit_resets_with_each_event(raw_server):
    stop = threading.Event()
    pieces = [CHUNK] * 12 + [b"data: [DONE]\n\n"]  # 12 events, 0.1 s apart: 1.2 s in all
    with raw_server(drip(pieces, 0.1, stop)) as srv:
        client = make_client(srv.url, timeout=tokenhub.Timeout(read=10, idle=0.6))
        chunks = list(client.chat.completions.create(model="m", messages=HI, stream=True))
        stop.set()
    assert len(chunks) == 12


def test_total_deadline_ends_an_endless_stream(raw_server):
    stop = threading.Event()
    with raw_server(drip([CHUNK] * 1000, 0.05, stop)) as srv:
        client = make_client(srv.url, timeout=tokenhub.Timeout(read=10, total=0.8))
        received = []
        with pytest.raises(tokenhub.APITimeoutError, match=r"total deadline of 0.8s passed \(Timeout.total\)"):
            timed(lambda: received.extend(client.chat.completions.create(model="m", messages=HI, stream=True)))
        stop.set()
    assert received  # what arrived before the deadline was delivered
    assert 0.7 <= timed.elapsed < 0.8 + MARGIN


def test_total_deadline_covers_retries(raw_server):
    busy = http_response(503, "{}", dict(JSON, **{"retry-after-ms": "300"}))
    with raw_server(busy, busy, busy, busy, busy) as srv:
        client = make_client(srv.url, max_retries=10, timeout=tokenhub.Timeout(total=0.8))
        with pytest.raises(tokenhub.InternalServerError):
            timed(lambda: client.chat.completions.create(model="m", messages=HI))
        attempts = len(srv.requests)
    assert 2 <= attempts <= 3  # 0 s, 0.3 s, 0.6 s; a fourth would start after 0.9 s
    assert timed.elapsed < 0.8 + MARGIN


def test_per_call_timeout_and_with_options(raw_server):
    with raw_server(HANG, HANG) as srv:
        client = make_client(srv.url, timeout=600)
        with pytest.raises(tokenhub.APITimeoutError, match="0.3s"):
            client.chat.completions.create(model="m", messages=HI, timeout=0.3)
        quick = client.with_options(timeout=tokenhub.Timeout(read=0.3), default_headers={"X-A": "1"})
        assert client.timeout.read == 600  # the original is unchanged
        with pytest.raises(tokenhub.APITimeoutError, match="0.3s"):
            quick.messages.create(model="m", max_tokens=1, messages=HI)
        assert "x-a: 1" in srv.requests[1][0].lower()
        assert "x-a" not in srv.requests[0][0].lower()


def test_with_options_merges_and_validates(mock):
    client = tokenhub.TokenHub(api_key="k", base_url=mock.url, default_headers={"X-A": "1"})
    other = client.with_options(max_retries=5, default_headers={"X-B": "2"})
    assert (other.max_retries, client.max_retries) == (5, 2)
    other.chat.completions.create(model="glm-5", messages=HI)
    headers = mock.requests[0].headers
    assert headers["x-a"] == "1" and headers["x-b"] == "2"
    with pytest.raises(TypeError, match="with_options\\(\\) takes timeout, max_retries, default_headers, got base_url"):
        client.with_options(base_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="max_retries"):
        client.chat.completions.create(model="glm-5", messages=HI, max_retries=-2)


# -- Retries by header -----------------------------------------------------------


@pytest.mark.parametrize("header", [
    {"retry-after-ms": "200"},
    {"retry-after": "0.2"},
    {"retry-after": "HTTP-DATE"},
])
def test_429_waits_as_the_server_says(raw_server, header):
    if header.get("retry-after") == "HTTP-DATE":
        header = {"retry-after": email.utils.formatdate(time.time() + 1, usegmt=True)}
    limited = http_response(429, '{"error": {"message": "slow down"}}', dict(JSON, **header))
    ok = http_response(200, '{"choices": []}', JSON)
    with raw_server(limited, ok) as srv:
        client = make_client(srv.url, max_retries=1)
        timed(lambda: client.chat.completions.create(model="m", messages=HI))
        assert len(srv.requests) == 2
    low = 0.15 if "retry-after-ms" in header or header["retry-after"] == "0.2" else 0.0
    assert low <= timed.elapsed < 2 + MARGIN


def test_backoff_without_server_word(raw_server):
    busy = http_response(500, "{}", JSON)
    ok = http_response(200, '{"choices": []}', JSON)
    with raw_server(busy, ok) as srv:
        client = make_client(srv.url, max_retries=1)
        timed(lambda: client.chat.completions.create(model="m", messages=HI))
    assert 0.375 <= timed.elapsed < 0.5 + MARGIN  # 0.5 s less up to 25% jitter


def test_never_retried_once_a_stream_has_data(raw_server):
    wire = SSE_HEAD + CHUNK  # then the connection closes: no [DONE]
    with raw_server(wire, http_response(200, "{}", JSON)) as srv:
        client = make_client(srv.url, max_retries=3)
        stream = client.chat.completions.create(model="m", messages=HI, stream=True)
        with pytest.raises(tokenhub.IncompleteStreamError):
            list(stream)
        assert len(srv.requests) == 1


# -- Wire faults -------------------------------------------------------------------


def test_reset_after_n_events(raw_server):
    consumed = threading.Event()

    def reset(conn):
        conn.sendall(SSE_HEAD + CHUNK * 3)
        consumed.wait(10)  # until the client has the three events
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        conn.close()  # linger 0: a real RST, not a FIN

    with raw_server(reset) as srv:
        stream = make_client(srv.url, max_retries=3).chat.completions.create(model="m", messages=HI, stream=True)
        received = [next(stream) for _ in range(3)]
        consumed.set()
        with pytest.raises(tokenhub.APIConnectionError) as info:
            next(stream)
        assert len(srv.requests) == 1  # never retried once data was yielded
    assert [c.choices[0].delta.content for c in received] == ["x", "x", "x"]
    assert type(info.value) is tokenhub.APIConnectionError  # not a timeout, not a "clean" end
    assert "ConnectionResetError" in str(info.value)


def test_a_body_shorter_than_its_content_length_is_a_connection_error(raw_server):
    body = b'{"choices": [{"message": {"content": "cut'
    wire = b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n" + body
    with raw_server(wire) as srv:
        with pytest.raises(tokenhub.APIConnectionError, match="%d byte\\(s\\) more expected" % (500 - len(body))) as info:
            make_client(srv.url).chat.completions.create(model="m", messages=HI)
    assert type(info.value) is tokenhub.APIConnectionError


def test_a_body_that_is_not_json_says_what_arrived(raw_server):
    with raw_server(http_response(200, b'{"id": "x", "choi', JSON)) as srv:
        with pytest.raises(tokenhub.ProtocolError, match="got 17 bytes of application/json that do not parse"):
            make_client(srv.url).chat.completions.create(model="m", messages=HI)


def test_garbage_bytes(raw_server):
    wire = SSE_HEAD + b"\x00\x01garbage\xff\xfe\n\ndata: \xff\xfe{}\n\n"
    with raw_server(wire) as srv:
        with pytest.raises(tokenhub.StreamError, match="invalid JSON in OpenAI stream event 'message': \ufffd\ufffd\\{\\}"):
            list(make_client(srv.url).chat.completions.create(model="m", messages=HI, stream=True))


def test_bom_and_cr_only_line_ends(raw_server):
    wire = SSE_HEAD + b"\xef\xbb\xbf" + CHUNK.replace(b"\n", b"\r") + b"data: [DONE]\r\r"
    with raw_server(wire) as srv:
        chunks = list(make_client(srv.url).chat.completions.create(model="m", messages=HI, stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["x"]


def test_blank_keep_alive_events_are_skipped(raw_server):
    wire = SSE_HEAD + b"data:\n\n" + b"data:  \n\n" + CHUNK + b": ping\n\n" + b"data: [DONE]\n\n"
    wire_anthropic = SSE_HEAD + b"event: ping\ndata: \n\n" + b'data: {"type":"message_stop"}\n\n'
    with raw_server(wire, wire_anthropic) as srv:
        client = make_client(srv.url)
        chunks = list(client.chat.completions.create(model="m", messages=HI, stream=True))
        events = list(client.messages.create(model="m", max_tokens=1, messages=HI, stream=True))
    assert [c.choices[0].delta.content for c in chunks] == ["x"]
    assert [e.type for e in events] == ["message_stop"]


def test_invalid_utf8_in_a_body_is_replaced(raw_server):
    body = b'{"choices": [{"message": {"content": "caf\xc3"}}]}'
    with raw_server(http_response(200, body, JSON)) as srv:
        reply = make_client(srv.url).chat.completions.create(model="m", messages=HI)
    assert reply.choices[0].message.content == "caf\ufffd"


def test_503_html_page_gives_readable_excerpt(raw_server):
    page = (
        "<!DOCTYPE html><html><head><title>503 Service Unavailable</title>"
        "<style>body { color: red }</style></head><body><h1>Service Unavailable</h1>"
        "<p>The server is temporarily overloaded &amp; busy.</p></body></html>"
    )
    with raw_server(http_response(503, page, {"Content-Type": "text/html"})) as srv:
        with pytest.raises(tokenhub.InternalServerError) as info:
            make_client(srv.url).chat.completions.create(model="m", messages=HI)
    message = str(info.value)
    assert "503 Service Unavailable Service Unavailable The server is temporarily overloaded & busy." in message
    assert "<" not in message and "color" not in message


def test_redirect_elsewhere_sends_nothing_there(raw_server):
    with raw_server(http_response(200, "{}", JSON)) as elsewhere:
        redirect = http_response(307, "", {"Location": elsewhere.url + "/v1/chat/completions"})
        with raw_server(redirect) as srv:
            with pytest.raises(tokenhub.APIStatusError, match="not followed") as info:
                make_client(srv.url, max_retries=2).chat.completions.create(model="m", messages=HI)
            assert len(srv.requests) == 1
        assert elsewhere.requests == []  # neither the request nor the key went there
    assert info.value.status_code == 307


def test_line_limit_is_settable(raw_server):
    wire = SSE_HEAD + b"data: " + b"x" * 5000 + b"\n\n"
    with raw_server(wire) as srv:
        client = make_client(srv.url, max_line_size=1024)
        with pytest.raises(tokenhub.SizeLimitError, match="1024 bytes"):
            list(client.chat.completions.create(model="m", messages=HI, stream=True))


# -- Failover ----------------------------------------------------------------------


@pytest.fixture
def region(monkeypatch):
    """Point the singapore region at loopback servers: (primary, backup)."""
    def set_region(primary, backup):
        monkeypatch.setitem(tokenhub._REGIONS, "singapore", (primary, backup))
    return set_region


def test_failover_to_the_backup_host(raw_server, mock, region):
    with raw_server(CLOSE, CLOSE) as primary:
        region(primary.url, mock.url)
        client = tokenhub.TokenHub(api_key="k", max_retries=0)
        assert client.base_url == primary.url
        assert client.chat.completions.create(model="glm-5", messages=HI).object == "chat.completion"
        assert client.messages.create(model="glm-5", max_tokens=5, messages=HI).type == "message"
        assert primary.connections == 1  # the second call went straight to the backup
    assert len(mock.requests) == 2


def test_no_failover_when_turned_off(raw_server, mock, region):
    with raw_server(CLOSE) as primary:
        region(primary.url, mock.url)
        client = tokenhub.TokenHub(api_key="k", max_retries=0, failover=False)
        with pytest.raises(tokenhub.APIConnectionError):
            client.chat.completions.create(model="glm-5", messages=HI)
    assert mock.requests == []


def test_no_failover_on_an_http_error(raw_server, mock, region):
    with raw_server(http_response(500, "{}", JSON)) as primary:
        region(primary.url, mock.url)
        client = tokenhub.TokenHub(api_key="k", max_retries=0)
        with pytest.raises(tokenhub.InternalServerError):
            client.chat.completions.create(model="glm-5", messages=HI)
    assert mock.requests == []


def test_no_failover_from_a_base_url(raw_server, mock, region):
    with raw_server(CLOSE) as primary:
        region(primary.url, mock.url)
        client = tokenhub.TokenHub(api_key="k", base_url=primary.url, max_retries=0)
        with pytest.raises(tokenhub.APIConnectionError):
            client.chat.completions.create(model="glm-5", messages=HI)
    assert mock.requests == []


# -- Proxies -----------------------------------------------------------------------


def test_http_proxy_absolute_form_with_credentials(monkeypatch, proxy_server, mock):
    with proxy_server(auth="Basic dXNlcjpwYXNz") as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url.replace("http://", "http://user:pass@"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = make_client(mock.url)
        reply = client.chat.completions.create(model="glm-5", messages=HI)
        assert reply.object == "chat.completion"
        line, headers = proxy.seen[0]
    assert line == "POST %s/v1/chat/completions HTTP/1.1" % mock.url
    assert headers["proxy-authorization"] == "Basic dXNlcjpwYXNz"
    assert "proxy-authorization" not in mock.requests[0].headers
    assert mock.requests[0].headers["authorization"] == "Bearer " + redacted("k")


def test_no_proxy_bypasses(monkeypatch, proxy_server, mock):
    with proxy_server() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "example.com,127.0.0.1")
        make_client(mock.url).chat.completions.create(model="glm-5", messages=HI)
        assert proxy.seen == []
    assert len(mock.requests) == 1


def test_https_through_a_connect_tunnel(monkeypatch, proxy_server):
    with MockServer(ssl_context=server_tls()) as srv, proxy_server(auth="Basic dTpw") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url.replace("http://", "http://u:p@"))
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = make_client(srv.url, ca_file=os.path.join(CERTS, "ca.pem"))
        events = list(client.messages.create(model="glm-5", max_tokens=5, messages=HI, stream=True))
        assert events[-1].type == "message_stop"
        line, headers = proxy.seen[0]
        port = srv.url.rsplit(":", 1)[1]
    assert line.startswith("CONNECT 127.0.0.1:%s HTTP/1." % port)  # 1.0 or 1.1 by Python version
    assert headers["proxy-authorization"] == "Basic dTpw"
    assert srv.requests[0].headers["x-api-key"] == redacted("k")  # inside the tunnel, encrypted


def test_proxy_refusing_the_tunnel(monkeypatch, proxy_server):
    with MockServer(ssl_context=server_tls()) as srv, proxy_server(auth="Basic secret") as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        client = make_client(srv.url, ca_file=os.path.join(CERTS, "ca.pem"))
        with pytest.raises(tokenhub.APIConnectionError, match="407"):
            client.chat.completions.create(model="glm-5", messages=HI)
    assert srv.requests == []


def test_unsupported_proxy_scheme(monkeypatch, mock):
    monkeypatch.setenv("HTTP_PROXY", "socks5://127.0.0.1:1080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with pytest.raises(ValueError, match="only http:// proxies are supported.*'socks5'"):
        make_client(mock.url).chat.completions.create(model="glm-5", messages=HI)


# -- TLS -----------------------------------------------------------------------------


def test_tls_is_verified_by_default():
    with MockServer(ssl_context=server_tls()) as srv:
        with pytest.raises(tokenhub.APIConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            make_client(srv.url).chat.completions.create(model="glm-5", messages=HI)
        assert srv.requests == []


def test_tls_with_a_custom_ca_file():
    with MockServer(ssl_context=server_tls()) as srv:
        client = make_client(srv.url, ca_file=os.path.join(CERTS, "ca.pem"))
        assert client.chat.completions.create(model="glm-5", messages=HI).object == "chat.completion"
        assert len(list(client.chat.completions.create(model="glm-5", messages=HI, stream=True))) > 2


def test_tls_client_certificate():
    ca = os.path.join(CERTS, "ca.pem")
    pair = (os.path.join(CERTS, "client.pem"), os.path.join(CERTS, "client.key"))
    with MockServer(ssl_context=server_tls(require_client_cert=True)) as srv:
        with pytest.raises(tokenhub.APIConnectionError):
            make_client(srv.url, ca_file=ca).chat.completions.create(model="glm-5", messages=HI)
        client = make_client(srv.url, ca_file=ca, client_cert=pair)
        assert client.chat.completions.create(model="glm-5", messages=HI).object == "chat.completion"


def test_tls_options_fail_fast_on_a_bad_path():
    with pytest.raises((OSError, ValueError)):
        tokenhub.TokenHub(api_key="k", base_url="https://127.0.0.1:1", ca_file=os.path.join(CERTS, "missing.pem"))


# -- Safety and speed ------------------------------------------------------------------


def test_plain_http_warns_off_loopback_only(recwarn):
    tokenhub.TokenHub(api_key="k", base_url="http://127.0.0.1:8000")
    tokenhub.TokenHub(api_key="k", base_url="http://localhost:8000")
    tokenhub.TokenHub(api_key="k", base_url="http://[::1]:8000")
    assert len(recwarn) == 0
    with pytest.warns(RuntimeWarning, match="plain http"):
        tokenhub.TokenHub(api_key="k", base_url="http://gateway.internal:8000")


def test_key_not_in_any_error_or_warning_text(raw_server, recwarn):
    key = "sk-very-secret-0042"
    cases = [HANG, http_response(500, "key was sk-nothing", JSON), CLOSE]
    with raw_server(*cases) as srv:
        client = tokenhub.TokenHub(api_key=key, base_url=srv.url, max_retries=0, timeout=0.3)
        for _ in cases:
            with pytest.raises(tokenhub.APIError) as info:
                client.chat.completions.create(model="m", messages=HI)
            text = str(info.value) + repr(info.value) + repr(info.value.__cause__)
            assert key not in text
    assert all(key not in str(w.message) for w in recwarn)
    assert key not in repr(client) + str(client.__dict__.get("default_headers"))


def test_import_loads_no_networking_module_nor_json():
    code = (
        "import sys; before = set(sys.modules); import tokenhub; "
        "print(sorted(m for m in set(sys.modules) - before "
        "if m in ('ssl', 'http.client', 'urllib.request', 'socket', 'email.parser', 'json', 're', 'typing')))"
    )
    # -S: no site packages, whose .pth files may load json or re first and hide a regression
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"  # json, re and typing too: they cost more than the module


def test_stream_connection_returns_to_the_pool(raw_server):
    done = b"data: [DONE]\n\n"
    events = CHUNK + done
    head = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(events)
    ok = http_response(200, '{"choices": []}', JSON, close=False)
    with raw_server(head + events, ok) as srv:
        client = make_client(srv.url)
        assert len(list(client.chat.completions.create(model="m", messages=HI, stream=True))) == 1
        client.chat.completions.create(model="m", messages=HI)
        assert srv.connections == 1  # the finished stream's connection served the next call


def test_closed_stream_connection_is_not_reused(raw_server):
    ok = http_response(200, '{"choices": []}', JSON)
    with raw_server(SSE_HEAD + CHUNK * 3 + b"data: [DONE]\n\n", ok) as srv:
        client = make_client(srv.url)
        stream = client.chat.completions.create(model="m", messages=HI, stream=True)
        next(stream)
        stream.close()
        client.chat.completions.create(model="m", messages=HI)
        assert srv.connections == 2


# -- Both TokenHub sites ------------------------------------------------------------------


@pytest.mark.parametrize("region,root", [
    ("china", "https://tokenhub.tencentmaas.com"),
    ("china-singapore", "https://tokenhub-intl.tencentmaas.com"),
])
def test_the_china_site_has_regions_of_its_own_and_never_fails_over(region, root):
    client = tokenhub.TokenHub(api_key="k", region=region)
    assert client.base_url == root
    assert len(client._origins) == 1  # no backup documented: nothing to fail over to, least of all the other site


def test_the_international_regions_fail_over_only_within_their_site():
    for region in ("singapore", "guangzhou"):
        hosts = [origin.host for origin in tokenhub.TokenHub(api_key="k", region=region)._origins]
        assert len(hosts) == 2 and all(host.endswith((".tencentcloudmaas.com", ".tencentcloudmaas.tech")) for host in hosts)


def test_a_401_says_which_site_was_used_and_that_keys_are_per_site(raw_server):
    refused = http_response(401, '{"error": {"message": "invalid key", "type": "authentication_error"}}', JSON)
    with raw_server(refused) as srv:
        with pytest.raises(tokenhub.AuthenticationError) as caught:
            make_client(srv.url).chat.completions.create(model="m", messages=HI)
    message = str(caught.value)
    assert "invalid key" in message and "a custom base_url (127.0.0.1)" in message
    assert "a key works only on the site that issued it" in message
