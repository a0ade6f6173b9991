"""Shared fixtures: a clean environment, the mock server, and a raw socket server."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

import tokenhub  # noqa: E402
from mock_server import MockServer  # noqa: E402

ENV_VARS = (
    "TOKENHUB_API_KEY", "TOKENHUB_BASE_URL", "TOKENHUB_REGION",
    "OPENAI_API_KEY", "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
)


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    """No test sees the machine's keys or base URLs (and so none leaves loopback)."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def timed(fn):
    """Call ``fn()``; ``timed.elapsed`` is how long it took, even when it raised."""
    start = time.monotonic()
    try:
        fn()
    finally:
        timed.elapsed = time.monotonic() - start


@pytest.fixture(scope="session")
def loop_thread():
    """The event loop, in a thread of its own, that async clients run on in the behaviour suite."""
    from drivers import LoopThread

    loops = LoopThread()
    yield loops
    loops.close()


@pytest.fixture(params=["sync", "async"])
def driver(request, monkeypatch):
    """Run a test against both drivers: at "async", tokenhub.TokenHub, OpenAI and
    Anthropic build the asyncio clients behind a blocking facade (tests/drivers.py).
    A module opts in with ``pytestmark = pytest.mark.usefixtures("driver")``."""
    if request.param == "async":
        from drivers import stand_in

        loops = request.getfixturevalue("loop_thread")
        for name, cls in (("TokenHub", tokenhub.AsyncTokenHub), ("OpenAI", tokenhub.AsyncOpenAI),
                          ("Anthropic", tokenhub.AsyncAnthropic), ("Stream", tokenhub.AsyncStream),
                          ("ToolRunner", tokenhub.AsyncToolRunner)):
            monkeypatch.setattr(tokenhub, name, stand_in(loops, cls))
    return request.param


@pytest.fixture
def mock():
    with MockServer() as srv:
        yield srv


@pytest.fixture
def client(mock):
    with tokenhub.TokenHub(api_key="test-key", base_url=mock.url, max_retries=0) as c:
        yield c


@pytest.fixture
def anthropic(mock):
    """The Anthropic-shaped client on the mock (x-api-key)."""
    with tokenhub.Anthropic(api_key="k", base_url=mock.url, max_retries=0) as client:
        yield client


# ---------------------------------------------------------------------------
# Talking to the mock without tokenhub: http.client and raw sockets
# ---------------------------------------------------------------------------


def host_port(srv):
    host, port = srv.url.rsplit("/", 1)[1].rsplit(":", 1)
    return host, int(port)


def raw_exchange(srv, method, path, body=None, headers=None):
    """(status, {lower-case header: value}, body bytes) of one http.client request."""
    import http.client
    import json

    conn = http.client.HTTPConnection(*host_port(srv), timeout=10)
    try:
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        conn.request(method, path, body=data, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def raw_request(srv, method, path, body=None, headers=None):
    """(status, headers, parsed JSON) of one request made with http.client."""
    import json

    status, headers, data = raw_exchange(srv, method, path, body, headers)
    return status, headers, json.loads(data)


def wire_bytes(srv, data, *, timeout=10):
    """Send raw bytes on a fresh connection; every byte the server sends until it closes."""
    with socket.create_connection(host_port(srv), timeout=timeout) as sock:
        sock.sendall(data)
        received = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                return b"".join(received)
            received.append(chunk)


def post_bytes(path, body, headers=None):
    """The bytes of one POST request that asks the server to close afterwards."""
    import json

    data = json.dumps(body).encode()
    lines = ["POST %s HTTP/1.1" % path, "Host: 127.0.0.1", "Content-Type: application/json",
             "Content-Length: %d" % len(data), "Connection: close"]
    lines += ["%s: %s" % item for item in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def dechunk(data):
    """(the body of a chunked reply, whether its terminating chunk arrived)."""
    head, _, rest = data.partition(b"\r\n\r\n")
    assert b"chunked" in head.lower(), head
    body = []
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return b"".join(body), True
        body.append(rest[:size])
        rest = rest[size + 2:]
    return b"".join(body), False


@contextlib.contextmanager
def mock_cli(*args):
    """``python3 mock_server.py --port 0 ARGS`` running: yields (process, its URL);
    kills it at the end if the test did not stop it."""
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "mock_server.py"), "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        yield proc, proc.stdout.readline().strip()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


# ---------------------------------------------------------------------------
# A raw HTTP server the test scripts byte for byte
# ---------------------------------------------------------------------------


def http_response(status=200, body=b"", headers=None, *, reason="X", close=True):
    """The bytes of one HTTP/1.1 response with a Content-Length."""
    if isinstance(body, str):
        body = body.encode()
    lines = ["HTTP/1.1 %d %s" % (status, reason), "Content-Length: %d" % len(body)]
    lines += ["%s: %s" % item for item in (headers or {}).items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sse_response(payload, *, content_type="text/event-stream"):
    """A streamed reply that ends when the connection closes (no length, no chunking)."""
    if isinstance(payload, str):
        payload = payload.encode()
    head = "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nConnection: close\r\n\r\n" % content_type
    return head.encode() + payload


CLOSE = object()  # a script step: hang up without answering
HANG = object()  # a script step: never answer (until the server stops)


class RawServer:
    """Answers requests on 127.0.0.1 from a script, one step per request.

    A step is bytes (sent; the connection closes if they say ``Connection: close``),
    ``CLOSE`` (hang up unanswered), ``HANG`` (say nothing until stopped) or a
    callable ``step(conn)``. ``requests`` holds each request's raw head and body.
    """

    def __init__(self, *steps):
        self.steps = list(steps)
        self.requests = []
        self.connections = 0
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self._sock.getsockname()[1]
        self._open = []
        self._threads = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self):
        self._accepter.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone does not
        except OSError:
            pass
        self._sock.close()
        for conn in self._open:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        self._accepter.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept(self):
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self.connections += 1
            self._open.append(conn)
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn):
        reader = conn.makefile("rb")
        try:
            while self.steps:
                request = _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                step = self.steps.pop(0)
                if step is CLOSE:
                    return
                if step is HANG:
                    self._stop.wait()
                    return
                if callable(step):
                    step(conn)
                    return
                conn.sendall(step)
                if b"connection: close" in step.lower().split(b"\r\n\r\n")[0]:
                    return
        except OSError:
            return
        finally:
            reader.close()
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


