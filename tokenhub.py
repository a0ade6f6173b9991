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
import time

TYPE_CHECKING = False
if TYPE_CHECKING:  # names for annotations only; keeps `typing` off the import path
    import http.client
    import ssl
    from collections.abc import Callable, Iterator, Mapping
    from typing import Any, BinaryIO, Tuple

    _Step = Callable[["ServerSentEvent"], Tuple[Any, bool]]

#: Region name -> root URL. The OpenAI protocol lives at {root}/v1/chat/completions,
#: the Anthropic one at {root}/v1/messages (PROTOCOL.md, "Hosts and auth").
_REGIONS = {
    "singapore": "https://tokenhub-intl.tencentcloudmaas.com",
    "guangzhou": "https://tokenhub.tencentcloudmaas.com",
    "store": "https://tokenhub.store/api",
}
_DEFAULT_REGION = "singapore"
_ANTHROPIC_VERSION = "2023-06-01"
_USER_AGENT = "tokenhub-python/" + __version__

DEFAULT_MAX_LINE_SIZE = 16 * 1024 * 1024  # one SSE line, and one event's data
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024  # one non-streamed response body
_MAX_ERROR_BODY = 1024 * 1024  # what an error response may contribute to the error
_MAX_DRAIN = 64 * 1024  # bytes read after a stream's terminator to free the connection
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
        return _excerpt(body)
    return "(empty body)"


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
    """Parse JSON into APIObjects."""
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


class _Pool:
    """Idle keep-alive connections to one origin, shared by one client's threads."""

    def __init__(self, origin: _Origin, *, max_idle: int = 8) -> None:
        import threading

        self._origin = origin
        self._max_idle = max_idle
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._ssl_context: ssl.SSLContext | None = None

    def acquire(self, timeout: float | None, *, fresh: bool) -> http.client.HTTPConnection:
        """An idle connection (unless ``fresh``), else a new one; its timeout set."""
        conn = None
        if not fresh:
            with self._lock:
                if self._idle:
                    conn = self._idle.pop()
        if conn is None:
            conn = self._connect(timeout)
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        return conn

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

    def _connect(self, timeout: float | None) -> http.client.HTTPConnection:
        import http.client

        origin = self._origin
        if origin.scheme == "http":
            return http.client.HTTPConnection(
                origin.host, origin.port, timeout=timeout, blocksize=_READ_SIZE
            )
        if self._ssl_context is None:
            import ssl

            self._ssl_context = ssl.create_default_context()  # verification always on
        return http.client.HTTPSConnection(
            origin.host, origin.port, timeout=timeout, context=self._ssl_context,
            blocksize=_READ_SIZE,
        )


def _io_error(exc: BaseException, what: str) -> APIConnectionError:
    """Map a socket or http.client failure to the matching tokenhub error."""
    import socket

    if isinstance(exc, socket.timeout):
        return APITimeoutError("%s timed out" % what)
    return APIConnectionError("%s failed: %s: %s" % (what, type(exc).__name__, exc))


