"""tokenhub: a one-file, standard-library client for Tencent Cloud TokenHub.

TokenHub serves DeepSeek, GLM, Kimi and MiniMax models over two protocols,
OpenAI Chat Completions and Anthropic Messages. This module speaks both,
streaming included, with nothing to install: copy the file and import it::

    import tokenhub

    client = tokenhub.TokenHub()  # reads TOKENHUB_API_KEY
    reply = client.chat.completions.create(
        model="deepseek-v4-flash",
        messages=[{"role": "user", "content": "Hello"}],
    )
    print(reply.choices[0].message.content)

    with client.messages.create(
        model="glm-5", max_tokens=1024, stream=True,
        messages=[{"role": "user", "content": "Hi"}],
    ) as events:
        for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                print(event.delta.text, end="", flush=True)

``tokenhub.OpenAI`` and ``tokenhub.Anthropic`` are the same client, taking the
official SDKs' constructor arguments and environment variables, so a script
written for either SDK runs after changing only its import line.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    # clients
    "TokenHub",
    "OpenAI",
    "Anthropic",
    "Timeout",
    # data objects
    "APIObject",
    "Stream",
    # server-sent events
    "ServerSentEvent",
    "SSEDecoder",
    "iter_sse",
    # errors
    "APIError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "UnprocessableEntityError",
    "RateLimitError",
    "InternalServerError",
    "OverloadedError",
    "ProtocolError",
    "StreamError",
    "IncompleteStreamError",
    "SizeLimitError",
]

import json
import os
import re  # already loaded by json; costs nothing
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # names for annotations only; keeps `typing` off the import path
    import http.client
    import ssl
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any, BinaryIO, Tuple

    _Step = Callable[["ServerSentEvent"], Tuple[Any, bool]]

#: Region name -> (primary root, backup root...). The OpenAI protocol lives at
#: {root}/v1/chat/completions, the Anthropic one at {root}/v1/messages; the backup
#: host is for "when the default address is unavailable" (PROTOCOL.md, "Hosts and auth").
_REGIONS = {
    "singapore": (
        "https://tokenhub-intl.tencentcloudmaas.com",
        "https://tokenhub-intl.tencentcloudmaas.tech",
    ),
    "guangzhou": (
        "https://tokenhub.tencentcloudmaas.com",
        "https://tokenhub.tencentcloudmaas.tech",
    ),
    "store": ("https://tokenhub.store/api",),
}
_DEFAULT_REGION = "singapore"
_ANTHROPIC_VERSION = "2023-06-01"
_USER_AGENT = "tokenhub-python/" + __version__

DEFAULT_MAX_LINE_SIZE = 16 * 1024 * 1024  # one SSE line, and one event's data
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024  # one non-streamed response body
_MAX_ERROR_BODY = 1024 * 1024  # what an error response may contribute to the error
_MAX_DRAIN = 64 * 1024  # bytes read after a stream's terminator to free the connection
_DRAIN_WAIT = 0.5  # seconds those bytes may take before the connection is closed instead
_READ_SIZE = 64 * 1024

# Retry policy: which statuses are worth another try, and how long to wait.
_RETRY_STATUSES = frozenset({408, 409, 429})
_BACKOFF_START = 0.5
_BACKOFF_MAX = 8.0
_MAX_SERVER_DELAY = 60.0  # a longer retry-after is raised, not slept


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class APIError(Exception):
    """Root of every error tokenhub raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke."""


class APITimeoutError(APIConnectionError):
    """A connect or read deadline passed."""


class APIStatusError(APIError):
    """The server answered with an error status (or an error inside a stream).

    ``status_code`` is the HTTP status (for an in-stream error, the status its
    ``error.type`` stands for), ``body`` the parsed JSON body (or its text when it
    is not JSON), ``request_id`` the server's request id when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})
        self.request_id = request_id
        self.retry_after: float | None = None  # set when a too-long server delay was not slept


class BadRequestError(APIStatusError):
    """400: the request was malformed."""


class AuthenticationError(APIStatusError):
    """401: the key is missing or wrong."""


class PermissionDeniedError(APIStatusError):
    """403: the key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such model or path."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the server's state."""


class UnprocessableEntityError(APIStatusError):
    """422: well-formed but not processable."""


class RateLimitError(APIStatusError):
    """429: too many requests or tokens."""


class InternalServerError(APIStatusError):
    """500 and above: the server failed."""


class OverloadedError(InternalServerError):
    """529 (Anthropic ``overloaded_error``): the service is overloaded."""


class ProtocolError(APIError):
    """The server answered, but not in the shape the protocol promises."""


class StreamError(ProtocolError):
    """A streamed response broke the protocol (bad JSON, wrong content type)."""


class IncompleteStreamError(StreamError):
    """A stream ended before its terminator (``[DONE]`` or ``message_stop``).

    ``received`` is the number of items the stream had yielded.
    """

    def __init__(self, message: str, *, received: int = 0) -> None:
        super().__init__(message)
        self.received = received


class SizeLimitError(ProtocolError):
    """A line, an event or a body exceeded its configured size limit."""


_STATUS_ERRORS = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
    429: RateLimitError,
    529: OverloadedError,
}

#: In-stream (and body) ``error.type`` values of both protocols -> HTTP status.
_ERROR_TYPE_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "api_error": 500,
    "server_error": 500,
    "overloaded_error": 529,
}

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-tc-requestid")


def _status_error(
    status: int, body: Any, headers: Mapping[str, str] | None = None, *, where: str = "HTTP"
) -> APIStatusError:
    """Build the status error whose class matches ``status``."""
    cls = _STATUS_ERRORS.get(status) or (
        InternalServerError if status >= 500 else APIStatusError
    )
    request_id = _request_id(headers) if headers else None
    message = "%s %d: %s" % (where, status, _server_message(body))
    if request_id:
        message += " (request id %s)" % request_id
    return cls(message, status_code=status, body=body, headers=headers, request_id=request_id)


