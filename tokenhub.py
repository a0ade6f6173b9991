"""tokenhub: a one-file, standard-library client for Tencent Cloud TokenHub.

TokenHub serves DeepSeek, GLM, Kimi and MiniMax models over three protocols:
OpenAI Chat Completions, Anthropic Messages and OpenAI Responses. This module
speaks all three, streaming included, with nothing to install: copy the file
and import it::

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
written for either SDK runs after changing only its import line. The asyncio
twins are ``AsyncTokenHub``, ``AsyncOpenAI`` and ``AsyncAnthropic``::

    async with tokenhub.AsyncOpenAI() as client:
        reply = await client.chat.completions.create(model=..., messages=...)

How the module reads, bottom-up: errors; data objects; server-sent events and
HTTP/1.1, both sans-IO; one object per wire protocol (all that is specific to
it); the stream core and its two drivers; the transport, where every exchange is
a plan (a generator of I/O steps) run by a blocking or an asyncio driver; the
clients; tools and the tool loop; the command line.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    # clients
    "TokenHub",
    "OpenAI",
    "Anthropic",
    "AsyncTokenHub",
    "AsyncOpenAI",
    "AsyncAnthropic",
    "Timeout",
    # data objects
    "APIObject",
    "Stream",
    "AsyncStream",
    # streams and tools
    "accumulate_chunk",
    "final_completion",
    "accumulate_event",
    "final_message",
    "accumulate_response_event",
    "final_response",
    "assistant_message",
    "usage_of",
    "cost_of",
    "tool",
    "Tool",
    "ToolRunner",
    "pydantic_function_tool",
    "APIResponse",
    "AsyncToolRunner",
    # batches
    "run_batch",
    "Batch",
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
    "BatchInputError",
]

import os
import sys
import time

# json (which brings re and enum) is imported where it is used: it would cost more
# than the rest of this module's import (see bench/import_time.py).

TYPE_CHECKING = False
if TYPE_CHECKING:  # names for annotations only; keeps `typing` off the import path
    import ssl
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Any, BinaryIO, Tuple

    _Step = Callable[["ServerSentEvent", Callable[[str], Any]], Tuple[Any, bool]]
    _Fold = Callable[[Any, Any], Any]

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
    # The China site: a separate product whose keys do not work on the international
    # one (nor the other way round); no backup hosts are documented for it.
    "china": ("https://tokenhub.tencentmaas.com",),
    "china-singapore": ("https://tokenhub-intl.tencentmaas.com",),
}
#: The product each host belongs to: keys are per site, failover never crosses one.
_SITES = {
    "tokenhub-intl.tencentcloudmaas.com": "the international site (tencentcloudmaas.com)",
    "tokenhub.tencentcloudmaas.com": "the international site (tencentcloudmaas.com)",
    "tokenhub-intl.tencentcloudmaas.tech": "the international site (tencentcloudmaas.com)",
    "tokenhub.tencentcloudmaas.tech": "the international site (tencentcloudmaas.com)",
    "tokenhub.tencentmaas.com": "the China site (tencentmaas.com)",
    "tokenhub-intl.tencentmaas.com": "the China site (tencentmaas.com)",
    "tokenhub.store": "tokenhub.store",
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
_FIRST_READ = 4 * 1024  # a connection's first read; each later one doubles, to 4 × _READ_SIZE
_RUN_LIMIT = 256  # plain text pieces a stream gathers before folding them into its snapshot
_MAX_CONNECTIONS = 1000  # an async client's connections in use to one host (as the OpenAI SDK sets httpx's)

# Retry policy: which statuses are worth another try, and how long to wait.
_RETRY_STATUSES = frozenset({408, 409, 429})
_BACKOFF_START = 0.5
_BACKOFF_MAX = 8.0
_MAX_SERVER_DELAY = 60.0  # a longer retry-after is raised, not slept


# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------


class APIError(Exception):
    """Root of every error tokenhub raises.

    An error that ends a stream early carries ``snapshot``: what had arrived,
    accumulated into the shape of a finished reply (``None`` otherwise).
    """

    code: Any = None  # the error body's "code", "param" and "type", when it has them (the SDKs' fields)
    param: Any = None
    type: Any = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.snapshot: Any = None


class APIConnectionError(APIError):
    """The server could not be reached, or the connection broke."""


class APITimeoutError(APIConnectionError):
    """A connect or read deadline passed."""


class APIStatusError(APIError):
    """The server answered with an error status (or an error inside a stream).

    ``status_code`` is the HTTP status (for an in-stream error, the status its
    ``error.type`` stands for), ``body`` the parsed JSON body (or its text when it
    is not JSON), ``request_id`` the server's request id when it sent one, and
    ``response`` the reply as the SDKs show it (``status_code``, ``headers``,
    ``text``, ``json()``). ``code``, ``param`` and ``type`` come from the body.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        request_id: str | None = None,
        raw: bytes | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.headers = dict(headers or {})
        self.request_id = request_id
        self.retry_after: float | None = None  # set when a too-long server delay was not slept
        self.response = APIResponse(status_code, self.headers, raw)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            self.code, self.param, self.type = error.get("code"), error.get("param"), error.get("type")


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


class BatchInputError(ValueError):
    """A batch's input has bad requests: ``problems`` lists each as ``(number, what
    is wrong)``, numbered by line of a file (or position in a list), from 1."""

    def __init__(self, problems: list[tuple[int, str]], unit: str = "line") -> None:
        shown = ["  %s %d: %s" % (unit, number, text) for number, text in problems[:_SHOWN_PROBLEMS]]
        if len(problems) > _SHOWN_PROBLEMS:
            shown.append("  ... and %d more" % (len(problems) - _SHOWN_PROBLEMS))
        super().__init__("%d bad request%s in the batch input; nothing was sent:\n%s"
                         % (len(problems), "" if len(problems) == 1 else "s", "\n".join(shown)))
        self.problems = problems


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
    "timeout_error": 504,
    "overloaded_error": 529,
}

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "x-tc-requestid")


def _status_error(
    status: int, body: Any, headers: Mapping[str, str] | None = None, *, where: str = "HTTP", raw: bytes | None = None
) -> APIStatusError:
    """Build the status error whose class matches ``status``."""
    cls = _STATUS_ERRORS.get(status) or (
        InternalServerError if status >= 500 else APIStatusError
    )
    request_id = _request_id(headers) if headers else None
    message = "%s %d: %s" % (where, status, _server_message(body))
    if request_id:
        message += " (request id %s)" % request_id
    return cls(message, status_code=status, body=body, headers=headers, request_id=request_id, raw=raw)


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
        import json

        return _excerpt(json.dumps(body, ensure_ascii=False))
    if isinstance(body, (bytes, str)) and body:
        return _excerpt(_readable(body))
    return "(empty body)"


_HTML = r"(?i)<(?:!doctype|html|head|body|title|h1|p|div)\b"


def _readable(text: str | bytes) -> str:
    """Text as a person would read it: an HTML error page (a proxy's 502) loses its markup."""
    import re

    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not re.search(_HTML, text):
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

    __slots__ = ("_request_id",)  # the server's request id for a reply (x-request-id / request-id), as the SDKs have it

    def __getattr__(self, name: str) -> Any:
        if name == "_request_id":
            return None  # not set: not a reply, or the server sent none
        if name[:1] == "_":  # keep the dunder protocols (copy, pickle) honest
            raise AttributeError(name)
        return self.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_request_id":
            object.__setattr__(self, name, value)
        else:
            self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __dir__(self) -> list[str]:
        return sorted(set(dir(type(self))) | {k for k in self if isinstance(k, str)})

    def __repr__(self) -> str:
        import json

        kind = self.get("object") or self.get("type")
        text = _excerpt(json.dumps(self, ensure_ascii=False), 160)
        return "<%s %s>" % (kind, text) if isinstance(kind, str) else text

    def to_dict(self) -> dict[str, Any]:
        """A deep copy made of plain ``dict`` and ``list`` values."""
        return _plain(self)

    def to_json(self, *, indent: int | None = 2) -> str:
        """The object as JSON text."""
        import json

        return json.dumps(self, ensure_ascii=False, indent=indent)

    def model_dump(
        self, *, mode: str = "python", exclude_none: bool = False, exclude_unset: bool = False,
        include: Any = None, exclude: Any = None, **_: Any,
    ) -> dict[str, Any]:
        """The SDKs' (pydantic) spelling of :meth:`to_dict`. Every field held was sent,
        so ``exclude_unset`` changes nothing; ``exclude_none`` drops ``None`` values
        at every depth; ``include`` / ``exclude`` name top-level fields; the data is
        JSON already, so ``mode="json"`` is the same."""
        if mode not in ("python", "json"):
            raise ValueError("mode must be 'python' or 'json', got %r" % (mode,))
        data = _plain(self, drop_none=exclude_none)
        if include is not None:
            data = {k: v for k, v in data.items() if k in include}
        if exclude is not None:
            data = {k: v for k, v in data.items() if k not in exclude}
        return data

    def model_dump_json(self, *, indent: int | None = None, exclude_none: bool = False, **options: Any) -> str:
        """The SDKs' spelling of :meth:`to_json` (no indent unless asked)."""
        import json

        return json.dumps(self.model_dump(exclude_none=exclude_none, **options), ensure_ascii=False, indent=indent)


def _plain(value: Any, *, drop_none: bool = False) -> Any:
    """Deep-copy JSON data into plain dicts and lists (leaving out None values if asked)."""
    if isinstance(value, dict):
        return {k: _plain(v, drop_none=drop_none) for k, v in value.items() if not (drop_none and v is None)}
    if isinstance(value, list):
        return [_plain(v, drop_none=drop_none) for v in value]
    return value


def _decoder() -> Callable[[str], Any]:
    """A JSON parser whose objects are APIObjects. Build one per stream and reuse it:
    json.loads(..., object_hook=...) builds a decoder per call, which costs more
    than parsing a stream chunk."""
    import json

    decoder = json.JSONDecoder(object_pairs_hook=APIObject)
    decode, scan = decoder.decode, decoder.scan_once

    def parse(text: str) -> Any:
        # JSONDecoder.decode is scan_once between two whitespace regex matches; a
        # stream's data starts with "{" and ends with "}", so scan at once and check
        # that the value took the whole text. Anything else takes the full path.
        try:
            if text[:1] == "{" and text[-1:] == "}":
                try:
                    value, end = scan(text, 0)
                except StopIteration:
                    pass
                else:
                    if end == len(text):
                        return value
            return decode(text)
        except RecursionError:  # a reply nested thousands deep: malformed, not a crash
            raise ValueError("JSON nested too deeply to parse") from None

    return parse