def _read_request(reader):
    """(head text, body bytes) of one request, or None at end of input."""
    lines = []
    while True:
        line = reader.readline(65537)
        if not line:
            return None
        if line in (b"\r\n", b"\n"):
            break
        lines.append(line.decode("latin-1").rstrip("\r\n"))
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    return "\n".join(lines), reader.read(length)


@pytest.fixture
def raw_server():
    """``with raw_server(step, ...) as srv:`` - a scripted loopback server."""
    return RawServer


# ---------------------------------------------------------------------------
# A loopback HTTP proxy: CONNECT tunnels and absolute-form forwarding
# ---------------------------------------------------------------------------


class ProxyServer:
    """An HTTP proxy on 127.0.0.1 that records each request head it receives.

    ``seen`` holds (request line, {lower-case header: value}). With ``auth`` set,
    a request without ``Proxy-Authorization: <auth>`` gets a 407. It forwards only
    to 127.0.0.1, so a test can never reach past loopback through it.
    """

    def __init__(self, auth=None):
        self.auth = auth
        self.seen = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self._sock.getsockname()[1]
        self._sockets = []
        self._threads = []

    def __enter__(self):
        self._spawn(self._accept)
        return self

    def __exit__(self, *exc):
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        for sock in list(self._sockets):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in list(self._threads):
            thread.join(5)

    def _spawn(self, target, *args):
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            self._sockets.append(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn):
        reader = conn.makefile("rb")
        head = []
        while True:
            line = reader.readline(65537)
            if line in (b"", b"\r\n", b"\n"):
                break
            head.append(line.decode("latin-1").rstrip("\r\n"))
        if not head:
            conn.close()
            return
        headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.seen.append((head[0], headers))
        method, target, version = head[0].split(" ", 2)
        if self.auth is not None and headers.get("proxy-authorization") != self.auth:
            conn.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()
            return
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = self._upstream(host, int(port))
            conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            from urllib.parse import urlsplit

            parts = urlsplit(target)
            upstream = self._upstream(parts.hostname, parts.port or 80)
            path = parts.path + ("?" + parts.query if parts.query else "")
            lines = ["%s %s %s" % (method, path, version)]
            lines += [l for l in head[1:] if not l.lower().startswith(("proxy-", "connection:"))]
            lines.append("Connection: close")  # one request per forwarded connection
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            body = reader.read(int(headers.get("content-length", "0")))
            upstream.sendall(body)
        # The reader hands over anything it already buffered before reading on.
        self._spawn(self._pipe, upstream, conn)
        self._pipe(reader, upstream)

    def _upstream(self, host, port):
        assert host == "127.0.0.1", "the test proxy forwards only to loopback, not %r" % host
        sock = socket.create_connection((host, port), timeout=30)
        self._sockets.append(sock)
        return sock

    def _pipe(self, source, sink):
        read = source.read1 if hasattr(source, "read1") else (lambda n: source.recv(n))
        try:
            while True:
                data = read(65536)
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            try:
                sink.shutdown(socket.SHUT_WR)
            except OSError:
                pass


@pytest.fixture
def proxy_server():
    """``with proxy_server(auth=None) as proxy:`` - a recording loopback proxy."""
    return ProxyServer


CERTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "certs")


def server_tls(require_client_cert=False):
    """A server-side TLS context with the test CA's 127.0.0.1 certificate."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(os.path.join(CERTS, "server.pem"), os.path.join(CERTS, "server.key"))
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(os.path.join(CERTS, "ca.pem"))
    return context