def _stream_error(body: Mapping[str, Any], headers: Mapping[str, str]) -> APIStatusError:
    """The status error for an error reported inside a 200 stream."""
    error = body.get("error")
    status = 500
    if isinstance(error, dict):
        code = error.get("code")
        if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
            status = int(code)
        else:
            status = _ERROR_TYPE_STATUS.get(error.get("type"), 500)
    return _status_error(status, body, headers, where="stream error, status")


def _server_message(body: Any) -> str:
    """The server's own words from an error body of either protocol."""
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            kind = error.get("type")
            return "%s (%s)" % (error["message"], kind) if kind else str(error["message"])
        if isinstance(error, str) and error:
            return error
        for key in ("message", "detail", "msg"):
            if body.get(key):
                return str(body[key])
        return _excerpt(json.dumps(body, ensure_ascii=False))
    if isinstance(body, (bytes, str)) and body:
        return _excerpt(_readable(body))
    return "(empty body)"


_HTML = re.compile(r"<(?:!doctype|html|head|body|title|h1|p|div)\b", re.IGNORECASE)


def _readable(text: str | bytes) -> str:
    """Text as a person would read it: an HTML error page (a proxy's 502) loses its markup."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not _HTML.search(text):
        return text
    import html

    text = re.sub(r"(?is)<(script|style)\b.*?</\1\s*>", " ", text)
    return html.unescape(re.sub(r"(?s)<[^>]*>", " ", text))


# ---------------------------------------------------------------------------
# Data objects
# ---------------------------------------------------------------------------


class APIObject(dict):
    """A JSON object from the API: a ``dict`` that also answers attribute access.

    ``reply.choices[0].message.content`` and ``reply["choices"][0]["message"]["content"]``
    read the same value. Every field the server sent is kept, known or not; a field
    it did not send reads as ``None`` through attribute access (as in the official
    SDKs) and raises ``KeyError`` through item access. Being a ``dict``, an object
    can go straight back into a request (``messages.append(reply.choices[0].message)``)
    and into ``json.dumps``.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        if name[:1] == "_":  # keep the dunder protocols (copy, pickle) honest
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | {k for k in self if isinstance(k, str)})

    def __repr__(self) -> str:
        kind = self.get("object") or self.get("type")
        text = _excerpt(json.dumps(self, ensure_ascii=False), 160)
        return "<%s %s>" % (kind, text) if isinstance(kind, str) else text

    def to_dict(self) -> dict[str, Any]:
        """A deep copy made of plain ``dict`` and ``list`` values."""
        return _plain(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The object as JSON text."""
        return json.dumps(self, ensure_ascii=False, indent=indent)

    model_dump = to_dict  # the official SDKs' (pydantic) spellings
    model_dump_json = to_json


def _plain(value: Any) -> Any:
    """Deep-copy JSON data into plain dicts and lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _loads(text: str | bytes) -> Any:
    """Parse JSON into APIObjects; invalid UTF-8 in bytes becomes U+FFFD, not an error."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
        if text[:1] == "\ufeff":
            text = text[1:]
    return json.loads(text, object_hook=APIObject)


# ---------------------------------------------------------------------------
# Server-sent events (sans-IO decoder, then a generator over a file)
# ---------------------------------------------------------------------------


class ServerSentEvent:
    """One dispatched event: ``event`` (type, default ``message``), ``data``, ``id``, ``retry``."""

    __slots__ = ("event", "data", "id", "retry")

    def __init__(
        self, data: str = "", *, event: str = "message", id: str = "", retry: int | None = None
    ) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def json(self) -> Any:
        """The data parsed as JSON."""
        return json.loads(self.data)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (self.event, self.data, self.id, self.retry) == (
            other.event, other.data, other.id, other.retry,
        )

    def __repr__(self) -> str:
        parts = ["event=%r" % self.event, "data=%r" % _excerpt(self.data, 80)]
        if self.id:
            parts.append("id=%r" % self.id)
        if self.retry is not None:
            parts.append("retry=%r" % self.retry)
        return "ServerSentEvent(%s)" % ", ".join(parts)


_BOM = b"\xef\xbb\xbf"


class SSEDecoder:
    """Feed bytes, get events: the WHATWG "event stream interpretation", sans IO.

    Lines end at CR, LF or CRLF (a CRLF split across two feeds is one line end);
    lines are split as bytes and decoded whole as UTF-8, invalid bytes replaced
    by U+FFFD. A leading BOM is dropped, comments are skipped, one space after
    the colon is removed, ``data`` lines join with ``\\n``, and a block with no
    data is not dispatched (https://html.spec.whatwg.org/multipage/server-sent-events.html).
    A line or an event's data longer than ``max_line_size`` bytes raises
    :class:`SizeLimitError` rather than growing without bound.
    """

    def __init__(self, *, max_line_size: int = DEFAULT_MAX_LINE_SIZE) -> None:
        self.max_line_size = max_line_size
        self.last_event_id = ""
        self.retry: int | None = None  # the stream's reconnection time, once set
        self._tail = b""  # an unfinished line
        self._skip_lf = False  # the previous feed ended in CR: a leading LF belongs to it
        self._started = False  # past the place where a BOM may stand
        self._event = ""
        self._data: list[str] = []
        self._data_size = 0
        self._event_retry: int | None = None

    @property
    def pending(self) -> bool:
        """True while a partial line or an undispatched event is held."""
        return bool(self._tail or self._data or self._event)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Take the next bytes of the stream; return the events they complete."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        buf = self._tail + chunk if self._tail else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._tail = buf  # could still become a BOM
                return []
            self._started = True
            if buf[:3] == _BOM:
                buf = buf[3:]
        lines = buf.splitlines(True)  # bytes split only on CR, LF and CRLF
        if not lines:
            self._tail = b""
            return []
        if lines[-1][-1:] in (b"\n", b"\r"):
            self._tail = b""
            self._skip_lf = lines[-1][-1:] == b"\r"
        else:
            self._tail = lines.pop()
            if len(self._tail) > self.max_line_size:
                raise SizeLimitError(
                    "an event-stream line exceeds %d bytes (max_line_size)" % self.max_line_size
                )
        events = []
        for line in lines:
            event = self._line(line.rstrip(b"\r\n"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: bytes) -> ServerSentEvent | None:
        """Interpret one line; return an event when the line dispatches one."""
        if not line:
            return self._dispatch()
        if len(line) > self.max_line_size:
            raise SizeLimitError(
                "an event-stream line exceeds %d bytes (max_line_size)" % self.max_line_size
            )
        name, colon, value = line.partition(b":")
        if colon and not name:
            return None  # a comment
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data_size += len(value) + 1
            if self._data_size > self.max_line_size:
                raise SizeLimitError(
                    "an event's data exceeds %d bytes (max_line_size)" % self.max_line_size
                )
            self._data.append(value.decode("utf-8", "replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value.isdigit():  # ASCII digits only, as the spec asks
                self.retry = self._event_retry = int(value)
        return None  # other field names are ignored, as the spec asks

    def _dispatch(self) -> ServerSentEvent | None:
        """End the current block: the event it built, or None when it had no data."""
        event = None
        if self._data:
            event = ServerSentEvent(
                "\n".join(self._data),
                event=self._event or "message",
                id=self.last_event_id,
                retry=self._event_retry,
            )
        self._event = ""
        self._data = []
        self._data_size = 0
        self._event_retry = None
        return event


def iter_sse(
    fp: BinaryIO, *, max_line_size: int = DEFAULT_MAX_LINE_SIZE, chunk_size: int = _READ_SIZE
) -> Iterator[ServerSentEvent]:
    """Yield the server-sent events read from a binary file-like object.

    Each event is yielded as soon as the blank line that ends it arrives:
    the reader uses ``read1`` (at most one system call, whatever is available)
    where the file has it, so it never waits for a full buffer. An unfinished
    event at end of file is discarded, as the WHATWG rules ask.
    """
    decoder = SSEDecoder(max_line_size=max_line_size)
    read = getattr(fp, "read1", None) or fp.read
    while True:
        chunk = read(chunk_size)
        if not chunk:
            return
        yield from decoder.feed(chunk)


# ---------------------------------------------------------------------------
# Transport
# ---------------------------------------------------------------------------


class Timeout:
    """Time limits in seconds; ``None`` is no limit.

    - ``connect``: to open a connection (TCP, a proxy tunnel, the TLS handshake).
    - ``read``: for the next bytes of a reply to arrive.
    - ``idle``: between two events of a stream (``None``: the ``read`` limit).
    - ``total``: the whole call, retries and the last event of a stream included.

    A number ``t`` given as a client's or a call's ``timeout`` stands for
    ``Timeout(connect=min(t, 5.0), read=t)``; ``None`` for no limits at all.
    """

    __slots__ = ("connect", "read", "idle", "total")

    def __init__(
        self,
        *,
        connect: float | None = 5.0,
        read: float | None = 600.0,
        idle: float | None = None,
        total: float | None = None,
    ) -> None:
        for name, value in (("connect", connect), ("read", read), ("idle", idle), ("total", total)):
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
            ):
                raise ValueError("Timeout.%s must be a number of seconds > 0 or None, got %r" % (name, value))
        self.connect = connect
        self.read = read
        self.idle = idle
        self.total = total

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timeout):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __repr__(self) -> str:
        return "Timeout(%s)" % ", ".join("%s=%r" % (n, getattr(self, n)) for n in self.__slots__)


def _as_timeout(value: Any) -> Timeout:
    """A Timeout from what a caller passed as ``timeout``."""
    if isinstance(value, Timeout):
        return value
    if value is None:
        return Timeout(connect=None, read=None)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return Timeout(connect=min(float(value), 5.0), read=float(value))
    raise ValueError(
        "timeout must be a number of seconds > 0, None or a tokenhub.Timeout, got %r" % (value,)
    )


class _Budget:
    """One call's clock: its limits, and the moment its total runs out."""

    __slots__ = ("timeout", "end")

    def __init__(self, timeout: Timeout) -> None:
        self.timeout = timeout
        self.end = None if timeout.total is None else time.monotonic() + timeout.total

    def cap(self, seconds: float | None) -> float | None:
        """``seconds``, cut to what is left of the total; raises once the total is spent."""
        if self.end is None:
            return seconds
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left if seconds is None else min(seconds, left)

    def spent(self) -> bool:
        return self.end is not None and time.monotonic() >= self.end

    def expired(self) -> APITimeoutError:
        return APITimeoutError(
            "the call's total deadline of %gs passed (Timeout.total)" % self.timeout.total
        )


class _Origin:
    """Where requests go: scheme, host, port and the root path in front of ``/v1``."""

    __slots__ = ("scheme", "host", "port", "root_path", "url")

    def __init__(self, base_url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                "base_url must be an http:// or https:// URL with a host, got %r" % base_url
            )
        if parts.query or parts.fragment:
            raise ValueError("base_url must not carry a query or fragment, got %r" % base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.root_path = _root_path(parts.path)
        netloc = "[%s]" % self.host if ":" in self.host else self.host
        if parts.port:
            netloc += ":%d" % parts.port
        self.url = "%s://%s%s" % (self.scheme, netloc, self.root_path)

    def is_loopback(self) -> bool:
        import ipaddress

        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def _root_path(path: str) -> str:
    """The path in front of ``/v1``, from a root, a ``.../v1`` or an endpoint URL."""
    path = path.rstrip("/")
    for suffix in ("/chat/completions", "/messages", "/models"):
        if path.endswith(suffix):
            path = path[: -len(suffix)]
            break
    if path.endswith("/v1"):
        path = path[:-3]
    return path


class _Proxy:
    """An HTTP proxy named by the environment, and the headers it wants."""

    __slots__ = ("host", "port", "headers")

    def __init__(self, url: str) -> None:
        from urllib.parse import unquote, urlsplit

        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                "only http:// proxies are supported (HTTPS_PROXY / HTTP_PROXY), got scheme %r"
                % parts.scheme
            )
        self.host = parts.hostname
        self.port = parts.port or 80
        self.headers: dict[str, str] = {}
        if parts.username is not None:
            import base64

            pair = "%s:%s" % (unquote(parts.username), unquote(parts.password or ""))
            self.headers["Proxy-Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()


def _proxy_for(origin: _Origin) -> _Proxy | None:
    """The proxy that HTTPS_PROXY / HTTP_PROXY name for an origin, unless NO_PROXY exempts it."""
    from urllib.request import getproxies_environment, proxy_bypass_environment

    proxies = getproxies_environment()  # lower- and upper-case names, as curl reads them
    url = proxies.get(origin.scheme) or proxies.get("all")
    if not url or proxy_bypass_environment("%s:%d" % (origin.host, origin.port), proxies):
        return None
    return _Proxy(url)


_UNRESOLVED = object()


class _Pool:
    """Idle keep-alive connections to one origin, shared by one client's threads."""

    def __init__(self, origin: _Origin, tls: _TLS, *, max_idle: int = 8) -> None:
        import threading

        self.origin = origin
        self._tls = tls
        self._max_idle = max_idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._proxy: Any = _UNRESOLVED

    @property
    def proxy(self) -> _Proxy | None:
        """The proxy in use, read from the environment at the first request."""
        if self._proxy is _UNRESOLVED:
            self._proxy = _proxy_for(self.origin)
        return self._proxy

    def target(self, path: str) -> str:
        """The request target: absolute through a plain-http proxy, else the path."""
        if self.proxy is not None and self.origin.scheme == "http":
            return "http://%s:%d%s" % (self.origin.host, self.origin.port, path)
        return path

    def acquire(self, *, fresh: bool) -> http.client.HTTPConnection:
        """An idle connection (unless ``fresh``), else a new unopened one."""
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop()
        return self._new()

    def release(self, conn: http.client.HTTPConnection) -> None:
        """Keep a connection whose last response was read to the end."""
        with self._lock:
            if len(self._idle) < self._max_idle:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def __del__(self) -> None:
        # A client dropped without close() must not leave its sockets to the collector.
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn down what close() uses
            pass

    def _new(self) -> http.client.HTTPConnection:
        import http.client

        origin, proxy = self.origin, self.proxy
        host, port = (proxy.host, proxy.port) if proxy else (origin.host, origin.port)
        if origin.scheme == "http":
            return http.client.HTTPConnection(host, port, blocksize=_READ_SIZE)
        conn = http.client.HTTPSConnection(host, port, context=self._tls.context(), blocksize=_READ_SIZE)
        if proxy is not None:  # CONNECT tunnel; TLS and its SNI are for the origin
            conn.set_tunnel(origin.host, origin.port, headers=proxy.headers)
        return conn


class _TLS:
    """A client's one TLS context: built at once when configured, else at first use."""

    __slots__ = ("_context",)

    def __init__(self, ca_file: str | None, client_cert: Any, context: ssl.SSLContext | None) -> None:
        if context is None and (ca_file or client_cert):
            import ssl

            context = ssl.create_default_context(cafile=ca_file)  # verification stays on
            if client_cert:
                certfile, keyfile = (client_cert, None) if isinstance(client_cert, str) else client_cert
                context.load_cert_chain(certfile, keyfile)
        self._context = context

    def context(self) -> ssl.SSLContext:
        if self._context is None:
            import ssl

            self._context = ssl.create_default_context()
        return self._context


def _io_error(exc: BaseException, what: str, budget: _Budget, limit: str) -> APIConnectionError:
    """Map a socket or http.client failure to the matching tokenhub error."""
    import socket

    if isinstance(exc, socket.timeout):
        if budget.spent():
            return budget.expired()
        seconds = getattr(budget.timeout, limit)
        if limit == "idle":
            return APITimeoutError("no stream event for %gs (Timeout.idle)" % seconds)
        return APITimeoutError("%s timed out after %gs (Timeout.%s)" % (what, seconds, limit))
    return APIConnectionError("%s failed: %s: %s" % (what, type(exc).__name__, exc))


def _is_stale(exc: BaseException) -> bool:
    """True when a reused keep-alive connection had been closed by the server."""
    import http.client

    return isinstance(
        exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
    )


def _http_exception() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def _retry_delay(headers: Mapping[str, str], attempt: int) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): the server's word, else backoff."""
    import random

    value = headers.get("retry-after-ms")
    if value is not None:
        try:
            return max(0.0, float(value) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is not None:
        try:
            return max(0.0, float(value))
        except ValueError:
            from email.utils import parsedate_to_datetime

            try:
                return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
            except (TypeError, ValueError, IndexError):
                pass
    backoff = min(_BACKOFF_START * 2.0 ** attempt, _BACKOFF_MAX)
    return backoff * (1.0 - 0.25 * random.random())  # jitter spreads a crowd of retries


def _should_retry(status: int, headers: Mapping[str, str]) -> bool:
    """The retry decision for an error status; ``x-should-retry`` overrides it."""
    verdict = headers.get("x-should-retry")
    if verdict == "true":
        return True
    if verdict == "false":
        return False
    return status in _RETRY_STATUSES or status >= 500


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


class _Reply:
    """A response being read: its connection, its socket and its call's clock."""

    __slots__ = ("pool", "conn", "sock", "response", "budget", "headers", "_applied")

    def __init__(
        self,
        pool: _Pool,
        conn: http.client.HTTPConnection,
        sock: Any,
        response: http.client.HTTPResponse,
        budget: _Budget,
    ) -> None:
        self.pool = pool
        self.conn = conn
        self.sock = sock  # kept apart: http.client drops conn.sock when the reply closes it
        self.response = response
        self.budget = budget
        self.headers = {k.lower(): v for k, v in response.getheaders()}
        self._applied: Any = _UNRESOLVED

    def read1(self, seconds: float | None, limit: str) -> bytes:
        """The next bytes (b"" at the end), waiting at most ``seconds`` (``Timeout.<limit>``)."""
        if self.response.isclosed():  # its body is complete (and its socket may be gone)
            return b""
        wait = self.budget.cap(seconds)
        try:
            if wait != self._applied:  # a syscall saved on the common, unchanging limit
                self.sock.settimeout(wait)
                self._applied = wait
            data = self.response.read1(_READ_SIZE)
            if not data and self.response.length:
                import http.client  # loaded already; http.client's read1 does not hold the server to its Content-Length

                raise http.client.IncompleteRead(b"", self.response.length)
            return data
        except (OSError, _http_exception()) as exc:
            raise _io_error(exc, "reading the reply", self.budget, limit) from exc

    def read_all(self, limit: int) -> bytes | None:
        """The whole body, or None past ``limit`` bytes; frees or closes the connection."""
        parts, size = [], 0
        try:
            while size <= limit:
                chunk = self.read1(self.budget.timeout.read, "read")
                if not chunk:
                    self.finish(self.drained())
                    return b"".join(parts)
                parts.append(chunk)
                size += len(chunk)
        except BaseException:
            self.finish(False)
            raise
        self.finish(False)
        return None

    def drained(self) -> bool:
        """After the last byte: mark the exchange done; True if the connection may be reused."""
        self.response.close()
        return not self.response.will_close

    def drain(self) -> bool:
        """After a stream's terminator, read the reply's last framing bytes so the
        connection can be reused. Never raises and never waits long: the items are
        all delivered, so a server slow to finish only costs its connection."""
        if self.response.will_close:
            return False  # ends when the server closes: nothing to reuse
        try:
            self.sock.settimeout(_DRAIN_WAIT)
            left = _MAX_DRAIN
            while left > 0:
                chunk = self.response.read1(left)
                if not chunk:
                    return self.drained()
                left -= len(chunk)
        except (OSError, _http_exception()):
            pass
        return False

    def finish(self, reusable: bool) -> None:
        """Give the connection back to the pool, or close it (and the reply holding its socket)."""
        if reusable:
            self.pool.release(self.conn)
        else:
            self.response.close()
            self.conn.close()


class Stream:
    """The items of one streamed response, as they arrive.

    Iterate it for chunk objects (OpenAI protocol) or event objects (Anthropic
    protocol). It ends cleanly at the protocol's terminator and raises
    :class:`IncompleteStreamError` when the connection ends before it, or
    :class:`APITimeoutError` when the ``read``, ``idle`` or ``total`` limit of
    its :class:`Timeout` passes. Close it (or use it as a context manager) to
    stop early; the connection goes back to the pool only after a clean end.
    """

    def __init__(self, reply: _Reply, step: _Step, *, max_line_size: int = DEFAULT_MAX_LINE_SIZE) -> None:
        self.response = reply.response
        self.headers = reply.headers
        self.request_id = _request_id(self.headers)
        self.received = 0  # items yielded so far
        self._reply = reply
        self._step = step
        self._max_line_size = max_line_size
        self._items = self._iterate()

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Any:
        return next(self._items)

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading; the connection is closed unless the stream had ended."""
        self._items.close()

    def _iterate(self) -> Iterator[Any]:
        reply = self._reply
        timeout = reply.budget.timeout
        decoder = SSEDecoder(max_line_size=self._max_line_size)
        reusable = False
        try:
            waiting_since = time.monotonic()
            while True:
                chunk = reply.read1(*self._wait(timeout, waiting_since))
                if not chunk:
                    break
                events = decoder.feed(chunk)
                for sse in events:
                    item, done = self._step(sse)
                    if item is not None:
                        self.received += 1
                        yield item
                    if done:
                        reusable = reply.drain()
                        return
                if events:
                    waiting_since = time.monotonic()
            raise IncompleteStreamError(
                "the stream ended after %d item(s) without its terminator "
                "(the connection closed early)" % self.received,
                received=self.received,
            )
        finally:
            reply.finish(reusable)

    def _wait(self, timeout: Timeout, waiting_since: float) -> tuple[float | None, str]:
        """How long the next read may wait, and which limit that is."""
        if timeout.idle is None:
            return timeout.read, "read"
        left = timeout.idle - (time.monotonic() - waiting_since)
        if left <= 0:
            raise APITimeoutError(
                "no stream event for %gs (Timeout.idle)" % timeout.idle
            )
        if timeout.read is not None and timeout.read < left:
            return timeout.read, "read"
        return left, "idle"


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------


def _env(names: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The first set, non-empty environment variable of ``names``: (value, name)."""
    for name in names:
        value = os.environ.get(name)
        if value:
            return value, name
    return None, None


def _excerpt(text: str | bytes, limit: int = 300) -> str:
    """One line of at most ``limit`` characters, for messages."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


_OPTIONS = ("timeout", "max_retries", "default_headers")


class TokenHub:
    """A TokenHub client for both protocols.

    ``TokenHub(api_key=None, *, base_url=None, region=None, timeout=600.0,
    max_retries=2, default_headers=None, ...)``

    - ``api_key`` falls back to ``TOKENHUB_API_KEY``. A missing key is an error at
      the first request, naming the variable to set. ``auth_token`` is sent as
      ``Authorization: Bearer`` on both protocols (``x-api-key`` carries
      ``api_key`` on the Anthropic one).
    - ``base_url`` (falls back to ``TOKENHUB_BASE_URL``) may be the host root,
      the OpenAI-style ``.../v1`` or tokenhub.store's ``.../api/v1``; the client
      finds ``/v1/chat/completions`` and ``/v1/messages`` from any of them.
    - ``region`` (falls back to ``TOKENHUB_REGION``): ``singapore`` (default),
      ``guangzhou`` or ``store``; give either it or ``base_url``. After a
      connection failure on a region's primary host the next attempt goes to its
      backup host (``failover=False`` turns that off); a ``base_url`` never fails over.
    - ``timeout``: seconds, ``None``, or a :class:`Timeout` (connect 5 s and read
      600 s by default; idle and total limits for streams). ``max_retries`` for
      connection errors, 408, 409, 429 and 5xx. ``default_headers`` go on every
      request. Each ``create`` call may override ``timeout`` and ``max_retries``;
      ``with_options(...)`` returns a copy with other defaults.
    - TLS is verified with the system's CAs; ``ca_file`` adds a CA bundle,
      ``client_cert`` (a PEM path, or a ``(cert, key)`` pair) presents a client
      certificate, ``ssl_context`` replaces the context entirely.
      ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` are honoured (a CONNECT
      tunnel for https).
    - ``max_line_size`` bounds one line and one event of a stream (16 MiB).

    ``client.chat.completions.create(...)`` speaks OpenAI Chat Completions,
    ``client.messages.create(...)`` Anthropic Messages. Close the client (or use
    it as a context manager) to close its kept-alive connections.
    """

    # The SDK-shaped subclasses read their SDK's variables first; the TOKENHUB_*
    # ones are every class's fallback.
    _KEY_ENV: tuple[str, ...] = ()
    _TOKEN_ENV: tuple[str, ...] = ()
    _URL_ENV: tuple[str, ...] = ()

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        region: str | None = None,
        timeout: float | Timeout | None = 600.0,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        auth_token: str | None = None,
        failover: bool = True,
        ca_file: str | None = None,
        client_cert: str | tuple[str, str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
    ) -> None:
        api_key = api_key or _env(self._KEY_ENV)[0]
        auth_token = auth_token or _env(self._TOKEN_ENV)[0]
        if not (api_key or auth_token):
            api_key = _env(("TOKENHUB_API_KEY",))[0]
        self._api_key = api_key
        self._auth_token = auth_token
        urls = _choose_base_urls(base_url, region, self._URL_ENV + ("TOKENHUB_BASE_URL",))
        tls = _TLS(ca_file, client_cert, ssl_context)
        self._pools = [_Pool(_Origin(url), tls) for url in (urls if failover else urls[:1])]
        self._preferred = 0  # the pool that last answered; failover moves it
        origin = self._pools[0].origin
        self.base_url = origin.url
        if origin.scheme == "http" and not origin.is_loopback():
            import warnings

            warnings.warn(
                "tokenhub: %s is plain http: the API key would cross the network unencrypted"
                % origin.url, RuntimeWarning, stacklevel=2,
            )
        self.max_line_size = max_line_size
        self.timeout = _as_timeout(timeout)
        self.max_retries = _check_retries(max_retries)
        self.default_headers = dict(default_headers or {})

    # Made on access rather than stored: a stored resource pointing back at its client
    # would make a cycle, and a dropped client would keep its sockets until a GC pass.
    @property
    def chat(self) -> _Chat:
        """The OpenAI protocol: ``client.chat.completions.create(...)``."""
        return _Chat(self)

    @property
    def messages(self) -> _Messages:
        """The Anthropic protocol: ``client.messages.create(...)``."""
        return _Messages(self)

    def __repr__(self) -> str:
        key = "set" if (self._api_key or self._auth_token) else "missing"
        return "%s(base_url=%r, api_key=<%s>)" % (type(self).__name__, self.base_url, key)

    def __enter__(self) -> TokenHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept-alive connections (the client stays usable)."""
        for pool in self._pools:
            pool.close()

    def with_options(self, **options: Any) -> TokenHub:
        """A copy with other ``timeout``, ``max_retries`` or ``default_headers``
        (merged into the current ones); it shares this client's connections."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(
                "with_options() takes %s, got %s" % (", ".join(_OPTIONS), ", ".join(sorted(unknown)))
            )
        import copy

        clone = copy.copy(self)
        if "timeout" in options:
            clone.timeout = _as_timeout(options["timeout"])
        if "max_retries" in options:
            clone.max_retries = _check_retries(options["max_retries"])
        clone.default_headers = dict(self.default_headers, **(options.get("default_headers") or {}))
        return clone

    # -- request plumbing ---------------------------------------------------

    def _auth_headers(self, protocol: str) -> dict[str, str]:
        """The auth header(s) for a protocol; raises when no key is configured."""
        if not (self._api_key or self._auth_token):
            names = self._KEY_ENV + self._TOKEN_ENV + ("TOKENHUB_API_KEY",)
            raise APIError(
                "no API key: pass api_key=... or set the %s environment variable"
                % " or ".join(names)
            )
        if protocol == "openai":
            return {"Authorization": "Bearer %s" % (self._api_key or self._auth_token)}
        headers = {"anthropic-version": _ANTHROPIC_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        if self._auth_token:
            headers["Authorization"] = "Bearer %s" % self._auth_token
        return headers

    def _headers(
        self, protocol: str, stream: bool, extra: Mapping[str, str | None] | None
    ) -> dict[str, str]:
        """Every header of a request; later sources win, a ``None`` value removes one."""
        merged: dict[str, tuple[str, str | None]] = {}
        for source in (
            {
                "User-Agent": _USER_AGENT,
                "Content-Type": "application/json",
                "Accept": "text/event-stream" if stream else "application/json",
            },
            self._auth_headers(protocol),
            self.default_headers,
            extra or {},
        ):
            for name, value in source.items():
                merged[name.lower()] = (name, value)
        return {name: value for name, value in merged.values() if value is not None}

    def _post(
        self, protocol: str, path: str, body: dict[str, Any], params: dict[str, Any], step: _Step
    ) -> Any:
        """Send one JSON request; return the parsed reply, or a Stream when streaming.

        ``params`` are the caller's keyword arguments: the request options
        (``extra_*``, ``timeout``, ``max_retries``) are taken out, the rest is body.
        """
        extra_headers = params.pop("extra_headers", None)
        extra_query = params.pop("extra_query", None)
        extra_body = params.pop("extra_body", None)
        budget = _Budget(_as_timeout(params.pop("timeout", self.timeout)))
        max_retries = _check_retries(params.pop("max_retries", self.max_retries))
        body.update(params)
        if extra_body:
            body.update(extra_body)
        stream = body.get("stream") is True
        try:
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError: a lone surrogate
            raise TypeError("the request body is not JSON-serializable: %s" % exc) from None
        if extra_query:
            from urllib.parse import urlencode

            path += "?" + urlencode(extra_query, doseq=True)
        headers = self._headers(protocol, stream, extra_headers)
        reply = self._send(path, payload, headers, budget, max_retries)
        if stream:
            return self._open_stream(reply, step)
        body = reply.read_all(DEFAULT_MAX_BODY_SIZE)
        if body is None:
            raise SizeLimitError(
                "the response body exceeds %d bytes (DEFAULT_MAX_BODY_SIZE)" % DEFAULT_MAX_BODY_SIZE
            )
        try:
            return _loads(body)
        except ValueError as exc:
            raise ProtocolError(
                "expected a JSON body, got %d bytes of %s that do not parse (%s): %s"
                % (len(body), reply.headers.get("content-type", "no content type"), exc, _excerpt(body))
            ) from None

    def _send(
        self, path: str, payload: bytes, headers: dict[str, str], budget: _Budget, max_retries: int
    ) -> _Reply:
        """POST with retries (and failover); return a 2xx reply."""
        attempt = 0
        failed_over = False
        while True:
            pool = self._pools[self._preferred]
            try:
                reply = self._exchange(pool, path, payload, headers, budget)
            except APIConnectionError as error:
                if len(self._pools) > 1:
                    self._preferred = (self._pools.index(pool) + 1) % len(self._pools)
                    if not failed_over:  # the backup host is a fresh chance, taken at once
                        failed_over = True
                        continue
                if attempt >= max_retries or budget.spent():
                    raise
                delay, last = _retry_delay({}, attempt), error
            else:
                if 200 <= reply.response.status < 300:
                    return reply
                last = self._read_error(reply)
                if attempt >= max_retries or not _should_retry(last.status_code, last.headers):
                    raise last
                delay = _retry_delay(last.headers, attempt)
                if delay > _MAX_SERVER_DELAY:
                    last.retry_after = delay
                    raise last
            if budget.end is not None and time.monotonic() + delay >= budget.end:
                raise last  # the wait would outlast the call's total deadline
            time.sleep(delay)
            attempt += 1

    def _exchange(
        self, pool: _Pool, path: str, payload: bytes, headers: dict[str, str], budget: _Budget
    ) -> _Reply:
        """One request and its response head; a stale kept-alive connection is replaced once."""
        origin = pool.origin
        where = "%s://%s:%d" % (origin.scheme, origin.host, origin.port)
        target = pool.target(origin.root_path + path)
        if pool.proxy is not None and origin.scheme == "http":
            headers = dict(headers, **pool.proxy.headers)
        timeout = budget.timeout
        fresh = False
        while True:
            conn = pool.acquire(fresh=fresh)
            reused = conn.sock is not None
            what, limit = "connecting to %s" % where, "connect"
            try:
                if conn.sock is None:
                    conn.timeout = budget.cap(timeout.connect)
                    conn.connect()
                sock = conn.sock
                what, limit = "POST %s%s%s" % (where, origin.root_path, path), "read"
                sock.settimeout(budget.cap(timeout.read))
                conn.request("POST", target, body=payload, headers=headers)
                return _Reply(pool, conn, sock, conn.getresponse(), budget)
            except (OSError, _http_exception()) as exc:
                conn.close()
                if reused and _is_stale(exc):
                    fresh = True  # the server closed it while idle: not a real failure
                    continue
                raise _io_error(exc, what, budget, limit) from exc
            except BaseException:  # the total deadline, an interrupt: never leak the socket
                conn.close()
                raise

    def _read_error(self, reply: _Reply) -> APIStatusError:
        """The status error for a non-2xx reply (its body read, bounded)."""
        raw = reply.read_all(_MAX_ERROR_BODY)
        body: Any
        if raw is None:
            body = "(error body over %d bytes, not read)" % _MAX_ERROR_BODY
        else:
            try:
                body = _loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        status = reply.response.status
        if 300 <= status < 400:  # never followed: the key must not leave the configured host
            body = body or "redirect to %s not followed" % reply.headers.get("location", "?")
        return _status_error(status, body, reply.headers)

    def _open_stream(self, reply: _Reply, step: _Step) -> Stream:
        """Wrap a 2xx reply to a streamed request; a reply that is not SSE is an error."""
        kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "text/event-stream":
            return Stream(reply, step, max_line_size=self.max_line_size)
        raw = reply.read_all(_MAX_ERROR_BODY) or b""
        try:
            body = _loads(raw)
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("error"):
            raise _stream_error(body, reply.headers)
        raise StreamError(
            "expected a text/event-stream reply to stream=True, got %s: %s"
            % (kind or "no content type", _excerpt(raw))
        )


def _check_retries(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("max_retries must be a whole number >= 0, got %r" % (value,))
    return value


def _choose_base_urls(
    base_url: str | None, region: str | None, url_env: tuple[str, ...]
) -> tuple[str, ...]:
    """The root URL(s) to use: a base URL alone, or a region's primary and backup."""
    if base_url and region:
        raise ValueError("pass base_url or region, not both")
    if base_url:
        return (base_url,)
    if not region:
        env_url = _env(url_env)[0]
        if env_url:
            return (env_url,)
        region = os.environ.get("TOKENHUB_REGION") or _DEFAULT_REGION
    urls = _REGIONS.get(region.strip().lower())
    if urls is None:
        raise ValueError(
            "unknown region %r: expected one of %s" % (region, ", ".join(sorted(_REGIONS)))
        )
    return urls


class OpenAI(TokenHub):
    """The TokenHub client, constructed like ``openai.OpenAI`` (same arguments).

    Reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (then ``TOKENHUB_API_KEY``
    and ``TOKENHUB_BASE_URL``), so a script written for the OpenAI SDK runs
    after changing ``from openai import OpenAI`` to ``from tokenhub import OpenAI``.
    """

    _KEY_ENV = ("OPENAI_API_KEY",)
    _URL_ENV = ("OPENAI_BASE_URL",)


class Anthropic(TokenHub):
    """The TokenHub client, constructed like ``anthropic.Anthropic`` (same arguments).

    ``api_key`` (``ANTHROPIC_API_KEY``) is sent as ``x-api-key``, ``auth_token``
    (``ANTHROPIC_AUTH_TOKEN``, as Claude Code uses it) as ``Authorization: Bearer``;
    with neither, ``TOKENHUB_API_KEY``. The base URL comes from ``ANTHROPIC_BASE_URL``
    (then ``TOKENHUB_BASE_URL``).
    """

    _KEY_ENV = ("ANTHROPIC_API_KEY",)
    _TOKEN_ENV = ("ANTHROPIC_AUTH_TOKEN",)
    _URL_ENV = ("ANTHROPIC_BASE_URL",)


# ---------------------------------------------------------------------------
# OpenAI protocol: POST {root}/v1/chat/completions
# ---------------------------------------------------------------------------


def _event_json(sse: ServerSentEvent, protocol: str) -> APIObject:
    """An event's data as a JSON object, or a StreamError quoting it."""
    try:
        obj = _loads(sse.data)
    except ValueError:
        raise StreamError(
            "invalid JSON in %s stream event %r: %s" % (protocol, sse.event, _excerpt(sse.data, 200))
        ) from None
    if not isinstance(obj, dict):
        raise StreamError(
            "expected a JSON object in %s stream event %r, got: %s"
            % (protocol, sse.event, _excerpt(sse.data, 200))
        )
    return obj


def _openai_step(sse: ServerSentEvent) -> tuple[APIObject | None, bool]:
    """One SSE event of a chat completion stream -> (chunk or None, finished)."""
    data = sse.data
    if data[:6] == "[DONE]":
        return None, True
    if not data or data.isspace():  # an empty keep-alive event carries nothing (no copy made)
        return None, False
    chunk = _event_json(sse, "OpenAI")
    if chunk.get("error") is not None or sse.event == "error":
        raise _stream_error(chunk, {})
    return chunk, False


class _Completions:
    """``client.chat.completions``."""

    __slots__ = ("_client",)

    def __init__(self, client: TokenHub) -> None:
        self._client = client

    def create(self, *, model: str, messages: list[Any], **params: Any) -> Any:
        """Create a chat completion (OpenAI protocol).

        Every request parameter (``temperature``, ``tools``, ``stream_options``,
        ``thinking``, ``reasoning_effort``, ...) is sent as given. ``extra_body``
        is merged into the JSON body, ``extra_headers`` into the headers (a
        ``None`` value removes one), ``extra_query`` into the URL; ``timeout``
        and ``max_retries`` override the client's for this call. Returns an
        :class:`APIObject` (``object: "chat.completion"``), or with
        ``stream=True`` a :class:`Stream` of ``chat.completion.chunk`` objects
        that ends at ``data: [DONE]``.
        """
        body = {"model": model, "messages": messages}
        return self._client._post("openai", "/v1/chat/completions", body, params, _openai_step)


class _Chat:
    """``client.chat``."""

    __slots__ = ("completions",)

    def __init__(self, client: TokenHub) -> None:
        self.completions = _Completions(client)


# ---------------------------------------------------------------------------
# Anthropic protocol: POST {root}/v1/messages
# ---------------------------------------------------------------------------


def _anthropic_step(sse: ServerSentEvent) -> tuple[APIObject | None, bool]:
    """One SSE event of a message stream -> (event object, finished at message_stop)."""
    if not sse.data or sse.data.isspace():
        return None, False
    event = _event_json(sse, "Anthropic")
    if "type" not in event:  # name it by its SSE event type, so nothing arrives untyped
        event["type"] = sse.event
    kind = event["type"]
    if kind == "error" or sse.event == "error":
        raise _stream_error(event, {})
    return event, kind == "message_stop"


class _Messages:
    """``client.messages``."""

    __slots__ = ("_client",)

    def __init__(self, client: TokenHub) -> None:
        self._client = client

    def create(self, *, model: str, max_tokens: int, messages: list[Any], **params: Any) -> Any:
        """Create a message (Anthropic protocol, ``x-api-key`` auth).

        Every request parameter (``system``, ``tools``, ``tool_choice``,
        ``stop_sequences``, ``thinking``, ...) is sent as given; ``extra_*`` and
        ``timeout`` as in ``chat.completions.create``. Returns an
        :class:`APIObject` (``type: "message"``), or with ``stream=True`` a
        :class:`Stream` of event objects, ``message_start`` to ``message_stop``;
        ``ping`` and event types this module does not know are passed through.
        """
        body = {"model": model, "max_tokens": max_tokens, "messages": messages}
        return self._client._post("anthropic", "/v1/messages", body, params, _anthropic_step)