def _is_stale(exc: BaseException) -> bool:
    """True when a reused keep-alive connection had been closed by the server."""
    import http.client

    return isinstance(
        exc, (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
    )


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


def _lower_headers(response: http.client.HTTPResponse) -> dict[str, str]:
    """The response headers with lower-case names (a repeated name keeps its last value)."""
    return {k.lower(): v for k, v in response.getheaders()}


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


class Stream:
    """The items of one streamed response, as they arrive.

    Iterate it for chunk objects (OpenAI protocol) or event objects (Anthropic
    protocol). It ends cleanly at the protocol's terminator and raises
    :class:`IncompleteStreamError` when the connection ends before it. Close it
    (or use it as a context manager) to stop early and free the connection.
    """

    def __init__(
        self,
        response: http.client.HTTPResponse,
        step: _Step,
        finish: Callable[[bool], None],
        *,
        max_line_size: int = DEFAULT_MAX_LINE_SIZE,
    ) -> None:
        self.response = response
        self.headers = _lower_headers(response)
        self.request_id = _request_id(self.headers)
        self.received = 0  # items yielded so far
        self._step = step
        self._finish = finish
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
        reusable = False
        try:
            try:
                for sse in iter_sse(self.response, max_line_size=self._max_line_size):
                    item, done = self._step(sse)
                    if item is not None:
                        self.received += 1
                        yield item
                    if done:
                        reusable = _drain(self.response)
                        return
            except (OSError, _http_exception()) as exc:
                raise _io_error(exc, "reading the stream") from exc
            raise IncompleteStreamError(
                "the stream ended after %d item(s) without its terminator "
                "(the connection closed early)" % self.received,
                received=self.received,
            )
        finally:
            self._finish(reusable)


def _http_exception() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def _drain(response: http.client.HTTPResponse) -> bool:
    """Read what follows a terminator so the connection can be reused; True if it can."""
    left = _MAX_DRAIN
    while left > 0:
        chunk = response.read1(left)
        if not chunk:
            response.close()  # marks the exchange finished, so the connection takes another
            return not response.will_close
        left -= len(chunk)
    return False


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


class TokenHub:
    """A TokenHub client for both protocols.

    ``TokenHub(api_key=None, *, base_url=None, region=None, timeout=600.0,
    max_retries=2, default_headers=None)``

    - ``api_key`` falls back to ``TOKENHUB_API_KEY``. A missing key is an error at
      the first request, naming the variable to set.
    - ``base_url`` (falls back to ``TOKENHUB_BASE_URL``) may be the host root,
      the OpenAI-style ``.../v1`` or tokenhub.store's ``.../api/v1``; the client
      finds ``/v1/chat/completions`` and ``/v1/messages`` from any of them.
    - ``region`` (falls back to ``TOKENHUB_REGION``): ``singapore`` (default),
      ``guangzhou`` or ``store``; give either it or ``base_url``.
    - ``timeout`` in seconds (``None`` waits forever), ``max_retries`` for
      connection errors, 408, 409, 429 and 5xx, ``default_headers`` sent on every
      request. Each ``create`` call may override ``timeout`` and ``max_retries``.
    - ``auth_token`` is sent as ``Authorization: Bearer`` on both protocols
      (``x-api-key`` carries ``api_key`` on the Anthropic one).

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
        timeout: float | None = 600.0,
        max_retries: int = 2,
        default_headers: Mapping[str, str] | None = None,
        auth_token: str | None = None,
    ) -> None:
        api_key = api_key or _env(self._KEY_ENV)[0]
        auth_token = auth_token or _env(self._TOKEN_ENV)[0]
        if not (api_key or auth_token):
            api_key = _env(("TOKENHUB_API_KEY",))[0]
        self._api_key = api_key
        self._auth_token = auth_token
        url_env = self._URL_ENV + ("TOKENHUB_BASE_URL",)
        self._origin = _Origin(_choose_base_url(base_url, region, url_env))
        self.base_url = self._origin.url
        self.timeout = timeout
        if not isinstance(max_retries, int) or max_retries < 0:
            raise ValueError("max_retries must be a whole number >= 0, got %r" % (max_retries,))
        self.max_retries = max_retries
        self.default_headers = dict(default_headers or {})
        self._pool = _Pool(self._origin)
        self.chat = _Chat(self)
        self.messages = _Messages(self)

    def __repr__(self) -> str:
        key = "set" if (self._api_key or self._auth_token) else "missing"
        return "%s(base_url=%r, api_key=<%s>)" % (type(self).__name__, self.base_url, key)

    def __enter__(self) -> TokenHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept-alive connections (the client stays usable)."""
        self._pool.close()

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
        timeout = params.pop("timeout", self.timeout)
        max_retries = params.pop("max_retries", self.max_retries)
        body.update(params)
        if extra_body:
            body.update(extra_body)
        stream = body.get("stream") is True
        try:
            payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        except (TypeError, ValueError) as exc:  # UnicodeEncodeError: a lone surrogate
            raise TypeError("the request body is not JSON-serializable: %s" % exc) from None
        target = self._origin.root_path + path
        if extra_query:
            from urllib.parse import urlencode

            target += "?" + urlencode(extra_query, doseq=True)
        headers = self._headers(protocol, stream, extra_headers)
        conn, response = self._send(target, payload, headers, timeout, max_retries)
        if stream:
            return self._open_stream(conn, response, step)
        return self._read_json(conn, response)

    def _send(
        self,
        target: str,
        payload: bytes,
        headers: dict[str, str],
        timeout: float | None,
        max_retries: int,
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """POST with retries; return the connection and a 2xx response."""
        attempt = 0
        while True:
            try:
                conn, response = self._exchange(target, payload, headers, timeout)
            except APIConnectionError:
                if attempt >= max_retries:
                    raise
                delay = _retry_delay({}, attempt)
            else:
                if 200 <= response.status < 300:
                    return conn, response
                error = self._read_error(conn, response)
                if attempt >= max_retries or not _should_retry(error.status_code, error.headers):
                    raise error
                delay = _retry_delay(error.headers, attempt)
                if delay > _MAX_SERVER_DELAY:
                    error.retry_after = delay
                    raise error
            time.sleep(delay)
            attempt += 1

    def _exchange(
        self, target: str, payload: bytes, headers: dict[str, str], timeout: float | None
    ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        """One request and its response head; a stale kept-alive connection is replaced once."""
        fresh = False
        while True:
            conn = self._pool.acquire(timeout, fresh=fresh)
            reused = conn.sock is not None
            try:
                conn.request("POST", target, body=payload, headers=headers)
                return conn, conn.getresponse()
            except (OSError, _http_exception()) as exc:
                conn.close()
                if reused and _is_stale(exc):
                    fresh = True  # the server closed it while idle: not a real failure
                    continue
                raise _io_error(exc, "POST %s://%s:%d%s" % (
                    self._origin.scheme, self._origin.host, self._origin.port, target
                )) from exc

    def _read_body(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, limit: int
    ) -> bytes | None:
        """The whole body, or None when it is longer than ``limit``; frees the connection."""
        try:
            body = response.read(limit + 1)
        except (OSError, _http_exception()) as exc:
            conn.close()
            raise _io_error(exc, "reading the response") from exc
        if len(body) > limit or not response.isclosed():
            conn.close()
            return None if len(body) > limit else body
        self._pool.release(conn)
        return body

    def _read_json(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> Any:
        """The parsed body of a 2xx non-streamed response."""
        body = self._read_body(conn, response, DEFAULT_MAX_BODY_SIZE)
        if body is None:
            raise SizeLimitError(
                "the response body exceeds %d bytes (DEFAULT_MAX_BODY_SIZE)" % DEFAULT_MAX_BODY_SIZE
            )
        try:
            return _loads(body)
        except ValueError:
            raise ProtocolError(
                "expected a JSON body, got %s: %s"
                % (response.getheader("content-type") or "no content type", _excerpt(body))
            ) from None

    def _read_error(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse
    ) -> APIStatusError:
        """The status error for a non-2xx response (its body read, bounded)."""
        headers = _lower_headers(response)
        raw = self._read_body(conn, response, _MAX_ERROR_BODY)
        if raw is None:
            body: Any = "(error body over %d bytes, not read)" % _MAX_ERROR_BODY
        else:
            try:
                body = _loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        status = response.status
        if 300 <= status < 400:  # never followed: the key must not leave the configured host
            body = body or "redirect to %s not followed" % headers.get("location", "?")
        return _status_error(status, body, headers)

    def _open_stream(
        self, conn: http.client.HTTPConnection, response: http.client.HTTPResponse, step: _Step
    ) -> Stream:
        """Wrap a 2xx response to a streamed request; a non-SSE reply is an error."""
        kind = (response.getheader("content-type") or "").split(";")[0].strip().lower()
        if kind != "text/event-stream":
            raw = self._read_body(conn, response, _MAX_ERROR_BODY) or b""
            try:
                body = _loads(raw)
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("error"):
                raise _stream_error(body, _lower_headers(response))
            raise StreamError(
                "expected a text/event-stream reply to stream=True, got %s: %s"
                % (kind or "no content type", _excerpt(raw))
            )

        def finish(reusable: bool) -> None:
            if reusable:
                self._pool.release(conn)
            else:
                conn.close()

        return Stream(response, step, finish)


def _choose_base_url(
    base_url: str | None, region: str | None, url_env: tuple[str, ...]
) -> str:
    """Explicit base_url or region, else the environment's, else the default region."""
    if base_url and region:
        raise ValueError("pass base_url or region, not both")
    if base_url:
        return base_url
    if not region:
        env_url = _env(url_env)[0]
        if env_url:
            return env_url
        region = os.environ.get("TOKENHUB_REGION") or _DEFAULT_REGION
    root = _REGIONS.get(region.strip().lower())
    if root is None:
        raise ValueError(
            "unknown region %r: expected one of %s" % (region, ", ".join(sorted(_REGIONS)))
        )
    return root


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
    if not data.strip():
        return None, False  # an empty keep-alive event carries nothing
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
    if not sse.data.strip():
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