def _loads(text: str | bytes) -> Any:
    """Parse JSON into APIObjects; invalid UTF-8 in bytes becomes U+FFFD, not an error."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
        if text[:1] == "\ufeff":
            text = text[1:]
    return _decoder()(text)


class _Headers(dict):
    """Response headers: lower-case names, looked up in any case (as httpx's are)."""

    __slots__ = ()

    def __getitem__(self, name: str) -> str:
        return dict.__getitem__(self, name.lower())

    def get(self, name: str, default: Any = None) -> Any:
        return dict.get(self, name.lower(), default)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and dict.__contains__(self, name.lower())


class APIResponse:
    """An HTTP reply as the SDKs' raw responses show it: ``status_code``, ``headers``
    (any case), ``request_id``, ``content`` / ``text`` / ``json()``; for a call made
    ``with_raw_response``, also ``retries_taken``, ``elapsed`` (seconds) and
    ``parse()``, the value the call would have returned."""

    def __init__(
        self, status_code: int, headers: Mapping[str, str], content: bytes | None, *,
        elapsed: float = 0.0, retries_taken: int = 0, parse: Callable[[], Any] | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = _Headers((k.lower(), v) for k, v in headers.items())
        self.content = content or b""
        self.elapsed = elapsed
        self.retries_taken = retries_taken
        self._parse = parse

    @property
    def request_id(self) -> str | None:
        return _request_id(self.headers)

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return _loads(self.content)

    def parse(self) -> Any:
        """The value the call returns without ``with_raw_response``."""
        if self._parse is None:
            raise TypeError("this response has no parsed value (it is an error's reply)")
        return self._parse()

    def __repr__(self) -> str:
        return "<APIResponse [%d]>" % self.status_code


# ---------------------------------------------------------------------------
# Server-sent events (sans-IO decoder, then a generator over a file)
# ---------------------------------------------------------------------------


class ServerSentEvent:
    """One dispatched event: ``event`` (type, default ``message``), ``data``, ``id``, ``retry``."""

    __slots__ = ("event", "data", "id", "retry")

    def __init__(self, data: str = "", event: str = "message", id: str = "", retry: int | None = None) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def json(self) -> Any:
        """The data parsed as JSON."""
        import json

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
        self._tail: list[bytes] = []  # the pieces of an unfinished line, joined once it ends
        self._tail_size = 0
        self._skip_lf = False  # the previous feed ended in CR: a leading LF belongs to it
        self._started = False  # past the place where a BOM may stand
        self._event = ""
        self._data: list[bytes] = []
        self._data_size = 0
        self._event_retry: int | None = None

    @property
    def pending(self) -> bool:
        """True while a partial line or an undispatched event is held."""
        return bool(self._tail_size or self._data or self._event)

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Take the next bytes of the stream; return the events they complete."""
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if self._tail:
            # A long line arriving in small pieces: keep the pieces and join them once,
            # when the line ends, so the work stays linear in the input.
            if b"\n" not in chunk and b"\r" not in chunk:
                self._keep_tail(chunk)
                return []
            self._tail.append(chunk)
            buf = b"".join(self._tail)
            self._tail, self._tail_size = [], 0
        else:
            buf = chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._keep_tail(buf)  # could still become a BOM
                return []
            self._started = True
            if buf[:3] == _BOM:
                buf = buf[3:]
        if b"\r" in buf or self._data or self._event or self._event_retry is not None or len(buf) > self.max_line_size:
            return self._take(buf)
        # The common shape, in bulk: blocks ended by a blank line, each one "data: ..."
        # line. The complete blocks are decoded at once (every line end is ASCII, so
        # this decodes exactly as line by line would); any other block goes through
        # the line loop, as does the unfinished block after the last blank line.
        cut = buf.rfind(b"\n\n") + 2
        events = []
        if cut > 1:
            last_id = self.last_event_id
            text = str(buf if cut == len(buf) else memoryview(buf)[:cut], "utf-8", "replace")
            if text[:6] == "data: ":
                # Every block one "data: " line? Then splitting at "\n\ndata: " gives the
                # payloads themselves, in one pass, and the text holds exactly two line
                # ends per block (any other field, line or comment adds some).
                datas = text.split("\n\ndata: ")
                if text.count("\n") == 2 * len(datas):
                    datas[0] = datas[0][6:]
                    datas[-1] = datas[-1][:-2]
                    events = [ServerSentEvent(data, "message", last_id) for data in datas]
                    rest = buf[cut:]
                    return events + self._take(rest) if rest else events
            blocks = text.split("\n\n")
            blocks.pop()  # the empty string after the final blank line
            for block in blocks:
                if block[:5] == "data:" and "\n" not in block:
                    events.append(ServerSentEvent(block[6:] if block[5:6] == " " else block[5:], "message", last_id))
                else:
                    events += self._lines([line.encode() for line in block.split("\n")] + [b""])
                    last_id = self.last_event_id
        rest = buf[cut:] if cut > 1 else buf
        if rest:
            return events + self._take(rest)
        return events

    def _keep_tail(self, piece: bytes) -> None:
        if piece:
            self._tail.append(piece)
            self._tail_size += len(piece)
            if self._tail_size > self.max_line_size:
                raise SizeLimitError("an event-stream line exceeds %d bytes (max_line_size)" % self.max_line_size)

    def _take(self, buf: bytes) -> list[ServerSentEvent]:
        """Read the whole lines in ``buf``; keep what follows the last line end."""
        end = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
        tail = buf[end + 1:]
        self._keep_tail(tail)
        if end < 0:
            return []
        self._skip_lf = not tail and buf[end] == 13  # a final CR may be half a CRLF
        lines = buf.splitlines()  # split only at CR, LF and CRLF: this is bytes
        if tail:
            lines.pop()
        if len(buf) > self.max_line_size:  # only then can a whole line be too long
            self._check_lines(lines)
        return self._lines(lines)

    def _lines(self, lines: list[bytes]) -> list[ServerSentEvent]:
        """Interpret whole lines. The hot loop: "data:" and blank lines are handled
        inline on local copies of the state (about half the time of a method per line)."""
        events = []
        data, size, name, retry = self._data, self._data_size, self._event, self._event_retry
        limit = self.max_line_size
        for line in lines:
            if line[:5] == b"data:":
                value = line[6:] if line[5:6] == b" " else line[5:]
                size += len(value) + 1
                if size > limit:
                    raise SizeLimitError("an event's data exceeds %d bytes (max_line_size)" % limit)
                data.append(value)
            elif not line:  # dispatch; a block without data dispatches nothing
                if data:
                    # Decoded once, joined: a line end is ASCII, so this decodes exactly
                    # as decoding each line would.
                    text = (data[0] if len(data) == 1 else b"\n".join(data)).decode("utf-8", "replace")
                    events.append(ServerSentEvent(text, name or "message", self.last_event_id, retry))
                    data = []
                name, retry, size = "", None, 0
            else:
                self._data, self._data_size, self._event, self._event_retry = data, size, name, retry
                self._field(line)
                data, size, name, retry = self._data, self._data_size, self._event, self._event_retry
        self._data, self._data_size, self._event, self._event_retry = data, size, name, retry
        return events

    def _check_lines(self, lines: list[bytes]) -> None:
        for line in lines:
            if len(line) > self.max_line_size:
                raise SizeLimitError(
                    "an event-stream line exceeds %d bytes (max_line_size)" % self.max_line_size
                )

    def _field(self, line: bytes) -> None:
        """A line that is neither data nor blank: a comment, event, id or retry."""
        name, colon, value = line.partition(b":")
        if colon and not name:
            return  # a comment
        if value[:1] == b" ":
            value = value[1:]
        if name == b"event":
            self._event = value.decode("utf-8", "replace")
        elif name == b"id":
            if b"\0" not in value:
                self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry":
            if value.isdigit():  # ASCII digits only, as the spec asks
                self.retry = self._event_retry = int(value)
        elif name == b"data":  # "data" with no colon: an empty data line
            self._data.append(b"")
            self._data_size += 1
        # other field names are ignored, as the spec asks


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
# HTTP/1.1 (sans-IO: a response reader fed bytes, a request writer)
# ---------------------------------------------------------------------------

_MAX_HEAD = 64 * 1024  # one response head; also a chunked body's trailers, all together
_MAX_INTERIM = 32  # 1xx interim responses skipped before the final one
_MAX_CHUNK_LINE = 4096  # one chunk-size line, extensions included
_TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_NEED_DATA = "need data"  # _ResponseReader.next(): feed me first
_END = "end of message"  # _ResponseReader.next(): the response is complete


class _Head:
    """A response's status line and headers (names lower-cased; a repeated one joined by ", ")."""

    __slots__ = ("status", "reason", "version", "headers")

    def __init__(self, status: int, reason: str, version: str, headers: dict[str, str]) -> None:
        self.status = status
        self.reason = reason
        self.version = version
        self.headers = headers


def _parse_head(raw: bytes) -> _Head:
    """A status line and header lines (RFC 9112 §4, §5), or a ProtocolError quoting the bad line."""
    lines = raw.decode("latin-1").split("\n")
    status_line = lines[0][:-1] if lines[0].endswith("\r") else lines[0]
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version[:7] != "HTTP/1." or len(code) != 3 or not (code.isascii() and code.isdigit()):
        raise ProtocolError("expected an HTTP/1.x status line, got %r" % _excerpt(status_line, 80))
    headers: dict[str, str] = {}
    last = None
    for line in lines[1:]:
        if line.endswith("\r"):
            line = line[:-1]
        if not line:
            continue
        if line[0] in " \t":  # obs-fold: a continuation joins the previous value (RFC 9112 §5.2)
            if last is None:
                raise ProtocolError("the response head starts with a continuation line")
            headers[last] += " " + line.strip(" \t")
            continue
        name, colon, value = line.partition(":")
        if not colon or not name or name.strip(_TOKEN_CHARS):
            raise ProtocolError("invalid header line in the response: %r" % _excerpt(line, 80))
        name = name.lower()
        value = value.strip(" \t")
        headers[name] = headers[name] + ", " + value if name in headers else value
        last = name
    return _Head(int(code), reason, version, headers)


class _ResponseReader:
    """Feed the bytes of one HTTP/1.1 response; pull its head, its body pieces, its end.

    ``feed(data)`` takes what the connection delivered (``b""``: the peer closed).
    ``next()`` returns the :class:`_Head` once, then body ``bytes`` pieces, then
    ``_END``; ``_NEED_DATA`` whenever it must be fed first. Malformed input raises
    :class:`ProtocolError`, a connection that ends too soon :class:`APIConnectionError`.

    How it frames (RFC 9112 §6.3): interim 1xx heads are skipped (RFC 9110 §15.2),
    101 is refused; 204, 304 and ``no_body`` (a CONNECT's 2xx) end at the head;
    chunked coding wins over a Content-Length; without either the body runs to the
    close. ``reusable`` says, at the end, whether the connection may carry another
    request: never when the server asked to close, when the body ran to the close,
    or when any byte arrived past the end (that byte belongs to no request).
    Every search resumes where the last one stopped, so a head or a line dripped a
    byte at a time costs linear time; heads and trailers are bounded by ``_MAX_HEAD``.
    """

    def __init__(self, *, no_body: bool = False) -> None:
        self._buf = bytearray()
        self._eof = False
        self._state = "head"  # head, length, close, chunk-size, chunk-data, chunk-end, trailers, done
        self._left = 0  # bytes still due in the body (Content-Length) or the chunk
        self._scan = 0  # where the next search for a line end starts
        self._trailers = 0  # trailer bytes so far
        self._no_body = no_body
        self.head: _Head | None = None
        self.received = 0  # bytes fed so far
        self.interim = 0  # 1xx heads skipped
        self.keep_alive = True

    def feed(self, data: bytes) -> None:
        if data:
            self.received += len(data)
            self._buf += data
        else:
            self._eof = True

    @property
    def done(self) -> bool:
        return self._state == "done"

    @property
    def pending(self) -> int:
        """Bytes fed and not yet taken."""
        return len(self._buf)

    @property
    def reusable(self) -> bool:
        return self._state == "done" and self.keep_alive and not self._buf and not self._eof

    def next(self) -> Any:
        state = self._state
        if state == "length":
            return self._length_data()
        if state == "close":
            return self._close_data()
        if state == "done":
            return _END
        if state == "head":
            return self._read_head()
        return self._chunked()

    # -- the head -------------------------------------------------------------

    def _read_head(self) -> Any:
        while True:
            end = self._head_end()
            if end < 0:
                if len(self._buf) > _MAX_HEAD:
                    raise SizeLimitError("the response head exceeds %d bytes" % _MAX_HEAD)
                if self._eof:
                    raise self._closed_early("before the response head ended" if self._buf else "without answering")
                return _NEED_DATA
            if end > _MAX_HEAD:
                raise SizeLimitError("the response head exceeds %d bytes" % _MAX_HEAD)
            raw = bytes(self._buf[:end])
            del self._buf[:end]
            self._scan = 0
            head = _parse_head(raw)
            if head.status >= 200:
                break
            if head.status == 101:
                raise ProtocolError("the server switched protocols (101) on a request that asked for no upgrade")
            self.interim += 1
            if self.interim > _MAX_INTERIM:
                raise ProtocolError("more than %d interim (1xx) responses before the final one" % _MAX_INTERIM)
        self.head = head
        self._frame(head)
        return head

    def _head_end(self) -> int:
        """The offset just past the blank line that ends the head, or -1."""
        buf = self._buf
        start = max(0, self._scan - 2)
        ends = [i for i in (buf.find(b"\n\r\n", start), buf.find(b"\n\n", start)) if i >= 0]
        if not ends:
            self._scan = len(buf)
            return -1
        first = min(ends)
        return first + (3 if buf[first + 1:first + 2] == b"\r" else 2)

    def _frame(self, head: _Head) -> None:
        headers = head.headers
        tokens = {t.strip().lower() for t in headers.get("connection", "").split(",")}
        self.keep_alive = "keep-alive" in tokens if head.version == "HTTP/1.0" else "close" not in tokens
        if self._no_body or head.status in (204, 304):
            self._state = "done"
            return
        coding = headers.get("transfer-encoding")
        if coding is not None:
            codings = [c.strip().lower() for c in coding.split(",") if c.strip()]
            if codings != ["chunked"]:
                raise ProtocolError("unsupported Transfer-Encoding %r (only chunked is read)" % _excerpt(coding, 80))
            if "content-length" in headers:
                self.keep_alive = False  # both framings: close afterwards (RFC 9112 §6.3)
            self._state = "chunk-size"
            return
        length = headers.get("content-length")
        if length is None:
            self._state = "close"
            self.keep_alive = False
            return
        values = {v.strip() for v in length.split(",")}
        value = values.pop() if len(values) == 1 else ""
        if not (value.isascii() and value.isdigit()):
            raise ProtocolError("invalid Content-Length in the response: %r" % _excerpt(length, 80))
        self._left = int(value)
        self._state = "length" if self._left else "done"

    # -- the body -------------------------------------------------------------

    def _length_data(self) -> Any:
        buf = self._buf
        if not buf:
            if self._eof:
                raise self._closed_early("before the body's end: %d byte(s) more expected (Content-Length)" % self._left)
            return _NEED_DATA
        data = self._take(self._left)
        self._left -= len(data)
        if not self._left:
            self._state = "done"
        return data

    def _close_data(self) -> Any:
        if self._buf:
            return self._take(len(self._buf))
        if self._eof:
            self._state = "done"
            return _END
        return _NEED_DATA

    def _take(self, most: int) -> bytes:
        buf = self._buf
        if len(buf) <= most:
            data = bytes(buf)
            buf.clear()
        else:
            data = bytes(buf[:most])
            del buf[:most]  # CPython drops a bytearray's head in place, without moving the rest
        return data

    def _chunked(self) -> Any:
        buf = self._buf
        while True:
            state = self._state
            if state == "chunk-data":
                if not buf:
                    if self._eof:
                        raise self._closed_early("in the middle of a chunk")
                    return _NEED_DATA
                data = self._take(self._left)
                self._left -= len(data)
                if not self._left:
                    self._state = "chunk-end"
                return data
            if state == "done":
                return _END
            line = self._line(_MAX_CHUNK_LINE if state != "trailers" else _MAX_HEAD)
            if line is None:
                if self._eof:
                    raise self._closed_early("before the chunked body ended")
                return _NEED_DATA
            if state == "chunk-end":  # the line end after a chunk's data
                if line:
                    raise ProtocolError("expected a line end after a chunk's data, got %r" % _excerpt(line, 40))
                self._state = "chunk-size"
            elif state == "chunk-size":
                size = line.split(b";", 1)[0].strip(b" \t")
                if not size or size.strip(_HEX_DIGITS) or len(size) > 16:
                    raise ProtocolError("invalid chunk size line in the response: %r" % _excerpt(line, 40))
                self._left = int(size, 16)
                self._state = "chunk-data" if self._left else "trailers"
            else:  # trailer fields: read and dropped (neither protocol uses them)
                self._trailers += len(line) + 2
                if self._trailers > _MAX_HEAD:
                    raise SizeLimitError("the response's trailers exceed %d bytes" % _MAX_HEAD)
                if not line:
                    self._state = "done"

    def _line(self, limit: int) -> bytes | None:
        """The next line without its end, or None until one is complete."""
        buf = self._buf
        end = buf.find(b"\n", self._scan)
        if end < 0:
            self._scan = len(buf)
            if len(buf) > limit:
                raise SizeLimitError("a line of the response's chunked framing exceeds %d bytes" % limit)
            return None
        line = bytes(buf[:end - 1] if end and buf[end - 1] == 13 else buf[:end])
        del buf[:end + 1]
        self._scan = 0
        return line

    def _closed_early(self, when: str) -> APIConnectionError:
        error = APIConnectionError("the server closed the connection %s" % when)
        error.nothing_received = not self.received  # a kept-alive connection gone stale
        return error


def _check_header(name: Any, value: Any) -> str:
    """A header's value as text for the wire; a ValueError naming the header (never its value)."""
    if isinstance(value, str) and value.isascii() and value.isprintable() and name and not name.strip(_TOKEN_CHARS):
        return value  # the common case, checked in C
    if not isinstance(name, str) or not name or name.strip(_TOKEN_CHARS):
        raise ValueError("invalid header name %r: expected letters, digits and !#$%%&'*+-.^_`|~ only" % (name,))
    if not isinstance(value, str):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        else:
            raise TypeError("header %s: expected a str value, got %s" % (name, type(value).__name__))
    bad = _bad_char(value)
    if bad is not None:
        raise ValueError("header %s: its value contains %s; header values must be one line of text" % (name, bad))
    return value


def _bad_char(text: str) -> str | None:
    """What makes ``text`` unfit for one header line (a control character, non-Latin-1), or None."""
    for position, char in enumerate(text):
        code = ord(char)
        if code < 32 and char != "\t" or code == 127:
            names = {"\r": "a carriage return (\\r)", "\n": "a line feed (\\n)", "\0": "a NUL byte"}
            return "%s at position %d" % (names.get(char, "a control character (0x%02x)" % code), position)
        if code > 255:
            return "a character outside Latin-1 at position %d" % position
    return None


def _request_bytes(method: str, target: str, host: str, headers: Mapping[str, str], payload: bytes | None) -> bytes:
    """One request, head and body in one buffer: a single send, no Nagle wait between them."""
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: " + host]
    lines += ["%s: %s" % item for item in headers.items()]
    if payload is not None:
        lines.append("Content-Length: %d" % len(payload))
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + payload if payload else head


# ---------------------------------------------------------------------------
# OpenAI protocol: POST {root}/v1/chat/completions
# ---------------------------------------------------------------------------


def _event_json(sse: ServerSentEvent, protocol: str, decode: Callable[[str], Any]) -> APIObject:
    """An event's data as a JSON object, or a StreamError quoting it."""
    try:
        obj = decode(sse.data)
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


def _openai_step(sse: ServerSentEvent, decode: Callable[[str], Any]) -> tuple[APIObject | None, bool]:
    """One SSE event of a chat completion stream -> (chunk or None, finished)."""
    data = sse.data
    if data[:6] == "[DONE]":
        return None, True
    if not data or data.isspace():  # an empty keep-alive event carries nothing (no copy made)
        return None, False
    chunk = _event_json(sse, "OpenAI", decode)
    if chunk.get("error") is not None or sse.event == "error":
        raise _stream_error(chunk, {})
    return chunk, False


def accumulate_chunk(snapshot: APIObject | None, chunk: Mapping[str, Any]) -> APIObject:
    """Fold one ``chat.completion.chunk`` into a ``chat.completion`` snapshot.

    Start from ``None`` and feed every chunk; the result has the shape of a
    non-streamed reply. Choices and tool calls are merged by ``index`` (several
    calls may interleave), text fields are concatenated, a tool call's ``id`` and
    ``name`` are taken once even when a provider repeats them in every chunk,
    unknown fields are kept, and ``usage`` is the last one reported. The snapshot
    is updated in place and returned (a copy per chunk would make a long stream
    quadratic); tool calls keep their ``index`` until :func:`final_completion`.
    """
    if snapshot is None:
        snapshot = APIObject(object="chat.completion", choices=[])
    # The top-level fields in one C-speed update, then what it must not overwrite put
    # back: the gathered choices, the object type, and a usage a null one would hide.
    choices, usage = snapshot["choices"], snapshot.get("usage")
    snapshot.update(chunk)
    snapshot["object"] = "chat.completion"
    snapshot["choices"] = choices
    if snapshot.get("usage") is None:  # null in every chunk but the usage one
        if usage is None:
            snapshot.pop("usage", None)
        else:
            snapshot["usage"] = usage
    for piece in chunk.get("choices") or ():
        _merge_choice(choices, piece)
    return snapshot


def final_completion(snapshot: APIObject | None) -> APIObject:
    """A finished ``chat.completion`` from an :func:`accumulate_chunk` snapshot:
    choices and tool calls in ``index`` order, without their ``index`` fields'
    bookkeeping, and an empty ``content`` as ``null`` (as a non-streamed reply)."""
    snapshot = snapshot if snapshot is not None else APIObject(object="chat.completion", choices=[])
    final = APIObject((key, snapshot[key]) for key in ("id", "object", "created", "model") if key in snapshot)
    final["choices"] = [_final_choice(c) for c in sorted(snapshot["choices"], key=_index)]
    final.update((key, value) for key, value in snapshot.items() if key not in final)  # usage, newcomers
    return final


def _index(entry: Mapping[str, Any]) -> Any:
    index = entry.get("index")
    return index if isinstance(index, int) else 0


def _by_index(entries: list[Any], index: Any, make: Callable[[], APIObject]) -> APIObject:
    """The entry with this ``index``, appended when new (lists here are short)."""
    for entry in entries:
        if entry.get("index") == index:
            return entry
    entry = make()
    entries.append(entry)
    return entry


def _append(obj: dict[str, Any], key: str, piece: str) -> None:
    """``obj[key] += piece`` in linear time: with the dict's reference popped, the
    local is the string's only owner and CPython extends it in place."""
    text = obj.pop(key, None) or ""
    text += piece
    obj[key] = text


def _take_once(obj: dict[str, Any], key: str, value: Any) -> None:
    """Set an identifying field once: a repeat of the same value is not appended
    (some providers resend a tool call's id and name in every chunk), while a
    different piece extends it (a name that really arrives in fragments)."""
    if value is None or value == "":
        return
    current = obj.get(key)
    if not current:
        obj[key] = value
    elif value != current and isinstance(value, str) and isinstance(current, str):
        _append(obj, key, value)


def _new_choice(index: Any) -> APIObject:
    return APIObject(index=index, message=APIObject(role="assistant", content=None), finish_reason=None, logprobs=None)


_CHOICE_FIELDS = frozenset(("index", "delta", "finish_reason", "logprobs"))


def _merge_choice(choices: list[Any], piece: Mapping[str, Any]) -> None:
    index = piece.get("index", 0)
    for choice in choices:
        if choice["index"] == index:
            break
    else:
        choice = _new_choice(index)
        choices.append(choice)
    delta = piece.get("delta")
    if delta:
        _merge_delta(choice["message"], delta)
    if piece.get("finish_reason") is not None:
        choice["finish_reason"] = piece["finish_reason"]
    if piece.get("logprobs") is not None:
        _merge_logprobs(choice, piece["logprobs"])
    for key in piece.keys() - _CHOICE_FIELDS:  # fields this module does not know: kept
        if piece[key] is not None or key not in choice:
            choice[key] = piece[key]


def _merge_delta(message: APIObject, delta: Mapping[str, Any]) -> None:
    if len(delta) == 1 and "content" in delta:  # most chunks: one more piece of the answer
        if delta["content"]:
            _append(message, "content", delta["content"])
        return
    for key, value in delta.items():
        if key == "tool_calls":
            calls = message.setdefault("tool_calls", [])
            for piece in value or ():
                _merge_tool_call(calls, piece)
        elif key == "role":
            message["role"] = value or message["role"]
        elif key == "reasoning_details" and isinstance(value, list):
            _merge_details(message.setdefault("reasoning_details", []), value)
        elif isinstance(value, str):  # content, reasoning_content, refusal, and any newcomer
            _append(message, key, value)
        elif value is not None:
            message[key] = value


def _merge_details(details: list[Any], pieces: list[Any]) -> None:
    """MiniMax's ``reasoning_details`` pieces: a piece's text extends the entry with
    its ``index`` (or ``id``), else it starts one."""
    for piece in pieces:
        if not isinstance(piece, dict):
            continue
        key = "index" if "index" in piece else "id"
        entry = next((d for d in details if key in piece and d.get(key) == piece.get(key)), None)
        if entry is None:
            details.append(_clone(piece))
        elif isinstance(piece.get("text"), str):
            _append(entry, "text", piece["text"])


def _merge_tool_call(calls: list[Any], piece: Mapping[str, Any]) -> None:
    index = piece.get("index")
    if index is None:  # a provider that leaves out the index: the call with this id, else the last
        known = [c for c in calls if piece.get("id") and c.get("id") == piece.get("id")]
        index = known[0]["index"] if known else (calls[-1]["index"] if calls and not piece.get("id") else len(calls))
    call = _by_index(calls, index, lambda: APIObject(index=index, function=APIObject(name="", arguments="")))
    for key, value in piece.items():
        if key == "function":
            function = call["function"]
            for name, part in (value or {}).items():
                if name == "arguments":
                    _append(function, "arguments", part or "")
                elif name == "name":
                    _take_once(function, "name", part)
                elif part is not None:
                    function[name] = part
        elif key in ("id", "type"):
            _take_once(call, key, value)
        elif key != "index" and value is not None:
            call[key] = value


def _merge_logprobs(choice: APIObject, logprobs: Any) -> None:
    if not isinstance(logprobs, dict):
        return
    current = choice.get("logprobs")
    if current is None:
        current = choice["logprobs"] = APIObject()
    for key, value in logprobs.items():
        if isinstance(value, list):
            if isinstance(current.get(key), list):
                current[key].extend(value)  # our own copy, made below
            else:
                current[key] = list(value)
        elif value is not None or key not in current:
            current[key] = value


def _final_choice(choice: APIObject) -> APIObject:
    final = APIObject(choice)
    message = final["message"] = APIObject(choice["message"])
    if message.get("content") == "":
        message["content"] = None
    calls = message.get("tool_calls")
    if calls is not None:
        message["tool_calls"] = [_final_call(call) for call in sorted(calls, key=_index)]
    return final


def _final_call(call: APIObject) -> APIObject:
    final = APIObject((k, v) for k, v in call.items() if k != "index")
    final.setdefault("type", "function")
    return final


def _openai_pieces(chunk: Mapping[str, Any], splitter: _ThinkSplitter | None = None) -> Iterator[tuple[str, str]]:
    """The first choice's reasoning and text in one chunk, whatever shape the
    reasoning takes: ``reasoning_content`` (DeepSeek, Kimi, GLM), ``reasoning_details``
    (MiniMax with ``reasoning_split``), or ``<think>...</think>`` at the start of
    ``content`` (MiniMax's default), which ``splitter`` tells from the answer."""
    for choice in chunk.get("choices") or ():
        if choice.get("index", 0) == 0:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                yield "reasoning", reasoning
            for detail in delta.get("reasoning_details") or ():
                if isinstance(detail, dict) and detail.get("text"):
                    yield "reasoning", detail["text"]
            if delta.get("content"):
                if splitter is None:
                    yield "text", delta["content"]
                else:
                    yield from splitter.feed(delta["content"])


_THINK, _THINK_END = "<think>", "</think>"


class _ThinkSplitter:
    """Tells a ``<think>...</think>`` block at the start of a streamed answer from the
    answer itself, sans IO: ``feed(piece)`` returns ``(kind, text)`` pairs, ``end()``
    what it still holds. A tag cut across pieces is held until it can be told (at
    most its length); the answer after the block starts past its blank lines."""

    def __init__(self) -> None:
        self.state = "start"  # start (still deciding), think, answer-start, answer
        self.held = ""

    def feed(self, piece: str) -> list[tuple[str, str]]:
        text, self.held = self.held + piece, ""
        out: list[tuple[str, str]] = []
        if self.state == "start":
            stripped = text.lstrip()
            if len(stripped) < len(_THINK) and _THINK.startswith(stripped):
                self.held = text  # could still become the tag
                return out
            if not stripped.startswith(_THINK):
                self.state = "answer"
                return [("text", text)]
            self.state, text = "think", stripped[len(_THINK):].lstrip("\n")
        if self.state == "think":
            end = text.find(_THINK_END)
            if end < 0:
                keep = next((n for n in range(min(len(_THINK_END) - 1, len(text)), 0, -1)
                             if _THINK_END.startswith(text[-n:])), 0)
                self.held = text[len(text) - keep:]
                if text[:len(text) - keep]:
                    out.append(("reasoning", text[:len(text) - keep]))
                return out
            if text[:end].rstrip("\n"):
                out.append(("reasoning", text[:end].rstrip("\n")))
            self.state, text = "answer-start", text[end + len(_THINK_END):]
        if self.state == "answer-start":
            text = text.lstrip("\n")
            if not text:
                return out
            self.state = "answer"
        out.append(("text", text))
        return out

    def end(self) -> list[tuple[str, str]]:
        held, self.held = self.held, ""
        if not held:
            return []
        return [("reasoning" if self.state == "think" else "text", held)]


def _split_think(content: Any) -> tuple[str, str]:
    """(reasoning, answer) of a whole ``content`` that may start with a ``<think>`` block."""
    if not isinstance(content, str):
        return "", content or ""
    splitter = _ThinkSplitter()
    pieces = splitter.feed(content) + splitter.end()
    return ("".join(t for k, t in pieces if k == "reasoning"), "".join(t for k, t in pieces if k == "text"))


def _completion_text(completion: Mapping[str, Any]) -> str:
    choices = completion.get("choices") or [{}]
    return (choices[0].get("message") or {}).get("content") or ""


# A chunk whose only news is more "content" for one choice: these top-level fields
# (later chunks repeat them) and no others, so that folding the last of a run is exact.
_PLAIN_CHUNK_FIELDS = frozenset(("id", "object", "created", "model", "choices", "usage", "system_fingerprint"))


def _openai_plain(chunk: Mapping[str, Any]) -> tuple[Any, str] | None:
    choices = chunk.get("choices")
    if not choices or len(choices) != 1 or chunk.get("usage") is not None or not chunk.keys() <= _PLAIN_CHUNK_FIELDS:
        return None
    choice = choices[0]
    delta = choice.get("delta")
    if not delta or len(delta) != 1 or choice.get("finish_reason") is not None or choice.get("logprobs") is not None:
        return None
    text = delta.get("content")
    if type(text) is not str or not choice.keys() <= _CHOICE_FIELDS:
        return None
    return choice.get("index", 0), text


def _openai_with_text(chunk: Mapping[str, Any], text: str) -> APIObject:
    choice = chunk["choices"][0]
    return APIObject(chunk, choices=[APIObject(choice, delta=APIObject(content=text))])


# ---------------------------------------------------------------------------
# Anthropic protocol: POST {root}/v1/messages
# ---------------------------------------------------------------------------


def _anthropic_step(sse: ServerSentEvent, decode: Callable[[str], Any]) -> tuple[APIObject | None, bool]:
    """One SSE event of a message stream -> (event object, finished at message_stop)."""
    if not sse.data or sse.data.isspace():
        return None, False
    if sse.event == "ping":  # consumed, as the SDK does (and not progress for Timeout.idle)
        return None, False
    event = _event_json(sse, "Anthropic", decode)
    if "type" not in event:  # name it by its SSE event type, so nothing arrives untyped
        event["type"] = sse.event
    kind = event["type"]
    if kind == "ping":
        return None, False
    if kind == "error" or sse.event == "error":
        raise _stream_error(event, {})
    return event, kind == "message_stop"


def accumulate_event(snapshot: APIObject | None, event: Mapping[str, Any]) -> APIObject:
    """Fold one Anthropic stream event into a ``message`` snapshot.

    Start from ``None`` and feed every event; the result has the shape of a
    non-streamed reply. Text and thinking deltas are concatenated, a tool_use
    block's ``partial_json`` fragments become its ``input`` when the block stops
    (fragments that never parse stay in ``partial_json``, nothing is dropped),
    ``message_delta`` sets the stop reason, and usage takes the last value of
    each count. A delta goes to the block at its ``index`` when that block can
    take it, else to the latest one that can (a gateway's indexes may be off,
    PROTOCOL.md). ``ping`` and unknown events change nothing. Updated in place.
    """
    kind = event.get("type")
    if kind == "message_start":
        return _clone(event.get("message") or APIObject(type="message", role="assistant", content=[]))
    if snapshot is None:  # no message_start: still collect what arrives
        snapshot = APIObject(type="message", role="assistant", content=[])
    fold = _EVENT_FOLDS.get(kind)
    if fold is not None:
        fold(snapshot, event)
    return snapshot


def final_message(snapshot: APIObject | None) -> APIObject:
    """A finished ``message`` from an :func:`accumulate_event` snapshot: every
    tool_use block's JSON fragments parsed into its ``input``."""
    snapshot = snapshot if snapshot is not None else APIObject(type="message", role="assistant", content=[])
    for block in snapshot.get("content") or ():
        _close_block(block)
    return snapshot


def _clone(value: Any) -> Any:
    """A deep copy of JSON data, so folding never changes an event the caller holds."""
    if isinstance(value, dict):
        return APIObject((k, _clone(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


# Delta type -> (the field it extends, the block type that takes it).
_DELTA_FIELDS = {
    "text_delta": ("text", "text"),
    "thinking_delta": ("thinking", "thinking"),
    "signature_delta": ("signature", "thinking"),
    "input_json_delta": ("partial_json", "tool_use"),
}


def _block_for(content: list[Any], index: Any, kind: str | None) -> APIObject:
    """The block a delta or stop event addresses (see accumulate_event)."""
    fits = lambda block: kind is None or block.get("type") == kind  # noqa: E731
    if isinstance(index, int) and 0 <= index < len(content) and fits(content[index]):
        return content[index]
    for block in reversed(content):
        if fits(block):
            return block
    block = APIObject(type=kind or "text")  # a delta with no block started: keep it anyway
    content.append(block)
    return block


def _fold_block_start(snapshot: APIObject, event: Mapping[str, Any]) -> None:
    snapshot.setdefault("content", []).append(_clone(event.get("content_block") or APIObject(type="text")))


def _fold_block_delta(snapshot: APIObject, event: Mapping[str, Any]) -> None:
    delta = event.get("delta") or {}
    field, kind = _DELTA_FIELDS.get(delta.get("type"), (None, None))
    block = _block_for(snapshot.setdefault("content", []), event.get("index"), kind)
    if field is not None:
        _append(block, field, delta.get(field) or "")
        return
    for key, value in delta.items():  # citations_delta and newcomers: keep every field
        if key == "type":
            continue
        if key == "citation":
            block.setdefault("citations", []).append(value)
        elif isinstance(value, str):
            _append(block, key, value)
        else:
            block[key] = value


def _fold_block_stop(snapshot: APIObject, event: Mapping[str, Any]) -> None:
    content = snapshot.get("content") or []
    if content:
        _close_block(_block_for(content, event.get("index"), None))


def _close_block(block: APIObject) -> None:
    """Parse a tool_use block's gathered JSON into its input (kept as text if it never parses)."""
    if block.get("type") != "tool_use" or "partial_json" not in block:
        return
    text = block["partial_json"]
    try:
        value = _loads(text) if text.strip() else APIObject()
    except ValueError:
        return
    if isinstance(value, dict):
        block["input"] = value
        del block["partial_json"]


def _fold_message_delta(snapshot: APIObject, event: Mapping[str, Any]) -> None:
    for key, value in (event.get("delta") or {}).items():
        snapshot[key] = value
    usage = event.get("usage")
    if isinstance(usage, dict):
        merged = snapshot["usage"] = APIObject(snapshot.get("usage") or {})
        merged.update((k, v) for k, v in usage.items() if v is not None)


_EVENT_FOLDS = {
    "content_block_start": _fold_block_start,
    "content_block_delta": _fold_block_delta,
    "content_block_stop": _fold_block_stop,
    "message_delta": _fold_message_delta,
}


# Delta type -> the kind of text it carries, for Stream.deltas.
_ANTHROPIC_PIECES = {"text_delta": ("text", "text"), "thinking_delta": ("reasoning", "thinking")}


def _anthropic_pieces(event: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """The text or thinking in one event."""
    if event.get("type") == "content_block_delta":
        delta = event.get("delta") or {}
        kind, field = _ANTHROPIC_PIECES.get(delta.get("type"), (None, ""))
        if kind is not None and delta.get(field):
            yield kind, delta[field]


def _message_text(message: Mapping[str, Any]) -> str:
    return "".join(b.get("text") or "" for b in message.get("content") or () if b.get("type") == "text")


def _anthropic_plain(event: Mapping[str, Any]) -> tuple[Any, str] | None:
    """A text or thinking delta (and nothing else) for one block."""
    if event.get("type") != "content_block_delta" or len(event) != 3:
        return None
    delta = event.get("delta")
    if not isinstance(delta, dict) or len(delta) != 2:
        return None
    kind = delta.get("type")
    field = _ANTHROPIC_PIECES.get(kind, (None, None))[1]
    text = delta.get(field) if field else None
    if type(text) is not str:
        return None
    return (event.get("index"), kind), text


def _anthropic_with_text(event: Mapping[str, Any], text: str) -> APIObject:
    delta = event["delta"]
    field = _ANTHROPIC_PIECES[delta["type"]][1]
    return APIObject(event, delta=APIObject(delta, **{field: text}))


# ---------------------------------------------------------------------------
# OpenAI Responses protocol: POST {root}/v1/responses
# ---------------------------------------------------------------------------


class _ResponseObject(APIObject):
    """A ``response`` object; ``output_text`` joins the ``output_text`` parts of its
    message items, as the official SDK's property does."""

    __slots__ = ()

    @property
    def output_text(self) -> str:
        return "".join(
            part.get("text") or ""
            for item in self.get("output") or ()
            if isinstance(item, dict) and item.get("type") == "message"
            for part in item.get("content") or ()
            if isinstance(part, dict) and part.get("type") == "output_text"
        )


def _responses_error(payload: Mapping[str, Any]) -> APIStatusError:
    """The status error for an ``error`` event (flat ``{code, message}`` or nested
    ``{error: {...}}``) or a failed response's ``error``."""
    error = payload.get("error") if isinstance(payload.get("error"), dict) else payload
    code = error.get("code")
    status = 500
    if isinstance(code, int) or (isinstance(code, str) and code.isdigit()):
        status = int(code)
    else:
        status = _ERROR_TYPE_STATUS.get(code) or _ERROR_TYPE_STATUS.get(error.get("type"), 500)
    body = {"error": {key: error.get(key) for key in ("message", "type", "code", "param") if key in error}}
    return _status_error(status, body, {}, where="stream error, status")


def _responses_step(sse: ServerSentEvent, decode: Callable[[str], Any]) -> tuple[APIObject | None, bool]:
    """One SSE event of a response stream -> (event object, finished at a terminal event).
    ``response.completed`` and ``response.incomplete`` end it; ``response.failed`` and
    ``error`` raise. A ``[DONE]`` line carries nothing (there is none on this protocol)."""
    data = sse.data
    if not data or data.isspace() or data[:6] == "[DONE]":
        return None, False
    event = _event_json(sse, "Responses", decode)
    if "type" not in event:
        event["type"] = sse.event
    kind = event["type"]
    if kind == "error" or sse.event == "error":
        raise _responses_error(event)
    if kind == "response.failed":
        raise _responses_error((event.get("response") or {}).get("error") or {"message": "the response failed"})
    return event, kind in _RESPONSES_TERMINAL


_RESPONSES_TERMINAL = frozenset(("response.completed", "response.incomplete"))


def accumulate_response_event(snapshot: APIObject | None, event: Mapping[str, Any]) -> APIObject:
    """Fold one Responses stream event into a ``response`` snapshot.

    Start from ``None`` and feed every event; the result has the shape of a
    non-streamed ``response``. Output items are placed at their ``output_index``,
    content and summary parts at their ``content_index`` / ``summary_index``; text,
    refusal, reasoning and function-call argument deltas are concatenated, and each
    ``.done`` event sets the finished value. The terminal event's ``response`` is
    taken whole, keeping the accumulated ``output`` if it carries none. Unknown
    events change nothing. Updated in place.
    """
    kind = event.get("type")
    if snapshot is None:
        snapshot = _ResponseObject(object="response", output=[])
    if kind in ("response.created", "response.in_progress") or kind in _RESPONSES_TERMINAL or kind == "response.failed":
        response = event.get("response")
        if isinstance(response, dict):
            output = snapshot.get("output") or []
            snapshot.clear()
            snapshot.update(_clone(response))
            if not snapshot.get("output"):
                snapshot["output"] = output
        return snapshot
    fold = _RESPONSE_FOLDS.get(kind)
    if fold is not None:
        fold(snapshot, event)
    return snapshot


def _at(entries: list[Any], index: Any) -> APIObject:
    """The entry at ``index``; None (the event gave none) is the last one. A position
    past the end, or not a number, is a new entry at the end: a wild index cannot
    grow the list."""
    if index is None and entries:
        return entries[-1]
    if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(entries):
        return entries[index]
    entries.append(APIObject())
    return entries[-1]


def _output_item(snapshot: APIObject, event: Mapping[str, Any]) -> APIObject:
    output = snapshot.setdefault("output", [])
    return _at(output, event.get("output_index"))


def _part(item: APIObject, field: str, index: Any) -> APIObject:
    entries = item.setdefault(field, [])
    if not isinstance(entries, list):
        entries = item[field] = []
    return _at(entries, index)


def _fold_item(snapshot: APIObject, event: Mapping[str, Any]) -> None:
    item = _output_item(snapshot, event)
    item.clear()
    item.update(_clone(event.get("item") or {}))


def _fold_part(snapshot: APIObject, event: Mapping[str, Any]) -> None:
    part = _part(_output_item(snapshot, event), "content", event.get("content_index", 0))
    part.clear()
    part.update(_clone(event.get("part") or {}))


def _fold_summary_part(snapshot: APIObject, event: Mapping[str, Any]) -> None:
    part = _part(_output_item(snapshot, event), "summary", event.get("summary_index", 0))
    part.clear()
    part.update(_clone(event.get("part") or {}))


def _fold_piece(field: str, where: str, index_key: str, *, done: str | None = None) -> Callable[..., None]:
    """A fold that appends an event's ``delta`` (or, when ``done``, sets its value)
    to ``field`` of the part ``where`` (content or summary) or of the item itself."""
    def fold(snapshot: APIObject, event: Mapping[str, Any]) -> None:
        item = _output_item(snapshot, event)
        target = item if where == "item" else _part(item, where, event.get(index_key, 0))
        if done is not None:
            if done in event:
                target[field] = event[done]
        elif isinstance(event.get("delta"), str):
            _append(target, field, event["delta"])
    return fold


_RESPONSE_FOLDS = {
    "response.output_item.added": _fold_item,
    "response.output_item.done": _fold_item,
    "response.content_part.added": _fold_part,
    "response.content_part.done": _fold_part,
    "response.output_text.delta": _fold_piece("text", "content", "content_index"),
    "response.output_text.done": _fold_piece("text", "content", "content_index", done="text"),
    "response.refusal.delta": _fold_piece("refusal", "content", "content_index"),
    "response.refusal.done": _fold_piece("refusal", "content", "content_index", done="refusal"),
    "response.reasoning_text.delta": _fold_piece("text", "content", "content_index"),
    "response.reasoning_text.done": _fold_piece("text", "content", "content_index", done="text"),
    "response.reasoning_summary_part.added": _fold_summary_part,
    "response.reasoning_summary_part.done": _fold_summary_part,
    "response.reasoning_summary_text.delta": _fold_piece("text", "summary", "summary_index"),
    "response.reasoning_summary_text.done": _fold_piece("text", "summary", "summary_index", done="text"),
    "response.function_call_arguments.delta": _fold_piece("arguments", "item", ""),
    "response.function_call_arguments.done": _fold_piece("arguments", "item", "", done="arguments"),
    "response.custom_tool_call_input.delta": _fold_piece("input", "item", ""),
    "response.custom_tool_call_input.done": _fold_piece("input", "item", "", done="input"),
}


def final_response(snapshot: APIObject | None) -> APIObject:
    """A Responses snapshot as the ``response`` a non-streamed call returns."""
    if snapshot is None:
        return _ResponseObject(object="response", status="incomplete", output=[])
    return snapshot if isinstance(snapshot, _ResponseObject) else _ResponseObject(snapshot)


# Delta event type -> the kind of text it carries, for Stream.deltas.
_RESPONSES_PIECES = {
    "response.output_text.delta": "text",
    "response.reasoning_summary_text.delta": "reasoning",
    "response.reasoning_text.delta": "reasoning",
}
_PLAIN_RESPONSE_FIELDS = frozenset(("type", "item_id", "output_index", "content_index", "delta",
                                    "sequence_number", "logprobs", "obfuscation"))


def _responses_pieces(event: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    kind = _RESPONSES_PIECES.get(event.get("type"))
    if kind is not None and event.get("delta"):
        yield kind, event["delta"]


def _responses_plain(event: Mapping[str, Any]) -> tuple[Any, str] | None:
    """An ``output_text`` delta (and nothing else) for one content part."""
    if event.get("type") != "response.output_text.delta" or event.get("logprobs") or not event.keys() <= _PLAIN_RESPONSE_FIELDS:
        return None
    text = event.get("delta")
    if type(text) is not str:
        return None
    return (event.get("output_index"), event.get("content_index")), text


def _responses_with_text(event: Mapping[str, Any], text: str) -> APIObject:
    return APIObject(event, delta=text)


# -- the SDKs' helper events over a kept snapshot --------------------------------


def _partial_json(text: Any) -> Any:
    """The value an unfinished JSON text would have if it ended here: open strings,
    arrays and objects are closed, a dangling key, comma or partial literal is left
    out (what the SDKs' streaming helpers show as ``parsed`` while text arrives).
    None when nothing parses yet."""
    if not isinstance(text, str) or not text.strip():
        return None
    closers, in_string, escaped = [], False, False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            closers.append("]" if char == "[" else "}")
        elif char in "]}" and closers:
            closers.pop()
    body = text + ('"' if in_string and not escaped else "")
    decode = _decoder()
    for _ in range(8):  # trim what cannot stand at the end, a piece at a time
        try:
            return decode(body + "".join(reversed(closers)))
        except ValueError:
            pass
        trimmed = body.rstrip()
        cut = max(trimmed.rfind(","), trimmed.rfind(":"), trimmed.rfind("["), trimmed.rfind("{"))
        if cut < 0:
            return None
        body = trimmed[:cut] if trimmed[cut] in ",:" else trimmed[:cut + 1]
        if trimmed[cut] == ":":  # drop the dangling key too
            quote = body.rstrip().rfind('"', 0, len(body.rstrip()) - 1)
            body = body[:quote] if quote >= 0 else body
    return None


def _chat_events(state: dict[str, Any], chunk: Mapping[str, Any], snapshot: APIObject) -> list[APIObject]:
    """The OpenAI SDK's ``ChatCompletionStream`` events for one chunk: ``chunk``, then
    per choice ``content.delta``, ``refusal.delta``, ``tool_calls.function.arguments.delta``,
    ``logprobs.content.delta``, and their ``.done`` events when a part is complete;
    tokenhub adds ``reasoning.delta`` / ``reasoning.done`` for ``reasoning_content``."""
    events = [APIObject(type="chunk", chunk=chunk, snapshot=snapshot)]
    for piece in chunk.get("choices") or ():
        index = piece.get("index", 0)
        choice = next((c for c in snapshot.get("choices") or () if c.get("index") == index), None)
        if choice is None:
            continue
        done = state.setdefault(index, {"tools": set(), "current": None})
        message, delta = choice["message"], piece.get("delta") or {}
        if delta.get("reasoning_content") and message.get("reasoning_content") is not None:
            events.append(APIObject(type="reasoning.delta", delta=delta["reasoning_content"],
                                    snapshot=message["reasoning_content"]))
        if (delta.get("content") or delta.get("tool_calls")) and message.get("reasoning_content"):
            _reasoning_done(events, done, message)
        if delta.get("content") is not None and message.get("content") is not None:
            parsed = _partial_json(message["content"]) if state.get("parse") else None
            events.append(APIObject(type="content.delta", delta=delta["content"], snapshot=message["content"],
                                    parsed=parsed))
        if delta.get("refusal") is not None and message.get("refusal") is not None:
            events.append(APIObject(type="refusal.delta", delta=delta["refusal"], snapshot=message["refusal"]))
        for call_piece in delta.get("tool_calls") or ():
            call = next((c for c in message.get("tool_calls") or () if c.get("index") == call_piece.get("index")), None)
            if call is None:
                continue
            if done["current"] is not None and done["current"] != call["index"]:
                _content_done(events, done, choice, state)
                _tool_done(events, done, message, done["current"], state)
            done["current"] = call["index"]
            function = call.get("function") or {}
            events.append(APIObject(
                type="tool_calls.function.arguments.delta", name=function.get("name"), index=call["index"],
                arguments=function.get("arguments"), arguments_delta=(call_piece.get("function") or {}).get("arguments") or "",
                parsed_arguments=_partial_json(function.get("arguments")) if function.get("name") in state.get("strict", ()) else None))
        logprobs = piece.get("logprobs") or {}
        if logprobs.get("content") and (choice.get("logprobs") or {}).get("content"):
            events.append(APIObject(type="logprobs.content.delta", content=logprobs["content"],
                                    snapshot=choice["logprobs"]["content"]))
        if choice.get("finish_reason"):
            _reasoning_done(events, done, message)
            _content_done(events, done, choice, state)
            if done["current"] is not None:
                _tool_done(events, done, message, done["current"], state)
    return events


def _reasoning_done(events: list[APIObject], done: dict[str, Any], message: Mapping[str, Any]) -> None:
    if message.get("reasoning_content") and not done.get("reasoning"):
        done["reasoning"] = True
        events.append(APIObject(type="reasoning.done", reasoning=message["reasoning_content"]))


def _content_done(events: list[APIObject], done: dict[str, Any], choice: Mapping[str, Any], state: dict[str, Any]) -> None:
    message = choice["message"]
    if message.get("content") and not done.get("content"):
        done["content"] = True
        output = state.get("output")
        parsed = None
        if output is not None:
            try:
                parsed = output.parse(message["content"])
            except Exception:  # the final object says; the event shows what parsed
                parsed = None
        events.append(APIObject(type="content.done", content=message["content"], parsed=parsed))
    if message.get("refusal") is not None and not done.get("refusal"):
        done["refusal"] = True
        events.append(APIObject(type="refusal.done", refusal=message["refusal"]))
    logprobs = choice.get("logprobs") or {}
    if logprobs.get("content") is not None and not done.get("logprobs"):
        done["logprobs"] = True
        events.append(APIObject(type="logprobs.content.done", content=logprobs["content"]))


def _tool_done(events: list[APIObject], done: dict[str, Any], message: Mapping[str, Any], index: Any,
               state: dict[str, Any]) -> None:
    if index in done["tools"]:
        return
    done["tools"].add(index)
    call = next((c for c in message.get("tool_calls") or () if c.get("index") == index), None)
    if call is None:
        return
    function = call.get("function") or {}
    parsed = None
    if function.get("name") in state.get("strict", ()):
        model = state["strict"][function["name"]]
        try:
            parsed = model.model_validate_json(function.get("arguments") or "{}") if model else _loads(function.get("arguments") or "{}")
        except Exception:
            parsed = None
    events.append(APIObject(type="tool_calls.function.arguments.done", name=function.get("name"), index=index,
                            arguments=function.get("arguments"), parsed_arguments=parsed))


# Anthropic delta type -> (helper event type, the delta's field, the block's field it grows)
_MESSAGE_EVENTS = {
    "text_delta": ("text", "text", "text"),
    "thinking_delta": ("thinking", "thinking", "thinking"),
    "signature_delta": ("signature", "signature", None),
    "input_json_delta": ("input_json", "partial_json", None),
    "citations_delta": ("citation", "citation", None),
}


def _message_events(state: dict[str, Any], event: Mapping[str, Any], snapshot: APIObject) -> list[APIObject]:
    """The Anthropic SDK's ``MessageStream`` events for one raw event: the raw event
    (``content_block_stop`` carrying its finished ``content_block``, ``message_stop``
    the ``message``), plus ``text``, ``thinking``, ``signature``, ``input_json``
    (``partial_json`` and the input parsed so far) and ``citation`` events."""
    kind = event.get("type")
    content = snapshot.get("content") or []
    if kind == "content_block_stop":
        block = _final_block(content, event.get("index"))
        return [APIObject(event, content_block=block)]
    if kind == "message_stop":
        return [APIObject(event, message=final_message(APIObject(snapshot)))]
    if kind != "content_block_delta":
        return [event]
    events = [event]
    delta = event.get("delta") or {}
    helper = _MESSAGE_EVENTS.get(delta.get("type"))
    if helper is None:
        return events
    name, field, grows = helper
    block = _final_block(content, event.get("index"), raw=True)
    extra: dict[str, Any] = {field: delta.get(field)}
    if grows:
        extra["snapshot"] = (block or {}).get(grows)
    elif name == "input_json":
        partial = (block or {}).get("partial_json")
        extra["snapshot"] = _partial_json(partial) if partial else (block or {}).get("input")
    elif name == "citation":
        extra["snapshot"] = (block or {}).get("citations") or []
    events.append(APIObject(type=name, **extra))
    return events


def _final_block(content: list[Any], index: Any, *, raw: bool = False) -> Any:
    """The snapshot's block at ``index`` (the last one if there is none there)."""
    block = content[index] if isinstance(index, int) and 0 <= index < len(content) else (content[-1] if content else None)
    if raw or block is None:
        return block
    finished = _clone(block)
    _close_block(finished)
    return finished


# ---------------------------------------------------------------------------
# Protocols: one object per wire protocol owns all that is specific to it
# ---------------------------------------------------------------------------


class _Protocol:
    """What one wire protocol is: its path and auth, how a stream event becomes an
    item and when the stream is complete, its accumulator and final object, its
    tool definitions and tool-loop turns, and the text and reasoning pieces that the
    helpers and the command line show. Streams, clients, the tool loop and the
    command line ask the protocol; none of them checks which protocol it holds.
    Adding a protocol is adding one subclass and one entry in ``_PROTOCOLS``.
    """

    name = ""  # as the command line and the mock name it
    path = ""  # below the root: POST {root}{path}
    history = "messages"  # the request field that holds the conversation

    def result(self, obj: Any) -> Any:
        """A parsed non-streamed reply as this protocol returns it."""
        return obj

    def auth(self, api_key: str | None, token: str | None) -> dict[str, str]:
        """The auth header(s) for a key or a token (one of them is set)."""
        return {"Authorization": "Bearer %s" % (api_key or token)}

    def owns(self, reply: Mapping[str, Any]) -> bool:
        """True for a finished reply (or a snapshot) of this protocol."""
        raise NotImplementedError

    # -- streams --------------------------------------------------------------
    def step(self, sse: ServerSentEvent, decode: Callable[[str], Any]) -> tuple[Any, bool]:
        """One SSE event -> (the item to yield or None, the stream is complete)."""
        raise NotImplementedError

    def fold(self, snapshot: Any, item: Any) -> APIObject:
        """The accumulator: the snapshot with one more item folded in."""
        raise NotImplementedError

    def final(self, snapshot: Any) -> APIObject:
        """A snapshot as the object a non-streamed call returns."""
        raise NotImplementedError

    def pieces(self, item: Any) -> Iterator[tuple[str, str]]:
        """``("reasoning" | "text", piece)`` in one stream item."""
        raise NotImplementedError

    def piece_reader(self) -> Callable[[Any], Iterator[tuple[str, str]]]:
        """``pieces`` for one stream, which may need to remember what came before;
        called with None at the end, for what it still holds."""
        return lambda item: self.pieces(item) if item is not None else iter(())

    def plain(self, item: Any) -> tuple[Any, str] | None:
        """``(key, text)`` for an item that only adds text to one field, else None.
        A run of such items with one key folds as its last item carrying the run's
        joined text: the same snapshot, without re-copying a growing string."""
        return None

    def with_text(self, item: Any, text: str) -> Any:
        """A plain item carrying other text."""
        raise NotImplementedError

    def helper_events(self, state: dict[str, Any], item: Any, snapshot: APIObject) -> list[Any]:
        """What a ``.stream()`` helper yields for one item, as the SDK's stream helper
        does (``state`` is the stream's own, ``snapshot`` includes the item)."""
        return [item]

    # -- finished replies -----------------------------------------------------
    def final_pieces(self, final: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        """A finished reply's reasoning and text, as a stream would have delivered them."""
        raise NotImplementedError

    def text(self, final: Mapping[str, Any]) -> str:
        """A finished reply's answer text (reasoning and tool calls left out)."""
        return "".join(piece for kind, piece in self.final_pieces(final) if kind == "text")

    def usage(self, final: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
        """(input tokens, output tokens, reasoning tokens or None, cached input tokens or None),
        read the same way whatever this protocol and the provider call them."""
        raise NotImplementedError

    def finish(self, final: Mapping[str, Any]) -> Any:
        """Why a reply ended, in this protocol's words."""
        raise NotImplementedError

    # -- tools and turns ------------------------------------------------------
    def definition(self, tool: Tool) -> dict[str, Any]:
        """A tool as this protocol's request declares it."""
        raise NotImplementedError

    def calls(self, reply: Mapping[str, Any]) -> list[tuple[Any, str, Any, str | None]]:
        """The tool calls a reply asks for: (call id, name, arguments or None, problem or None)."""
        raise NotImplementedError

    def results(self, outcomes: list[tuple[Any, str, bool]]) -> list[APIObject]:
        """The messages that carry tool results (call id, text, failed) back."""
        raise NotImplementedError

    def assistant_turn(self, reply: Mapping[str, Any], keep_reasoning: bool) -> APIObject:
        """The assistant's turn from a reply, ready to append to the messages."""
        raise NotImplementedError

    def assistant_turns(self, reply: Mapping[str, Any], keep_reasoning: bool) -> list[APIObject]:
        """What a reply adds to the conversation (one message, or several items)."""
        return [self.assistant_turn(reply, keep_reasoning)]

    def request(self, *, system: str | None, messages: list[Any], params: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``create`` from the command line's pieces."""
        raise NotImplementedError

    def api(self, client: Any) -> Any:
        """The client's resource for this protocol (``client.chat.completions``...)."""
        raise NotImplementedError


class _ChatCompletions(_Protocol):
    """OpenAI Chat Completions: ``POST {root}/v1/chat/completions``, ends at ``[DONE]``."""

    name = "openai"
    path = "/v1/chat/completions"

    def owns(self, reply: Mapping[str, Any]) -> bool:
        return "choices" in reply

    def step(self, sse: ServerSentEvent, decode: Callable[[str], Any]) -> tuple[Any, bool]:
        return _openai_step(sse, decode)

    def fold(self, snapshot: Any, item: Any) -> APIObject:
        return accumulate_chunk(snapshot, item)

    def final(self, snapshot: Any) -> APIObject:
        return final_completion(snapshot)

    def pieces(self, item: Any) -> Iterator[tuple[str, str]]:
        return _openai_pieces(item)

    def piece_reader(self) -> Callable[[Any], Iterator[tuple[str, str]]]:
        splitter = _ThinkSplitter()  # a <think> block may be cut anywhere across chunks
        return lambda item: _openai_pieces(item, splitter) if item is not None else iter(splitter.end())

    def plain(self, item: Any) -> tuple[Any, str] | None:
        return _openai_plain(item)

    def with_text(self, item: Any, text: str) -> Any:
        return _openai_with_text(item, text)

    def helper_events(self, state: dict[str, Any], item: Any, snapshot: APIObject) -> list[Any]:
        return _chat_events(state, item, snapshot)

    def final_pieces(self, final: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        message = (final.get("choices") or [{}])[0].get("message") or {}
        thought, answer = _split_think(message.get("content"))
        yield "reasoning", message.get("reasoning_content") or ""
        for detail in message.get("reasoning_details") or ():
            if isinstance(detail, dict):
                yield "reasoning", detail.get("text") or ""
        yield "reasoning", thought
        yield "text", answer

    def usage(self, final: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
        usage = final.get("usage") or {}
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        if cached is None:  # DeepSeek's own counters
            cached = usage.get("prompt_cache_hit_tokens")
        return usage.get("prompt_tokens"), usage.get("completion_tokens"), reasoning, cached

    def finish(self, final: Mapping[str, Any]) -> Any:
        return ((final.get("choices") or [{}])[0]).get("finish_reason")

    def definition(self, tool: Tool) -> dict[str, Any]:
        return tool.openai()

    def calls(self, reply: Mapping[str, Any]) -> list[tuple[Any, str, Any, str | None]]:
        message = (reply.get("choices") or [{}])[0].get("message") or {}
        calls = []
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            calls.append((call.get("id"), function.get("name"), *_arguments(function.get("arguments"))))
        return calls

    def results(self, outcomes: list[tuple[Any, str, bool]]) -> list[APIObject]:
        return [APIObject(role="tool", tool_call_id=call_id, content=text) for call_id, text, _ in outcomes]

    def assistant_turn(self, reply: Mapping[str, Any], keep_reasoning: bool) -> APIObject:
        # Within a tool loop the turn goes back as received, reasoning in whatever shape
        # (MiniMax needs its <think> block back whole); across user turns it goes without.
        message = (reply["choices"] or [{}])[0].get("message") or {}
        content = message.get("content")
        if not keep_reasoning and isinstance(content, str):
            content = _split_think(content)[1]
        turn = APIObject(role="assistant", content=content)
        if message.get("tool_calls"):
            turn["tool_calls"] = [_final_call(APIObject(call)) for call in message["tool_calls"]]
        if keep_reasoning:
            for field in ("reasoning_content", "reasoning_details"):
                if field in message and message[field] is not None:
                    turn[field] = message[field]
        return turn

    def request(self, *, system: str | None, messages: list[Any], params: dict[str, Any]) -> dict[str, Any]:
        return dict(params, messages=([{"role": "system", "content": system}] if system else []) + messages)

    def api(self, client: Any) -> Any:
        return client.chat.completions


class _AnthropicMessages(_Protocol):
    """Anthropic Messages: ``POST {root}/v1/messages``, ends at ``message_stop``."""

    name = "anthropic"
    path = "/v1/messages"

    def auth(self, api_key: str | None, token: str | None) -> dict[str, str]:
        headers = {"anthropic-version": _ANTHROPIC_VERSION}
        if api_key:
            headers["x-api-key"] = api_key
        if token:
            headers["Authorization"] = "Bearer %s" % token
        return headers

    def owns(self, reply: Mapping[str, Any]) -> bool:
        return reply.get("type") == "message" or "content" in reply and "choices" not in reply

    def step(self, sse: ServerSentEvent, decode: Callable[[str], Any]) -> tuple[Any, bool]:
        return _anthropic_step(sse, decode)

    def fold(self, snapshot: Any, item: Any) -> APIObject:
        return accumulate_event(snapshot, item)

    def final(self, snapshot: Any) -> APIObject:
        return final_message(snapshot)

    def pieces(self, item: Any) -> Iterator[tuple[str, str]]:
        return _anthropic_pieces(item)

    def plain(self, item: Any) -> tuple[Any, str] | None:
        return _anthropic_plain(item)

    def with_text(self, item: Any, text: str) -> Any:
        return _anthropic_with_text(item, text)

    def helper_events(self, state: dict[str, Any], item: Any, snapshot: APIObject) -> list[Any]:
        return _message_events(state, item, snapshot)

    def final_pieces(self, final: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        for block in final.get("content") or ():
            if block.get("type") == "thinking":
                yield "reasoning", block.get("thinking") or ""
            elif block.get("type") == "text":
                yield "text", block.get("text") or ""

    def usage(self, final: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
        usage = final.get("usage") or {}
        fresh, read = usage.get("input_tokens"), usage.get("cache_read_input_tokens")
        # Anthropic's input_tokens leaves out the cache's reads and writes: all input is their sum.
        total = None if fresh is None else fresh + (read or 0) + (usage.get("cache_creation_input_tokens") or 0)
        return total, usage.get("output_tokens"), None, read

    def finish(self, final: Mapping[str, Any]) -> Any:
        return final.get("stop_reason")

    def definition(self, tool: Tool) -> dict[str, Any]:
        return tool.anthropic()

    def calls(self, reply: Mapping[str, Any]) -> list[tuple[Any, str, Any, str | None]]:
        calls = []
        for block in reply.get("content") or ():
            if block.get("type") != "tool_use":
                continue
            if "partial_json" in block:  # fragments that never parsed (accumulate_event)
                problem = _arguments(block["partial_json"])[1] or "the arguments are not a JSON object"
                calls.append((block.get("id"), block.get("name"), None, problem))
            else:
                calls.append((block.get("id"), block.get("name"), block.get("input") or APIObject(), None))
        return calls

    def results(self, outcomes: list[tuple[Any, str, bool]]) -> list[APIObject]:
        blocks = []
        for call_id, text, failed in outcomes:
            block = APIObject(type="tool_result", tool_use_id=call_id, content=text)
            if failed:
                block["is_error"] = True
            blocks.append(block)
        return [APIObject(role="user", content=blocks)]

    def assistant_turn(self, reply: Mapping[str, Any], keep_reasoning: bool) -> APIObject:
        blocks = [
            APIObject((key, value) for key, value in block.items() if key != "partial_json")
            for block in reply.get("content") or ()
            if keep_reasoning or block.get("type") not in ("thinking", "redacted_thinking")
        ]
        return APIObject(role="assistant", content=blocks)

    def request(self, *, system: str | None, messages: list[Any], params: dict[str, Any]) -> dict[str, Any]:
        request = dict(params, messages=messages)
        request.setdefault("max_tokens", _DEFAULT_ANTHROPIC_MAX_TOKENS)
        if system:
            request["system"] = system
        return request

    def api(self, client: Any) -> Any:
        return client.messages


class _OpenAIResponses(_Protocol):
    """OpenAI Responses: ``POST {root}/v1/responses``, ends at ``response.completed``
    (or ``response.incomplete``); a conversation is a list of items, not messages."""

    name = "responses"
    path = "/v1/responses"
    history = "input"

    def owns(self, reply: Mapping[str, Any]) -> bool:
        return reply.get("object") == "response"

    def result(self, obj: Any) -> Any:
        return _ResponseObject(obj) if isinstance(obj, dict) and obj.get("object") == "response" else obj

    def step(self, sse: ServerSentEvent, decode: Callable[[str], Any]) -> tuple[Any, bool]:
        return _responses_step(sse, decode)

    def fold(self, snapshot: Any, item: Any) -> APIObject:
        return accumulate_response_event(snapshot, item)

    def final(self, snapshot: Any) -> APIObject:
        return final_response(snapshot)

    def pieces(self, item: Any) -> Iterator[tuple[str, str]]:
        return _responses_pieces(item)

    def plain(self, item: Any) -> tuple[Any, str] | None:
        return _responses_plain(item)

    def with_text(self, item: Any, text: str) -> Any:
        return _responses_with_text(item, text)

    def final_pieces(self, final: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
        for item in final.get("output") or ():
            if item.get("type") == "reasoning":
                for part in list(item.get("summary") or ()) + list(item.get("content") or ()):
                    yield "reasoning", part.get("text") or ""
            elif item.get("type") == "message":
                for part in item.get("content") or ():
                    if part.get("type") == "output_text":
                        yield "text", part.get("text") or ""

    def usage(self, final: Mapping[str, Any]) -> tuple[Any, Any, Any, Any]:
        usage = final.get("usage") or {}
        reasoning = (usage.get("output_tokens_details") or {}).get("reasoning_tokens")
        cached = (usage.get("input_tokens_details") or {}).get("cached_tokens")
        return usage.get("input_tokens"), usage.get("output_tokens"), reasoning, cached

    def finish(self, final: Mapping[str, Any]) -> Any:
        finish = final.get("status")
        if (final.get("incomplete_details") or {}).get("reason"):
            finish = "%s (%s)" % (finish, final["incomplete_details"]["reason"])
        return finish

    def definition(self, tool: Tool) -> dict[str, Any]:
        return tool.responses()

    def calls(self, reply: Mapping[str, Any]) -> list[tuple[Any, str, Any, str | None]]:
        return [(item.get("call_id"), item.get("name"), *_arguments(item.get("arguments")))
                for item in reply.get("output") or () if item.get("type") == "function_call"]

    def results(self, outcomes: list[tuple[Any, str, bool]]) -> list[APIObject]:
        return [APIObject(type="function_call_output", call_id=call_id, output=text) for call_id, text, _ in outcomes]

    def assistant_turns(self, reply: Mapping[str, Any], keep_reasoning: bool) -> list[APIObject]:
        # The reply's output items go back as input items, as they came (a reasoning
        # item too, within a tool loop: thinking models need it with their calls).
        return [_clone(item) for item in reply.get("output") or ()
                if keep_reasoning or item.get("type") != "reasoning"]

    def request(self, *, system: str | None, messages: list[Any], params: dict[str, Any]) -> dict[str, Any]:
        request = dict(params, input=messages)
        if "max_tokens" in request:
            request["max_output_tokens"] = request.pop("max_tokens")
        if "reasoning_effort" in request:
            request["reasoning"] = {"effort": request.pop("reasoning_effort")}
        if system:
            request["instructions"] = system
        return request

    def api(self, client: Any) -> Any:
        return client.responses


class _Listing(_ChatCompletions):
    """The gateway's model list (``GET {root}/v1/models``): OpenAI-shaped auth and errors."""

    name = "models"
    path = "/v1/models"


_CHAT = _ChatCompletions()
_MESSAGES = _AnthropicMessages()
_RESPONSES = _OpenAIResponses()
_LISTING = _Listing()
#: The protocols a chat can speak, by the name the command line and the mock use.
_PROTOCOLS = {protocol.name: protocol for protocol in (_CHAT, _MESSAGES, _RESPONSES)}


#: List prices in USD per million tokens, (input, output): tokenhub.store's DeepSeek V4
#: prices (PROTOCOL.md), for the canonical ids and their deepseek/ aliases. Cached input
#: is billed at the input price, as tokenhub.store bills it; output includes reasoning.
_PRICES = {
    "deepseek-v4-pro": (1.80, 3.60), "deepseek/deepseek-v4-pro": (1.80, 3.60),
    "deepseek-v4-flash": (0.15, 0.30), "deepseek/deepseek-v4-flash": (0.15, 0.30),
}


def usage_of(reply: Mapping[str, Any]) -> APIObject:
    """A reply's usage, read the same way for every protocol and provider:
    ``input_tokens`` (all of them, cached included), ``output_tokens`` (reasoning
    included), ``reasoning_tokens`` and ``cached_tokens`` (None where the reply does
    not say), and ``raw``, the reply's own usage object. Works on a stream's final
    object too."""
    protocol = _protocol_of(reply)
    counts = protocol.usage(reply)
    return APIObject(input_tokens=counts[0], output_tokens=counts[1], reasoning_tokens=counts[2],
                     cached_tokens=counts[3], raw=reply.get("usage"))


def cost_of(reply: Mapping[str, Any], *, prices: Mapping[str, tuple[float, float]] | None = None) -> float | None:
    """A reply's cost in USD from its model's list price (``prices`` adds to or
    overrides tokenhub's table: ``{"model": (input, output)}`` in USD per million
    tokens); None for a model without a known price, never a guess."""
    price = dict(_PRICES, **(prices or {})).get(reply.get("model"))
    usage = usage_of(reply)
    if price is None or usage.input_tokens is None or usage.output_tokens is None:
        return None
    return (usage.input_tokens * price[0] + usage.output_tokens * price[1]) / 1e6


class _Meter:
    """A client's running total of usage and cost, shared by its copies and threads."""

    def __init__(self, prices: Mapping[str, tuple[float, float]] | None) -> None:
        import threading

        self.prices = dict(prices or {})
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._total = APIObject(requests=0, input_tokens=0, output_tokens=0, reasoning_tokens=0, cached_tokens=0,
                                cost=0.0, unpriced_requests=0)

    def add(self, reply: Any) -> None:
        if not isinstance(reply, dict) or "usage" not in reply:
            return
        try:
            usage, cost = usage_of(reply), cost_of(reply, prices=self.prices)
        except ValueError:  # not a reply of a chat protocol (a model list)
            return
        if self._pid != os.getpid():  # a child made by fork: the parent's lock may be held for good
            import threading

            self._pid, self._lock = os.getpid(), threading.Lock()
        with self._lock:
            total = self._total
            total["requests"] += 1
            for key in ("input_tokens", "output_tokens", "reasoning_tokens", "cached_tokens"):
                total[key] += usage[key] or 0
            if cost is None:
                total["unpriced_requests"] += 1
            else:
                total["cost"] += cost

    def snapshot(self) -> APIObject:
        with self._lock:
            return APIObject(self._total)


def _protocol_of(reply: Mapping[str, Any]) -> _Protocol:
    """The protocol a finished reply belongs to, asked of each protocol in turn."""
    for protocol in _PROTOCOLS.values():
        if protocol.owns(reply):
            return protocol
    raise ValueError("not a reply of any protocol tokenhub speaks: %s" % _excerpt(repr(reply), 120))


# ---------------------------------------------------------------------------
# Streams: an I/O-free core, and a sync and an async driver over it
# ---------------------------------------------------------------------------


class _StreamCore:
    """One event stream without I/O: feed it the body's bytes (``b""`` at the end of
    the body), pull items. It owns the SSE decoder, the protocol's reading of each
    event and its terminator, and the snapshot when one is kept.

    ``next()`` returns the next item, ``_NEED_DATA`` when it must be fed first, or
    ``_END`` after the terminator; ``done`` turns true with the terminator (which
    may itself be an item, Anthropic's ``message_stop``). Bytes after the
    terminator are not read. An end of body before it is :class:`IncompleteStreamError`.
    """

    def __init__(self, protocol: _Protocol, *, max_line_size: int, max_snapshot_size: int) -> None:
        self.protocol = protocol
        self.done = False
        self.received = 0  # items yielded so far
        self.waiting_since = time.monotonic()  # the last event's arrival, for Timeout.idle
        self.keep = False  # folding items into the snapshot
        self.helpers: dict[str, Any] | None = None  # a .stream() helper's state: yield its events
        self._pending: list[Any] = []  # helper events not yielded yet
        self._step = protocol.step
        self._decode = _decoder()
        self._decoder = SSEDecoder(max_line_size=max_line_size)
        self._events: list[ServerSentEvent] = []  # decoded, not yet stepped
        self._at = 0
        self._eof = False
        self._kept = 0  # characters of event data folded in
        self._max_kept = max_snapshot_size
        self._snapshot: APIObject | None = None
        self._run: list[str] = []  # the text of plain items not folded yet
        self._run_key: Any = None
        self._run_item: Any = None

    def feed(self, data: bytes) -> None:
        if not data:
            self._eof = True
            return
        self._events = self._decoder.feed(data)
        self._at = 0

    def next(self) -> Any:
        if self.done:
            return _END
        events, step = self._events, self._step
        while self._at < len(events):
            sse = events[self._at]
            self._at += 1
            item, self.done = step(sse, self._decode)
            if item is not None:
                if self.keep:
                    self._add(item, len(sse.data))
                self.received += 1
                self.waiting_since = time.monotonic()  # progress is an item: a comment or ping is not
                return item
            if self.done:
                return _END
        if self._eof:
            raise IncompleteStreamError(
                "the stream ended after %d item(s) without its terminator "
                "(the connection closed early)" % self.received,
                received=self.received,
            )
        return _NEED_DATA

    def next_event(self) -> Any:
        """Like ``next()``, but a ``.stream()`` helper's events, several per item."""
        if self._pending:
            return self._pending.pop(0)
        item = self.next()
        if item is _NEED_DATA or item is _END:
            return item
        events = self.protocol.helper_events(self.helpers, item, self.snapshot())
        self._pending = events[1:]
        return events[0]

    def wait(self, timeout: Timeout) -> tuple[float | None, str]:
        """How long the next read may wait, and which limit that is."""
        if timeout.idle is None:
            return timeout.read, "read"
        left = timeout.idle - (time.monotonic() - self.waiting_since)
        if left <= 0:
            raise APITimeoutError("no stream event for %gs (Timeout.idle)" % timeout.idle)
        if timeout.read is not None and timeout.read < left:
            return timeout.read, "read"
        return left, "idle"

    def failed(self, error: BaseException) -> BaseException:
        """The error to raise for one that ended the stream: an APIError carries the
        snapshot (when one is kept); an event too deep to fold is a StreamError."""
        if isinstance(error, RecursionError):
            error = StreamError("a stream event nests too deeply to process")
        if isinstance(error, APIError):
            error.snapshot = self.final() if self.keep else None
        return error

    # -- the snapshot ---------------------------------------------------------

    def keep_from_start(self) -> None:
        """Keep a snapshot if no item has been read yet (helpers call this first)."""
        if not self.keep and not self.received:
            self.keep = True

    def require(self, what: str) -> None:
        self.keep_from_start()
        if not self.keep:
            raise StreamError(
                "%s needs the whole stream, but its first %d item(s) were read raw, and a raw "
                "create(stream=True) keeps nothing: use .stream(...), or a helper before the first item"
                % (what, self.received)
            )

    def snapshot(self) -> APIObject | None:
        self._fold_run()
        return self._snapshot

    def final(self) -> APIObject:
        return self.protocol.final(self.snapshot())

    def _add(self, item: Any, size: int) -> None:
        """Fold an item into the snapshot (plain text pieces in runs, see _Protocol.plain)."""
        self._kept += size
        if self._kept > self._max_kept:
            raise SizeLimitError(
                "the stream's snapshot passed %d characters of event data (max_snapshot_size); "
                "iterate create(stream=True) raw to keep nothing" % self._max_kept
            )
        plain = self.protocol.plain(item)
        if plain is None:
            self._fold_run()
            self._snapshot = self.protocol.fold(self._snapshot, item)
            return
        key, text = plain
        if self._run and (key != self._run_key or len(self._run) >= _RUN_LIMIT):
            self._fold_run()
        self._run.append(text)
        self._run_key, self._run_item = key, item

    def _fold_run(self) -> None:
        if self._run:
            item = self.protocol.with_text(self._run_item, "".join(self._run))
            self._run = []
            self._snapshot = self.protocol.fold(self._snapshot, item)


class _StreamBase:
    """What the sync and async streams share: the reply's head, the snapshot, and
    the end of the exchange."""

    def __init__(self, reply: _Reply, protocol: _Protocol, *, max_line_size: int, max_snapshot_size: int) -> None:
        self.status_code = reply.status
        self.headers = reply.headers
        self.request_id = _request_id(self.headers)
        self._reply: _Reply | None = reply  # None once the stream has ended
        self._core = _StreamCore(protocol, max_line_size=max_line_size, max_snapshot_size=max_snapshot_size)
        self._meter: _Meter | None = None  # the client's running total, counted once at the end
        self._counted = False

    @property
    def received(self) -> int:
        """Items yielded so far."""
        return self._core.received

    @property
    def snapshot(self) -> APIObject | None:
        """The items read so far, accumulated (:func:`accumulate_chunk` or
        :func:`accumulate_event`); None before the first."""
        self._core.require("snapshot")
        return self._core.snapshot()

    def _keep_from_start(self) -> None:
        self._core.keep_from_start()

    def _final(self) -> APIObject:
        final = self._core.final()
        final._request_id = self.request_id
        if self._meter is not None and not self._counted and self._reply is None:
            self._counted = True
            self._meter.add(final)
        finish = (self._core.helpers or {}).get("finish")
        return finish(final) if finish is not None else final

    def _limits(self) -> tuple[float | None, str]:
        return self._core.wait(self._reply.budget.timeout)

    def _end(self, reusable: bool) -> None:
        reply, self._reply = self._reply, None
        if reply is not None:
            reply.finish(reusable)

    def _fail(self, error: BaseException) -> BaseException:
        self._end(False)  # a connection read partway is closed, never pooled
        return self._core.failed(error)


class Stream(_StreamBase):
    """The items of one streamed response, as they arrive, and what they add up to.

    Iterate it for chunk objects (OpenAI protocol) or event objects (Anthropic
    protocol); or read :attr:`text_stream` (the answer's text, piece by piece),
    :attr:`reasoning_stream` (the model's reasoning), or :attr:`deltas` (both, as
    ``(kind, text)`` pairs). :meth:`get_final_completion` / :meth:`get_final_message`
    return the object a non-streamed call would have returned, and :attr:`snapshot`
    what has arrived so far in that shape.

    What it keeps: a stream from ``.stream(...)`` folds every item into its
    snapshot from the start. One from ``create(stream=True)`` keeps nothing while
    it is iterated raw (memory stays flat however long the stream), unless a
    helper (``snapshot``, ``text_stream``, ``deltas``, ``get_final_*``,
    ``until_done``) is used before the first item is read; asking for the final
    object after raw reading is a :class:`StreamError`, never a partial answer.
    A kept snapshot is bounded by the client's ``max_snapshot_size`` (characters
    of event data folded in): past it, :class:`SizeLimitError`.

    It ends cleanly at the protocol's terminator and raises
    :class:`IncompleteStreamError` when the connection ends before it, or
    :class:`APITimeoutError` when the ``read``, ``idle`` or ``total`` limit of
    its :class:`Timeout` passes; such errors carry the partial ``snapshot`` (when
    one is kept). Close it (or use it as a context manager) to stop early; the
    connection goes back to the pool only after a clean end. A stream dropped
    without closing closes its connection at once.
    """

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Any:
        return self._pull(self._core.helpers is not None)

    def _pull(self, helpers: bool) -> Any:
        """The next item (or, for a helper, event); StopIteration at the end."""
        reply, core = self._reply, self._core
        if reply is None:
            if helpers and core._pending:
                return core._pending.pop(0)
            raise StopIteration
        take = core.next_event if helpers else core.next
        try:
            item = take()
            while item is _NEED_DATA:
                core.feed(_run(reply.read(*self._limits())))
                item = take()
            if core.done:
                self._end(_run(reply.drain()))
        except BaseException as error:
            raise self._fail(error)
        if item is _END:
            raise StopIteration
        return item

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop reading; the connection is closed unless the stream had ended."""
        self._end(False)

    @property
    def deltas(self) -> Iterator[tuple[str, str]]:
        """``("reasoning", text)`` and ``("text", text)`` pieces as they arrive
        (the first choice's, on the OpenAI protocol)."""
        self._keep_from_start()
        pieces = self._core.protocol.piece_reader()
        for item in self._raw_items():
            yield from pieces(item)
        yield from pieces(None)

    def _raw_items(self) -> Iterator[Any]:
        while True:
            try:
                yield self._pull(False)
            except StopIteration:
                return

    @property
    def text_stream(self) -> Iterator[str]:
        """The answer's text as it arrives, reasoning left out."""
        return (text for kind, text in self.deltas if kind == "text")

    @property
    def reasoning_stream(self) -> Iterator[str]:
        """The reasoning (``reasoning_content`` / thinking) as it arrives; the answer
        still accumulates into the final object."""
        return (text for kind, text in self.deltas if kind == "reasoning")

    def until_done(self) -> APIObject:
        """Read the stream to its end; the finished object (as a non-streamed call's)."""
        self._core.require("until_done()")
        for _ in self._raw_items():
            pass
        return self._final()

    def get_final_completion(self) -> APIObject:
        """The finished ``chat.completion`` (OpenAI protocol), reading what is left."""
        return self.until_done()

    def get_final_message(self) -> APIObject:
        """The finished ``message`` (Anthropic protocol), reading what is left."""
        return self.until_done()

    def get_final_response(self) -> APIObject:
        """The finished ``response`` (OpenAI Responses protocol), reading what is left."""
        return self.until_done()

    def get_final_text(self) -> str:
        """The finished answer's text (reasoning and tool calls left out)."""
        return self._core.protocol.text(self.until_done())


class AsyncStream(_StreamBase):
    """The async twin of :class:`Stream`: ``async for item in stream``, ``async with``,
    ``await stream.close()``; ``text_stream``, ``reasoning_stream`` and ``deltas``
    are async iterators, and ``until_done()``, ``get_final_completion()``,
    ``get_final_message()`` and ``get_final_text()`` are awaited. It keeps what
    :class:`Stream` keeps and raises what it raises. A task cancelled while it
    reads closes its connection (never returned to the pool).
    """

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Any:
        return await self._pull(self._core.helpers is not None)

    async def _pull(self, helpers: bool) -> Any:
        reply, core = self._reply, self._core
        if reply is None:
            if helpers and core._pending:
                return core._pending.pop(0)
            raise StopAsyncIteration
        take = core.next_event if helpers else core.next
        try:
            item = take()
            while item is _NEED_DATA:
                core.feed(await _run_async(reply.read(*self._limits())))
                item = take()
            if core.done:
                self._end(await _run_async(reply.drain()))
        except BaseException as error:  # CancelledError too
            raise self._fail(error)
        if item is _END:
            raise StopAsyncIteration
        return item

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._end(False)

    async def close(self) -> None:
        """Stop reading; the connection is closed unless the stream had ended."""
        self._end(False)

    @property
    def deltas(self) -> Any:
        """``("reasoning", text)`` and ``("text", text)`` pieces as they arrive."""
        self._keep_from_start()
        return self._pieces(None)

    @property
    def text_stream(self) -> Any:
        """The answer's text as it arrives, reasoning left out."""
        self._keep_from_start()
        return self._pieces("text")

    @property
    def reasoning_stream(self) -> Any:
        """The reasoning as it arrives; the answer still accumulates."""
        self._keep_from_start()
        return self._pieces("reasoning")

    async def _pieces(self, only: str | None) -> Any:
        pieces = self._core.protocol.piece_reader()
        async for item in self._raw_items():
            for kind, text in pieces(item):
                if only is None:
                    yield kind, text
                elif kind == only:
                    yield text
        for kind, text in pieces(None):
            if only is None:
                yield kind, text
            elif kind == only:
                yield text

    async def until_done(self) -> APIObject:
        """Read the stream to its end; the finished object (as a non-streamed call's)."""
        self._core.require("until_done()")
        async for _ in self._raw_items():
            pass
        return self._final()

    async def _raw_items(self) -> Any:
        while True:
            try:
                yield await self._pull(False)
            except StopAsyncIteration:
                return

    async def get_final_completion(self) -> APIObject:
        """The finished ``chat.completion`` (OpenAI protocol), reading what is left."""
        return await self.until_done()

    async def get_final_message(self) -> APIObject:
        """The finished ``message`` (Anthropic protocol), reading what is left."""
        return await self.until_done()

    async def get_final_response(self) -> APIObject:
        """The finished ``response`` (OpenAI Responses protocol), reading what is left."""
        return await self.until_done()

    async def get_final_text(self) -> str:
        """The finished answer's text (reasoning and tool calls left out)."""
        return self._core.protocol.text(await self.until_done())


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

    __slots__ = ("scheme", "host", "port", "root_path", "url", "netloc", "netloc_with_port")

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
        host = "[%s]" % self.host if ":" in self.host else self.host
        self.netloc_with_port = "%s:%d" % (host, self.port)
        default = self.port == (443 if self.scheme == "https" else 80)
        self.netloc = host if default else self.netloc_with_port  # the Host header (RFC 9110 §7.2)
        self.url = "%s://%s%s" % (self.scheme, host + (":%d" % parts.port if parts.port else ""), self.root_path)

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

        url = url if "://" in url else "http://" + url
        # Errors here never show the URL: it may carry a password. One with "#", "?"
        # or "/" unescaped would be split in the wrong place and leak part of itself.
        userinfo = url.partition("://")[2].rpartition("@")[0]
        if any(char in userinfo for char in "#?/"):
            raise ValueError(
                "the proxy URL (HTTPS_PROXY / HTTP_PROXY) has '#', '?' or '/' in its user or password: "
                "percent-encode them (%23, %3F, %2F); the URL is not shown"
            )
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(
                "only http:// proxies are supported (HTTPS_PROXY / HTTP_PROXY), got scheme %r"
                % parts.scheme[:10]
            )
        try:
            port = parts.port
        except ValueError:
            raise ValueError("the proxy URL (HTTPS_PROXY / HTTP_PROXY) has an invalid port; the URL is not shown") from None
        self.host = parts.hostname
        self.port = port or 80
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


def _retry_wait(error: APIError, attempt: int, max_retries: int, budget: _Budget) -> float:
    """The retry policy, a pure function: seconds to wait before another try after
    ``error`` on try ``attempt`` (0-based), or ``error`` raised when there is none."""
    if attempt >= max_retries or budget.spent():
        raise error
    if isinstance(error, APIStatusError):
        if not _should_retry(error.status_code, error.headers):
            raise error
        delay = _retry_delay(error.headers, attempt)
        if delay > _MAX_SERVER_DELAY:
            error.retry_after = delay  # told, not slept
            raise error
    else:
        delay = _retry_delay({}, attempt)
    if budget.end is not None and time.monotonic() + delay >= budget.end:
        raise error  # the wait would outlast the call's total deadline
    return delay


def _request_id(headers: Mapping[str, str]) -> str | None:
    for name in _REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None


# -- plans --------------------------------------------------------------------
#
# How this works: every exchange with a server is written once, as a generator
# (a "plan") that yields each piece of I/O it needs as (target, method name,
# arguments...) and is sent back what came of it, or has the error thrown in.
# _run does each step with blocking calls, _run_async awaits the same methods of
# the asyncio twins (_AsyncPool, _AsyncConn); a target of None is a sleep. So
# retries, failover, framing, deadlines and error mapping exist once, for both
# drivers; the drivers differ only in how a step is done.


def _advance(plan: Any, outcome: Any, error: BaseException | None) -> tuple[bool, Any]:
    """(finished, the plan's next step or its result)."""
    try:
        return False, (plan.throw(error) if error is not None else plan.send(outcome))
    except StopIteration as stop:
        return True, stop.value


def _attempt(step: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
    target, name, *args = step
    try:
        return (time.sleep(*args) if target is None else getattr(target, name)(*args)), None
    except BaseException as error:  # the plan decides, and closes what it holds
        return None, error


async def _attempt_async(step: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
    import asyncio

    target, name, *args = step
    try:
        return (await (asyncio.sleep(*args) if target is None else getattr(target, name)(*args))), None
    except BaseException as error:
        return None, error


def _run(plan: Any) -> Any:
    """Run a plan with blocking I/O; its result."""
    done, value = _advance(plan, None, None)
    while not done:
        done, value = _advance(plan, *_attempt(value))
    return value


async def _run_async(plan: Any) -> Any:
    """Run a plan on the running event loop; its result."""
    done, value = _advance(plan, None, None)
    while not done:
        done, value = _advance(plan, *await _attempt_async(value))
    return value


class _Prepared:
    """One request, built and ready to send: what the plans need of it."""

    __slots__ = ("protocol", "method", "path", "headers", "payload", "budget", "max_retries", "stream",
                 "lazy", "retries", "started", "reply", "content")

    def __init__(
        self, protocol: _Protocol, method: str, path: str, headers: dict[str, str], payload: bytes | None,
        budget: _Budget, max_retries: int, stream: bool,
    ) -> None:
        self.protocol = protocol
        self.method = method
        self.path = path
        self.headers = headers
        self.payload = payload
        self.budget = budget
        self.max_retries = max_retries
        self.stream = stream
        self.lazy = False  # return the 2xx reply unread (with_streaming_response)
        # What the call came to, for with_raw_response: tries after the first, the
        # moment it started, the final reply, and its body once read.
        self.retries = 0
        self.started = time.monotonic()
        self.reply: _Reply | None = None
        self.content: bytes | None = None


def _call_plan(client: Any, pools: list[Any], prepared: _Prepared) -> Any:
    """A plan: the whole call, retries and failover included. Its result is the parsed
    reply, or for a stream the 2xx :class:`_Reply` to read events from."""
    attempt, failed_over = 0, False
    while True:
        index = client._preferred
        try:
            reply = yield from _exchange(pools[index], prepared)
        except APIConnectionError as error:
            if len(pools) > 1:  # a region's backup host: tried at once, once, not counted as a retry
                client._preferred = (index + 1) % len(pools)
                if not failed_over:
                    failed_over = True
                    continue
            delay = _retry_wait(error, attempt, prepared.max_retries, prepared.budget)
        else:
            if 200 <= reply.status < 300:
                break
            raw = yield from reply.read_all(_MAX_ERROR_BODY)
            delay = _retry_wait(_error_reply(reply, raw), attempt, prepared.max_retries, prepared.budget)
        yield None, "sleep", delay
        attempt += 1
    prepared.retries, prepared.reply = attempt, reply
    if prepared.lazy:
        return reply
    if prepared.stream:
        kind = reply.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "text/event-stream":
            return reply
        raise _not_a_stream(kind, reply, (yield from reply.read_all(_MAX_ERROR_BODY)) or b"")
    body = prepared.content = yield from reply.read_all(DEFAULT_MAX_BODY_SIZE)
    return _parsed_body(body, reply, prepared.protocol)


def _parsed_body(body: bytes | None, reply: _Reply, protocol: _Protocol) -> Any:
    """A 2xx reply's JSON body as the protocol returns it, with its request id."""
    if body is None:
        raise SizeLimitError("the response body exceeds %d bytes (DEFAULT_MAX_BODY_SIZE)" % DEFAULT_MAX_BODY_SIZE)
    try:
        result = protocol.result(_loads(body))
    except ValueError as exc:
        raise ProtocolError(
            "expected a JSON body, got %d bytes of %s that do not parse (%s): %s"
            % (len(body), reply.headers.get("content-type", "no content type"), exc, _excerpt(body))
        ) from None
    if isinstance(result, APIObject):
        result._request_id = _request_id(reply.headers)
    return result


def _error_reply(reply: _Reply, raw: bytes | None) -> APIStatusError:
    """The status error for a non-2xx reply, from its (bounded) body."""
    body: Any
    if raw is None:
        body = "(error body over %d bytes, not read)" % _MAX_ERROR_BODY
    else:
        try:
            body = _loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
    if 300 <= reply.status < 400:  # never followed: the key must not leave the configured host
        body = body or "redirect to %s not followed" % reply.headers.get("location", "?")
    error = _status_error(reply.status, body, reply.headers, raw=raw)
    if reply.status == 401:
        site = _SITES.get(reply.pool.origin.host, "a custom base_url (%s)" % reply.pool.origin.host)
        error.message += ("; the key was sent to %s: TokenHub's international and China sites are separate "
                          "products, and a key works only on the site that issued it" % site)
        error.args = (error.message,)
    return error


def _not_a_stream(kind: str, reply: _Reply, raw: bytes) -> APIError:
    """The error for a 2xx reply to stream=True that is not an event stream."""
    try:
        body = _loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("error"):
        return _stream_error(body, reply.headers)
    return StreamError(
        "expected a text/event-stream reply to stream=True, got %s: %s" % (kind or "no content type", _excerpt(raw))
    )


def _exchange(pool: Any, prepared: _Prepared) -> Any:
    """A plan: one request and its response head (interim 1xx heads skipped); a
    kept-alive connection the server had closed while idle is replaced once."""
    origin, budget = pool.origin, prepared.budget
    where = "%s://%s:%d" % (origin.scheme, origin.host, origin.port)
    headers = prepared.headers
    if pool.proxy is not None and origin.scheme == "http":
        headers = dict(headers, **pool.proxy.headers)
    request = _request_bytes(prepared.method, pool.target(origin.root_path + prepared.path), origin.netloc,
                             headers, prepared.payload)
    read = budget.timeout.read
    yield pool, "admit", budget  # the async pool's connection limit
    conn = pool.acquire()
    try:
        while True:
            reused = conn is not None
            reader = _ResponseReader()
            what, limit = "connecting to %s" % where, "connect"
            try:
                if conn is None:
                    conn = yield from _connect(pool, budget)
                what, limit = "%s %s%s%s" % (prepared.method, where, origin.root_path, prepared.path), "read"
                yield conn, "send", request, budget.cap(read)
                while reader.next() is _NEED_DATA:  # every read within Timeout.read and the total
                    yield conn, "receive", reader, budget.cap(read)
                return _Reply(pool, conn, reader, budget)
            except (OSError, APIError) as exc:
                if conn is not None:
                    conn.close()
                if reused and not reader.received and _is_stale(exc):
                    conn = None  # the server closed it while idle: not a real failure
                    continue
                if isinstance(exc, APIError):
                    raise
                raise _io_error(exc, what, budget, limit) from exc
    except BaseException:  # a failure, a cancelled task, an interrupt: never leak the socket
        if conn is not None:
            conn.close()
        pool.free()
        raise


def _connect_left(deadline: float | None, budget: _Budget) -> float | None:
    """What is left of the connect deadline (and the total); socket.timeout once past."""
    wait = None if deadline is None else deadline - time.monotonic()
    if wait is not None and wait <= 0:
        import socket

        raise socket.timeout("timed out")
    return budget.cap(wait)


def _connect(pool: Any, budget: _Budget) -> Any:
    """A plan: a new connection (TCP, a proxy's CONNECT tunnel, the TLS handshake),
    all within one ``Timeout.connect`` and the call's total."""
    limit = budget.timeout.connect
    deadline = None if limit is None else time.monotonic() + limit
    origin, proxy = pool.origin, pool.proxy
    address = (proxy.host, proxy.port) if proxy else (origin.host, origin.port)
    conn = yield pool, "open", address, _connect_left(deadline, budget)
    try:
        if origin.scheme == "https":
            if proxy is not None:
                yield from _tunnel(conn, origin, proxy, deadline, budget)
            yield conn, "start_tls", pool.tls.context(), origin.host, _connect_left(deadline, budget)
        return conn
    except BaseException:
        conn.close()
        raise


def _tunnel(conn: Any, origin: _Origin, proxy: _Proxy, deadline: float | None, budget: _Budget) -> Any:
    """A plan: ask the proxy for a tunnel to the origin (RFC 9110 §9.3.6)."""
    authority = origin.netloc_with_port
    request = _request_bytes("CONNECT", authority, authority, proxy.headers, None)
    yield conn, "send", request, _connect_left(deadline, budget)
    reader = _ResponseReader(no_body=True)
    while reader.next() is _NEED_DATA:
        yield conn, "receive", reader, _connect_left(deadline, budget)
    head = reader.head
    if not 200 <= head.status < 300:
        raise APIConnectionError(
            "the proxy refused the tunnel to %s: %d %s" % (authority, head.status, _excerpt(head.reason, 80))
        )
    if reader.pending:
        raise ProtocolError("the proxy sent %d byte(s) before the tunnel opened" % reader.pending)


class _Reply:
    """A response being read: its pool and connection, its reader, its head and its
    call's clock. Its reads are plans, run by whichever driver holds it."""

    __slots__ = ("pool", "conn", "reader", "budget", "status", "reason", "headers")

    def __init__(self, pool: Any, conn: Any, reader: _ResponseReader, budget: _Budget) -> None:
        head = reader.head
        self.pool = pool
        self.conn = conn
        self.reader = reader
        self.budget = budget
        self.status = head.status
        self.reason = head.reason
        self.headers = head.headers

    def read(self, seconds: float | None, limit: str) -> Any:
        """A plan: the next body bytes (b"" at the end), each read waiting at most
        ``seconds`` (``Timeout.<limit>``) and never past the call's total."""
        reader = self.reader
        item = reader.next()
        while item is _NEED_DATA:
            try:
                yield self.conn, "receive", reader, self.budget.cap(seconds)
            except OSError as exc:
                raise _io_error(exc, "reading the reply", self.budget, limit) from exc
            item = reader.next()
        return b"" if item is _END else item

    def read_all(self, limit: int) -> Any:
        """A plan: the whole body, or None past ``limit`` bytes; frees or closes the connection."""
        parts, size = [], 0
        try:
            while size <= limit:
                chunk = yield from self.read(self.budget.timeout.read, "read")
                if not chunk:
                    self.finish(True)
                    return b"".join(parts)
                parts.append(chunk)
                size += len(chunk)
        except BaseException:
            self.finish(False)
            raise
        self.finish(False)
        return None

    def drain(self) -> Any:
        """A plan: after a stream's terminator, read the reply's last framing bytes (a
        chunked body's end and trailers) so the connection can be reused; True if it
        may be. Never raises, and the whole drain stays within ``_DRAIN_WAIT``
        seconds, ``_MAX_DRAIN`` bytes and the call's total: the items are all
        delivered, so a server slow to finish only costs its connection."""
        reader = self.reader
        if not reader.keep_alive:
            return False  # ends when the server closes: nothing to reuse
        end = time.monotonic() + _DRAIN_WAIT
        if self.budget.end is not None:
            end = min(end, self.budget.end)
        left = _MAX_DRAIN
        try:
            while True:
                item = reader.next()
                if item is _END:
                    return reader.reusable
                if item is _NEED_DATA:
                    wait = end - time.monotonic()
                    if wait <= 0:
                        return False
                    yield self.conn, "receive", reader, wait
                    continue
                left -= len(item)
                if left < 0:
                    return False
        except Exception:  # OSError, APIError, a timeout: the connection is simply not reused
            return False

    def finish(self, reusable: bool) -> None:
        """Give the connection back to the pool (only after a clean, exact end), or close it."""
        conn, self.conn = self.conn, None
        if conn is None:
            return
        if reusable and self.reader.reusable:
            self.pool.release(conn)
        else:
            conn.close()
            self.pool.free()

    def __del__(self) -> None:
        # A reply dropped unfinished (a stream never closed) frees its socket at once,
        # so the server stops sending; it is never returned to the pool half-read.
        conn = self.conn
        if conn is not None:
            self.conn = None
            conn.close()
            self.pool.free()


# -- the blocking side ----------------------------------------------------------


def _has_input(sock: Any) -> bool:
    """True when an idle socket is readable: stray bytes, or the peer's close."""
    import select

    if getattr(sock, "pending", None) and sock.pending():  # TLS bytes already decrypted
        return True
    try:
        if hasattr(select, "poll"):  # select() refuses descriptors past 1023
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        return bool(select.select([sock], [], [], 0)[0])
    except (OSError, ValueError):
        return True


class _Conn:
    """One open blocking connection: a socket (maybe TLS, maybe through a proxy's tunnel)."""

    __slots__ = ("sock", "_wait", "_read_size")

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self._wait: Any = _UNRESOLVED  # the timeout the socket has now
        self._read_size = _FIRST_READ  # small first, doubling per read (see _AsyncConn)

    def _timeout(self, seconds: float | None) -> None:
        if seconds != self._wait:  # a syscall saved on the common, unchanging limit
            self.sock.settimeout(seconds)
            self._wait = seconds

    def send(self, data: bytes, seconds: float | None) -> None:
        self._timeout(seconds)
        self._read_size = _FIRST_READ  # each reply starts small: a kept-alive connection too
        self.sock.sendall(data)

    def receive(self, reader: _ResponseReader, seconds: float | None) -> None:
        """Feed ``reader`` the next bytes, waiting at most ``seconds`` (then socket.timeout)."""
        self._timeout(seconds)
        size = self._read_size
        if size < 4 * _READ_SIZE:
            self._read_size = size * 2
        reader.feed(self.sock.recv(size))

    def start_tls(self, context: ssl.SSLContext, host: str, seconds: float | None) -> None:
        self._timeout(seconds)
        self.sock = context.wrap_socket(self.sock, server_hostname=host)

    def clean(self) -> bool:
        return not _has_input(self.sock)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    # Closing a descriptor (no shutdown, no TLS close_notify) leaves the connection
    # open for the other process that holds it.
    forget = close


class _PoolBase:
    """Idle keep-alive connections to one origin, and where new ones go (a proxy?)."""

    def __init__(self, origin: _Origin, tls: _TLS, *, max_idle: int) -> None:
        self.origin = origin
        self.tls = tls
        self._max_idle = max_idle
        self._idle: list[Any] = []
        self._proxy: Any = _UNRESOLVED
        self._pid = os.getpid()

    def _forked(self) -> bool:
        """True, once, in a child process made by fork: the idle connections it
        inherited are the parent's, so they are let go (their descriptors closed,
        which leaves the parent's connections open) and never used here."""
        if self._pid == os.getpid():
            return False
        self._pid = os.getpid()
        inherited, self._idle = self._idle, []
        for conn in inherited:
            conn.forget()
        return True

    @property
    def proxy(self) -> _Proxy | None:
        """The proxy in use, read from the environment at the first request."""
        if self._proxy is _UNRESOLVED:
            self._proxy = _proxy_for(self.origin)
        return self._proxy

    def target(self, path: str) -> str:
        """The request target: absolute through a plain-http proxy, else the path."""
        if self.proxy is not None and self.origin.scheme == "http":
            return "http://%s%s" % (self.origin.netloc, path)
        return path

    def _take_idle(self) -> Any:
        """An idle connection on which nothing has arrived since its last reply, or None.
        One that has input (stray bytes, or the server's close) is closed, never reused."""
        while self._idle:
            conn = self._idle.pop()
            if conn.clean():
                return conn
            conn.close()
        return None

    def _keep_idle(self, conn: Any) -> None:
        if len(self._idle) < self._max_idle:
            self._idle.append(conn)
        else:
            conn.close()

    def close(self) -> None:
        """Close every idle connection."""
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class _Pool(_PoolBase):
    """The blocking pool, shared by one client's threads."""

    def __init__(self, origin: _Origin, tls: _TLS, *, max_idle: int = 8) -> None:
        import threading

        super().__init__(origin, tls, max_idle=max_idle)
        self._lock = threading.Lock()

    def admit(self, budget: _Budget) -> None:
        """Threads bring their own limit: every call may open a connection."""

    def free(self) -> None:
        """The connection that admit() allowed is gone."""

    def _guard(self) -> Any:
        """The pool's lock; in a child made by fork, a new one (the parent's may have
        been held by a thread that does not exist here)."""
        if self._forked():
            import threading

            self._lock = threading.Lock()
        return self._lock

    def acquire(self) -> _Conn | None:
        with self._guard():
            return self._take_idle()

    def release(self, conn: _Conn) -> None:
        with self._guard():
            self._keep_idle(conn)

    def close(self) -> None:
        with self._guard():
            super().close()

    def __del__(self) -> None:
        # A client dropped without close() must not leave its sockets to the collector.
        try:
            self.close()
        except Exception:  # interpreter shutdown may have torn down what close() uses
            pass

    def open(self, address: tuple[str, int], seconds: float | None) -> _Conn:
        import socket

        sock = socket.create_connection(address, timeout=seconds)
        conn = _Conn(sock)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            conn.close()
            raise
        return conn


# -- the asyncio side -------------------------------------------------------------


def _expire(waiter: Any) -> None:
    if not waiter.done():
        import socket

        waiter.set_exception(socket.timeout("timed out"))


async def _within(awaitable: Any, seconds: float | None) -> Any:
    """``await awaitable``, at most ``seconds``; socket.timeout past it, as the blocking side."""
    import asyncio

    if seconds is None:
        return await awaitable
    try:
        return await asyncio.wait_for(awaitable, seconds)
    except asyncio.TimeoutError:
        import socket

        raise socket.timeout("timed out") from None


class _AsyncConn:
    """One connection on an event loop: an asyncio protocol that keeps what arrives
    until a plan asks for it (``receive``), with flow control both ways."""

    def __init__(self, loop: Any) -> None:
        self.loop = loop
        self.transport: Any = None
        self._chunks: list[bytes] = []
        self._size = 0
        self._eof = False
        self._lost: BaseException | None = None
        self._waiter: Any = None
        self._reading_paused = False
        self._writing_paused = False
        self._drain_waiter: Any = None
        self._read_size = _FIRST_READ

    # How reading works: bytes are taken from the socket only as fast as the reader
    # uses them, so a thousand open streams that nobody reads keep their unread
    # replies in the kernel, not as decoded events here. Each receive() doubles the
    # size of one read, from _FIRST_READ up to 4 × _READ_SIZE (a stream being
    # read is read in large pieces); reading pauses once a read's worth waits unread.
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self._read_size = _FIRST_READ
        self._size_reads()

    def _size_reads(self) -> None:
        # asyncio's plain socket transports read max_size bytes at a time; a TLS
        # transport has no such knob, and is held back by pausing alone.
        if hasattr(self.transport, "max_size"):
            self.transport.max_size = self._read_size

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        elif self._size >= self._read_size and not self._reading_paused:
            self._reading_paused = True
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        return False  # let the transport close itself

    def connection_lost(self, exc: BaseException | None) -> None:
        self._eof = True
        self._lost = exc
        self._wake()
        self.resume_writing()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        waiter, self._drain_waiter = self._drain_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, seconds: float | None) -> None:
        waiter = self._waiter = self.loop.create_future()
        timer = None if seconds is None else self.loop.call_later(seconds, _expire, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    # what the plans ask for
    async def send(self, data: bytes, seconds: float | None) -> None:
        if self._lost is not None or self.transport.is_closing():
            raise self._lost or ConnectionResetError("the connection is closed")
        self._read_size = _FIRST_READ  # each reply starts small: a kept-alive connection too
        self._size_reads()
        self.transport.write(data)
        if self._writing_paused:
            waiter = self._drain_waiter = self.loop.create_future()
            await _within(waiter, seconds)

    async def receive(self, reader: _ResponseReader, seconds: float | None) -> None:
        """Feed ``reader`` the next bytes, waiting at most ``seconds`` (then socket.timeout)."""
        if self._read_size < 4 * _READ_SIZE:
            self._read_size *= 2
            self._size_reads()
        if not self._chunks and not self._eof:
            await self._wait(seconds)
        if self._chunks:
            chunks, self._chunks, self._size = self._chunks, [], 0
            if self._reading_paused:
                self._reading_paused = False
                self.transport.resume_reading()
            reader.feed(chunks[0] if len(chunks) == 1 else b"".join(chunks))
        elif self._lost is not None:
            raise self._lost
        else:
            reader.feed(b"")

    async def start_tls(self, context: ssl.SSLContext, host: str, seconds: float | None) -> None:
        # Under TLS the socket transport feeds asyncio's TLS layer, not this protocol:
        # its reads go back to asyncio's own size, and pausing alone holds a stream back.
        self._read_size = 4 * _READ_SIZE
        self._size_reads()
        self.transport = await _within(
            self.loop.start_tls(self.transport, self, context, server_hostname=host), seconds
        )
        self._size_reads()

    def clean(self) -> bool:
        return not (self._chunks or self._eof) and not self.transport.is_closing()

    def forget(self) -> None:
        """Drop a connection inherited through fork; its loop is the parent's, so
        the transport is left untouched (the parent's connection stays open)."""
        self.transport = None

    def close(self) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            _on_loop(self.loop, transport.abort, transport)


def _on_loop(loop: Any, action: Callable[[], Any], transport: Any = None) -> None:
    """Do ``action`` on ``loop``: at once from its own thread, else handed over (a
    stream dropped in another thread is collected there); with the loop closed,
    free the transport's socket directly."""
    import asyncio

    try:
        if asyncio._get_running_loop() is loop:
            action()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(action)
            return
    except RuntimeError:  # the loop closed in between
        pass
    else:
        if not loop.is_closed():
            return
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is not None:
        try:
            sock.close()
        except Exception:  # a TransportSocket whose loop is gone
            pass


class _AsyncPool(_PoolBase):
    """The pool of one event loop: idle connections, and a limit on those in use
    (``max_connections``; calls past it wait, at most ``Timeout.connect``)."""

    def __init__(self, origin: _Origin, tls: _TLS, loop: Any, *, max_connections: int, max_idle: int = 100) -> None:
        super().__init__(origin, tls, max_idle=max_idle)
        self.loop = loop
        self._max_connections = max_connections
        self._active = 0
        self._waiters: list[Any] = []

    async def admit(self, budget: _Budget) -> None:
        while self._active >= self._max_connections:
            waiter = self.loop.create_future()
            self._waiters.append(waiter)
            try:
                await _within(waiter, budget.cap(budget.timeout.connect))
            except OSError:
                raise APITimeoutError(
                    "no free connection among %d within %gs (max_connections, Timeout.connect)"
                    % (self._max_connections, budget.timeout.connect)
                ) from None
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        self._active += 1

    def free(self) -> None:
        _on_loop(self.loop, self._free)

    def _free(self) -> None:
        self._active -= 1
        while self._waiters:
            waiter = self._waiters.pop(0)
            if not waiter.done():
                waiter.set_result(None)
                return

    def acquire(self) -> _AsyncConn | None:
        self._forked()
        return self._take_idle()

    def release(self, conn: _AsyncConn) -> None:
        self._keep_idle(conn)
        self.free()

    async def open(self, address: tuple[str, int], seconds: float | None) -> _AsyncConn:
        conn = _AsyncConn(self.loop)
        await _within(self.loop.create_connection(lambda: conn, *address), seconds)
        return conn

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class _TLS:
    """A client's one TLS context: built at once when configured, else at first use."""

    __slots__ = ("_context", "_settings")

    def __init__(self, ca_file: str | None, client_cert: Any, context: ssl.SSLContext | None) -> None:
        # What a pickled client carries: the files, which the unpickled one loads again.
        self._settings = None if context is not None else (ca_file, client_cert)
        if context is None and (ca_file or client_cert):
            import ssl

            context = ssl.create_default_context(cafile=ca_file)  # verification stays on
            if client_cert:
                certfile, keyfile = (client_cert, None) if isinstance(client_cert, str) else client_cert
                context.load_cert_chain(certfile, keyfile)
        self._context = context

    def __reduce__(self) -> Any:
        if self._settings is None:
            raise TypeError("a client made with ssl_context= cannot be pickled (an SSLContext cannot be); "
                            "pass ca_file= and client_cert= instead, which are loaded again where it is unpickled")
        return (_TLS, self._settings + (None,))

    def context(self) -> ssl.SSLContext:
        if self._context is None:
            import ssl

            self._context = ssl.create_default_context()
        return self._context


def _io_error(exc: BaseException, what: str, budget: _Budget, limit: str) -> APIConnectionError:
    """Map a socket failure to the matching tokenhub error."""
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
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return True
    return getattr(exc, "nothing_received", False) is True


# ---------------------------------------------------------------------------
# The clients: one configuration, a blocking driver and an asyncio driver
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


class _Client:
    """What both drivers share: the configuration, and building a request."""

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
        max_snapshot_size: int = DEFAULT_MAX_BODY_SIZE,
        max_connections: int = _MAX_CONNECTIONS,
        prices: Mapping[str, tuple[float, float]] | None = None,
    ) -> None:
        api_key = _secret(api_key, "api_key") or _secret(*_env(self._KEY_ENV))
        auth_token = _secret(auth_token, "auth_token") or _secret(*_env(self._TOKEN_ENV))
        if not (api_key or auth_token):
            api_key = _secret(*_env(("TOKENHUB_API_KEY",)))
        self._api_key = api_key
        self._auth_token = auth_token
        urls = _choose_base_urls(base_url, region, self._URL_ENV + ("TOKENHUB_BASE_URL",))
        self._origins = [_Origin(url) for url in (urls if failover else urls[:1])]
        self._tls = _TLS(ca_file, client_cert, ssl_context)
        self._preferred = 0  # the origin that last answered; failover moves it
        origin = self._origins[0]
        self.base_url = origin.url
        if origin.scheme == "http" and not origin.is_loopback():
            import warnings

            warnings.warn(
                "tokenhub: %s is plain http: the API key would cross the network unencrypted"
                % origin.url, RuntimeWarning, stacklevel=3,
            )
        self.max_line_size = max_line_size
        self.max_snapshot_size = max_snapshot_size
        if isinstance(max_connections, bool) or not isinstance(max_connections, int) or max_connections < 1:
            raise ValueError("max_connections must be a whole number >= 1, got %r" % (max_connections,))
        self.max_connections = max_connections
        self.timeout = _as_timeout(timeout)
        self.max_retries = _check_retries(max_retries)
        self.default_headers = dict(default_headers or {})
        self._meter = _Meter(prices)

    # A client pickles as its configuration (key, URLs, limits, prices): the copy opens
    # its own connections and starts its own usage total, so it can go to another
    # process (multiprocessing's spawn, Ray, Spark) and work there.
    _UNPICKLED = ("_pools", "_loop_pools", "_meter")

    def __getstate__(self) -> dict[str, Any]:
        state = {name: value for name, value in self.__dict__.items() if name not in self._UNPICKLED}
        state["_prices"] = self._meter.prices
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        self._meter = _Meter(state.pop("_prices"))
        self.__dict__.update(state)
        self._open_pools()

    def _open_pools(self) -> None:
        raise NotImplementedError

    @property
    def usage(self) -> APIObject:
        """This client's running total (its copies' too): ``requests``, ``input_tokens``,
        ``output_tokens``, ``reasoning_tokens``, ``cached_tokens``, ``cost`` (USD, of the
        replies whose model has a known price) and ``unpriced_requests`` (the others).
        Counted: every non-streamed reply, and every stream read to its end through a
        helper (``.stream()``, ``get_final_*()``); a raw stream keeps no usage."""
        return self._meter.snapshot()

    # Made on access rather than stored: a stored resource pointing back at its client
    # would make a cycle, and a dropped client would keep its sockets until a GC pass.
    @property
    def chat(self) -> _ChatResource:
        """The OpenAI protocol: ``client.chat.completions.create(...)``."""
        return _ChatResource(self)

    @property
    def messages(self) -> _Messages:
        """The Anthropic protocol: ``client.messages.create(...)``."""
        return _Messages(self)

    @property
    def responses(self) -> _Responses:
        """The OpenAI Responses protocol: ``client.responses.create(...)``."""
        return _Responses(self)

    @property
    def models(self) -> _Models:
        """The gateway's model list: ``client.models.list()``."""
        return _Models(self)

    def __repr__(self) -> str:
        key = "set" if (self._api_key or self._auth_token) else "missing"
        return "%s(base_url=%r, api_key=<%s>)" % (type(self).__name__, self.base_url, key)

    def with_options(self, **options: Any) -> Any:
        """A copy with other ``timeout``, ``max_retries`` or ``default_headers``
        (merged into the current ones); it shares this client's connections."""
        unknown = set(options) - set(_OPTIONS)
        if unknown:
            raise TypeError(
                "with_options() takes %s, got %s" % (", ".join(_OPTIONS), ", ".join(sorted(unknown)))
            )
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)  # not copy.copy: that would pickle, and share nothing
        if "timeout" in options:
            clone.timeout = _as_timeout(options["timeout"])
        if "max_retries" in options:
            clone.max_retries = _check_retries(options["max_retries"])
        clone.default_headers = dict(self.default_headers, **(options.get("default_headers") or {}))
        return clone

    # -- building a request ---------------------------------------------------

    def _auth_headers(self, protocol: _Protocol) -> dict[str, str]:
        """The auth header(s) for a protocol; raises when no key is configured."""
        if not (self._api_key or self._auth_token):
            names = self._KEY_ENV + self._TOKEN_ENV + ("TOKENHUB_API_KEY",)
            raise APIError(
                "no API key: pass api_key=... or set the %s environment variable"
                % " or ".join(names)
            )
        return protocol.auth(self._api_key, self._auth_token)

    def _headers(
        self, protocol: _Protocol, stream: bool, extra: Mapping[str, str | None] | None
    ) -> dict[str, str]:
        """Every header of a request; later sources win, a ``None`` value removes one."""
        merged: dict[str, tuple[str, str | None]] = {}
        for source in (
            {
                "User-Agent": _USER_AGENT,
                "Content-Type": "application/json",
                "Accept": "text/event-stream" if stream else "application/json",
                "Accept-Encoding": "identity",  # no header would mean any coding (RFC 9110 §12.5.3)
            },
            self._auth_headers(protocol),
            self.default_headers,
            extra or {},
        ):
            for name, value in source.items():
                if not isinstance(name, str):
                    raise TypeError("header names must be str, got %s" % type(name).__name__)
                merged[name.lower()] = (name, value)
        return {name: _check_header(name, value) for name, value in merged.values() if value is not None}

    def _prepare(self, protocol: _Protocol, path: str, body: dict[str, Any] | None, params: dict[str, Any]) -> _Prepared:
        """One request (a JSON POST, or a GET when ``body`` is None), ready to send.

        ``params`` are the caller's keyword arguments: the request options
        (``extra_*``, ``timeout``, ``max_retries``) are taken out, the rest is body.
        """
        extra_headers = params.pop("extra_headers", None)
        extra_query = params.pop("extra_query", None)
        extra_body = params.pop("extra_body", None)
        budget = _Budget(_as_timeout(params.pop("timeout", self.timeout)))
        max_retries = _check_retries(params.pop("max_retries", self.max_retries))
        payload = None
        if body is not None:
            import json

            body.update(params)
            body.update(extra_body or {})
            try:
                payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
            except (TypeError, ValueError) as exc:  # UnicodeEncodeError: a lone surrogate
                raise TypeError("the request body is not JSON-serializable: %s" % exc) from None
        elif params or extra_body:
            raise TypeError("unexpected arguments for %s: %s" % (path, ", ".join(sorted(params) or ["extra_body"])))
        stream = body is not None and body.get("stream") is True
        if extra_query:
            from urllib.parse import urlencode

            path += "?" + urlencode(extra_query, doseq=True)
        headers = self._headers(protocol, stream, extra_headers)
        method = "GET" if payload is None else "POST"
        return _Prepared(protocol, method, path, headers, payload, budget, max_retries, stream)

    def _finish(self, result: Any, prepared: _Prepared, keep: bool, then: Callable[[Any], Any] | None,
                stream_class: type, raw: str | None = None, helpers: dict[str, Any] | None = None) -> Any:
        """What a call returns: a stream over a streamed reply, else the parsed reply;
        asked ``raw``, an :class:`APIResponse` whose ``parse()`` gives that."""
        if prepared.stream:
            value = stream_class(result, prepared.protocol, max_line_size=self.max_line_size,
                                 max_snapshot_size=self.max_snapshot_size)
            if keep:
                value._keep_from_start()
            value._core.helpers = helpers
            value._meter = self._meter
        else:
            self._meter.add(result)
            value = then(result) if then is not None else result
        if raw is None:
            return value
        reply = prepared.reply
        return APIResponse(reply.status, reply.headers, prepared.content, elapsed=time.monotonic() - prepared.started,
                           retries_taken=prepared.retries, parse=lambda: value)


class TokenHub(_Client):
    """A TokenHub client for both protocols, with blocking I/O (any number of threads).

    ``TokenHub(api_key=None, *, base_url=None, region=None, timeout=600.0,
    max_retries=2, default_headers=None, ...)``

    - ``api_key`` falls back to ``TOKENHUB_API_KEY``. A missing key is an error at
      the first request, naming the variable to set. ``auth_token`` is sent as
      ``Authorization: Bearer`` on both protocols (``x-api-key`` carries
      ``api_key`` on the Anthropic one). A key with a line break or another
      control character is refused at once, without being shown.
    - ``base_url`` (falls back to ``TOKENHUB_BASE_URL``) may be the host root,
      the OpenAI-style ``.../v1`` or tokenhub.store's ``.../api/v1``; the client
      finds ``/v1/chat/completions`` and ``/v1/messages`` from any of them.
    - ``region`` (falls back to ``TOKENHUB_REGION``): ``singapore`` (default),
      ``guangzhou``, ``store``, or the China site's ``china`` / ``china-singapore``
      (keys are per site); give either it or ``base_url``. After a
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
    - ``max_line_size`` bounds one line and one event of a stream (16 MiB);
      ``max_snapshot_size`` what a stream helper keeps for ``get_final_*()``
      (64 Mi characters of event data; a raw ``create(stream=True)`` keeps nothing).
      ``max_connections`` (1,000) bounds the async client's connections in use
      to one host; threads bring their own limit.

    ``client.chat.completions.create(...)`` speaks OpenAI Chat Completions,
    ``client.messages.create(...)`` Anthropic Messages. Close the client (or use
    it as a context manager) to close its kept-alive connections.
    """

    _stream_class = Stream

    def __init__(self, api_key: str | None = None, **options: Any) -> None:
        super().__init__(api_key, **options)
        self._open_pools()

    def _open_pools(self) -> None:
        self._pools = [_Pool(origin, self._tls) for origin in self._origins]

    def __enter__(self) -> TokenHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the kept-alive connections (the client stays usable)."""
        for pool in self._pools:
            pool.close()

    def _call(
        self, protocol: _Protocol, body: dict[str, Any] | None, params: dict[str, Any], *,
        path: str | None = None, keep: bool = False, then: Callable[[Any], Any] | None = None,
        helpers: dict[str, Any] | None = None,
    ) -> Any:
        """Send one request; the parsed reply (passed through ``then``), or a
        :class:`Stream` when streaming (or, asked ``_raw``, an :class:`APIResponse`)."""
        raw = params.pop("_raw", None)
        prepared = self._prepare(protocol, path or protocol.path, body, params)
        prepared.lazy = raw == "stream"
        result = _run(_call_plan(self, self._pools, prepared))
        if raw == "stream":
            return _LazyResponse(self, prepared, keep, then, self._stream_class)
        return self._finish(result, prepared, keep, then, self._stream_class, raw, helpers)

    def _stream(self, create: Callable[..., Any], params: dict[str, Any]) -> Stream:
        return create(**params)

    def _runner(self, create: Callable[..., Any], protocol: _Protocol, tools: list[Any], params: dict[str, Any],
                max_iterations: int, stream: bool) -> ToolRunner:
        return ToolRunner(create, protocol, tools, params, max_iterations=max_iterations, stream=stream)


class AsyncTokenHub(_Client):
    """The asyncio twin of :class:`TokenHub`: the same arguments and environment
    variables, ``await client.chat.completions.create(...)``, ``await
    client.messages.create(...)``, and async streams (``async for``). It may be
    built where no event loop runs and used from one later; connections are
    pooled per event loop, at most ``max_connections`` (1,000) in use to one host.
    Use it as ``async with`` or ``await client.close()``::

        async with tokenhub.AsyncTokenHub() as client:
            reply = await client.chat.completions.create(model=..., messages=...)
            async with client.messages.stream(model=..., max_tokens=..., messages=...) as stream:
                async for text in stream.text_stream:
                    print(text, end="")
            message = await stream.get_final_message()
    """

    _stream_class = AsyncStream

    def __init__(self, api_key: str | None = None, **options: Any) -> None:
        super().__init__(api_key, **options)
        self._open_pools()

    def _open_pools(self) -> None:
        import weakref

        self._loop_pools: Any = weakref.WeakKeyDictionary()  # event loop -> its pools

    def _pools_here(self) -> list[_AsyncPool]:
        import asyncio

        loop = asyncio.get_running_loop()
        pools = self._loop_pools.get(loop)
        if pools is None:
            pools = [_AsyncPool(origin, self._tls, loop, max_connections=self.max_connections)
                     for origin in self._origins]
            self._loop_pools[loop] = pools
        return pools

    async def __aenter__(self) -> AsyncTokenHub:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the kept-alive connections of the running event loop (the client stays usable)."""
        for pool in self._pools_here():
            pool.close()

    async def _call(
        self, protocol: _Protocol, body: dict[str, Any] | None, params: dict[str, Any], *,
        path: str | None = None, keep: bool = False, then: Callable[[Any], Any] | None = None,
        helpers: dict[str, Any] | None = None,
    ) -> Any:
        raw = params.pop("_raw", None)
        prepared = self._prepare(protocol, path or protocol.path, body, params)
        prepared.lazy = raw == "stream"
        result = await _run_async(_call_plan(self, self._pools_here(), prepared))
        if raw == "stream":
            return _AsyncLazyResponse(self, prepared, keep, then, self._stream_class)
        return self._finish(result, prepared, keep, then, self._stream_class, raw, helpers)

    def _stream(self, create: Callable[..., Any], params: dict[str, Any]) -> _AsyncStreamManager:
        return _AsyncStreamManager(create, params)

    def _runner(self, create: Callable[..., Any], protocol: _Protocol, tools: list[Any], params: dict[str, Any],
                max_iterations: int, stream: bool) -> AsyncToolRunner:
        return AsyncToolRunner(create, protocol, tools, params, max_iterations=max_iterations, stream=stream)


class _AsyncStreamManager:
    """What ``stream(...)`` returns on an async client, as in the SDKs: an async context
    manager (not awaited) whose ``async with`` sends the request and gives the stream."""

    def __init__(self, create: Callable[..., Any], params: dict[str, Any]) -> None:
        self._create = create
        self._params = params
        self._stream: AsyncStream | None = None

    async def __aenter__(self) -> AsyncStream:
        self._stream = await self._create(**self._params)
        return self._stream

    async def __aexit__(self, *exc_info: object) -> None:
        if self._stream is not None:
            await self._stream.close()


def _secret(value: Any, name: str | None) -> str | None:
    """A key or token fit for a header, else an error that names ``name`` but never
    shows the value: a key copied from a file often ends in a line break."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise TypeError("%s must be a str, got %s" % (name, type(value).__name__))
    bad = _bad_char(value)
    if bad is not None:
        raise ValueError("%s contains %s (is it pasted with a line break?); the key itself is not shown" % (name, bad))
    return value


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


# -- the module-level client, as the OpenAI SDK's README shows it ---------------
#
# ``tokenhub.api_key = "..."`` (and ``base_url``), then ``tokenhub.chat.completions.create(...)``:
# the client is built on first use from these settings and the environment, and
# built again when a setting changes. This is the module's one piece of state.

api_key: str | None = None
base_url: str | None = None
_MODULE_CLIENT: dict[str, Any] = {}  # "settings" -> (api_key, base_url), "client" -> the client


def __getattr__(name: str) -> Any:
    if name in ("chat", "messages", "responses", "models"):
        return getattr(_module_client(), name)
    raise AttributeError("module 'tokenhub' has no attribute %r" % name)


def _module_client() -> TokenHub:
    settings = (api_key, base_url)
    if _MODULE_CLIENT.get("settings") != settings:
        old = _MODULE_CLIENT.get("client")
        _MODULE_CLIENT["client"] = TokenHub(api_key, base_url=base_url)
        _MODULE_CLIENT["settings"] = settings
        if old is not None:
            old.close()
    return _MODULE_CLIENT["client"]


class _OpenAIEnv:
    """``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` first, then the TOKENHUB_* ones."""

    _KEY_ENV = ("OPENAI_API_KEY",)
    _URL_ENV = ("OPENAI_BASE_URL",)


class _AnthropicEnv:
    """``ANTHROPIC_API_KEY`` (sent as ``x-api-key``), ``ANTHROPIC_AUTH_TOKEN`` (as
    ``Authorization: Bearer``, as Claude Code uses it) and ``ANTHROPIC_BASE_URL``
    first, then the TOKENHUB_* ones."""

    _KEY_ENV = ("ANTHROPIC_API_KEY",)
    _TOKEN_ENV = ("ANTHROPIC_AUTH_TOKEN",)
    _URL_ENV = ("ANTHROPIC_BASE_URL",)


class OpenAI(_OpenAIEnv, TokenHub):
    """The TokenHub client, constructed like ``openai.OpenAI`` (same arguments).

    Reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (then ``TOKENHUB_API_KEY``
    and ``TOKENHUB_BASE_URL``), so a script written for the OpenAI SDK runs
    after changing ``from openai import OpenAI`` to ``from tokenhub import OpenAI``.
    """


class Anthropic(_AnthropicEnv, TokenHub):
    """The TokenHub client, constructed like ``anthropic.Anthropic`` (same arguments).

    ``api_key`` (``ANTHROPIC_API_KEY``) is sent as ``x-api-key``, ``auth_token``
    (``ANTHROPIC_AUTH_TOKEN``, as Claude Code uses it) as ``Authorization: Bearer``;
    with neither, ``TOKENHUB_API_KEY``. The base URL comes from ``ANTHROPIC_BASE_URL``
    (then ``TOKENHUB_BASE_URL``).
    """


class AsyncOpenAI(_OpenAIEnv, AsyncTokenHub):
    """:class:`AsyncTokenHub`, constructed like ``openai.AsyncOpenAI`` (the variables of :class:`OpenAI`)."""


class AsyncAnthropic(_AnthropicEnv, AsyncTokenHub):
    """:class:`AsyncTokenHub`, constructed like ``anthropic.AsyncAnthropic`` (the variables of :class:`Anthropic`)."""


# -- resources: the SDK-shaped surface, shared by both drivers -----------------


class _Resource:
    """What every resource has: ``with_raw_response`` and ``with_streaming_response``."""

    __slots__ = ("_client",)

    def __init__(self, client: Any) -> None:
        self._client = client

    @property
    def with_raw_response(self) -> _RawResource:
        """The same methods, returning an :class:`APIResponse` (``headers``,
        ``status_code``, ``request_id``, ``retries_taken``, ``elapsed``, ``parse()``)."""
        return _RawResource(self, "raw")

    @property
    def with_streaming_response(self) -> _RawResource:
        """The same methods, each a context manager (``async with`` on an async client)
        giving a response whose body is read lazily: ``iter_bytes()``, ``iter_lines()``,
        ``read()``, ``text()``, ``json()``, ``parse()``."""
        return _RawResource(self, "stream")


class _RawResource:
    """A resource's methods called ``with_raw_response`` or ``with_streaming_response``."""

    __slots__ = ("_resource", "_mode")

    def __init__(self, resource: _Resource, mode: str) -> None:
        self._resource = resource
        self._mode = mode

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._resource, name)
        mode, asynchronous = self._mode, isinstance(self._resource._client, AsyncTokenHub)

        def call(*args: Any, **kwargs: Any) -> Any:
            kwargs["_raw"] = mode
            if mode == "stream":
                return _LazyResponseManager(method, args, kwargs, asynchronous)
            return method(*args, **kwargs)

        call.__name__ = name
        return call


class _Completions(_Resource):
    """``client.chat.completions``."""

    __slots__ = ()

    def create(self, *, model: str, messages: list[Any], **params: Any) -> Any:
        """Create a chat completion (OpenAI protocol).

        Every request parameter (``temperature``, ``tools``, ``stream_options``,
        ``thinking``, ``reasoning_effort``, ...) is sent as given. ``extra_body``
        is merged into the JSON body, ``extra_headers`` into the headers (a
        ``None`` value removes one), ``extra_query`` into the URL; ``timeout``
        and ``max_retries`` override the client's for this call. Returns an
        :class:`APIObject` (``object: "chat.completion"``), or with
        ``stream=True`` a :class:`Stream` of ``chat.completion.chunk`` objects
        that ends at ``data: [DONE]`` (on an async client, awaited, an
        :class:`AsyncStream`).
        """
        keep = params.pop("_keep", False)
        helpers = params.pop("_helpers", None)
        return self._client._call(_CHAT, {"model": model, "messages": messages}, params, keep=keep, helpers=helpers)

    def parse(self, *, model: str, messages: list[Any], response_format: Any = None, **params: Any) -> Any:
        """``create()`` with structured outputs, as the SDK's: ``response_format`` is a
        pydantic model class, a dataclass, a TypedDict or a JSON-schema dict, sent as a
        strict ``json_schema``; each choice's ``message.parsed`` holds the parsed answer
        (None when ``message.refusal`` says why not), and calls of strict tools
        (:func:`pydantic_function_tool`) carry ``function.parsed_arguments``."""
        output = _OutputType(response_format) if response_format is not None else None
        if output is not None:
            params["response_format"] = {"type": "json_schema", "json_schema": {
                "name": output.name, "schema": output.schema, "strict": True}}
        tools = params.get("tools")
        then = lambda completion: _parsed_completion(completion, output, tools)  # noqa: E731
        return self._client._call(_CHAT, {"model": model, "messages": messages}, params, then=then)

    def stream(self, *, model: str, messages: list[Any], **params: Any) -> Any:
        """``create(stream=True)``, for ``with ... as stream:`` (``async with`` on an
        async client); asks for usage in the last chunk (``stream_options``) unless
        told otherwise, so the final completion has it::

            with client.chat.completions.stream(model=..., messages=...) as stream:
                for text in stream.text_stream:
                    print(text, end="")
            completion = stream.get_final_completion()
        """
        params.pop("stream", None)
        params.setdefault("stream_options", {"include_usage": True})
        output = params.pop("response_format", None)
        state: dict[str, Any] = {}
        if output is not None and not (isinstance(output, dict) and output.get("type") in ("text", "json_object", "json_schema")):
            output = _OutputType(output)  # a model class or a JSON schema: sent strict, parsed
            params["response_format"] = {"type": "json_schema", "json_schema": {
                "name": output.name, "schema": output.schema, "strict": True}}
            state.update(output=output, parse=True)
        elif output is not None:
            params["response_format"] = output
        tools = params.get("tools")
        state["strict"] = {function.get("name"): getattr(made, "model", None) for made in tools or ()
                           for function in [made.get("function") if isinstance(made, dict) else None]
                           if isinstance(function, dict) and function.get("strict")}
        if state.get("output") is not None or state["strict"]:
            state["finish"] = lambda final: _parsed_completion(final, state.get("output"), tools)
        params.update(model=model, messages=messages, stream=True, _keep=True, _helpers=state)
        return self._client._stream(self.create, params)

    def run_tools(
        self, *, model: str, messages: list[Any], tools: list[Any], max_iterations: int = 10,
        stream: bool = False, **params: Any,
    ) -> Any:
        """Call the model, run the tools it asks for, send back their results, and
        repeat until it answers without tool calls (or ``max_iterations`` replies).

        ``tools`` are :func:`tool` objects or plain functions (``async def`` ones
        too, on an async client); other parameters go to every ``create`` call.
        Each assistant turn goes back with its ``reasoning_content``, as thinking
        models require in a tool loop. Returns a :class:`ToolRunner` (an
        :class:`AsyncToolRunner` on an async client): iterate it for each reply,
        or call ``until_done()``.
        """
        params.update(model=model, messages=messages)
        return self._client._runner(self.create, _CHAT, tools, params, max_iterations, stream)


class _ChatResource:
    """``client.chat``."""

    __slots__ = ("completions",)

    def __init__(self, client: Any) -> None:
        self.completions = _Completions(client)


class _Messages(_Resource):
    """``client.messages``."""

    __slots__ = ()

    def create(self, *, model: str, max_tokens: int, messages: list[Any], **params: Any) -> Any:
        """Create a message (Anthropic protocol, ``x-api-key`` auth).

        Every request parameter (``system``, ``tools``, ``tool_choice``,
        ``stop_sequences``, ``thinking``, ...) is sent as given; ``extra_*`` and
        ``timeout`` as in ``chat.completions.create``. Returns an
        :class:`APIObject` (``type: "message"``), or with ``stream=True`` a
        :class:`Stream` of event objects, ``message_start`` to ``message_stop``;
        ``ping`` and event types this module does not know are passed through.
        """
        keep = params.pop("_keep", False)
        helpers = params.pop("_helpers", None)
        body = {"model": model, "max_tokens": max_tokens, "messages": messages}
        return self._client._call(_MESSAGES, body, params, keep=keep, helpers=helpers)

    def parse(self, *, model: str, max_tokens: int, messages: list[Any], output_format: Any = None,
              **params: Any) -> Any:
        """``create()`` with structured outputs, as the Anthropic SDK's: ``output_format``
        (a pydantic model class, a dataclass, a TypedDict or a JSON-schema dict) is
        sent as ``output_config.format``; the message's ``parsed_output`` holds the
        parsed text."""
        output = _OutputType(output_format) if output_format is not None else None
        if output is not None:
            config = dict(params.pop("output_config", None) or {})
            config["format"] = {"type": "json_schema", "schema": output.schema}
            params["output_config"] = config

        def then(message: APIObject) -> APIObject:
            text = _MESSAGES.text(message)
            message["parsed_output"] = output.parse(text) if output is not None and text else None
            return message

        body = {"model": model, "max_tokens": max_tokens, "messages": messages}
        return self._client._call(_MESSAGES, body, params, then=then)

    def count_tokens(self, *, model: str, messages: list[Any], **params: Any) -> Any:
        """How many input tokens a request would use: ``{"input_tokens": N}``
        (``POST {root}/v1/messages/count_tokens``; ``system``, ``tools`` and the like count too)."""
        return self._client._call(_MESSAGES, {"model": model, "messages": messages}, params,
                                  path="/v1/messages/count_tokens")

    def stream(self, *, model: str, max_tokens: int, messages: list[Any], **params: Any) -> Any:
        """``create(stream=True)``, for ``with ... as stream:`` (``async with`` on an
        async client), as in the Anthropic SDK::

            with client.messages.stream(model=..., max_tokens=..., messages=...) as stream:
                for text in stream.text_stream:
                    print(text, end="")
            message = stream.get_final_message()
        """
        params.pop("stream", None)
        params.update(model=model, max_tokens=max_tokens, messages=messages, stream=True, _keep=True, _helpers={})
        return self._client._stream(self.create, params)

    def run_tools(
        self, *, model: str, max_tokens: int, messages: list[Any], tools: list[Any],
        max_iterations: int = 10, stream: bool = False, **params: Any,
    ) -> Any:
        """The tool loop of ``chat.completions.run_tools``, on the Anthropic
        protocol: each assistant turn goes back whole (thinking blocks included),
        and each tool's result as a ``tool_result`` block (``is_error`` when the
        tool failed)."""
        params.update(model=model, max_tokens=max_tokens, messages=messages)
        return self._client._runner(self.create, _MESSAGES, tools, params, max_iterations, stream)


class _LazyResponseManager:
    """What a ``with_streaming_response`` method returns: a context manager (``async
    with`` on an async client) that sends the request on entry and closes the reply
    on exit."""

    def __init__(self, method: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 asynchronous: bool) -> None:
        self._call = lambda: method(*args, **kwargs)  # noqa: E731
        self._asynchronous = asynchronous
        self._response: Any = None

    def __enter__(self) -> _LazyResponse:
        if self._asynchronous:
            raise TypeError("use 'async with' on an async client's with_streaming_response")
        self._response = self._call()
        return self._response

    def __exit__(self, *exc_info: object) -> None:
        self._response.close()

    async def __aenter__(self) -> _AsyncLazyResponse:
        self._response = await self._call()
        return self._response

    async def __aexit__(self, *exc_info: object) -> None:
        await self._response.close()


class _LazyResponseBase:
    """A 2xx reply whose body is not read yet (``with_streaming_response``): the head's
    fields now; the body, or the value the call returns, when asked."""

    def __init__(self, client: Any, prepared: _Prepared, keep: bool, then: Callable[[Any], Any] | None,
                 stream_class: type) -> None:
        reply = prepared.reply
        self.status_code = reply.status
        self.headers = _Headers(reply.headers)
        self.retries_taken = prepared.retries
        self.elapsed = time.monotonic() - prepared.started
        self._client, self._prepared, self._keep, self._then = client, prepared, keep, then
        self._stream_class = stream_class
        self._content: bytes | None = None
        self._claimed = False

    @property
    def request_id(self) -> str | None:
        return _request_id(self.headers)

    def _claim(self, what: str) -> _Reply:
        """The reply, to be read once: by the bytes, or as the call's value."""
        if self._claimed:
            raise StreamError("%s: this response's body was read already" % what)
        self._claimed = True
        return self._prepared.reply

    def _value_of(self, content: bytes) -> Any:
        value = _parsed_body(content, self._prepared.reply, self._prepared.protocol)
        return self._then(value) if self._then is not None else value

    def _stream(self) -> Any:
        reply = self._claim("parse()")
        return self._client._finish(reply, self._prepared, self._keep, self._then, self._stream_class)

    def _limits(self) -> tuple[float | None, str]:
        return self._prepared.budget.timeout.read, "read"


def _split_lines(pending: bytes, chunk: bytes) -> tuple[list[str], bytes]:
    """Whole lines (decoded, without their ends) in ``pending + chunk``, and what is left."""
    data = pending + chunk
    lines = data.splitlines(keepends=True)
    rest = lines.pop() if lines and not lines[-1].endswith((b"\n", b"\r")) else b""
    return [line.rstrip(b"\r\n").decode("utf-8", "replace") for line in lines], rest


class _LazyResponse(_LazyResponseBase):
    """The blocking reply of a ``with_streaming_response`` call."""

    def iter_bytes(self) -> Iterator[bytes]:
        """The body as it arrives (not kept)."""
        if self._content is not None:
            yield self._content
            return
        reply = self._claim("iter_bytes()")
        while True:
            chunk = _run(reply.read(*self._limits()))
            if not chunk:
                reply.finish(True)
                return
            yield chunk

    def iter_lines(self) -> Iterator[str]:
        """The body's lines as they arrive, decoded, without their line ends."""
        pending = b""
        for chunk in self.iter_bytes():
            lines, pending = _split_lines(pending, chunk)
            yield from lines
        if pending:
            yield pending.decode("utf-8", "replace")

    def read(self) -> bytes:
        if self._content is None:
            self._content = b"".join(self.iter_bytes())
        return self._content

    def text(self) -> str:
        return self.read().decode("utf-8", "replace")

    def json(self) -> Any:
        return _loads(self.read())

    def parse(self) -> Any:
        """The value the call returns without ``with_streaming_response`` (a stream, for ``stream=True``)."""
        return self._stream() if self._prepared.stream else self._value_of(self.read())

    def close(self) -> None:
        self._prepared.reply.finish(False)


class _AsyncLazyResponse(_LazyResponseBase):
    """The asyncio reply of a ``with_streaming_response`` call: its readers are awaited."""

    async def iter_bytes(self) -> Any:
        if self._content is not None:
            yield self._content
            return
        reply = self._claim("iter_bytes()")
        while True:
            chunk = await _run_async(reply.read(*self._limits()))
            if not chunk:
                reply.finish(True)
                return
            yield chunk

    async def iter_lines(self) -> Any:
        pending = b""
        async for chunk in self.iter_bytes():
            lines, pending = _split_lines(pending, chunk)
            for line in lines:
                yield line
        if pending:
            yield pending.decode("utf-8", "replace")

    async def read(self) -> bytes:
        if self._content is None:
            self._content = b"".join([chunk async for chunk in self.iter_bytes()])
        return self._content

    async def text(self) -> str:
        return (await self.read()).decode("utf-8", "replace")

    async def json(self) -> Any:
        return _loads(await self.read())

    async def parse(self) -> Any:
        return self._stream() if self._prepared.stream else self._value_of(await self.read())

    async def close(self) -> None:
        self._prepared.reply.finish(False)


class _Page(APIObject):
    """A page of a list (``client.models.list()``), as the SDKs' pages read: iterating
    it goes through every item, fetching later pages as needed; ``data`` is this
    page's items. On an async client, ``async for`` and ``await get_next_page()``."""

    __slots__ = ("_following", "_asynchronous")

    def __init__(self, page: Mapping[str, Any], following: Callable[[Any], Any], asynchronous: bool = False) -> None:
        super().__init__(page)
        object.__setattr__(self, "_following", following)
        object.__setattr__(self, "_asynchronous", asynchronous)
        self._request_id = getattr(page, "_request_id", None)

    def has_next_page(self) -> bool:
        return bool(self.get("has_more")) and bool(self.get("data")) and bool(self.get("last_id"))

    def get_next_page(self) -> Any:
        """The next page (a coroutine on an async client); an error when there is none."""
        if not self.has_next_page():
            raise RuntimeError("no next page: check has_next_page() first")
        return self._following(self)

    def __iter__(self) -> Any:  # type: ignore[override]  # the items, as the SDKs' pages iterate
        if self._asynchronous:
            raise TypeError("an async client's page is read with 'async for'")
        return self.auto_paging_iter()

    def auto_paging_iter(self) -> Any:
        """Every item of this page and the later ones (an async iterator on an async client)."""
        return self._async_items() if self._asynchronous else self._items()

    def _items(self) -> Iterator[Any]:
        page: Any = self
        while True:
            yield from page.get("data") or ()
            if not page.has_next_page():
                return
            page = page.get_next_page()

    def __aiter__(self) -> Any:
        return self._async_items()

    async def _async_items(self) -> Any:
        page: Any = self
        while True:
            for item in page.get("data") or ():
                yield item
            if not page.has_next_page():
                return
            page = await page.get_next_page()

    def __reduce__(self) -> Any:  # a page pickles as the plain list object it holds
        return (APIObject, (dict(self),))


class _Responses(_Resource):
    """``client.responses``."""

    __slots__ = ()

    def create(self, *, model: str, input: Any, **params: Any) -> Any:
        """Create a response (OpenAI Responses protocol).

        ``input`` is a string or a list of input items (messages with
        ``input_text`` / ``input_image`` parts, ``function_call``,
        ``function_call_output``, ``reasoning`` items). Every other parameter
        (``instructions``, ``tools``, ``tool_choice``, ``max_output_tokens``,
        ``reasoning``, ``text``, ``previous_response_id``, ``store``, ``include``,
        ...) is sent as given; ``extra_*``, ``timeout`` and ``max_retries`` as on
        the other protocols. Returns a ``response`` object (its ``output_text``
        joins the answer's text), or with ``stream=True`` a :class:`Stream` of
        events from ``response.created`` to ``response.completed`` (which alone
        completes it; ``response.incomplete`` ends it with ``incomplete_details``;
        ``response.failed`` and ``error`` raise).
        """
        keep = params.pop("_keep", False)
        return self._client._call(_RESPONSES, {"model": model, "input": input}, params, keep=keep)

    def stream(self, *, model: str, input: Any, **params: Any) -> Any:
        """``create(stream=True)``, for ``with ... as stream:`` (``async with`` on an
        async client): ``text_stream``, ``reasoning_stream``, ``get_final_response()``."""
        params.pop("stream", None)
        params.update(model=model, input=input, stream=True, _keep=True)
        return self._client._stream(self.create, params)

    def retrieve(self, response_id: str, **options: Any) -> Any:
        """A stored response (``GET {root}/v1/responses/{id}``)."""
        from urllib.parse import quote

        return self._client._call(_RESPONSES, None, options, path="/v1/responses/" + quote(response_id, safe=""))

    def run_tools(
        self, *, model: str, input: Any, tools: list[Any], max_iterations: int = 10, stream: bool = False,
        **params: Any,
    ) -> Any:
        """The tool loop of ``chat.completions.run_tools`` on the Responses protocol:
        each ``function_call`` gets a ``function_call_output`` item, and the reply's
        items (reasoning included) go back in ``input``; ``runner.messages`` is that
        list of items."""
        params.update(model=model, input=input)
        return self._client._runner(self.create, _RESPONSES, tools, params, max_iterations, stream)


class _Models(_Resource):
    """``client.models``: ``GET {root}/v1/models``."""

    __slots__ = ()

    def list(self, *, limit: int | None = None, after_id: str | None = None, before_id: str | None = None,
             **options: Any) -> Any:
        """The models the gateway serves, as a page: iterate it for the models (later
        pages are fetched as needed), ``.data`` for this page's, ``has_next_page()``,
        ``get_next_page()``, ``auto_paging_iter()``. ``limit``, ``after_id`` and
        ``before_id`` page as the Anthropic API does (sent as query parameters)."""
        query = {k: v for k, v in (("limit", limit), ("after_id", after_id), ("before_id", before_id)) if v is not None}
        if query:
            options["extra_query"] = dict(options.get("extra_query") or {}, **query)
        later = {k: v for k, v in options.items() if k not in ("_raw", "extra_query")}
        following = lambda page: self.list(limit=limit, after_id=page.last_id, **later)  # noqa: E731
        asynchronous = isinstance(self._client, AsyncTokenHub)
        return self._client._call(_LISTING, None, dict(options),
                                  then=lambda page: _Page(page, following, asynchronous))

    def retrieve(self, model: str, **options: Any) -> Any:
        """One model's entry; NotFoundError when the gateway does not serve it."""
        from urllib.parse import quote

        return self._client._call(_LISTING, None, options, path="/v1/models/" + quote(model, safe=""))


# ---------------------------------------------------------------------------
# Tools: Python functions the model can call, and the loop that calls them
# ---------------------------------------------------------------------------


class Tool:
    """A Python function offered to the model as a tool; made by :func:`tool`.

    ``name``, ``description`` and ``parameters`` (a JSON schema) describe it;
    :meth:`openai` and :meth:`anthropic` render it in each protocol's tool format;
    calling the object calls the function, and :meth:`run` calls it with the
    model's arguments.
    """

    __slots__ = ("function", "name", "description", "parameters", "_enums")

    def __init__(self, function: Callable[..., Any], *, name: str | None = None, description: str | None = None) -> None:
        if not callable(function):
            raise TypeError("@tool expects a function, got %r" % (function,))
        summary, parameters, enums = _describe(function)
        self.function = function
        self.name = name or function.__name__
        self.description = description if description is not None else summary
        self.parameters = parameters
        self._enums = enums

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return "Tool(%r, parameters=%s)" % (self.name, sorted(self.parameters["properties"]))

    def openai(self) -> dict[str, Any]:
        """The OpenAI protocol's definition: ``{"type": "function", "function": {...}}``."""
        return {"type": "function", "function": {
            "name": self.name, "description": self.description, "parameters": self.parameters}}

    def anthropic(self) -> dict[str, Any]:
        """The Anthropic protocol's definition: ``{"name", "description", "input_schema"}``."""
        return {"name": self.name, "description": self.description, "input_schema": self.parameters}

    def responses(self) -> dict[str, Any]:
        """The Responses protocol's (flat) definition: ``{"type": "function", "name", ...}``."""
        return {"type": "function", "name": self.name, "description": self.description,
                "parameters": self.parameters}

    def run(self, arguments: Mapping[str, Any]) -> Any:
        """Call the function with the model's arguments (Enum values become members)."""
        kwargs = {key: self._enums[key](value) if key in self._enums else value for key, value in arguments.items()}
        return self.function(**kwargs)


def tool(function: Callable[..., Any] | None = None, *, name: str | None = None, description: str | None = None) -> Any:
    """Make a :class:`Tool` of a plain function: ``@tokenhub.tool`` or ``@tokenhub.tool(name=...)``.

    The description is the docstring's text before its parameter section; each
    parameter's description comes from a Google (``Args:``), NumPy
    (``Parameters``) or reST (``:param x:``) section. The JSON schema comes from
    the type hints: ``str``, ``int``, ``float``, ``bool``, ``None``,
    ``Optional[...]`` / ``X | None``, ``Union``, ``list[...]``, ``tuple``,
    ``dict[str, ...]``, ``Literal[...]``, ``Enum`` subclasses, ``Annotated[X,
    "description"]``; a parameter with a default is not required::

        @tokenhub.tool
        def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
            \"\"\"Current weather for a city.

            Args:
                city: The city's name, e.g. Paris.
            \"\"\"
    """
    if function is None:
        return lambda f: Tool(f, name=name, description=description)
    return Tool(function, name=name, description=description)


def _describe(function: Callable[..., Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(description, parameters schema, {parameter: Enum class}) of a function."""
    import enum
    import inspect

    try:
        hints = _type_hints(function)
    except Exception as exc:  # a hint that does not evaluate on this Python
        raise TypeError("@tool cannot read the type hints of %s: %s" % (function.__name__, exc)) from None
    summary, notes = _parse_docstring(inspect.getdoc(function) or "")
    properties: dict[str, Any] = {}
    required, enums = [], {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError("@tool: %s takes *%s; a tool's parameters must be named" % (function.__name__, parameter.name))
        hint = hints.get(parameter.name, inspect.Parameter.empty)
        schema = _schema_of(hint, "%s(%s)" % (function.__name__, parameter.name))
        if notes.get(parameter.name):
            schema.setdefault("description", notes[parameter.name])
        if isinstance(hint, type) and issubclass(hint, enum.Enum):
            enums[parameter.name] = hint
        if parameter.default is parameter.empty:
            required.append(parameter.name)
        else:
            default = parameter.default.value if isinstance(parameter.default, enum.Enum) else parameter.default
            if default is None or isinstance(default, (str, int, float, bool)):
                schema["default"] = default
        properties[parameter.name] = schema
    schema = {"type": "object", "properties": properties, "required": required, "additionalProperties": False}
    return summary, schema, enums


def _type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    import typing

    try:
        return typing.get_type_hints(function, include_extras=True)
    except TypeError:  # Python 3.8: no include_extras
        return typing.get_type_hints(function)


_JSON_TYPES = {str: "string", int: "integer", float: "number", bool: "boolean", type(None): "null",
               list: "array", tuple: "array", set: "array", frozenset: "array", dict: "object"}


def _schema_of(hint: Any, where: str) -> dict[str, Any]:
    """The JSON schema of one type hint."""
    import collections.abc
    import enum
    import inspect
    import typing

    if hint is inspect.Parameter.empty or hint is typing.Any:
        return {}
    if hint is None:
        hint = type(None)
    if hint in _JSON_TYPES:
        return {"type": _JSON_TYPES[hint]}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return _enum_schema([member.value for member in hint])
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return _enum_schema(list(args))
    if origin is typing.Union or type(hint).__name__ == "UnionType":  # Optional[X], X | None
        return _union_schema([_schema_of(arg, where) for arg in args])
    if getattr(typing, "Annotated", None) is not None and origin is typing.Annotated:
        schema = _schema_of(args[0], where)
        notes = [note for note in args[1:] if isinstance(note, str)]
        if notes:
            schema["description"] = " ".join(notes)
        return schema
    if origin in (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Iterable):
        items = [arg for arg in args if arg is not Ellipsis]
        schema = {"type": "array"}
        if items:
            schemas = [_schema_of(arg, where) for arg in items]
            schema["items"] = schemas[0] if all(s == schemas[0] for s in schemas) else {"anyOf": schemas}
        return schema
    if origin in (dict, collections.abc.Mapping):
        return {"type": "object", "additionalProperties": _schema_of(args[1], where)} if args else {"type": "object"}
    fields = _record_fields(hint)
    if fields is not None:
        return {"type": "object", "title": hint.__name__,
                "properties": {name: _schema_of(field, "%s.%s" % (where, name)) for name, field in fields.items()},
                "required": list(fields)}
    raise TypeError(
        "@tool cannot describe %s: type %r (expected str, int, float, bool, None, list, tuple, "
        "dict, Literal, an Enum, or Optional / Union / Annotated of them)" % (where, hint)
    )


def _record_fields(hint: Any) -> dict[str, Any] | None:
    """The fields (name -> type) of a dataclass or a TypedDict class, else None."""
    import dataclasses

    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        hints = _type_hints(hint)
        return {field.name: hints.get(field.name, field.type) for field in dataclasses.fields(hint)}
    if isinstance(hint, type) and issubclass(hint, dict) and hasattr(hint, "__total__"):  # a TypedDict
        return _type_hints(hint)
    return None


def _enum_schema(values: list[Any]) -> dict[str, Any]:
    kinds = {_JSON_TYPES.get(type(value)) for value in values}
    schema: dict[str, Any] = {"enum": values}
    if len(kinds) == 1 and None not in kinds:
        schema["type"] = kinds.pop()
    return schema


def _union_schema(options: list[dict[str, Any]]) -> dict[str, Any]:
    """``X | None`` as ``{"type": [X, "null"]}`` when X is a plain type, else anyOf."""
    types = [option.get("type") for option in options]
    if all(isinstance(t, str) and option.keys() == {"type"} for t, option in zip(types, options)):
        return {"type": types}
    return {"anyOf": options}


# Docstring patterns (used with re's own cache, so that re is imported only by @tool).
_DOC_GOOGLE = r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments):$"
_DOC_OTHER = r"^(Returns?|Yields?|Raises?|Examples?|Notes?|See Also|Attributes|Warnings?):$"
_DOC_ITEM = r"^\**(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$"  # "city (str): ..." or "city: ..."
_DOC_REST = r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$"  # ":param str city: ..."


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(the text before any section, {parameter: its description}) of a docstring
    in Google (``Args:``), NumPy (``Parameters`` underlined) or reST (``:param``) style."""
    import re

    lines = doc.splitlines()
    notes: dict[str, str] = {}
    end = len(lines)  # where the description stops
    index = 0
    while index < len(lines):
        stripped = lines[index].strip()
        underlined = index + 1 < len(lines) and _is_rule(lines[index + 1])
        if re.match(_DOC_GOOGLE, stripped):
            end, index = min(end, index), _google_section(lines, index + 1, notes)
        elif stripped in ("Parameters", "Other Parameters") and underlined:
            end, index = min(end, index), _numpy_section(lines, index + 2, notes)
        elif stripped.startswith(":"):
            end, index = min(end, index), _rest_field(lines, index, notes)
        else:
            if underlined or re.match(_DOC_OTHER, stripped):
                end = min(end, index)
            index += 1
    return " ".join(" ".join(lines[:end]).split()), notes


def _is_rule(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and set(stripped) == {"-"}


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _google_section(lines: list[str], index: int, notes: dict[str, str]) -> int:
    """Read "name (type): text" items and their indented continuations; return where it ends."""
    import re

    item_indent, current = None, None
    while index < len(lines):
        line = lines[index]
        if line.strip():
            if _indent(line) == 0:
                break
            item_indent = _indent(line) if item_indent is None else item_indent
            item = re.match(_DOC_ITEM, line.strip()) if _indent(line) <= item_indent else None
            if item:
                current = item.group(1)
                notes[current] = item.group(2).strip()
            elif current is not None:
                notes[current] = (notes[current] + " " + line.strip()).strip()
        index += 1
    return index


def _numpy_section(lines: list[str], index: int, notes: dict[str, str]) -> int:
    """Read "name : type" items with their indented text, up to the next underlined header."""
    current = None
    while index < len(lines) and not (index + 1 < len(lines) and _is_rule(lines[index + 1])):
        line = lines[index]
        if line.strip():
            if _indent(line) == 0:
                current = line.split(":")[0].strip() or None
                if current is not None:
                    notes[current] = ""
            elif current is not None:
                notes[current] = (notes[current] + " " + line.strip()).strip()
        index += 1
    return index


def _rest_field(lines: list[str], index: int, notes: dict[str, str]) -> int:
    """Read one ":param name: text" field and its indented continuation lines."""
    import re

    item = re.match(_DOC_REST, lines[index].strip())
    name = item.group(1) if item else None
    if name is not None:
        notes[name] = item.group(2).strip()
    index += 1
    while index < len(lines) and lines[index].strip() and _indent(lines[index]) > 0:
        if name is not None:
            notes[name] = (notes[name] + " " + lines[index].strip()).strip()
        index += 1
    return index


# -- structured outputs ---------------------------------------------------------


def _strict_schema(schema: Any) -> Any:
    """A JSON schema as strict structured outputs need it (what the SDKs send): every
    object closed (``additionalProperties: false``) with every property required,
    at any depth, ``$defs`` included; a ``default`` of None dropped. A copy."""
    if isinstance(schema, list):
        return [_strict_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    strict = {key: _strict_schema(value) for key, value in schema.items()}
    if strict.get("type") == "object" or "properties" in strict:
        strict["additionalProperties"] = False
        strict["required"] = list(strict.get("properties") or {})
    if "default" in strict and strict["default"] is None:
        del strict["default"]
    return strict


class _OutputType:
    """What ``parse(response_format=X)`` / ``output_format=X`` was given, and how to read
    a reply into it: a pydantic model class (duck-typed: ``model_json_schema()`` and
    ``model_validate_json()``; pydantic is never imported here), a dataclass, a
    TypedDict, or a JSON-schema dict (parsed into an :class:`APIObject`)."""

    def __init__(self, kind: Any) -> None:
        self.kind = kind
        if hasattr(kind, "model_json_schema") and hasattr(kind, "model_validate_json"):
            schema, self.name = kind.model_json_schema(), kind.__name__
        elif isinstance(kind, dict):
            schema, self.name = kind, str(kind.get("title") or "response")
        elif _record_fields(kind) is not None:
            schema, self.name = _schema_of(kind, "response_format"), kind.__name__
        else:
            raise TypeError("response_format / output_format must be a pydantic model class, a dataclass, a "
                            "TypedDict or a JSON-schema dict, got %r" % (kind,))
        self.schema = _strict_schema(schema)

    def parse(self, text: str) -> Any:
        if hasattr(self.kind, "model_validate_json"):
            return self.kind.model_validate_json(text)
        value = _loads(text)
        import dataclasses

        if isinstance(self.kind, type) and dataclasses.is_dataclass(self.kind):
            return _build_dataclass(self.kind, value)
        return value


def _build_dataclass(kind: Any, value: Any) -> Any:
    """A dataclass (nested ones too) from parsed JSON."""
    import dataclasses

    if not (isinstance(kind, type) and dataclasses.is_dataclass(kind) and isinstance(value, dict)):
        return value
    hints = _type_hints(kind)
    return kind(**{field.name: _build_dataclass(hints.get(field.name), value.get(field.name))
                   for field in dataclasses.fields(kind) if field.name in value})


class _FunctionTool(dict):
    """A strict function tool made from a pydantic model (``pydantic_function_tool``):
    the tool definition itself, remembering its model to parse calls with."""

    __slots__ = ("model",)


def pydantic_function_tool(model: Any, *, name: str | None = None, description: str | None = None) -> dict[str, Any]:
    """A strict OpenAI function tool whose arguments are ``model`` (a pydantic model
    class, used duck-typed): pass it in ``tools=`` to ``chat.completions.parse``,
    and each call's ``parsed_arguments`` is a ``model`` instance."""
    output = _OutputType(model)
    definition = {"name": name or output.name, "parameters": output.schema, "strict": True}
    doc = description if description is not None else (getattr(model, "__doc__", None) or "").strip()
    if doc:
        definition["description"] = doc
    made = _FunctionTool(type="function", function=definition)
    made.model = model
    return made


def _parsed_completion(completion: APIObject, output: _OutputType | None, tools: Any) -> APIObject:
    """A completion with ``message.parsed`` (None when refused) and each strict tool
    call's ``function.parsed_arguments``, as the SDK's ``parse()`` returns it."""
    strict = {}
    for made in tools or ():
        function = made.get("function") if isinstance(made, dict) else None
        if isinstance(function, dict) and function.get("strict"):
            strict[function.get("name")] = getattr(made, "model", None)
    for choice in completion.get("choices") or ():
        message = choice.get("message") or APIObject()
        content = message.get("content")
        message["parsed"] = output.parse(content) if output is not None and content and not message.get("refusal") else None
        for call in message.get("tool_calls") or ():
            function = call.get("function") or {}
            if function.get("name") in strict:
                model = strict[function["name"]]
                arguments = function.get("arguments") or "{}"
                function["parsed_arguments"] = model.model_validate_json(arguments) if model else _loads(arguments)
    return completion


def assistant_message(reply: Mapping[str, Any], *, keep_reasoning: bool = False) -> APIObject:
    """The assistant's turn from a reply of either protocol, ready to append to ``messages``.

    Reasoning (``reasoning_content``, thinking blocks) is left out by default:
    across user turns it need not go back (seed 004). A tool-call loop with a
    thinking model must send it back with the turn's tool calls
    (``keep_reasoning=True``, as ``run_tools`` does). For a Responses reply it is a
    list of items, to extend ``input`` with.
    """
    protocol = _protocol_of(reply)
    turns = protocol.assistant_turns(reply, keep_reasoning)
    return turns if protocol.history != "messages" else turns[0]


def _arguments(text: Any) -> tuple[Any, str | None]:
    """(the arguments object, or None and what is wrong with the model's JSON)."""
    try:
        value = _loads(text or "{}")
    except (TypeError, ValueError) as exc:
        return None, "the arguments are not valid JSON (%s): %s" % (exc, _excerpt(str(text), 200))
    if not isinstance(value, dict):
        return None, "the arguments must be a JSON object, got: %s" % _excerpt(str(text), 200)
    return value, None


class _ToolLoop:
    """The tool loop without I/O: what to ask next, which tools to run, what goes back.

    How this works: ``plan()`` is a generator that yields each thing to do, as
    ``("create", params)`` (a model call; send back the reply), ``("final", stream)``
    (read a streamed reply to its end; send back the final object), ``("show",
    reply)`` (hand the reply to the user) and ``("run", tool, arguments)`` (call a
    tool; send back its result, or throw in its exception). :class:`ToolRunner`
    and :class:`AsyncToolRunner` do these steps, blocking or awaited.
    """

    def __init__(self, protocol: _Protocol, tools: list[Any], params: dict[str, Any], *,
                 max_iterations: int, stream: bool) -> None:
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int) or max_iterations < 1:
            raise ValueError("max_iterations must be a whole number >= 1, got %r" % (max_iterations,))
        self.tools: dict[str, Tool] = {}
        for item in tools:
            made = item if isinstance(item, Tool) else Tool(item)
            if made.name in self.tools:
                raise ValueError("two tools are named %r" % made.name)
            self.tools[made.name] = made
        self.protocol = protocol
        history = params.pop(protocol.history)
        if isinstance(history, str):  # the Responses protocol's short form of one user message
            history = [APIObject(role="user", content=history)]
        self.messages: list[Any] = list(history)
        self.final: APIObject | None = None
        self.max_iterations_reached = False
        self.stream = stream
        self.params = dict(params, tools=[protocol.definition(t) for t in self.tools.values()], stream=stream)
        self.max_iterations = max_iterations

    def plan(self) -> Any:
        for _ in range(self.max_iterations):
            reply = yield "create", dict(self.params, **{self.protocol.history: list(self.messages)})
            yield "show", reply
            if self.stream:
                reply = yield "final", reply
            self.final = reply
            self.messages.extend(self.protocol.assistant_turns(reply, True))
            calls = self.protocol.calls(reply)
            if not calls:
                return
            outcomes = []
            for call_id, name, arguments, problem in calls:
                found = self.tools.get(name)
                if found is None:
                    outcomes.append((call_id, "Error: there is no tool named %r (the tools are: %s)"
                                     % (name, ", ".join(self.tools)), True))
                elif problem is not None:
                    outcomes.append((call_id, "Error: %s" % problem, True))
                else:
                    try:
                        result = yield "run", found, arguments
                    except Exception as exc:  # the model hears of it and may try again
                        outcomes.append((call_id, "Error: %s raised %s: %s" % (name, type(exc).__name__, exc), True))
                    else:
                        outcomes.append((call_id, _result_text(result), False))
            self.messages.extend(self.protocol.results(outcomes))
        self.max_iterations_reached = True


def _result_text(result: Any) -> str:
    if isinstance(result, str):
        return result
    import json

    return json.dumps(result, ensure_ascii=False, default=str)


class _RunnerBase:
    """What the two tool runners share: the loop's state, read through."""

    def __init__(self, create: Callable[..., Any], protocol: _Protocol, tools: list[Any], params: dict[str, Any],
                 *, max_iterations: int, stream: bool) -> None:
        self._loop = _ToolLoop(protocol, tools, params, max_iterations=max_iterations, stream=stream)
        self._create = create
        self._plan = self._loop.plan()
        self._outcome: tuple[Any, BaseException | None] = (None, None)

    @property
    def messages(self) -> list[Any]:
        """The whole transcript so far, ready to continue the conversation."""
        return self._loop.messages

    @property
    def final(self) -> APIObject | None:
        return self._loop.final

    @property
    def max_iterations_reached(self) -> bool:
        return self._loop.max_iterations_reached

    def _next_step(self) -> tuple[bool, Any]:
        return _advance(self._plan, *self._outcome)


class ToolRunner(_RunnerBase):
    """The loop of ``run_tools``: call the model, run the tools it asks for, repeat.

    Iterate it for each model reply (with ``stream=True``, each reply's
    :class:`Stream`, which the loop finishes reading if you do not);
    :meth:`until_done` runs the loop to its end and returns the last reply.
    ``messages`` is the whole transcript so far (assistant turns with their
    reasoning and tool calls, then the results), ready to continue the
    conversation. The loop ends at a reply without tool calls, or after
    ``max_iterations`` replies (their tools run, ``max_iterations_reached``
    set). A tool that raises, an unknown tool, or arguments that are not a JSON
    object go back to the model as an error result, not up to you.
    """

    def __iter__(self) -> ToolRunner:
        return self

    def __next__(self) -> Any:
        done, step = self._next_step()
        while not done and step[0] != "show":
            self._outcome = self._do(step)
            done, step = self._next_step()
        if done:
            raise StopIteration
        self._outcome = (None, None)
        return step[1]

    def _do(self, step: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
        try:
            if step[0] == "create":
                return self._create(**dict(step[1], _keep=self._loop.stream)), None
            if step[0] == "final":
                with step[1] as stream:
                    return stream.until_done(), None
            return step[1].run(step[2]), None
        except Exception as error:
            return None, error

    def until_done(self) -> APIObject:
        """Run the loop to its end; the last reply."""
        for _ in self:
            pass
        assert self.final is not None
        return self.final


class AsyncToolRunner(_RunnerBase):
    """The loop of ``run_tools`` on an async client: ``async for reply in runner``
    (each an :class:`AsyncStream` with ``stream=True``), ``await runner.until_done()``.
    A tool may be a plain function or an ``async def`` one."""

    def __aiter__(self) -> AsyncToolRunner:
        return self

    async def __anext__(self) -> Any:
        done, step = self._next_step()
        while not done and step[0] != "show":
            self._outcome = await self._do(step)
            done, step = self._next_step()
        if done:
            raise StopAsyncIteration
        self._outcome = (None, None)
        return step[1]

    async def _do(self, step: tuple[Any, ...]) -> tuple[Any, BaseException | None]:
        try:
            if step[0] == "create":
                return await self._create(**dict(step[1], _keep=self._loop.stream)), None
            if step[0] == "final":
                async with step[1] as stream:
                    return await stream.until_done(), None
            result = step[1].run(step[2])
            if hasattr(result, "__await__"):
                result = await result
            return result, None
        except Exception as error:
            return None, error

    async def until_done(self) -> APIObject:
        """Run the loop to its end; the last reply."""
        async for _ in self:
            pass
        assert self.final is not None
        return self.final


# ---------------------------------------------------------------------------
# Batches: many requests at once, each result as it finishes (run_batch, tokenhub batch)
# ---------------------------------------------------------------------------

#: The OpenAI Batch API's request URLs that TokenHub serves, and the protocol of each.
_BATCH_URLS = {"/v1/chat/completions": _CHAT, "/v1/messages": _MESSAGES, "/v1/responses": _RESPONSES}
_BATCH_KEYS = ("custom_id", "method", "url", "body")
_BATCH_CONCURRENCY = 8
_BATCH_RETRIES = 5  # a batch rides out a 429 storm longer than one call does (the client's 2)
_SLOW_DOWN = (429, 529)  # "too many requests", "overloaded": the batch's concurrency halves
_SHOWN_PROBLEMS = 20  # input problems listed in a BatchInputError's message (all are in .problems)


class _BatchItem:
    """One request of a batch: its id, protocol and body, and its place in the input."""

    __slots__ = ("custom_id", "protocol", "body", "number")

    def __init__(self, custom_id: str, protocol: _Protocol, body: dict[str, Any], number: int) -> None:
        self.custom_id = custom_id
        self.protocol = protocol
        self.body = body
        self.number = number


def _json_shown(value: Any) -> str:
    """A JSON value for a message: its kind and a short excerpt."""
    import json

    kinds = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}
    kind = kinds.get(type(value), "a number")
    if value is None:
        return kind
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text, kind = repr(value), "a %s" % type(value).__name__
    return "%s (%s)" % (kind, _excerpt(text, 60))


def _batch_item(value: Any, number: int, model: str | None) -> _BatchItem:
    """The request one input value stands for; ValueError says what is wrong with it.

    The long form is OpenAI's Batch API request line (``custom_id``, ``method``,
    ``url``, ``body``); the short forms (a prompt string, ``{"prompt": ...}``,
    ``{"messages": [...]}``, which may also carry ``custom_id`` and body
    parameters) are Chat Completions requests whose id is ``number``."""
    if isinstance(value, str):
        value = {"prompt": value}
    if not isinstance(value, dict):
        raise ValueError('expected a batch request {"custom_id", "method", "url", "body"}, a prompt string, '
                         '{"prompt": ...} or {"messages": [...]}, got %s' % _json_shown(value))
    if {"url", "body", "method"} & set(value):
        unknown = sorted(set(value) - set(_BATCH_KEYS))
        if unknown:
            raise ValueError("unexpected key(s) %s in a batch request (expected %s)"
                             % (", ".join(map(repr, unknown)), ", ".join(_BATCH_KEYS)))
        custom_id = _batch_id(value.get("custom_id"))
        if value.get("method", "POST") != "POST":
            raise ValueError('expected "method": "POST", got %s' % _json_shown(value["method"]))
        protocol = _BATCH_URLS.get(value.get("url")) if isinstance(value.get("url"), str) else None
        if protocol is None:
            raise ValueError('expected "url" to be one of %s, got %s' % (", ".join(_BATCH_URLS), _json_shown(value.get("url"))))
        if not isinstance(value.get("body"), dict):
            raise ValueError('expected "body" to be an object, got %s' % _json_shown(value.get("body")))
        body = dict(value["body"])
    else:
        if ("prompt" in value) == ("messages" in value):
            raise ValueError('expected an object with "prompt" or "messages" (one of them), or a batch request '
                             '{"custom_id", "method", "url", "body"}; got one with keys %s'
                             % (", ".join(map(repr, sorted(value))) or "none"))
        body = dict(value)
        custom_id = _batch_id(body.pop("custom_id", str(number)))
        if "prompt" in body:
            prompt = body.pop("prompt")
            if not isinstance(prompt, str):
                raise ValueError('expected "prompt" to be a string, got %s' % _json_shown(prompt))
            body["messages"] = [{"role": "user", "content": prompt}]
        protocol = _CHAT
    return _BatchItem(custom_id, protocol, _batch_body(body, protocol, model), number)


def _batch_id(custom_id: Any) -> str:
    if not isinstance(custom_id, str) or not custom_id:
        raise ValueError('expected "custom_id" to be a non-empty string, got %s' % _json_shown(custom_id))
    return custom_id


def _batch_body(body: dict[str, Any], protocol: _Protocol, model: str | None) -> dict[str, Any]:
    """A request body checked for what its protocol cannot do without, the default model filled in."""
    if "model" not in body:
        if model is None:
            raise ValueError('no "model" in the body, and no default model was given')
        body["model"] = model
    if not isinstance(body["model"], str) or not body["model"]:
        raise ValueError('expected "model" to be a model id, got %s' % _json_shown(body["model"]))
    if protocol is _RESPONSES:
        if "input" not in body:
            raise ValueError('expected "input" in the body of a /v1/responses request')
    elif not isinstance(body.get("messages"), list) or not body["messages"]:
        raise ValueError('expected "messages" to be a non-empty list, got %s' % _json_shown(body.get("messages")))
    if protocol is _MESSAGES and "max_tokens" not in body:
        raise ValueError('expected "max_tokens" in the body: the Anthropic protocol requires it')
    if body.get("stream") not in (None, True, False):
        raise ValueError('expected "stream" to be true or false, got %s' % _json_shown(body["stream"]))
    if body.get("stream") is True and protocol is _CHAT:
        body.setdefault("stream_options", {"include_usage": True})  # else a streamed reply has no usage, no cost
    return body


def _batch_items(entries: Iterable[tuple[int, Any]], model: str | None, *, unit: str) -> list[_BatchItem]:
    """Every request of an input, checked whole: BatchInputError lists each bad
    entry (a ValueError in ``entries`` is one that could not be read) and each
    ``custom_id`` used twice, by ``unit`` and number."""
    items: list[_BatchItem] = []
    problems: list[tuple[int, str]] = []
    first: dict[str, int] = {}
    for number, value in entries:
        try:
            if isinstance(value, ValueError):
                raise value
            item = _batch_item(value, number, model)
        except ValueError as error:
            problems.append((number, str(error)))
            continue
        if first.setdefault(item.custom_id, number) != number:
            problems.append((number, "custom_id %s was already used on %s %d"
                             % (_excerpt(repr(item.custom_id), 80), unit, first[item.custom_id])))
            continue
        items.append(item)
    if problems:
        raise BatchInputError(problems, unit)
    return items


def _batch_lines(data: bytes) -> Iterator[tuple[int, Any]]:
    """The values of a JSON Lines input, numbered by line; blank lines are skipped
    (but counted), and a line that does not parse is a ValueError in its place."""
    import json

    for number, line in enumerate(data.split(b"\n"), 1):
        if not line.strip():
            continue
        try:
            text = line.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield number, ValueError("not UTF-8 text (byte %d of the line)" % (exc.start + 1))
            continue
        if number == 1 and text.startswith("\ufeff"):
            text = text[1:]
        try:
            yield number, json.loads(text)
        except RecursionError:
            yield number, ValueError("JSON nested too deeply")
        except ValueError as exc:
            yield number, ValueError("not JSON: %s" % exc)


def _shard_of(custom_id: str, count: int) -> int:
    """The shard (0 to count - 1) a request belongs to: a hash of its id, the same on every machine."""
    import hashlib

    digest = hashlib.sha256(custom_id.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count


def _check_shard(shard: Any) -> tuple[int, int] | None:
    if shard is None:
        return None
    if (not isinstance(shard, tuple) or len(shard) != 2 or any(isinstance(n, bool) or not isinstance(n, int) for n in shard)
            or not 0 <= shard[0] < shard[1]):
        raise ValueError("shard must be (index, count) with 0 <= index < count, got %r" % (shard,))
    return shard


def _async_twin(client: Any) -> AsyncTokenHub:
    """An async client with a blocking client's configuration and usage total."""
    if isinstance(client, AsyncTokenHub):
        return client
    if not isinstance(client, TokenHub):
        raise TypeError("client must be a TokenHub or AsyncTokenHub, got %s" % type(client).__name__)
    twin = object.__new__(AsyncTokenHub)
    twin.__dict__.update({name: value for name, value in client.__dict__.items() if name not in _Client._UNPICKLED})
    twin._meter = client._meter  # what the batch spends shows in client.usage
    twin._open_pools()
    return twin


class _Gate:
    """How many of a batch's requests may be in flight. At most ``ceiling``; when
    the server says slow down (429, 529) the limit halves, at most once per round
    (only a request sent after the last cut can cut again), and nothing starts
    until its Retry-After has passed; each success adds 1/limit, so the limit
    climbs back by one per round: additive increase, multiplicative decrease."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = ceiling
        self.limit = float(ceiling)
        self.active = 0
        self.tickets = 0  # attempts let in so far
        self.cut_at = 0  # the ticket count when the limit was last cut
        self.open_at = 0.0  # the monotonic time before which nothing starts
        self._waiters: list[Any] = []

    async def enter(self) -> int:
        """Wait for a free place; the attempt's ticket."""
        import asyncio

        while True:
            pause = self.open_at - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            elif self.active < int(self.limit):
                break
            else:
                waiter = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    await waiter
                finally:
                    if waiter in self._waiters:
                        self._waiters.remove(waiter)
        self.active += 1
        self.tickets += 1
        return self.tickets

    def leave(self, ticket: int, *, slow_down: float | None = None, succeeded: bool = False) -> None:
        """An attempt ended: told to slow down (and for how long), a success, or neither."""
        self.active -= 1
        if slow_down is not None:
            if ticket > self.cut_at:
                self.limit = max(1.0, self.limit / 2)
                self.cut_at = self.tickets
            self.open_at = max(self.open_at, time.monotonic() + slow_down)
        elif succeeded:
            self.limit = min(float(self.ceiling), self.limit + 1.0 / self.limit)
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _failure_code(error: BaseException) -> str:
    """The ``error.code`` of a failed request's output line."""
    if isinstance(error, APIStatusError):
        return str(error.code or error.type or "http_%d" % error.status_code)
    for kind, code in ((APITimeoutError, "timeout"), (APIConnectionError, "connection_error"),
                       (SizeLimitError, "size_limit"), (StreamError, "stream_error"), (ProtocolError, "protocol_error")):
        if isinstance(error, kind):
            return code
    return "invalid_request" if isinstance(error, (TypeError, ValueError)) else "error"


class Batch:
    """A batch of requests being run; what :func:`run_batch` returns.

    Iterate it, with ``for`` from blocking code or ``async for`` from a coroutine,
    for each result as it finishes: an :class:`APIObject` in OpenAI's Batch
    output format, ``{"id", "custom_id", "response", "error"}``. A success has
    ``response = {"status_code", "request_id", "body"}`` (``body`` the reply, or
    for ``"stream": true`` the object the stream adds up to) and ``error`` None;
    a failure has ``error = {"code", "message"}`` and ``response`` the HTTP error
    reply, or None when there was none. A batch runs once.

    ``summary`` tells how it goes, at any moment: ``total`` (requests this run
    will try), ``succeeded``, ``failed``, ``skipped`` (in ``skip``),
    ``in_flight``, ``concurrency`` (the limit now: lower after a 429 or 529),
    ``input_tokens``, ``output_tokens``, ``reasoning_tokens``, ``cost`` (USD, of
    the replies whose model has a price), ``unpriced`` (replies whose model has
    none), ``elapsed`` (seconds), ``requests_per_second``, and ``stopped``: None,
    ``"cost"`` (``max_cost`` was reached), ``"authentication"`` (a 401: the
    key is wrong, so nothing more is sent) or ``"interrupted"``.
    """

    def __init__(self, items: list[_BatchItem], *, client: Any = None, concurrency: int = _BATCH_CONCURRENCY,
                 max_retries: int = _BATCH_RETRIES, max_cost: float | None = None,
                 prices: Mapping[str, tuple[float, float]] | None = None, shard: tuple[int, int] | None = None,
                 skip: Iterable[str] = ()) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError("concurrency must be a whole number >= 1, got %r" % (concurrency,))
        if max_cost is not None and (isinstance(max_cost, bool) or not isinstance(max_cost, (int, float))
                                     or not 0 <= max_cost < float("inf")):
            raise ValueError("max_cost must be a number of USD >= 0, got %r" % (max_cost,))
        shard = _check_shard(shard)
        self._owns_client = not isinstance(client, AsyncTokenHub)  # made here, or the twin of a blocking one
        self._client = _async_twin(client) if client is not None else AsyncTokenHub()
        if not (self._client._api_key or self._client._auth_token):
            self._client._auth_headers(_CHAT)  # the error that names the variables to set
        self.concurrency = concurrency
        self.max_retries = _check_retries(max_retries)
        self.max_cost = max_cost
        self.prices = {**_PRICES, **self._client._meter.prices, **dict(prices or {})}
        if shard is not None:
            items = [item for item in items if _shard_of(item.custom_id, shard[1]) == shard[0]]
        done = set(skip)
        import collections

        self._pending = collections.deque(item for item in items if item.custom_id not in done)
        if max_cost is not None:
            unpriced = sorted({item.body["model"] for item in self._pending} - set(self.prices))
            if unpriced:
                raise ValueError("max_cost needs a price for every model, and %s %s none; give --price MODEL=IN/OUT "
                                 "(the command) or prices={model: (input, output)} (Python), in USD per million tokens"
                                 % (", ".join(unpriced), "has" if len(unpriced) == 1 else "have"))
        self._count = dict(total=len(self._pending), succeeded=0, failed=0, skipped=len(items) - len(self._pending),
                           in_flight=0, input_tokens=0, output_tokens=0, reasoning_tokens=0, cost=0.0,
                           unpriced=0, priced=0)
        self._gate = _Gate(concurrency)
        self._started: float | None = None
        self._ended: float | None = None
        self.stopped: str | None = None
        self._ran = False

    @property
    def summary(self) -> APIObject:
        """How the batch stands (see the class's description)."""
        count = self._count
        end = self._ended if self._ended is not None else time.monotonic()
        elapsed = end - self._started if self._started is not None else 0.0
        finished = count["succeeded"] + count["failed"]
        return APIObject(
            total=count["total"], succeeded=count["succeeded"], failed=count["failed"], skipped=count["skipped"],
            in_flight=count["in_flight"], not_started=len(self._pending), concurrency=max(1, int(self._gate.limit)),
            input_tokens=count["input_tokens"], output_tokens=count["output_tokens"],
            reasoning_tokens=count["reasoning_tokens"], cost=count["cost"], unpriced=count["unpriced"],
            elapsed=elapsed, requests_per_second=finished / elapsed if elapsed > 0 else 0.0, stopped=self.stopped,
        )

    def __iter__(self) -> Iterator[APIObject]:
        """The results, from blocking code: the batch runs on an event loop of its own."""
        import asyncio

        loop = asyncio.new_event_loop()
        results = self._results()
        try:
            while True:
                try:
                    yield loop.run_until_complete(results.__anext__())
                except StopAsyncIteration:
                    return
        finally:
            try:
                loop.run_until_complete(results.aclose())
                loop.run_until_complete(self._client.close())  # this loop's connections: the loop ends here
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    def __aiter__(self) -> Any:
        return self._results()

    async def _results(self) -> Any:
        import asyncio

        if self._ran:
            raise RuntimeError("a Batch runs once; for the rest, call run_batch() again with skip= the ids done")
        self._ran = True
        self._started = time.monotonic()
        done: Any = asyncio.Queue()
        workers = [asyncio.ensure_future(self._work(done)) for _ in range(min(self.concurrency, len(self._pending)))]
        live = len(workers)
        try:
            while live:
                result = await done.get()
                if result is None:
                    live -= 1
                elif isinstance(result, BaseException):
                    raise result  # a failure of tokenhub's own, not of a request
                else:
                    yield result
        except (asyncio.CancelledError, KeyboardInterrupt, GeneratorExit):
            self.stopped = self.stopped or "interrupted"
            raise
        finally:
            self._ended = time.monotonic()
            for worker in workers:
                worker.cancel()
            if workers:
                await asyncio.gather(*workers, return_exceptions=True)
            if self._owns_client:
                await self._client.close()

    def _next(self) -> _BatchItem | None:
        """The next request to start, or None: no more, or the batch has stopped."""
        if self.stopped or not self._pending:
            return None
        count = self._count
        if self.max_cost is not None:
            # Spent, plus what those in flight will likely cost (the mean so far), plus this one.
            each = count["cost"] / count["priced"] if count["priced"] else 0.0
            if count["cost"] >= self.max_cost or count["cost"] + (count["in_flight"] + 1) * each > self.max_cost:
                self.stopped = "cost"
                return None
        count["in_flight"] += 1
        return self._pending.popleft()

    async def _work(self, done: Any) -> None:
        import asyncio

        try:
            while True:
                item = self._next()
                if item is None:
                    return
                try:
                    result = await self._run(item)
                finally:
                    self._count["in_flight"] -= 1
                done.put_nowait(result)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: B902 - handed to the reader, raised there
            done.put_nowait(exc)
        finally:
            done.put_nowait(None)

    async def _run(self, item: _BatchItem) -> APIObject:
        """One request, tried as the client's retry policy says (a stream that
        breaks is tried again whole); its output line."""
        import asyncio

        budget = _Budget(self._client.timeout)
        attempt = 0
        while True:
            ticket = await self._gate.enter()
            try:
                reply = await self._send(item)
            except (APIError, TypeError, ValueError) as error:
                delay = self._again_after(error, attempt, budget)
                slow_down = None
                if isinstance(error, APIStatusError) and error.status_code in _SLOW_DOWN:
                    slow_down = delay if delay is not None else _retry_delay(error.headers, attempt)
                self._gate.leave(ticket, slow_down=slow_down)
                if delay is None:
                    return self._failed(item, error)
                await asyncio.sleep(delay)
                attempt += 1
            except BaseException:
                self._gate.leave(ticket)
                raise
            else:
                self._gate.leave(ticket, succeeded=True)
                return self._succeeded(item, reply)

    def _again_after(self, error: BaseException, attempt: int, budget: _Budget) -> float | None:
        """Seconds before trying a failed request again, by the client's retry policy;
        None when it is not tried again (a 401 also stops the batch: every other
        request would fail the same way)."""
        if isinstance(error, AuthenticationError):
            self.stopped = "authentication"
            return None
        if not isinstance(error, APIError):
            return None  # a request the client refused to send (TypeError, ValueError)
        try:
            return _retry_wait(error, attempt, self.max_retries, budget)
        except APIError:
            return None

    async def _send(self, item: _BatchItem) -> APIObject:
        result = await self._client._call(item.protocol, dict(item.body), {"max_retries": 0}, keep=True)
        if isinstance(result, AsyncStream):
            try:
                return await result.until_done()
            finally:
                await result.close()
        return result

    def _succeeded(self, item: _BatchItem, reply: APIObject) -> APIObject:
        count = self._count
        count["succeeded"] += 1
        try:
            usage = usage_of(reply)
        except ValueError:  # not a reply shape tokenhub knows: kept, but nothing to count
            usage = APIObject()
        for key in ("input_tokens", "output_tokens", "reasoning_tokens"):
            count[key] += usage.get(key) or 0
        price = self.prices.get(reply.get("model")) or self.prices.get(item.body["model"])
        if price is None or usage.get("input_tokens") is None or usage.get("output_tokens") is None:
            count["unpriced"] += 1
        else:
            count["cost"] += (usage["input_tokens"] * price[0] + usage["output_tokens"] * price[1]) / 1e6
            count["priced"] += 1
        response = APIObject(status_code=200, request_id=reply._request_id, body=reply)
        return _batch_line(item.custom_id, response, None)

    def _failed(self, item: _BatchItem, error: BaseException) -> APIObject:
        self._count["failed"] += 1
        response = None
        if isinstance(error, APIStatusError):
            response = APIObject(status_code=error.status_code, request_id=error.request_id, body=error.body)
        return _batch_line(item.custom_id, response, APIObject(code=_failure_code(error), message=str(error)))


def _batch_line(custom_id: str, response: APIObject | None, error: APIObject | None) -> APIObject:
    return APIObject(id="batch_req_" + os.urandom(12).hex(), custom_id=custom_id, response=response, error=error)


def run_batch(
    requests: Iterable[Any],
    *,
    client: TokenHub | AsyncTokenHub | None = None,
    model: str | None = None,
    concurrency: int = _BATCH_CONCURRENCY,
    max_retries: int = _BATCH_RETRIES,
    max_cost: float | None = None,
    prices: Mapping[str, tuple[float, float]] | None = None,
    shard: tuple[int, int] | None = None,
    skip: Iterable[str] = (),
) -> Batch:
    """Run many requests at once; iterate the :class:`Batch` for each result as it finishes::

        for result in tokenhub.run_batch(["Hello", "Name a prime"], model="deepseek-v4-flash"):
            print(result.custom_id, result.response.body.choices[0].message.content)

        async for result in tokenhub.run_batch(requests, client=async_client):
            ...

    - ``requests``: OpenAI Batch API request lines as dicts (``custom_id``,
      ``method``, ``url`` of ``/v1/chat/completions``, ``/v1/messages`` or
      ``/v1/responses``, ``body``), or short forms: a prompt string,
      ``{"prompt": ...}`` or ``{"messages": [...]}`` (whose ``custom_id`` is
      their 1-based position, as a string). All are checked before anything is
      sent: :class:`BatchInputError` lists every bad one, and every id used twice.
    - ``client``: a :class:`TokenHub` or :class:`AsyncTokenHub` whose key,
      URL and limits are used (its ``usage`` counts the batch); by default one
      made from the environment. ``model``: the model of requests that name none.
    - ``concurrency`` requests in flight (8); a 429 or 529 halves it and its
      Retry-After holds new requests back; it climbs back as requests succeed.
      Each request is tried up to ``max_retries`` (5) more times, as the
      client retries; then its result carries the error.
    - ``max_cost`` (USD): no request starts once the cost so far plus an
      estimate for those in flight would pass it (``summary.stopped == "cost"``);
      every model needs a price, from tokenhub's table or ``prices``
      (``{"model": (input, output)}`` in USD per million tokens).
    - ``shard=(i, n)``: only the requests whose ``custom_id`` hashes to shard
      ``i`` of ``n``, so ``n`` processes or machines split one input with no
      coordination. ``skip``: ids already done, not sent again.

    Clients pickle and survive ``fork``, so this runs as is in
    ``multiprocessing`` workers, Ray tasks or Spark partitions.
    """
    items = _batch_items(enumerate(requests, 1), model, unit="request")
    return Batch(items, client=client, concurrency=concurrency, max_retries=max_retries, max_cost=max_cost,
                 prices=prices, shard=shard, skip=skip)


# ---------------------------------------------------------------------------
# Command line: python3 tokenhub.py chat "..." | models | batch
# ---------------------------------------------------------------------------

_DEFAULT_MODEL = "deepseek-v4-flash"  # current, fast, thinks by default (PROTOCOL.md)
_DEFAULT_ANTHROPIC_MAX_TOKENS = 4096  # the Anthropic protocol requires max_tokens

#: Seed 000's model table (id, vendor), for ``tokenhub models`` when the gateway cannot be asked.
_DOCUMENTED_MODELS = (
    ("deepseek-v4-flash-202605", "deepseek"), ("deepseek-v4-pro-202606", "deepseek"),
    ("deepseek-v4-flash", "deepseek"), ("deepseek-v4-pro", "deepseek"), ("deepseek-v3.2", "deepseek"),
    ("glm-5.1", "zhipu"), ("glm-5v-turbo", "zhipu"), ("glm-5-turbo", "zhipu"), ("glm-5", "zhipu"),
    ("kimi-k2.6", "moonshot"), ("kimi-k2.5", "moonshot"),
    ("minimax-m3", "minimax"), ("minimax-m2.7", "minimax"), ("minimax-m2.5", "minimax"),
    ("hy-mt2-plus", "tencent"), ("hy3-preview", "tencent"),
)


class _UsageError(Exception):
    """A command-line mistake or missing setting: exit status 2."""


def main(argv: list[str] | None = None) -> int:
    """The ``tokenhub`` command (``python3 tokenhub.py``, ``python3 -m tokenhub``):
    ``chat``, ``models`` and ``batch``; ``--help`` on each. Returns the exit status: 0 ok,
    1 an API error, 2 a usage error, 130 interrupted."""
    parser = _cli_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return args.run(args)
    except KeyboardInterrupt:
        sys.stdout.write("\n")  # what was printed stays; the stream was closed on the way out
        sys.stdout.flush()
        return 130
    except _UsageError as error:
        print("tokenhub: %s" % error, file=sys.stderr)
        return 2
    except APIError as error:
        print("tokenhub: %s" % _shown(str(error), sys.stderr), file=sys.stderr)
        return 1


def _shown(text: str, out: Any) -> str:
    """``text`` made safe for ``out``: on a terminal, control characters and escape
    sequences from the server are written visibly escaped (``\\x1b``), never obeyed."""
    if not out.isatty():
        return text
    import re

    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", lambda m: "\\x%02x" % ord(m.group()), text)


def _strict_json(value: Any) -> str:
    """JSON text as RFC 8259 allows it: a number Python parsed as inf or nan (a literal
    NaN, or 1e999) is written as null, and a note on stderr says so."""
    import json

    try:
        return json.dumps(value, ensure_ascii=False, indent=2, allow_nan=False)
    except ValueError:
        pass
    changed = []

    def finite(item: Any) -> Any:
        if isinstance(item, float) and (item != item or item in (float("inf"), float("-inf"))):
            changed.append(item)
            return None
        if isinstance(item, dict):
            return {k: finite(v) for k, v in item.items()}
        if isinstance(item, list):
            return [finite(v) for v in item]
        return item

    text = json.dumps(finite(value), ensure_ascii=False, indent=2, allow_nan=False)
    print("tokenhub: %d number(s) in the reply were not finite (%s) and are written as null"
          % (len(changed), ", ".join(sorted({repr(v) for v in changed}))), file=sys.stderr)
    return text


def _cli_parser() -> Any:
    import argparse

    shared = argparse.ArgumentParser(add_help=False)
    where = shared.add_argument_group("connection (the key comes from TOKENHUB_API_KEY)")
    where.add_argument("--base-url", help="the gateway's root URL (default: the region's, or TOKENHUB_BASE_URL)")
    where.add_argument("--region", help="singapore (default), guangzhou, store, china or china-singapore; "
                       "or TOKENHUB_REGION")
    where.add_argument("--timeout", type=float, metavar="SECONDS", help="read timeout per request (default 600)")
    shared.add_argument("-v", "--verbose", action="store_true", help="print usage (tokens in / out / reasoning) to stderr")

    parser = argparse.ArgumentParser(
        prog="tokenhub", description="Talk to Tencent Cloud TokenHub from the shell.",
        epilog='examples:\n  tokenhub chat "Explain CAP in 3 bullets"\n  tokenhub models',
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version="tokenhub " + __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    chat = commands.add_parser(
        "chat", parents=[shared], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="ask a model; streams the answer to stdout",
        description="Ask a model and stream its answer to stdout. With no prompt and a terminal, "
        "chat interactively (history kept; /exit or Ctrl-D to leave). The prompt is read from "
        "stdin when it is '-', or absent with stdin not a terminal.",
        epilog='examples:\n  tokenhub chat "Hello"\n  git diff | tokenhub chat -s "Review this diff" --no-stream\n'
        '  tokenhub chat -m glm-5 --show-reasoning "Why is the sky blue?"\n'
        '  tokenhub chat --json "Hi" | python3 -m json.tool',
    )
    chat.add_argument("prompt", nargs="?", help="what to ask ('-' reads stdin)")
    chat.add_argument("-m", "--model", default=os.environ.get("TOKENHUB_MODEL") or _DEFAULT_MODEL,
                      help="model id (default %s, or TOKENHUB_MODEL)" % _DEFAULT_MODEL)
    chat.add_argument("-s", "--system", help="a system prompt")
    chat.add_argument("--protocol", choices=sorted(_PROTOCOLS), default="openai",
                      help="which TokenHub protocol to speak (default openai)")
    chat.add_argument("--no-stream", dest="stream", action="store_false", help="wait for the whole answer")
    chat.add_argument("--json", action="store_true", help="print the final reply object as JSON, for scripts")
    chat.add_argument("-t", "--temperature", type=float, help="sampling temperature, 0 to 2")
    chat.add_argument("--max-tokens", type=int, help="the reply's token budget (reasoning included)")
    chat.add_argument("--thinking", choices=("on", "off"), help="turn the model's thinking on or off")
    chat.add_argument("--reasoning-effort", choices=("low", "medium", "high"), help="how hard a thinking model thinks")
    chat.add_argument("--show-reasoning", action="store_true", help="print the reasoning to stderr (dimmed on a terminal)")
    chat.set_defaults(run=_cli_chat)

    models = commands.add_parser(
        "models", parents=[shared], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="list the models", description="List the gateway's models; if it cannot be asked, "
        "the documented table (with a note on stderr).",
        epilog="examples:\n  tokenhub models\n  tokenhub models --json",
    )
    models.add_argument("--json", action="store_true", help="print the list as JSON")
    models.set_defaults(run=_cli_models)

    batch = commands.add_parser(
        "batch", parents=[shared], formatter_class=argparse.RawDescriptionHelpFormatter,
        help="run a file of requests, many at once; resumable",
        description="Run every request of INPUT (JSON Lines: OpenAI Batch API request lines, or a prompt "
        "string, {\"prompt\": ...} or {\"messages\": [...]} a line) with CONCURRENCY in flight, writing each "
        "result to OUTPUT (OpenAI's Batch output format) as it finishes, and the requests that still fail "
        "after retries to OUTPUT's .errors.jsonl. Run the same command again to go on: requests already in "
        "OUTPUT are skipped and failed ones tried again. Progress and a summary go to stderr. Exit status: "
        "0 all succeeded, 1 some failed, 2 bad usage or input, 3 stopped at --max-cost, 130 interrupted.",
        epilog="examples:\n  tokenhub batch prompts.jsonl -o results.jsonl -j 16\n"
        "  tokenhub batch requests.jsonl -o out.jsonl --max-cost 5 --price glm-5=0.6/2.2\n"
        "  tokenhub batch requests.jsonl -o part0.jsonl --shard 0/4   # one of four machines",
    )
    batch.add_argument("input", metavar="INPUT", help="the requests, one JSON value a line")
    batch.add_argument("-o", "--output", required=True, metavar="OUTPUT", help="where results go (appended to)")
    batch.add_argument("-j", "--concurrency", dest="jobs", type=int, default=_BATCH_CONCURRENCY, metavar="N",
                       help="requests in flight (default %d; lowered for a while after a 429 or 529)" % _BATCH_CONCURRENCY)
    batch.add_argument("-m", "--model", default=os.environ.get("TOKENHUB_MODEL") or _DEFAULT_MODEL,
                       help="the model of requests that name none (default %s, or TOKENHUB_MODEL)" % _DEFAULT_MODEL)
    batch.add_argument("--max-cost", type=float, metavar="USD",
                       help="start no request once the cost would pass this (exit 3; run again with more to go on)")
    batch.add_argument("--price", action="append", default=[], metavar="MODEL=IN/OUT",
                       help="a model's price in USD per million tokens, input/output (repeatable)")
    batch.add_argument("--shard", metavar="I/N", help="run only shard I of N (0 <= I < N), by a hash of custom_id")
    batch.add_argument("--max-retries", type=int, default=_BATCH_RETRIES, metavar="N",
                       help="tries after the first, per request (default %d)" % _BATCH_RETRIES)
    batch.set_defaults(run=_cli_batch)
    return parser


def _cli_client(args: Any, kind: type = TokenHub) -> Any:
    try:
        client = kind(base_url=args.base_url, region=args.region,
                      timeout=args.timeout if args.timeout is not None else 600.0)
    except ValueError as error:
        raise _UsageError(str(error)) from None
    if not (client._api_key or client._auth_token):
        if kind is TokenHub:
            client.close()
        raise _UsageError("no API key: set the TOKENHUB_API_KEY environment variable "
                          "(export TOKENHUB_API_KEY=...)")
    return client


def _cli_chat(args: Any) -> int:
    prompt = args.prompt
    if prompt == "-" or (prompt is None and not sys.stdin.isatty()):
        prompt = sys.stdin.read()
        if not prompt.strip():
            raise _UsageError("no prompt: give one as an argument, or on stdin")
    with _cli_client(args) as client:
        if prompt is None:
            return _cli_interactive(client, args)
        final = _cli_turn(client, args, [{"role": "user", "content": prompt}])
        if args.json:
            print(_strict_json(final))
    return 0


def _cli_interactive(client: TokenHub, args: Any) -> int:
    """A multi-turn chat on a terminal; old reasoning is not sent back (seed 004)."""
    print("tokenhub chat: %s over the %s protocol. /exit or Ctrl-D to leave." % (args.model, args.protocol),
          file=sys.stderr)
    history: list[Any] = []
    while True:
        try:
            line = input("> ")
        except EOFError:
            print()
            return 0
        if line.strip() in ("/exit", "/quit"):
            return 0
        if line.strip():
            history.append({"role": "user", "content": line})
            final = _cli_turn(client, args, history)
            history.extend(_PROTOCOLS[args.protocol].assistant_turns(final, False))


def _cli_turn(client: TokenHub, args: Any, messages: list[Any]) -> APIObject:
    """One request; prints the answer (and reasoning) unless --json; returns the final reply."""
    started = time.monotonic()
    params: dict[str, Any] = {"model": args.model}
    for name, value in (("temperature", args.temperature), ("max_tokens", args.max_tokens),
                        ("reasoning_effort", args.reasoning_effort)):
        if value is not None:
            params[name] = value
    if args.thinking is not None:
        params["thinking"] = {"type": "enabled" if args.thinking == "on" else "disabled"}
    protocol = _PROTOCOLS[args.protocol]
    api = protocol.api(client)
    request = protocol.request(system=args.system, messages=messages, params=params)
    printer = _Printer(quiet=args.json, show_reasoning=args.show_reasoning)
    if args.stream:
        with api.stream(**request) as stream:
            for kind, piece in stream.deltas:
                printer.write(kind, piece)
            final = stream.until_done()
    else:
        final = api.create(**request)
        for kind, piece in protocol.final_pieces(final):
            printer.write(kind, piece)
    printer.end()
    if args.verbose:
        line = _usage_line(protocol, final, time.monotonic() - started)
        print("tokenhub: %s" % _shown(line, sys.stderr), file=sys.stderr)
    return final


class _Printer:
    """Answer text to stdout as it comes; reasoning to stderr, dimmed on a terminal."""

    def __init__(self, *, quiet: bool, show_reasoning: bool) -> None:
        self.quiet = quiet
        self.show_reasoning = show_reasoning
        self.dim = sys.stderr.isatty() and not os.environ.get("NO_COLOR")
        self.last = {"text": "", "reasoning": ""}  # the last piece of each, to end its line

    def write(self, kind: str, piece: str) -> None:
        if self.quiet or not piece:
            return
        if kind == "text":
            if self.last["reasoning"] and not self.last["text"]:
                self._end_reasoning()
            sys.stdout.write(_shown(piece, sys.stdout))
            sys.stdout.flush()
        elif self.show_reasoning:
            piece = _shown(piece, sys.stderr)
            sys.stderr.write("\x1b[2m%s\x1b[0m" % piece if self.dim else piece)
            sys.stderr.flush()
        self.last[kind] = piece

    def _end_reasoning(self) -> None:
        if self.show_reasoning and not self.last["reasoning"].endswith("\n"):
            sys.stderr.write("\n")
            sys.stderr.flush()

    def end(self) -> None:
        if self.last["text"] and not self.last["text"].endswith("\n"):
            sys.stdout.write("\n")
            sys.stdout.flush()
        elif not self.last["text"] and self.last["reasoning"]:
            self._end_reasoning()


def _usage_line(protocol: _Protocol, final: Mapping[str, Any], seconds: float) -> str:
    usage = usage_of(final)
    shown = ["?" if count is None else str(count) for count in (usage.input_tokens, usage.output_tokens)]
    line = "%s: %s tokens in, %s out" % (final.get("model") or "?", shown[0], shown[1])
    if usage.reasoning_tokens is not None:
        line += " (%s reasoning)" % usage.reasoning_tokens
    if usage.cached_tokens:
        line += ", %s cached" % usage.cached_tokens
    cost = cost_of(final)
    line += ", $%.6f" % cost if cost is not None else ", cost unknown"
    return line + ", finish %s, %.1f s" % (protocol.finish(final), seconds)


def _cli_models(args: Any) -> int:
    try:
        with _cli_client(args) as client:
            rows = [(m.get("id"), m.get("owned_by") or "") for m in client.models.list().get("data") or ()]
    except (APIError, _UsageError) as error:
        print("tokenhub: could not list the gateway's models (%s); the documented table follows"
              % _shown(str(error), sys.stderr), file=sys.stderr)
        rows = list(_DOCUMENTED_MODELS)
    if args.json:
        import json

        print(json.dumps([{"id": model, "owned_by": owner} for model, owner in rows], indent=2))
    else:
        for model, owner in rows:
            print(_shown("%-28s %s" % (model, owner), sys.stdout))
    return 0



def _cli_batch(args: Any) -> int:
    """``tokenhub batch``: run a JSON Lines file of requests into OUTPUT; resumable."""
    import asyncio

    shard, prices = _cli_shard(args.shard), _cli_prices(args.price)
    if args.max_cost is not None and not 0 <= args.max_cost < float("inf"):
        raise _UsageError("--max-cost: expected a number of USD >= 0, got %s" % args.max_cost)
    if args.jobs < 1:
        raise _UsageError("-j/--concurrency: expected a whole number >= 1, got %d" % args.jobs)
    errors_path = _errors_path(args.output)
    for path in (args.output, errors_path):
        if os.path.exists(path) and os.path.exists(args.input) and os.path.samefile(path, args.input):
            raise _UsageError("%s is the input: give -o a file of its own" % path)
    try:
        with open(args.input, "rb") as source:
            data = source.read()
    except OSError as error:
        raise _UsageError("cannot read %s: %s" % (args.input, error.strerror or error)) from None
    try:
        items = _batch_items(_batch_lines(data), args.model, unit="line")
    except BatchInputError as error:
        raise _UsageError("%s: %s" % (args.input, _shown(str(error), sys.stderr))) from None
    if not items:
        raise _UsageError("%s has no requests (expected one JSON value a line)" % args.input)
    done = _batch_done(args.output)
    client = _cli_client(args, AsyncTokenHub)
    try:
        run = Batch(items, client=client, concurrency=args.jobs, max_cost=args.max_cost, prices=prices,
                    shard=shard, skip=done, max_retries=args.max_retries)
    except ValueError as error:
        raise _UsageError(str(error)) from None
    if os.path.exists(errors_path):
        os.remove(errors_path)  # its requests are not in OUTPUT, so this run tries them again
    if not run.summary.total:
        print("tokenhub batch: nothing to do: %s holds a result for each of the %d request(s)%s"
              % (args.output, run.summary.skipped, " of this shard" if shard else ""), file=sys.stderr)
        return 0
    progress = _Progress(sys.stderr, live=sys.stderr.isatty(), every=0.5 if sys.stderr.isatty() else 10.0)
    try:
        asyncio.run(_cli_batch_run(run, args, errors_path, progress))
    except KeyboardInterrupt:
        run.stopped = "interrupted"
    progress.end(run.summary, args.output, errors_path)
    return {"cost": 3, "interrupted": 130, "authentication": 1}.get(run.stopped or "", 1 if run.summary.failed else 0)


async def _cli_batch_run(run: Batch, args: Any, errors_path: str, progress: _Progress) -> None:
    import asyncio
    import json

    ticker = asyncio.ensure_future(progress.tick(run))
    out = os.open(args.output, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    errors = None
    try:
        async for result in run:
            line = (json.dumps(result, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
            if result.error is None:
                _write_line(out, line)
            else:
                if errors is None:
                    errors = os.open(errors_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                _write_line(errors, line)
                if args.verbose:
                    progress.note("%s failed: %s" % (result.custom_id, result.error.message))
            progress.show(run.summary)
    finally:
        ticker.cancel()
        for fd in (out, errors):
            if fd is not None:
                os.close(fd)


def _write_line(fd: int, line: bytes) -> None:
    """One whole line, in as few writes as the system allows: a kill can tear only the
    last line of the file, which the next run drops (``_batch_done``)."""
    view = memoryview(line)
    while view:
        view = view[os.write(fd, view):]


def _errors_path(output: str) -> str:
    """Where the failures of ``-o OUTPUT`` go: out.jsonl -> out.errors.jsonl."""
    return output[: -len(".jsonl")] + ".errors.jsonl" if output.endswith(".jsonl") else output + ".errors.jsonl"


def _batch_done(path: str) -> set[str]:
    """The ``custom_id`` of every result already in OUTPUT. A torn last line (from a
    killed run) is cut off; any other line that is not a result stops the run."""
    import json

    try:
        with open(path, "rb+") as output:
            data = output.read()
            end = data.rfind(b"\n") + 1
            if end < len(data):
                output.truncate(end)
                print("tokenhub: dropped an unfinished last line of %s (%d bytes, left by an interrupted run)"
                      % (path, len(data) - end), file=sys.stderr)
    except FileNotFoundError:
        return set()
    except OSError as error:
        raise _UsageError("cannot read %s: %s" % (path, error.strerror or error)) from None
    done = set()
    for number, line in enumerate(data[:end].split(b"\n")[:-1], 1):
        if not line.strip():
            continue
        try:
            result = json.loads(line.decode("utf-8"))
            custom_id = result["custom_id"]
            if not isinstance(custom_id, str):
                raise TypeError
        except (ValueError, KeyError, TypeError, RecursionError):
            raise _UsageError("%s line %d is not a batch result (a JSON object with a string \"custom_id\"); "
                              "not resuming over it: give another -o, or fix the file" % (path, number)) from None
        done.add(custom_id)
    return done


def _cli_shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    index, slash, count = text.partition("/")
    try:
        return _check_shard((int(index), int(count)) if slash else None)
    except ValueError:
        raise _UsageError("--shard: expected I/N with 0 <= I < N (such as 0/4), got %r" % text) from None


def _cli_prices(specs: list[str]) -> dict[str, tuple[float, float]]:
    prices = {}
    for spec in specs:
        model, equals, pair = spec.rpartition("=")
        parts = pair.split("/")
        try:
            price = (float(parts[0]), float(parts[1])) if len(parts) == 2 and model and equals else None
        except ValueError:
            price = None
        if price is None or not all(0 <= value < float("inf") for value in price):
            raise _UsageError("--price: expected MODEL=IN/OUT in USD per million tokens (such as glm-5=0.6/2.2), "
                              "got %r" % spec)
        prices[model] = price
    return prices


class _Progress:
    """A batch's progress on stderr: one live line on a terminal, else a plain line
    every ``every`` seconds; and the summary at the end."""

    def __init__(self, out: Any, *, live: bool, every: float) -> None:
        self.out = out
        self.live = live
        self.every = every
        self.shown_at = 0.0
        self.drawn = False

    async def tick(self, run: Batch) -> None:
        import asyncio

        while True:
            await asyncio.sleep(self.every)
            self.show(run.summary, force=True)

    def show(self, summary: Mapping[str, Any], *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and (not self.live or now - self.shown_at < 0.1):
            return
        self.shown_at = now
        line = _progress_line(summary)
        if self.live:
            self.out.write("\r\x1b[K" + line)
            self.drawn = True
        else:
            self.out.write("tokenhub batch: %s\n" % line)
        self.out.flush()

    def note(self, text: str) -> None:
        self._clear()
        self.out.write("tokenhub batch: %s\n" % _shown(text, self.out))
        self.out.flush()

    def _clear(self) -> None:
        if self.drawn:
            self.out.write("\r\x1b[K")
            self.drawn = False

    def end(self, summary: Mapping[str, Any], output: str, errors_path: str) -> None:
        self._clear()
        for line in _summary_lines(summary, output, errors_path):
            self.out.write("tokenhub batch: %s\n" % line)
        self.out.flush()


def _progress_line(summary: Mapping[str, Any]) -> str:
    """done/total, rate, ETA, tokens, cost, errors."""
    finished = summary["succeeded"] + summary["failed"]
    rate = summary["requests_per_second"]
    left = summary["total"] - finished
    eta = "%s" % _duration(left / rate) if rate > 0 else "?"
    return "%d/%d done, %.1f/s, ETA %s, tokens %d in / %d out, %s, %d error%s, concurrency %d" % (
        finished, summary["total"], rate, eta, summary["input_tokens"], summary["output_tokens"],
        _cost_text(summary), summary["failed"], "" if summary["failed"] == 1 else "s", summary["concurrency"])


def _cost_text(summary: Mapping[str, Any]) -> str:
    if summary["unpriced"] and not summary["cost"]:
        return "cost unknown"
    text = "$%.4f" % summary["cost"]
    return text + " (+ %d unpriced)" % summary["unpriced"] if summary["unpriced"] else text


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    if seconds < 60:
        return "%ds" % seconds
    if seconds < 3600:
        return "%dm%02ds" % divmod(seconds, 60)
    return "%dh%02dm" % (seconds // 3600, seconds % 3600 // 60)


def _summary_lines(summary: Mapping[str, Any], output: str, errors_path: str) -> list[str]:
    lines = ["%d succeeded (in %s), %d failed%s, %d skipped as already done" % (
        summary["succeeded"], output, summary["failed"], " (in %s)" % errors_path if summary["failed"] else "",
        summary["skipped"])]
    lines.append("tokens: %d in, %d out (%d reasoning); cost %s" % (
        summary["input_tokens"], summary["output_tokens"], summary["reasoning_tokens"],
        "unknown" if summary["unpriced"] and not summary["cost"] else "$%.6f" % summary["cost"]
        + (" for the priced replies; %d of models without a price (--price)" % summary["unpriced"]
           if summary["unpriced"] else "")))
    lines.append("%.1f s, %.1f requests/s" % (summary["elapsed"], summary["requests_per_second"]))
    stopped = {
        "cost": "stopped at the cost limit: %d request(s) not started; run again with a higher --max-cost to go on"
        % summary["not_started"],
        "authentication": "stopped: the key was refused (401), so nothing more was sent",
        "interrupted": "interrupted: requests in flight were cancelled; run again to go on",
    }.get(summary["stopped"] or "")
    return lines + [stopped] if stopped else lines

if __name__ == "__main__":
    sys.exit(main())
