"""mock_server: Tencent Cloud TokenHub, offline, in one standard-library file.

It answers both TokenHub protocols the way the gateway does, streamed or not:
OpenAI Chat Completions (``POST /v1/chat/completions``, also under tokenhub.store's
``/api`` root), Anthropic Messages (``POST /v1/messages``) and ``GET /v1/models``.

What it answers, the first that applies:

1. a fixture whose ``match`` fits the request (``--fixtures FILE_OR_DIR``,
   ``MockServer(fixtures=...)``, ``srv.add(...)``): a response written once and
   rendered in either protocol, streamed or not, or a raw reply replayed byte for
   byte, or a fault;
2. otherwise a canned, deterministic reply: text, a tool call when the request asks
   for one, a final answer after a tool result, and reasoning for models that think
   by default (or, with ``--strict``, a 404 that names the request).

Request parameters that change a reply's shape are honoured (``n``, ``stop``,
``max_tokens``, ``logprobs``, ``response_format``, ``tool_choice``, ``thinking``...).
Faults come on demand: a request header (``X-Mock-Fault: status=429,retry-after=1``,
``disconnect-after=3``, ``stall-after=2,seconds=30``, ``drip=0.05``...), a queue
(``srv.fail_next("truncate-after=3")``), or ``"fault"`` in a fixture.

Real exchanges can be recorded and replayed: ``--record singapore --fixtures DIR``
passes every request to TokenHub (keys pass through, never to disk) and writes one
fixture per exchange, byte for byte; ``MockServer(cassette=DIR, upstream=...)``
records when DIR is missing and replays when it is there.

From the shell (prints its base URL as the first line, then serves)::

    python3 mock_server.py --port 0 --fixtures tests/fixtures.json
    # http://127.0.0.1:43117

From Python, on a free port in a background thread::

    from mock_server import MockServer
    import tokenhub

    with MockServer() as srv:
        srv.add("It is sunny.", match={"user": "weather"})
        client = tokenhub.TokenHub(api_key="test", base_url=srv.url)
        reply = client.chat.completions.create(
            model="deepseek-v3.2", messages=[{"role": "user", "content": "Weather?"}])
        assert reply.choices[0].message.content == "It is sunny."
        assert srv.requests[0].body["model"] == "deepseek-v3.2"
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = [
    # the server
    "MockServer", "Fixture", "RecordedRequest",
    # the model table it lists
    "MODELS",
    # the command line
    "main",
]

import hashlib
import json
import os
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping
    from typing import Any

#: The seed's model table: (id, display name, vendor).
MODELS = (
    ("deepseek-v4-flash-202605", "DeepSeek-V4-Flash (Vendor Direct)", "deepseek"),
    ("deepseek-v4-pro-202606", "DeepSeek-V4-Pro (Vendor Direct)", "deepseek"),
    ("deepseek-v4-flash", "DeepSeek-V4-Flash", "deepseek"),
    ("deepseek-v4-pro", "DeepSeek-V4-Pro", "deepseek"),
    ("deepseek-v3.2", "Deepseek-v3.2", "deepseek"),
    ("glm-5.1", "GLM-5.1", "zhipu"),
    ("glm-5v-turbo", "GLM-5V-Turbo", "zhipu"),
    ("glm-5-turbo", "GLM-5-Turbo", "zhipu"),
    ("glm-5", "GLM-5", "zhipu"),
    ("kimi-k2.6", "Kimi-K2.6", "moonshot"),
    ("kimi-k2.5", "Kimi-K2.5", "moonshot"),
    ("minimax-m3", "MiniMax-M3", "minimax"),
    ("minimax-m2.7", "MiniMax-M2.7", "minimax"),
    ("minimax-m2.5", "MiniMax-M2.5", "minimax"),
    ("hy-mt2-plus", "Hy-MT2-Plus", "tencent"),
    ("hy3-preview", "Hy3-Preview", "tencent"),  # all three protocols; thinking off by default
)
_MODELS_CREATED = 1767225600  # 2026-01-01T00:00:00Z, a fixed listing date

# Thinking defaults (PROTOCOL.md, "Thinking default per model").
_THINKS_BY_DEFAULT = ("deepseek-v4", "glm-5", "kimi-k2")
_THINKS_ALWAYS = ("minimax-m2.7", "minimax-m2.5")

# Words that say what a tool does rather than what it is about: "get_weather" is
# named by "weather", not by "get".
_GENERIC_WORDS = frozenset(
    "get set list fetch find search lookup look up make create run do call read write "
    "update delete query check the a an of to for by from with".split()
)

_MAX_BODY = 32 * 1024 * 1024  # a request body above this gets a 413
_MAX_DEPTH = 128  # how deep a request body may nest
_MAX_TRAILERS = 64  # trailer lines after a chunked request body
_MAX_LABEL = 60  # the model part of a recording's file name
_JOURNAL_LIMIT = 1000  # requests kept in the journal (the oldest go first)
_JOURNAL_BYTES = 64 * 1024 * 1024  # request body bytes kept in the journal
_MAX_FAULT_SECONDS = 86400.0  # a fault's longest pause
_CLIENT_TIMEOUT = 120.0  # seconds a client may leave its connection silent mid-request or idle
_BODY_PIECE = 32  # a non-streamed body counts as "events" of this many bytes for faults
_FAULT_HEADER = "x-mock-fault"
_TRANSPORT_FIELDS = ("stream", "stream_options")  # how a reply travels, not what it says

# A stable stand-in for a tokenizer: words and punctuation marks. The second form
# covers a text exactly (trailing spaces ride on their token), for logprobs.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_SPELLED_TOKEN = re.compile(r"\w+\s*|[^\w\s]\s*|\s+")


# ---------------------------------------------------------------------------
# Requests as received, and refusals
# ---------------------------------------------------------------------------


class RecordedRequest:
    """One request the server received: ``method``, ``path`` (with its query),
    ``headers`` (lower-case names), ``body`` (parsed JSON, or None), ``raw`` bytes,
    ``fixture``: the name of the fixture that answered it, or None, and
    ``connection``: the number of the connection it came on (1 for the server's
    first), which shows how a client reuses its connections."""

    __slots__ = ("method", "path", "headers", "body", "raw", "fixture", "connection")

    def __init__(
        self, method: str, path: str, headers: dict[str, str], body: Any, raw: bytes, connection: int | None = None
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.raw = raw
        self.fixture: str | None = None
        self.connection = connection

    def to_dict(self) -> dict[str, Any]:
        """The request as JSON-ready data (``raw`` as text, undecodable bytes escaped)."""
        return {
            "method": self.method, "path": self.path, "headers": self.headers, "body": self.body,
            "raw": self.raw.decode("utf-8", "backslashreplace"), "fixture": self.fixture,
            "connection": self.connection,
        }

    def __repr__(self) -> str:
        return "RecordedRequest(%s %s, %d body bytes)" % (self.method, self.path, len(self.raw))


class _HTTPError(Exception):
    """An error reply in the protocol's shape."""

    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        param: str | None = None,
        *,
        headers: Iterable[tuple[str, str]] = (),
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.param = param
        self.headers = list(headers)
        self.code = code
        self.details = details


# The error type each status carries (Anthropic's names; OpenAI's clients read the
# status), and back: an in-stream error's type gives the status of its non-streamed twin.
_STATUS_KINDS = {
    400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
    404: "not_found_error", 408: "timeout_error", 413: "request_too_large",
    422: "invalid_request_error", 429: "rate_limit_error", 500: "api_error",
    502: "api_error", 503: "api_error", 504: "timeout_error", 529: "overloaded_error",
}
_KIND_STATUS = {
    "invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
    "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
    "api_error": 500, "timeout_error": 504, "overloaded_error": 529,
}


def _kind_of(status: int) -> str:
    return _STATUS_KINDS.get(status) or ("invalid_request_error" if status < 500 else "api_error")


def _bad(field: str, message: str) -> _HTTPError:
    """A 400 naming the request field at fault."""
    return _HTTPError(400, "invalid_request_error", message, field)


def _shown(value: Any, limit: int = 80) -> str:
    """A value as JSON for an error message, visibly shortened when long."""
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_keys(spec: Any, allowed: Iterable[str], where: str) -> dict[str, Any]:
    """``spec`` as a dict with only ``allowed`` keys, or a ValueError saying what is wrong."""
    if not isinstance(spec, dict):
        raise ValueError("%s: expected an object, got %s" % (where, _shown(spec)))
    allowed = tuple(allowed)
    for key in spec:
        if key not in allowed:
            raise ValueError(
                "%s: unknown key %r (expected one of: %s)" % (where, key, ", ".join(allowed))
            )
    return spec


# ---------------------------------------------------------------------------
# Replies: decided once, protocol-neutral
# ---------------------------------------------------------------------------

# A finish reason is kept in OpenAI's words plus "stop_sequence"; each protocol
# renders it in its own, and a fixture may use either vocabulary.
_TO_ANTHROPIC_STOP = {
    "stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "stop_sequence": "stop_sequence",
}
_FROM_ANTHROPIC_STOP = {value: key for key, value in _TO_ANTHROPIC_STOP.items()}
_TO_OPENAI_FINISH = {"stop_sequence": "stop"}


class _Call:
    """A tool call to make: its id, the tool's name and its arguments (an object,
    or a string sent exactly as written, even when it is not valid JSON)."""

    __slots__ = ("id", "name", "arguments")

    def __init__(self, id: str, name: str, arguments: dict[str, Any] | str) -> None:
        self.id = id
        self.name = name
        self.arguments = arguments

    def json(self) -> str:
        if isinstance(self.arguments, str):
            return self.arguments
        return json.dumps(self.arguments, ensure_ascii=False)

    def input(self) -> dict[str, Any]:
        """The arguments as the object a non-streamed ``tool_use`` block needs."""
        if isinstance(self.arguments, dict):
            return self.arguments
        try:
            value = json.loads(self.arguments)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise _HTTPError(
                500, "api_error",
                "the fixture's tool call %r has arguments %s, which are not a JSON object: a "
                "non-streamed Anthropic tool_use block cannot carry them (stream the request, "
                "or use the OpenAI protocol)" % (self.name, _shown(self.arguments)),
            )
        return value


class _Reply:
    """What the model "says": reasoning, text, tool calls, why it stopped, usage."""

    __slots__ = ("reasoning", "text", "calls", "finish", "stop_sequence", "prompt_tokens", "usage", "shape")

    def __init__(
        self,
        *,
        reasoning: str = "",
        text: str = "",
        calls: Iterable[_Call] = (),
        finish: str | None = None,
        stop_sequence: str | None = None,
        prompt_tokens: int = 1,
        usage: Mapping[str, int] | None = None,
        shape: str | None = None,
    ) -> None:
        self.shape = shape  # how reasoning is sent on the OpenAI protocol; None: the model's way
        self.reasoning = reasoning
        self.text = text
        self.calls = list(calls)
        self.finish = finish  # None: "tool_calls" when there are calls, else "stop"
        self.stop_sequence = stop_sequence
        self.prompt_tokens = prompt_tokens
        self.usage = dict(usage or {})  # a fixture's figures, over the counted ones

    def replace(self, **changes: Any) -> _Reply:
        fields = {name: getattr(self, name) for name in self.__slots__}
        fields.update(changes)
        return _Reply(**fields)

    @property
    def finish_reason(self) -> str:
        return self.finish or ("tool_calls" if self.calls else "stop")

    def tokens(self) -> dict[str, int]:
        """Usage in neutral names (prompt, completion, reasoning, cached)."""
        produced = _count_tokens(self.reasoning) + _count_tokens(self.text)
        produced += sum(_count_tokens(call.json()) for call in self.calls)
        counted = {
            "prompt": self.prompt_tokens,
            "completion": max(1, produced),
            "reasoning": _count_tokens(self.reasoning),
            "cached": 0,
        }
        counted.update(self.usage)
        return counted


def _count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


def _first_tokens(text: str, budget: int) -> tuple[str, int]:
    """The longest start of ``text`` within ``budget`` tokens, and its token count."""
    ends = [match.end() for match in _TOKEN.finditer(text)]
    if len(ends) <= budget:
        return text, len(ends)
    return (text[: ends[budget - 1]] if budget > 0 else ""), max(budget, 0)


# ---------------------------------------------------------------------------
# A chat request of either protocol, read once
# ---------------------------------------------------------------------------


class _Request:
    """What picks and shapes the reply, read from either protocol's body."""

    __slots__ = (
        "protocol", "path", "headers", "seed", "model", "user_text", "system", "tools",
        "tool_choice", "parallel", "results", "turn", "thinking", "stream", "n", "stop",
        "max_tokens", "logprobs", "top_logprobs", "response_format", "include_usage",
        "prompt_tokens", "options",
    )

    def __init__(self, protocol: str, path: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> None:
        self.protocol = protocol
        self.path = path
        self.headers = headers
        # Same request, same reply (ids included), streamed or not.
        self.seed = json.dumps({k: v for k, v in body.items() if k not in _TRANSPORT_FIELDS}, sort_keys=True)
        self.model = ""
        self.user_text = ""  # the last user message's text
        self.system = ""
        self.tools: list[tuple[str, Any]] = []  # (name, JSON schema of the arguments)
        self.tool_choice = "auto"  # auto | none | required | <a tool's name>
        self.parallel = True
        self.results: list[tuple[str, str]] = []  # (tool name or id, text) that the request ends with
        self.turn = 1  # 1 + the assistant messages so far
        self.thinking: Any = body.get("thinking")
        self.stream = body.get("stream") is True
        self.n = 1
        self.stop: list[str] = []
        self.max_tokens: int | None = None
        self.logprobs = False
        self.top_logprobs = 0
        self.response_format: dict[str, Any] | None = None
        self.include_usage = False
        self.prompt_tokens = 1
        self.options: dict[str, Any] = {}  # what one protocol alone reads (the Responses body, tool kinds)

    @property
    def id_prefix(self) -> str:
        return "toolu_" if self.protocol == "anthropic" else "call_"


def _texts(value: Any) -> Iterator[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _content_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part.get("text", "") for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _require(body: Mapping[str, Any], field: str, kind: type, what: str) -> Any:
    """A required field of the request body, or a 400 naming it."""
    if field not in body:
        raise _bad(field, "missing required field: %r" % field)
    value = body[field]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _bad(field, "field %r must be %s, got %s" % (field, what, _shown(value)))
    return value


def _number(
    body: Mapping[str, Any], field: str, low: float, high: float | None = None, *, integer: bool = False
) -> Any:
    """An optional numeric field within [low, high], or a 400 naming it."""
    value = body.get(field)
    if value is None:
        return None
    kind = int if integer else (int, float)
    if isinstance(value, kind) and not isinstance(value, bool):
        if low <= value and (high is None or value <= high):
            return value
    span = "at least %s" % low if high is None else "from %s to %s" % (low, high)
    what = "an integer" if integer else "a number"
    raise _bad(field, "field %r must be %s %s, got %s" % (field, what, span, _shown(value)))


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = _require(body, "messages", list, "a list of messages")
    if not messages:
        raise _bad("messages", "field 'messages' must not be empty")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise _bad("messages", "messages[%d] must be an object with a string 'role', got %s"
                       % (index, _shown(message)))
    return messages


def _stop_strings(body: Mapping[str, Any], field: str, limit: int | None) -> list[str]:
    value = body.get(field)
    if value is None:
        return []
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _bad(field, "field %r must be a string or a list of strings, got %s" % (field, _shown(value)))
    if limit is not None and len(stops) > limit:
        raise _bad(field, "field %r takes at most %d strings, got %d" % (field, limit, len(stops)))
    return stops


def _read_common(req: _Request, body: Mapping[str, Any]) -> None:
    """The fields both protocols share, checked the same way."""
    req.model = _require(body, "model", str, "a string")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    parts = [body.get("system"), body.get("messages"), body.get("tools")]
    req.prompt_tokens = max(1, sum(_count_tokens(text) for text in _texts(parts)))


def _openai_request(path: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> _Request:
    req = _Request("openai", path, headers, body)
    _read_common(req, body)
    messages = _messages(body)
    for field in ("frequency_penalty", "presence_penalty"):
        _number(body, field, -2, 2)
    req.n = _number(body, "n", 1, 128, integer=True) or 1
    for field in ("max_tokens", "max_completion_tokens"):
        req.max_tokens = _number(body, field, 1, integer=True) or req.max_tokens
    req.stop = _stop_strings(body, "stop", 4)
    logprobs = body.get("logprobs")
    if logprobs is not None and not isinstance(logprobs, bool):
        raise _bad("logprobs", "field 'logprobs' must be true or false, got %s" % _shown(logprobs))
    req.logprobs = logprobs is True
    top = _number(body, "top_logprobs", 0, 20, integer=True)
    if top is not None and not req.logprobs:
        raise _bad("top_logprobs", "field 'top_logprobs' needs 'logprobs': true, got logprobs %s" % _shown(logprobs))
    req.top_logprobs = top or 0
    req.response_format = _response_format(body)
    options = body.get("stream_options")
    req.include_usage = isinstance(options, dict) and options.get("include_usage") is True
    req.parallel = body.get("parallel_tool_calls") is not False
    req.options["reasoning_split"] = body.get("reasoning_split") is True
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name"):
            req.tools.append((function["name"], function.get("parameters")))
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") or "auto"
    req.tool_choice = choice if isinstance(choice, str) else "auto"
    _read_openai_messages(req, messages)
    return req


def _response_format(body: Mapping[str, Any]) -> dict[str, Any] | None:
    value = body.get("response_format")
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise _bad("response_format", "field 'response_format' must have 'type' text, json_object or "
                   "json_schema, got %s" % _shown(value))
    if kind == "json_schema" and not isinstance((value.get("json_schema") or {}).get("schema"), dict):
        raise _bad("response_format", "response_format json_schema needs 'json_schema': {'name': ..., "
                   "'schema': {...}}, got %s" % _shown(value))
    return value if kind != "text" else None


def _read_openai_messages(req: _Request, messages: list[dict[str, Any]]) -> None:
    calls: dict[Any, str] = {}  # tool-call id -> tool name, from the assistant messages
    system = []
    for index, message in enumerate(messages):
        role, content = message["role"], message.get("content")
        if role in ("system", "developer"):
            system.append(_content_text(content))
        elif role == "user":
            req.user_text = _content_text(content)
        elif role == "assistant":
            req.turn += 1
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict):
                    calls[call.get("id")] = (call.get("function") or {}).get("name") or ""
        elif role == "tool" and message.get("tool_call_id") not in calls:
            raise _bad(
                "messages[%d].tool_call_id" % index,
                "messages[%d] is a tool result for tool_call_id %s, which matches no tool call of "
                "an earlier assistant message" % (index, _shown(message.get("tool_call_id"))),
            )
    req.system = "\n".join(system)
    for message in reversed(messages):  # the tool messages that end the conversation
        if message["role"] != "tool":
            break
        call_id = message.get("tool_call_id")
        req.results.insert(0, (calls.get(call_id) or call_id, _content_text(message.get("content"))))


def _keeps_reasoning(req: _Request) -> bool:
    """Whether the upstream refuses a tool-loop turn sent back without its reasoning:
    DeepSeek's thinking models do (PROTOCOL.md, "Provider behaviour")."""
    return req.model.rsplit("/", 1)[-1].lower().startswith("deepseek") and _thinks(req)


def _openai_reasoning_rule(req: _Request, body: Mapping[str, Any]) -> None:
    """DeepSeek's interleaved-thinking rule: an assistant tool-call message must carry
    its ``reasoning_content`` (even empty), else the 400 DeepSeek's API sends."""
    for index, message in enumerate(body.get("messages") or ()):
        if isinstance(message, dict) and message.get("role") == "assistant" and message.get("tool_calls") \
                and "reasoning_content" not in message:
            raise _HTTPError(400, "invalid_request_error", "Missing `reasoning_content` field in the assistant "
                             "message at message index %d" % index, "messages[%d].reasoning_content" % index)


def _anthropic_reasoning_rule(req: _Request, body: Mapping[str, Any]) -> None:
    """The same rule on the Anthropic protocol: with thinking on, the last assistant
    turn that calls a tool must start with its thinking block, as Anthropic's API says."""
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    for index in range(len(messages) - 1, -1, -1):
        message = messages[index]
        if message.get("role") != "assistant":
            continue
        blocks = [b for b in message.get("content") or () if isinstance(b, dict)] \
            if isinstance(message.get("content"), list) else []
        if any(b.get("type") == "tool_use" for b in blocks) and \
                (not blocks or blocks[0].get("type") not in ("thinking", "redacted_thinking")):
            raise _HTTPError(400, "invalid_request_error", "messages.%d.content.0.type: Expected `thinking` or "
                             "`redacted_thinking`, but found `%s`. When `thinking` is enabled, a final `assistant` "
                             "message must start with a thinking block" % (index, blocks[0].get("type") if blocks else "text"))
        return


def _anthropic_request(path: str, headers: Mapping[str, str], body: Mapping[str, Any], *,
                       counting: bool = False) -> _Request:
    req = _Request("anthropic", path, headers, body)
    if "thread" in body:
        # TokenHub keeps no message threads: refused the documented way, upon which the
        # SDKs' tool runners send the whole conversation again without ``thread``.
        raise _HTTPError(400, "invalid_request_error", "this server does not keep message threads: send the "
                         "whole conversation without 'thread'", "thread",
                         details={"error_code": "thread_unsupported_request", "unsupported": []})
    _read_common(req, body)
    if not counting:
        _require(body, "max_tokens", int, "an integer")
        req.max_tokens = _number(body, "max_tokens", 1, integer=True)
    config = body.get("output_config")
    fmt = config.get("format") if isinstance(config, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise _bad("output_config.format", "output_config.format json_schema needs a 'schema' object, got %s"
                       % _shown(fmt))
        req.response_format = {"type": "json_schema", "json_schema": {"schema": fmt["schema"]}}
    messages = _messages(body)
    req.stop = _stop_strings(body, "stop_sequences", None)
    req.system = _content_text(body.get("system"))
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name"):
            req.tools.append((tool["name"], tool.get("input_schema")))
    choice = body.get("tool_choice")
    choice = choice if isinstance(choice, dict) else {}
    kind = choice.get("type", "auto")
    req.tool_choice = {"any": "required", "tool": choice.get("name") or "auto"}.get(kind, kind)
    req.parallel = not choice.get("disable_parallel_tool_use")
    _read_anthropic_messages(req, messages)
    return req


def _read_anthropic_messages(req: _Request, messages: list[dict[str, Any]]) -> None:
    names: dict[Any, str] = {}  # tool_use id -> tool name
    for index, message in enumerate(messages):
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        if message["role"] == "assistant":
            req.turn += 1
            req.results = []
            names.update((b.get("id"), b.get("name") or "") for b in blocks if b.get("type") == "tool_use")
        elif message["role"] == "user":
            req.user_text = _content_text(content) or req.user_text
            results = [b for b in blocks if b.get("type") == "tool_result"]
            for block in results:
                if block.get("tool_use_id") not in names:
                    raise _bad(
                        "messages[%d].content" % index,
                        "messages[%d] has a tool_result for tool_use_id %s, which matches no "
                        "tool_use block of an earlier assistant message" % (index, _shown(block.get("tool_use_id"))),
                    )
            req.results = [
                (names[b["tool_use_id"]] or b["tool_use_id"], _content_text(b.get("content"))) for b in results
            ]
        elif message["role"] == "system":  # not Anthropic's, but sent by some clients; the gateway takes it
            req.system = "\n".join(filter(None, [req.system, _content_text(content)]))


# The Responses protocol's input: items, each an assistant's or not.
_ASSISTANT_ITEMS = frozenset(("function_call", "reasoning", "local_shell_call", "custom_tool_call", "web_search_call"))
_TOOL_OUTPUTS = {"function_call_output": "function_call", "local_shell_call_output": "local_shell_call",
                 "custom_tool_call_output": "custom_tool_call"}
#: Non-function tools a fixture or the canned planner may call, with the arguments they take.
_BUILTIN_TOOLS = {
    "local_shell": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                    "required": ["command"]},
}


def _responses_request(path: str, headers: Mapping[str, str], body: Mapping[str, Any]) -> _Request:
    req = _Request("responses", path, headers, body)
    req.options["body"] = body
    req.model = _require(body, "model", str, "a string")
    if "input" not in body:
        raise _bad("input", "missing required field: 'input' (a string, or a list of input items)")
    items = body["input"]
    if not isinstance(items, (str, list)):
        raise _bad("input", "field 'input' must be a string or a list of input items, got %s" % _shown(items))
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    req.max_tokens = _number(body, "max_output_tokens", 1, integer=True)
    parts = [body.get("instructions"), items, body.get("tools")]
    req.prompt_tokens = max(1, sum(_count_tokens(text) for text in _texts(parts)))
    text = body.get("text")
    fmt = text.get("format") if isinstance(text, dict) else None
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        if not isinstance(fmt.get("schema"), dict):
            raise _bad("text.format", "text.format json_schema needs a 'schema' object, got %s" % _shown(fmt))
        req.response_format = {"type": "json_schema", "json_schema": {"schema": fmt["schema"]}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        req.response_format = {"type": "json_object"}
    reasoning = body.get("reasoning")
    req.options["summary"] = isinstance(reasoning, dict) and bool(reasoning.get("summary"))
    req.parallel = body.get("parallel_tool_calls") is not False
    for tool in body.get("tools") or []:
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function" and tool.get("name"):
            req.tools.append((tool["name"], tool.get("parameters")))
            req.options.setdefault("kinds", {})[tool["name"]] = "function"
        elif kind in _BUILTIN_TOOLS:
            req.tools.append((kind, _BUILTIN_TOOLS[kind]))
            req.options.setdefault("kinds", {})[kind] = kind
        elif kind == "custom" and tool.get("name"):
            req.tools.append((tool["name"], {"type": "object", "properties": {"input": {"type": "string"}}}))
            req.options.setdefault("kinds", {})[tool["name"]] = "custom"
        # Other tools (web_search, namespaced ones...) are accepted and never called by the canned planner.
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = choice.get("name") or "auto"
    req.tool_choice = choice if isinstance(choice, str) else "auto"
    system = [body["instructions"]] if isinstance(body.get("instructions"), str) else []
    _read_response_items(req, [{"role": "user", "content": items}] if isinstance(items, str) else items, system)
    return req


def _item_text(content: Any) -> str:
    """The text of a Responses message's content: a string, or its text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(part.get("text", "") for part in content if isinstance(part, dict)
                         and part.get("type") in ("input_text", "output_text", "text"))
    return ""


def _read_response_items(req: _Request, items: list[Any], system: list[str]) -> None:
    calls: dict[Any, str] = {}  # call_id -> tool name, from the assistant's items
    answering = False  # inside an assistant turn
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad("input", "input[%d] must be an object, got %s" % (index, _shown(item)))
        kind, role = item.get("type", "message"), item.get("role")
        mine = kind in _ASSISTANT_ITEMS or (kind == "message" and role == "assistant")
        if mine and not answering:
            req.turn += 1
            req.results = []
        answering = mine
        if kind in _ASSISTANT_ITEMS and kind != "reasoning":
            calls[item.get("call_id")] = item.get("name") or kind[: -len("_call")]  # local_shell_call: local_shell
        elif kind in _TOOL_OUTPUTS:
            if item.get("call_id") not in calls:
                raise _bad("input", "input[%d] is a %s for call_id %s, which matches no %s earlier in the "
                           "conversation" % (index, kind, _shown(item.get("call_id")), _TOOL_OUTPUTS[kind]))
            output = item.get("output")
            req.results.append((calls[item["call_id"]], output if isinstance(output, str) else _item_text(output)))
        elif kind == "message" and role in ("system", "developer"):
            system.append(_item_text(item.get("content")))
        elif kind == "message" and role == "user":
            req.user_text = _item_text(item.get("content"))
            req.results = []
    req.system = "\n".join(system)


# ---------------------------------------------------------------------------
# The canned reply: when no fixture answers
# ---------------------------------------------------------------------------


def _thinks(req: _Request) -> bool:
    """Whether this model thinks for this request (PROTOCOL.md, "Thinking")."""
    name = req.model.rsplit("/", 1)[-1].lower()
    if name.startswith(_THINKS_ALWAYS):
        return True
    kind = req.thinking.get("type") if isinstance(req.thinking, dict) else None
    if kind in ("enabled", "disabled"):
        return kind == "enabled"
    return name.startswith(_THINKS_BY_DEFAULT)


def _tool_words(name: str) -> list[str]:
    """The words a user would say to ask for a tool: get_weather -> ["weather"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", spaced) if w]
    return [w for w in words if w not in _GENERIC_WORDS] or words


def _spoken(text: str) -> str:
    """What the user said, without the <system-reminder> blocks that agents such as
    Claude Code add to the user's message (they name every tool in passing).
    One pass over the text: a regex would rescan the rest at every unclosed opening."""
    opening, closing = "<system-reminder>", "</system-reminder>"
    if opening not in text:
        return text.strip()
    kept, at = [], 0
    while True:
        start = text.find(opening, at)
        end = text.find(closing, start + len(opening)) if start >= 0 else -1
        if end < 0:
            break
        kept.append(text[at:start])
        at = end + len(closing)
    kept.append(text[at:])
    return "".join(kept).strip()


def _tools_named(req: _Request) -> list[str]:
    """The offered tools that the last user message names, in the offered order."""
    text = _spoken(req.user_text).lower()
    named = []
    for name, _ in req.tools:
        if name.lower() in text or any(
            re.search(r"\b" + re.escape(word), text) for word in _tool_words(name)
        ):
            named.append(name)
    return named


def _tools_to_call(req: _Request) -> list[str]:
    """Which tools the canned model calls for this request."""
    if not req.tools or req.results or req.tool_choice == "none":
        return []
    offered = [name for name, _ in req.tools]
    if req.tool_choice not in ("auto", "required"):
        return [req.tool_choice] if req.tool_choice in offered else []
    names = _tools_named(req)
    if not names and req.tool_choice == "required":
        names = offered[:1]
    return names if req.parallel else names[:1]


def _sample(schema: Any, key: str, hint: list[str], root: Any = None, depth: int = 0) -> Any:
    """A value that satisfies a JSON schema; ``hint`` offers a word from the user.
    ``$ref`` to ``#/$defs/...`` (or ``#/definitions/...``) resolves against ``root``
    (the whole schema), as pydantic writes nested models; a recursive model stops
    at an empty value rather than recursing forever."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 16:
        return "example" if not isinstance(schema, dict) else None
    if isinstance(schema.get("$ref"), str):
        return _sample(_resolve(schema["$ref"], root), key, hint, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = [
            s for s in schema.get(combinator) or [] if isinstance(s, dict) and s.get("type") != "null"
        ]
        if options and combinator == "allOf":
            merged: dict[str, Any] = {}
            for option in options:
                merged.update(_resolve(option["$ref"], root) if isinstance(option.get("$ref"), str) else option)
            return _sample(merged, key, hint, root, depth + 1)
        if options:
            return _sample(options[0], key, hint, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return {
            name: _sample(sub, name, hint, root, depth + 1)
            for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        item = _sample(schema.get("items"), key, hint, root, depth + 1)
        return [item] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        value = low if low is not None else (min(1, high) if high is not None else 1)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _sample_string(schema, key, hint)


def _resolve(ref: str, root: Any) -> Any:
    """The schema a local ``$ref`` (``#/$defs/Name``, any JSON pointer) points at, or {}."""
    node = root
    if not ref.startswith("#"):
        return {}
    for part in [p for p in ref[1:].split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else {}


def _prompt_schema(req: _Request) -> dict[str, Any] | None:
    """A JSON schema that the system prompt or the last user message carries, when
    it also asks for JSON (a common way to ask for structured output without
    ``response_format``); None otherwise."""
    for text in (req.system, req.user_text):
        if "json" not in text.lower() or "{" not in text:
            continue
        decoder = json.JSONDecoder()
        at = text.find("{")
        for _ in range(20):  # a bounded search: the first parsable object that is a schema
            if at < 0:
                break
            try:
                value, _end = decoder.raw_decode(text, at)
            except ValueError:
                value = None
            if isinstance(value, dict) and ("properties" in value or "$defs" in value or value.get("type") == "object"):
                return value
            at = text.find("{", at + 1)
    return None


def _sample_string(schema: dict[str, Any], key: str, hint: list[str]) -> str:
    formats = {
        "date": "2026-01-01", "date-time": "2026-01-01T00:00:00Z", "email": "user@example.com",
        "uri": "https://example.com", "uuid": "00000000-0000-4000-8000-000000000000",
    }
    value = formats.get(schema.get("format", "")) or (hint.pop(0) if hint else "example " + key)
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    value = value.ljust(low, "x")
    return value[:high] if high is not None else value


def _hint_words(text: str) -> list[str]:
    """Capitalised words after the first: "Should I go to Beijing?" -> ["Beijing"]."""
    words = re.findall(r"[A-Za-z][\w-]*", text)
    return [w for w in words[1:] if w[0].isupper() and len(w) > 1]  # not "I"


def _call_id(prefix: str, seed: str, index: int) -> str:
    return prefix + hashlib.sha256(("%s/%d" % (seed, index)).encode()).hexdigest()[:24]


def _plan(req: _Request) -> _Reply:
    """The canned reply for a request: deterministic for the same request."""
    thinks = _thinks(req)
    said = _brief(_spoken(req.user_text)) or "(nothing)"
    if req.results:
        used = "; ".join("%s returned %s" % (name, _brief(text)) for name, text in req.results)
        reasoning = "The tool results are in. I will answer from them." if thinks else ""
        return _Reply(reasoning=reasoning, text=_formatted(req, "Here is what I found: %s." % used),
                      prompt_tokens=req.prompt_tokens)
    calls = []
    schemas = dict(req.tools)
    for index, name in enumerate(_tools_to_call(req)):
        hint = _hint_words(_spoken(req.user_text))  # each call draws from the user's words afresh
        arguments = _sample(schemas[name] or {"type": "object"}, name, hint)
        if not isinstance(arguments, dict):
            arguments = {}
        calls.append(_Call(_call_id(req.id_prefix, req.seed, index), name, arguments))
    if calls:
        names = ", ".join(c.name for c in calls)
        reasoning = "The user asked %r. I should call %s." % (said, names) if thinks else ""
        return _Reply(reasoning=reasoning, calls=calls, prompt_tokens=req.prompt_tokens)
    reasoning = "The user said %r. I will reply briefly." % said if thinks else ""
    text = "This is the TokenHub mock server (%s). You said: %s" % (req.model, said)
    return _Reply(reasoning=reasoning, text=_formatted(req, text), prompt_tokens=req.prompt_tokens)


def _formatted(req: _Request, text: str) -> str:
    """The canned text as the request's response_format wants it: valid JSON for
    json_object, an instance of the schema for json_schema."""
    if req.response_format is None:
        schema = _prompt_schema(req)
        if schema is None:
            return text
        return json.dumps(_sample(schema, "answer", _hint_words(_spoken(req.user_text))), ensure_ascii=False)
    if req.response_format["type"] == "json_object":
        return json.dumps({"answer": text}, ensure_ascii=False)
    schema = req.response_format["json_schema"]["schema"]
    return json.dumps(_sample(schema, "answer", _hint_words(_spoken(req.user_text))), ensure_ascii=False)


def _brief(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------
# Shaping: what the request's limits let out
# ---------------------------------------------------------------------------


def _shape(reply: _Reply, req: _Request) -> _Reply:
    """The reply cut at the first stop string, then at ``max_tokens`` (which the
    reasoning and the answer share, PROTOCOL.md "Thinking")."""
    reply = _cut_at_stop(reply, req.stop)
    return reply if req.max_tokens is None else _cut_to_budget(reply, req.max_tokens)


def _cut_at_stop(reply: _Reply, stops: list[str]) -> _Reply:
    hits = [(reply.text.find(stop), stop) for stop in stops if stop and stop in reply.text]
    if not hits:
        return reply
    at, stop = min(hits)
    return reply.replace(text=reply.text[:at], calls=[], finish="stop_sequence", stop_sequence=stop)


def _cut_to_budget(reply: _Reply, budget: int) -> _Reply:
    reasoning, used = _first_tokens(reply.reasoning, budget)
    text, said = _first_tokens(reply.text, budget - used)
    calls = sum(_count_tokens(call.json()) for call in reply.calls)
    if reasoning == reply.reasoning and text == reply.text and used + said + calls <= budget:
        return reply
    return reply.replace(reasoning=reasoning, text=text, calls=[], finish="length", stop_sequence=None)


def _pieces(text: str) -> list[str]:
    """Stream-sized pieces of a text that join back to it exactly (a word each)."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]


def _fragments(text: str, size: int = 8) -> list[str]:
    """Fixed-size fragments, as tool-call arguments arrive on the wire."""
    return [text[i: i + size] for i in range(0, len(text), size)] or [""]


# ---------------------------------------------------------------------------
# Fixtures: a match, and the response (or fault) to serve
# ---------------------------------------------------------------------------

_FIXTURE_KEYS = ("name", "match", "response", "fault", "times", "recorded")  # recorded: notes, not read
_MATCH_KEYS = ("model", "protocol", "path", "user", "user_is", "system", "tools", "has_tool_result", "turn",
               "stream", "headers")
_RESPONSE_KEYS = ("text", "reasoning", "tool_calls", "finish_reason", "stop_reason", "usage", "raw",
                  "reasoning_shape")
#: How reasoning reaches an OpenAI-protocol client (PROTOCOL.md, "Provider behaviour").
_REASONING_SHAPES = ("reasoning_content", "reasoning_details", "think")
_CALL_KEYS = ("name", "arguments", "id")
_RAW_KEYS = ("status", "headers", "body", "sse", "events", "offsets")
_USAGE_NAMES = {
    "prompt_tokens": "prompt", "input_tokens": "prompt",
    "completion_tokens": "completion", "output_tokens": "completion",
    "reasoning_tokens": "reasoning",
    "cached_tokens": "cached", "cache_read_input_tokens": "cached",
}


def _pattern(value: Any, where: str, *, exact: bool) -> Callable[[str], bool]:
    """A test on text: "/regex/flags" searches; otherwise a case-insensitive
    substring test (``exact``: a case-insensitive equality test)."""
    if not isinstance(value, str):
        raise ValueError("%s: expected a string or a \"/regex/\", got %s" % (where, _shown(value)))
    body, _, flags = value[1:].rpartition("/")
    if value.startswith("/") and body and set(flags) <= set("imsx"):
        bits = 0
        for flag in flags:
            bits |= {"i": re.I, "m": re.M, "s": re.S, "x": re.X}[flag]
        try:
            compiled = re.compile(body, bits)
        except re.error as exc:
            raise ValueError("%s: %s is not a valid regular expression: %s" % (where, _shown(value), exc)) from None
        return lambda text: compiled.search(text) is not None
    wanted = value.lower()
    if exact:
        return lambda text: text.lower() == wanted
    return lambda text: wanted in text.lower()


def _typed(value: Any, kind: type, what: str, where: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ValueError("%s: expected %s, got %s" % (where, what, _shown(value)))
    return value


def _match_rule(key: str, value: Any, where: str) -> Callable[[_Request], bool]:
    """One match key's test on a request."""
    if key in ("model", "path", "user", "system"):
        test = _pattern(value, where, exact=key in ("model", "path"))
        field = {"user": "user_text"}.get(key, key)
        return lambda req: test(getattr(req, field))
    if key == "user_is":  # exactly this text: what a recording matches on
        text = _typed(value, str, "the exact text of the last user message", where)
        return lambda req: req.user_text == text
    if key == "protocol":
        if value not in _MOCK_PROTOCOLS:
            raise ValueError("%s: expected one of %s, got %s"
                             % (where, ", ".join('"%s"' % name for name in _MOCK_PROTOCOLS), _shown(value)))
        return lambda req: req.protocol == value
    if key == "tools":
        names = _typed(value, list, "a list of tool names", where)
        if not all(isinstance(name, str) for name in names):
            raise ValueError("%s: expected a list of tool names, got %s" % (where, _shown(value)))
        # Every named tool offered; [] means no tools at all.
        return lambda req: set(names) <= {n for n, _ in req.tools} and (bool(names) or not req.tools)
    if key in ("has_tool_result", "stream"):
        flag = _typed(value, bool, "true or false", where)
        attribute = {"has_tool_result": "results"}.get(key, key)
        return lambda req: bool(getattr(req, attribute)) == flag
    if key == "turn":
        turn = _typed(value, int, "a turn number (1 for the first reply)", where)
        return lambda req: req.turn == turn
    headers = _typed(value, dict, "an object of header name to value", where)
    tests = {name.lower(): _pattern(text, "%s.%s" % (where, name), exact=False) for name, text in headers.items()}
    return lambda req: all(name in req.headers and test(req.headers[name]) for name, test in tests.items())


class _Raw:
    """A reply replayed as written: status, headers, and a body or SSE events."""

    __slots__ = ("status", "headers", "pieces", "stream", "offsets")

    def __init__(self, spec: Any, where: str) -> None:
        spec = _check_keys(spec, _RAW_KEYS, where)
        self.status = _typed(spec.get("status", 200), int, "an HTTP status", where + ".status")
        if not 100 <= self.status <= 599:
            raise ValueError("%s.status: expected an HTTP status from 100 to 599, got %d" % (where, self.status))
        headers = _typed(spec.get("headers", {}), dict, "an object of header name to value", where + ".headers")
        self.headers = [(str(name), _typed(value, str, "a header value string", "%s.headers.%s" % (where, name)))
                        for name, value in headers.items()]
        bodies = [key for key in ("body", "sse", "events") if key in spec]
        if len(bodies) > 1:
            raise ValueError("%s: expected one of 'body', 'sse' or 'events', got %s" % (where, " and ".join(bodies)))
        self.stream = bool(bodies) and bodies[0] != "body"
        self.pieces = self._pieces(spec, bodies[0] if bodies else None, where)
        self.offsets = self._offsets(spec.get("offsets"), len(self.pieces), where)
        if not any(name.lower() == "content-type" for name, _ in self.headers):
            kind = "text/event-stream; charset=utf-8" if self.stream else "application/json"
            self.headers.append(("Content-Type", kind))

    @staticmethod
    def _pieces(spec: dict[str, Any], key: str | None, where: str) -> list[bytes]:
        # Strings become their UTF-8 bytes; bytes that were not UTF-8 come back exactly
        # from the lone surrogates a recording stores them as ("surrogateescape").
        if key is None:
            return []
        value = spec[key]
        if key == "body":  # any other JSON value is serialised
            return [_to_bytes(value) if isinstance(value, str) else json.dumps(value).encode()]
        if key == "sse":  # one transcript, counted as events at each blank line
            text = _typed(value, str, "an SSE transcript string", where + ".sse")
            return [_to_bytes(event) for event in _split_events(text)]
        events = _typed(value, list, "a list of SSE event strings", where + ".events")
        return [_to_bytes(_typed(e, str, "an SSE event string", "%s.events[%d]" % (where, i))) for i, e in enumerate(events)]

    @staticmethod
    def _offsets(value: Any, count: int, where: str) -> list[float] | None:
        """Seconds from the reply's start at which each event was sent (for --realtime)."""
        if value is None:
            return None
        if (not isinstance(value, list) or len(value) != count
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value)):
            raise ValueError("%s.offsets: expected %d non-negative numbers of seconds, one per event, got %s"
                             % (where, count, _shown(value)))
        return [float(v) for v in value]


def _split_events(text: Any) -> list[Any]:
    """A transcript (str or bytes) cut after each blank line; the pieces join back exactly."""
    pattern = r"(?s).*?(?:\r\n\r\n|\n\n|\r\r)|.+"
    return re.findall(pattern.encode() if isinstance(text, bytes) else pattern, text)


def _to_bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _to_text(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


class _Response:
    """A fixture's response: protocol-neutral parts, or a raw reply."""

    __slots__ = ("text", "reasoning", "calls", "finish", "usage", "raw", "shape")

    def __init__(self, spec: Any, where: str) -> None:
        if isinstance(spec, str):
            spec = {"text": spec}
        spec = _check_keys(spec, _RESPONSE_KEYS, where)
        self.raw = _Raw(spec["raw"], where + ".raw") if "raw" in spec else None
        if self.raw is not None and len(spec) > 1:
            raise ValueError("%s: 'raw' is replayed as written and takes no other key, got %s"
                             % (where, ", ".join(sorted(spec))))
        self.text = _typed(spec.get("text", ""), str, "a string", where + ".text")
        self.reasoning = _typed(spec.get("reasoning", ""), str, "a string", where + ".reasoning")
        calls = _typed(spec.get("tool_calls", []), list, "a list of tool calls", where + ".tool_calls")
        self.calls = [self._call(call, "%s.tool_calls[%d]" % (where, i)) for i, call in enumerate(calls)]
        finish = spec.get("finish_reason", spec.get("stop_reason"))
        if finish is not None:
            _typed(finish, str, "a finish reason string", where + ".finish_reason")
        self.finish = _FROM_ANTHROPIC_STOP.get(finish, finish)
        self.usage = self._usage(spec.get("usage", {}), where + ".usage")
        self.shape = spec.get("reasoning_shape")
        if self.shape is not None and self.shape not in _REASONING_SHAPES:
            raise ValueError("%s.reasoning_shape: expected one of %s, got %s"
                             % (where, ", ".join(_REASONING_SHAPES), _shown(self.shape)))

    @staticmethod
    def _call(spec: Any, where: str) -> tuple[str | None, str, Any]:
        spec = _check_keys(spec, _CALL_KEYS, where)
        name = _typed(spec.get("name"), str, "a tool name", where + ".name")
        arguments = spec.get("arguments", {})
        if not isinstance(arguments, (dict, str)):
            raise ValueError("%s.arguments: expected an object or a JSON string, got %s" % (where, _shown(arguments)))
        call_id = spec.get("id")
        if call_id is not None:
            _typed(call_id, str, "a tool-call id string", where + ".id")
        return call_id, name, arguments

    @staticmethod
    def _usage(spec: Any, where: str) -> dict[str, int]:
        spec = _check_keys(spec, _USAGE_NAMES, where)
        return {_USAGE_NAMES[key]: _typed(value, int, "a token count", "%s.%s" % (where, key))
                for key, value in spec.items()}

    def reply(self, req: _Request) -> _Reply:
        calls = [
            _Call(call_id or _call_id(req.id_prefix, req.seed, index), name, arguments)
            for index, (call_id, name, arguments) in enumerate(self.calls)
        ]
        return _Reply(reasoning=self.reasoning, text=self.text, calls=calls, finish=self.finish,
                      prompt_tokens=req.prompt_tokens, usage=self.usage, shape=self.shape)


class Fixture:
    """One fixture: the requests it matches, and the response, the responses in
    turn (a sequence), or the fault it serves.

    Built from one entry of the fixture format::

        {"name": "weather", "match": {"user": "weather", "tools": ["get_weather"]},
         "response": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
         "times": 1}

    ``used`` counts the requests it has answered. It stops matching after ``times``
    answers; a sequence's ``times`` defaults to its length.
    """

    __slots__ = ("name", "rules", "responses", "fault", "times", "used")

    def __init__(self, spec: Mapping[str, Any], *, name: str = "fixture") -> None:
        spec = _check_keys(spec, _FIXTURE_KEYS, name)
        self.name = _typed(spec.get("name", name), str, "a name string", name + ".name")
        where = self.name
        match = _check_keys(spec.get("match", {}), _MATCH_KEYS, where + ".match")
        self.rules = [_match_rule(key, value, "%s.match.%s" % (where, key)) for key, value in match.items()]
        response = spec.get("response")
        listed = response if isinstance(response, list) else [] if response is None else [response]
        self.responses = [_Response(r, "%s.response[%d]" % (where, i)) for i, r in enumerate(listed)]
        self.fault = _Fault.parse(spec["fault"], where + ".fault") if spec.get("fault") is not None else None
        if not self.responses and self.fault is None:
            raise ValueError("%s: expected a 'response' or a 'fault', got neither" % where)
        times = spec.get("times", len(listed) if len(listed) > 1 else None)
        if times is not None and (_typed(times, int, "a positive count", where + ".times") < 1):
            raise ValueError("%s.times: expected a positive count, got %d" % (where, times))
        self.times: int | None = times
        self.used = 0

    def __repr__(self) -> str:
        return "Fixture(%r, used %d of %s)" % (self.name, self.used, self.times or "any")

    def _matches(self, req: _Request) -> bool:
        """Whether the match rules accept ``req`` (run outside the server's lock: a slow
        fixture regex then delays only its own request, not every other one)."""
        return all(rule(req) for rule in self.rules)

    def _take(self) -> tuple[bool, _Response | None]:
        """(still available, the response to serve); counts the use. Call under the server's lock."""
        if self.times is not None and self.used >= self.times:
            return False, None
        response = self.responses[min(self.used, len(self.responses) - 1)] if self.responses else None
        self.used += 1
        return True, response


def _fixture_specs(source: Any, where: str, *, files: bool = True) -> Iterator[tuple[dict[str, Any], str]]:
    """(entry, its name for messages) of a fixture file's content, a list of entries,
    one entry, or a file or folder of such files (``*.json``, in name order).
    With ``files=False`` (fixtures posted over HTTP) a string is refused, unread."""
    if isinstance(source, (str, os.PathLike)) and not files:
        raise ValueError("%s: fixtures posted over HTTP are data (objects), not file paths; "
                         "got a string, not read" % where)
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if os.path.isdir(path):
            for name in sorted(os.listdir(path)):
                if name.endswith(".json"):
                    yield from _fixture_specs(os.path.join(path, name), where)
            return
        try:
            with open(path, "rb") as file:
                content = json.loads(file.read())
        except OSError as exc:
            raise ValueError("cannot read fixtures from %s: %s" % (path, exc.strerror or exc)) from None
        except ValueError as exc:
            raise ValueError("%s: not valid JSON: %s" % (path, exc)) from None
        yield from _fixture_specs(content, os.path.basename(path))
        return
    if isinstance(source, dict) and "fixtures" in source:
        _check_keys(source, ("fixtures",), where)
        source = source["fixtures"]
    entries = source if isinstance(source, list) else [source]
    for index, entry in enumerate(entries):
        if isinstance(entry, (str, os.PathLike)):  # a list of files and folders
            yield from _fixture_specs(entry, "%s[%d]" % (where, index), files=files)
        else:
            yield entry, "%s[%d]" % (where, index)


# ---------------------------------------------------------------------------
# Faults: what goes wrong, on demand
# ---------------------------------------------------------------------------

# What a fault does after N events, in the order it does them when several fall due at once.
_AFTER_ACTIONS = ("stall", "malformed", "error", "truncate", "disconnect")
_FAULT_KEYS = ("status", "retry-after", "retry-after-ms", "type", "message", "seconds", "drip", "ttfb") + tuple(
    action + "-after" for action in _AFTER_ACTIONS
)
_STALL_SECONDS = 30.0


class _Fault:
    """A parsed fault: an error status, or actions after N events, and pacing."""

    __slots__ = ("spec", "status", "kind", "message", "headers", "after", "seconds", "drip", "ttfb")

    def __init__(self) -> None:
        self.spec = ""
        self.status: int | None = None
        self.kind: str | None = None
        self.message: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.after: dict[str, int] = {}
        self.seconds: float | None = None  # a stall's length; None: _STALL_SECONDS
        self.drip = 0.0
        self.ttfb = 0.0

    @classmethod
    def parse(cls, spec: Any, where: str) -> _Fault:
        """From "status=429,retry-after=1" or {"status": 429, "retry_after": 1}."""
        if isinstance(spec, str):
            pairs = []
            for item in filter(None, (part.strip() for part in spec.split(","))):
                key, equals, value = item.partition("=")
                if not equals:
                    raise ValueError("%s: expected key=value items, got %r in %r" % (where, item, spec))
                pairs.append((key.strip(), value.strip()))
        elif isinstance(spec, dict):
            pairs = list(spec.items())
        else:
            raise ValueError("%s: expected a fault like \"status=429\" or an object, got %s" % (where, _shown(spec)))
        fault = cls()
        fault.spec = spec if isinstance(spec, str) else ",".join("%s=%s" % pair for pair in pairs)
        for key, value in pairs:
            fault._set(str(key).lower().replace("_", "-"), value, where)
        fault._check(where)
        return fault

    def _set(self, key: str, value: Any, where: str) -> None:
        if key not in _FAULT_KEYS:
            raise ValueError("%s: unknown fault %r (expected one of: %s)" % (where, key, ", ".join(_FAULT_KEYS)))
        if key == "status":
            self.status = int(_fault_number(value, key, where, low=400, high=599, integer=True))
        elif key in ("type", "message"):
            setattr(self, "kind" if key == "type" else key, str(value))
        elif key in ("retry-after", "retry-after-ms"):
            self.headers.append((key, str(value)))
        elif key.endswith("-after"):
            self.after[key[: -len("-after")]] = int(_fault_number(value, key, where, integer=True))
        else:
            setattr(self, key, _fault_number(value, key, where))

    def _check(self, where: str) -> None:
        if self.status is not None and self.after:
            raise ValueError("%s: 'status' answers at once and cannot go with %s"
                             % (where, ", ".join(k + "-after" for k in self.after)))
        if self.kind and self.status is None and "error" not in self.after:
            raise ValueError("%s: 'type' goes with 'status' or 'error-after'" % where)
        if self.seconds is not None and "stall" not in self.after:
            raise ValueError("%s: 'seconds' goes with 'stall-after'" % where)

    def due(self, sent: int) -> list[str]:
        """The actions to take once ``sent`` events are out."""
        return [action for action in _AFTER_ACTIONS if self.after.get(action) == sent]

    def error(self, protocol: str) -> _HTTPError:
        """The error this fault sends: its status, or the type of its in-stream error."""
        kind = self.kind or (_kind_of(self.status) if self.status else "api_error")
        status = self.status or _KIND_STATUS.get(kind, 500)
        message = self.message or "injected by the mock server (fault %s)" % _shown(self.spec)
        return _HTTPError(status, kind, message, headers=self.headers)


def _fault_number(value: Any, key: str, where: str, *, low: float = 0, high: float | None = None,
                  integer: bool = False) -> float:
    try:
        number = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        number = float("nan")
    if high is None:  # nothing unbounded: Event.wait() overflows on 1e308 and inf
        high = 2 ** 31 if integer else _MAX_FAULT_SECONDS
    ok = low <= number <= high and (not integer or number.is_integer())
    if not ok:
        span = "from %s to %s" % (low, high)
        what = "an integer" if integer else "a number of seconds"
        raise ValueError("%s: %r expects %s %s, got %s" % (where, key, what, span, _shown(value)))
    return number


# ---------------------------------------------------------------------------
# Replies on the wire
# ---------------------------------------------------------------------------


class _Out:
    """A reply ready to send: status, headers, and its body as pieces (SSE events
    when ``stream``, sent chunked; otherwise one body with a Content-Length)."""

    __slots__ = ("status", "headers", "pieces", "stream", "offsets")

    def __init__(
        self, status: int, headers: list[tuple[str, str]], pieces: list[bytes], *, stream: bool,
        offsets: list[float] | None = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.pieces = pieces
        self.stream = stream
        self.offsets = offsets  # a recording's timing, kept with --realtime


def _json_out(status: int, body: Any, headers: Iterable[tuple[str, str]] = ()) -> _Out:
    data = json.dumps(body, ensure_ascii=False).encode()
    return _Out(status, [("Content-Type", "application/json"), *headers], [data], stream=False)


def _sse_out(events: Iterable[bytes]) -> _Out:
    headers = [("Content-Type", "text/event-stream; charset=utf-8"), ("Cache-Control", "no-cache")]
    return _Out(200, headers, list(events), stream=True)


def _sse(data: Any, event: str | None = None) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = "event: %s\n" % event if event else ""
    return ("%sdata: %s\n\n" % (head, text)).encode()


def _openai_error_body(error: _HTTPError, request_id: str) -> dict[str, Any]:
    return {"error": {"message": error.message, "type": error.kind, "param": error.param, "code": error.code}}


def _openai_error_event(error: _HTTPError, sequence: int) -> bytes:
    """An error sent inside a chat completion stream (PROTOCOL.md)."""
    return _sse({"error": {"message": error.message, "type": error.kind, "param": None, "code": None}})


def _anthropic_error_body(error: _HTTPError, request_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {"type": error.kind, "message": error.message}
    if error.details is not None:
        body["details"] = error.details
    return {"type": "error", "error": body, "request_id": request_id}


def _anthropic_error_event(error: _HTTPError, sequence: int) -> bytes:
    """An error sent inside a message stream (PROTOCOL.md)."""
    return _sse({"type": "error", "error": {"type": error.kind, "message": error.message}}, "error")


def _error_out(protocol: str, error: _HTTPError, request_id: str) -> _Out:
    return _json_out(error.status, _MOCK_PROTOCOLS[protocol].error_body(error, request_id), error.headers)


def _error_event(protocol: str, error: _HTTPError, sequence: int) -> bytes:
    """An error event in the protocol's shape; ``sequence``: the events sent before it."""
    return _MOCK_PROTOCOLS[protocol].error_event(error, sequence)


def _malformed(event: bytes) -> bytes:
    """The event with its data cut mid-way, as a broken gateway sends it."""
    lines = event.split(b"\n")
    for index, line in enumerate(lines):
        if line.startswith(b"data:"):
            lines[index] = line[: 6 + (len(line) - 6) // 2]
            return b"\n".join(lines)
    return b'data: {"malformed": \n\n'


def _models_body(target: str = "") -> dict[str, Any]:
    """The model list, readable by both SDKs (OpenAI and Anthropic field names);
    ``limit``, ``after_id`` and ``before_id`` in the query page it as the Anthropic API does."""
    from urllib.parse import parse_qs, urlsplit

    data = [
        {
            "id": model_id, "object": "model", "created": _MODELS_CREATED, "owned_by": vendor,
            "type": "model", "display_name": name, "created_at": "2026-01-01T00:00:00Z",
        }
        for model_id, name, vendor in MODELS
    ]
    query = {k: v[-1] for k, v in parse_qs(urlsplit(target).query).items()}
    ids = [model["id"] for model in data]
    start, end = 0, len(data)
    if query.get("after_id") in ids:
        start = ids.index(query["after_id"]) + 1
    if query.get("before_id") in ids:
        end = ids.index(query["before_id"])
    limit = query.get("limit", "")
    count = int(limit) if limit.isdigit() and int(limit) > 0 else len(data)
    page = data[start:end][:count] if "before_id" not in query else data[start:end][-count:]
    more = start + len(page) < end if "before_id" not in query else end - len(page) > start
    return {
        "object": "list", "data": page, "has_more": more,
        "first_id": page[0]["id"] if page else None, "last_id": page[-1]["id"] if page else None,
    }


# ---------------------------------------------------------------------------
# OpenAI protocol
# ---------------------------------------------------------------------------


def _openai_usage(replies: list[_Reply]) -> dict[str, Any]:
    counts = [reply.tokens() for reply in replies]
    prompt = counts[0]["prompt"]
    completion = sum(c["completion"] for c in counts)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": counts[0]["cached"]},
        "completion_tokens_details": {"reasoning_tokens": sum(c["reasoning"] for c in counts)},
    }


def _openai_finish(reply: _Reply) -> str:
    return _TO_OPENAI_FINISH.get(reply.finish_reason, reply.finish_reason)


def _openai_tool_call(call: _Call) -> dict[str, Any]:
    return {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": call.json()}}


def _openai_logprobs(text: str, req: _Request) -> dict[str, Any] | None:
    """Made-up but well-formed log probabilities, one entry per token of ``text``."""
    if not req.logprobs:
        return None
    entries = []
    for token in _SPELLED_TOKEN.findall(text):
        chosen = -round(0.01 * (1 + len(token) % 7), 4)
        others = [("%s~%d" % (token.strip() or "_", rank), chosen - rank) for rank in range(1, req.top_logprobs)]
        top = [(token, chosen)] + others
        entries.append({
            "token": token, "logprob": chosen, "bytes": list(token.encode()),
            "top_logprobs": [{"token": t, "logprob": p, "bytes": list(t.encode())} for t, p in top[: req.top_logprobs]],
        })
    return {"content": entries, "refusal": None}


def _reasoning_shape(reply: _Reply, req: _Request) -> str:
    """How this reply's reasoning is sent: the fixture's choice, else the model's way.
    MiniMax puts it in ``content`` as ``<think>...</think>``, or, asked
    ``reasoning_split``, in ``reasoning_details``; the others use ``reasoning_content``."""
    if reply.shape is not None:
        return reply.shape
    if req.model.rsplit("/", 1)[-1].lower().startswith("minimax"):
        return "reasoning_details" if req.options.get("reasoning_split") else "think"
    return "reasoning_content"


def _think(reasoning: str) -> str:
    return "<think>\n%s\n</think>\n\n" % reasoning


def _details(text: str) -> list[dict[str, Any]]:
    return [{"type": "reasoning.text", "id": "reasoning-text-1", "format": "MiniMax-response-v1", "index": 0,
             "text": text}]


def _openai_json(replies: list[_Reply], req: _Request, reply_id: str) -> dict[str, Any]:
    choices = []
    for index, reply in enumerate(replies):
        message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
        shape = _reasoning_shape(reply, req)
        if reply.reasoning and shape == "think":
            message["content"] = _think(reply.reasoning) + reply.text
        elif reply.reasoning and shape == "reasoning_details":
            message["reasoning_details"] = _details(reply.reasoning)
        elif reply.reasoning:
            message["reasoning_content"] = reply.reasoning
        if reply.calls:
            message["tool_calls"] = [_openai_tool_call(call) for call in reply.calls]
        choices.append({
            "index": index, "message": message,
            "logprobs": _openai_logprobs(reply.text, req), "finish_reason": _openai_finish(reply),
        })
    return {
        "id": reply_id, "object": "chat.completion", "created": int(time.time()), "model": req.model,
        "choices": choices, "usage": _openai_usage(replies),
    }


def _openai_deltas(index: int, reply: _Reply, req: _Request) -> Iterator[dict[str, Any]]:
    """One choice's stream entries: role, reasoning, text, tool-call pieces, finish."""

    def entry(delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}

    yield entry({"role": "assistant", "content": ""})
    shape = _reasoning_shape(reply, req)
    for piece in _pieces(_think(reply.reasoning) if reply.reasoning and shape == "think" else ""):
        yield entry({"content": piece})
    for piece in _pieces(reply.reasoning) if shape != "think" else ():
        yield entry({"reasoning_details": _details(piece)} if shape == "reasoning_details"
                    else {"reasoning_content": piece})
    for piece in _pieces(reply.text):
        yield entry({"content": piece}, logprobs=_openai_logprobs(piece, req))
    for number, call in enumerate(reply.calls):
        first = {"index": number, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
        yield entry({"tool_calls": [first]})
        for fragment in _fragments(call.json()):
            yield entry({"tool_calls": [{"index": number, "function": {"arguments": fragment}}]})
    yield entry({}, _openai_finish(reply))


def _openai_sse(replies: list[_Reply], req: _Request, reply_id: str) -> Iterator[bytes]:
    """The chunks of a streamed chat completion, then [DONE]; with ``n`` > 1 the
    choices' entries interleave, as the service sends them."""
    head = {"id": reply_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": req.model}
    streams = [_openai_deltas(index, reply, req) for index, reply in enumerate(replies)]
    while streams:
        for stream in list(streams):
            choice = next(stream, None)
            if choice is None:
                streams.remove(stream)
                continue
            chunk = dict(head, choices=[choice])
            if req.include_usage:  # with include_usage every chunk has the key, null until the last
                chunk["usage"] = None
            yield _sse(chunk)
    if req.include_usage:
        yield _sse(dict(head, choices=[], usage=_openai_usage(replies)))
    yield b"data: [DONE]\n\n"


def _openai_out(replies: list[_Reply], req: _Request) -> _Out:
    reply_id = "chatcmpl-" + hashlib.sha256(req.seed.encode()).hexdigest()[:24]
    if req.stream:
        return _sse_out(_openai_sse(replies, req, reply_id))
    return _json_out(200, _openai_json(replies, req, reply_id))


# ---------------------------------------------------------------------------
# Anthropic protocol
# ---------------------------------------------------------------------------


def _anthropic_blocks(reply: _Reply, *, streaming: bool) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.reasoning:
        blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": ""})
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.calls:  # a stream sends the arguments as written, in fragments
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name,
                       "input": call.json() if streaming else call.input()})
    return blocks


def _anthropic_stop(reply: _Reply) -> str:
    return _TO_ANTHROPIC_STOP.get(reply.finish_reason, reply.finish_reason)


def _anthropic_usage(reply: _Reply, output_tokens: int) -> dict[str, Any]:
    tokens = reply.tokens()
    return {
        "input_tokens": tokens["prompt"], "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0, "cache_read_input_tokens": tokens["cached"],
    }


def _anthropic_message(reply: _Reply, req: _Request, reply_id: str, *, streaming: bool) -> dict[str, Any]:
    return {
        "id": reply_id,
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": [] if streaming else _anthropic_blocks(reply, streaming=False),
        "stop_reason": None if streaming else _anthropic_stop(reply),
        "stop_sequence": None if streaming else reply.stop_sequence,
        "usage": _anthropic_usage(reply, 1 if streaming else reply.tokens()["completion"]),
    }


_DELTAS = {"thinking": ("thinking_delta", "thinking"), "text": ("text_delta", "text"),
           "tool_use": ("input_json_delta", "partial_json")}


def _anthropic_sse(reply: _Reply, req: _Request, reply_id: str) -> Iterator[bytes]:
    """The events of a streamed message, in the documented order, with a ping."""
    message = _anthropic_message(reply, req, reply_id, streaming=True)
    yield _sse({"type": "message_start", "message": message}, "message_start")
    yield _sse({"type": "ping"}, "ping")
    for index, block in enumerate(_anthropic_blocks(reply, streaming=True)):
        kind = block["type"]
        delta_type, field = _DELTAS[kind]
        if kind == "tool_use":
            start, pieces = dict(block, input={}), _fragments(block["input"])
        else:
            start, pieces = dict(block, **{field: ""}), _pieces(block[field])
        yield _sse({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start")
        for piece in pieces:
            delta = {"type": delta_type, field: piece}
            yield _sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
    yield _sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": _anthropic_stop(reply), "stop_sequence": reply.stop_sequence},
            "usage": {"output_tokens": reply.tokens()["completion"]},
        },
        "message_delta",
    )
    yield _sse({"type": "message_stop"}, "message_stop")


def _anthropic_out(reply: _Reply, req: _Request) -> _Out:
    reply_id = "msg_" + hashlib.sha256(req.seed.encode()).hexdigest()[:24]
    if req.stream:
        return _sse_out(_anthropic_sse(reply, req, reply_id))
    return _json_out(200, _anthropic_message(reply, req, reply_id, streaming=False))


# ---------------------------------------------------------------------------
# OpenAI Responses protocol
# ---------------------------------------------------------------------------


def _responses_usage(reply: _Reply) -> dict[str, Any]:
    tokens = reply.tokens()
    return {
        "input_tokens": tokens["prompt"], "input_tokens_details": {"cached_tokens": tokens["cached"]},
        "output_tokens": tokens["completion"], "output_tokens_details": {"reasoning_tokens": tokens["reasoning"]},
        "total_tokens": tokens["prompt"] + tokens["completion"],
    }


def _responses_call(call: _Call, kind: str, item_id: str) -> dict[str, Any]:
    """A tool call as the item its tool's kind takes (Codex's shell runs local_shell_call)."""
    if kind == "local_shell":
        command = call.arguments.get("command") if isinstance(call.arguments, dict) else None
        return {"type": "local_shell_call", "id": item_id, "call_id": call.id, "status": "completed",
                "action": {"type": "exec", "command": command if isinstance(command, list) else ["true"],
                           "env": {}, "timeout_ms": None, "user": None, "working_directory": None}}
    if kind == "custom":
        value = call.arguments.get("input") if isinstance(call.arguments, dict) else call.arguments
        return {"type": "custom_tool_call", "id": item_id, "call_id": call.id, "name": call.name,
                "input": value if isinstance(value, str) else json.dumps(value)}
    return {"type": "function_call", "id": item_id, "call_id": call.id, "name": call.name,
            "arguments": call.json(), "status": "completed"}


def _responses_items(reply: _Reply, req: _Request, reply_id: str) -> list[dict[str, Any]]:
    digest = reply_id[5:]
    items: list[dict[str, Any]] = []
    if reply.reasoning:
        item: dict[str, Any] = {"type": "reasoning", "id": "rs_" + digest, "summary": []}
        if req.options.get("summary"):
            item["summary"] = [{"type": "summary_text", "text": reply.reasoning}]
        else:  # the raw form open-weight models send
            item["content"] = [{"type": "reasoning_text", "text": reply.reasoning}]
        items.append(item)
    if reply.text:
        items.append({"type": "message", "id": "msg_" + digest, "status": "completed", "role": "assistant",
                      "content": [{"type": "output_text", "text": reply.text, "annotations": [], "logprobs": []}]})
    kinds = req.options.get("kinds") or {}
    for index, call in enumerate(reply.calls):
        items.append(_responses_call(call, kinds.get(call.name, "function"), "fc_%s%d" % (digest[:20], index)))
    return items


def _responses_object(reply: _Reply, req: _Request, reply_id: str, body: Mapping[str, Any], *,
                      status: str | None = None) -> dict[str, Any]:
    """The whole ``response`` object (``status`` given: the in-progress shell a stream starts with)."""
    cut = reply.finish_reason == "length"
    final = status is None
    fmt = (body.get("text") or {}).get("format") if isinstance(body.get("text"), dict) else None
    reasoning = body.get("reasoning") if isinstance(body.get("reasoning"), dict) else {}
    return {
        "id": reply_id, "object": "response", "created_at": int(time.time()),
        "status": ("incomplete" if cut else "completed") if final else status,
        "error": None, "incomplete_details": {"reason": "max_output_tokens"} if cut and final else None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "model": req.model, "output": _responses_items(reply, req, reply_id) if final else [],
        "parallel_tool_calls": req.parallel, "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": body.get("store") is not False, "temperature": body.get("temperature", 1.0),
        "text": {"format": fmt or {"type": "text"}}, "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [], "top_p": body.get("top_p", 1.0), "truncation": "disabled",
        "usage": _responses_usage(reply) if final else None, "metadata": body.get("metadata") or {},
        "user": body.get("user"),
    }


def _responses_events(reply: _Reply, req: _Request, reply_id: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The events of a streamed response, in the documented order (PROTOCOL.md)."""
    shell = _responses_object(reply, req, reply_id, body, status="in_progress")
    yield {"type": "response.created", "response": shell}
    yield {"type": "response.in_progress", "response": shell}
    for index, item in enumerate(_responses_items(reply, req, reply_id)):
        where = {"item_id": item["id"], "output_index": index}
        kind = item["type"]
        if kind == "reasoning":
            yield {"type": "response.output_item.added", "output_index": index,
                   "item": dict(item, summary=[], **({"content": []} if "content" in item else {}))}
            for number, part in enumerate(item["summary"]):
                yield from _part_events(dict(where, summary_index=number), part, "response.reasoning_summary_part",
                                        "response.reasoning_summary_text")
            for number, part in enumerate(item.get("content") or ()):
                yield from _part_events(dict(where, content_index=number), part, "response.content_part",
                                        "response.reasoning_text")
        elif kind == "message":
            yield {"type": "response.output_item.added", "output_index": index,
                   "item": dict(item, status="in_progress", content=[])}
            yield from _part_events(dict(where, content_index=0), item["content"][0], "response.content_part",
                                    "response.output_text", logprobs=[])
        elif kind == "function_call":
            yield {"type": "response.output_item.added", "output_index": index,
                   "item": dict(item, arguments="", status="in_progress")}
            for piece in _fragments(item["arguments"]):
                yield dict(where, type="response.function_call_arguments.delta", delta=piece)
            yield dict(where, type="response.function_call_arguments.done", arguments=item["arguments"],
                       name=item["name"])
        else:  # a built-in tool's call arrives whole
            yield {"type": "response.output_item.added", "output_index": index, "item": item}
        yield {"type": "response.output_item.done", "output_index": index, "item": item}
    final = _responses_object(reply, req, reply_id, body)
    yield {"type": "response.incomplete" if final["status"] == "incomplete" else "response.completed",
           "response": final}


def _part_events(at: dict[str, Any], part: dict[str, Any], part_event: str, text_event: str,
                 **extra: Any) -> Iterator[dict[str, Any]]:
    """One text part's events: ``<part_event>.added``, ``<text_event>.delta`` per piece,
    ``<text_event>.done``, ``<part_event>.done``; ``extra`` fields go on the text events."""
    yield dict(at, type=part_event + ".added", part=dict(part, text=""))
    for piece in _pieces(part["text"]):
        yield dict(at, type=text_event + ".delta", delta=piece, **extra)
    yield dict(at, type=text_event + ".done", text=part["text"], **extra)
    yield dict(at, type=part_event + ".done", part=part)


def _responses_id(req: _Request) -> str:
    return "resp_" + hashlib.sha256(req.seed.encode()).hexdigest()[:40]


def _responses_out(reply: _Reply, req: _Request) -> _Out:
    body = req.options["body"]
    reply_id = _responses_id(req)
    if req.stream:
        events = _responses_events(reply, req, reply_id, body)
        return _sse_out(_sse(dict(event, sequence_number=number), event["type"])
                        for number, event in enumerate(events))
    return _json_out(200, _responses_object(reply, req, reply_id, body))


def _responses_error_event(error: _HTTPError, sequence: int) -> bytes:
    """An error sent inside a response stream: the documented flat shape, numbered."""
    return _sse({"type": "error", "code": error.code or error.kind, "message": error.message,
                 "param": error.param, "sequence_number": sequence}, "error")


# ---------------------------------------------------------------------------
# The protocols the mock serves: one entry each, keyed by route
# ---------------------------------------------------------------------------


class _MockProtocol:
    """All that is specific to one protocol in the mock: its route, how a request is
    read, how a planned reply is rendered, and its error shapes. The rest of the
    server asks the registry; a new protocol is one more entry."""

    __slots__ = ("name", "route", "read", "render", "error_body", "error_event", "threads", "reasoning_rule")

    def __init__(
        self, name: str, route: str, read: Callable[..., _Request], render: Callable[[_Reply, _Request], _Out],
        error_body: Callable[[_HTTPError, str], dict[str, Any]], error_event: Callable[[_HTTPError, int], bytes],
        *, threads: bool = False, reasoning_rule: Callable[[_Request, Mapping[str, Any]], None] | None = None,
    ) -> None:
        self.reasoning_rule = reasoning_rule  # what the upstream refuses when reasoning is not sent back
        self.name = name
        self.route = route
        self.read = read
        self.render = render
        self.error_body = error_body
        self.error_event = error_event
        self.threads = threads  # replies are kept, and previous_response_id continues them


_MOCK_PROTOCOLS = {
    "openai": _MockProtocol("openai", "/v1/chat/completions", _openai_request,
                            lambda reply, req: _openai_out([reply] * req.n, req),
                            _openai_error_body, _openai_error_event, reasoning_rule=_openai_reasoning_rule),
    "anthropic": _MockProtocol("anthropic", "/v1/messages", _anthropic_request, _anthropic_out,
                               _anthropic_error_body, _anthropic_error_event, reasoning_rule=_anthropic_reasoning_rule),
    "responses": _MockProtocol("responses", "/v1/responses", _responses_request, _responses_out,
                               _openai_error_body, _responses_error_event, threads=True),
}
#: Route -> the protocol served there.
_ROUTES = {protocol.route: protocol for protocol in _MOCK_PROTOCOLS.values()}


def _route_of(path: str) -> str:
    """A request path without its query and without tokenhub.store's /api root."""
    path = path.split("?", 1)[0]
    return path[4:] if path.startswith("/api/") else path


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


def _parse_json(raw: bytes) -> tuple[Any, str]:
    """(parsed body or None, what is wrong with it or "")."""
    if not raw:
        return None, ""
    try:
        body = json.loads(raw)
    except RecursionError:
        return None, "request body nests too deeply to parse (at most %d levels are accepted)" % _MAX_DEPTH
    except ValueError as exc:
        return None, "request body is not valid JSON: %s" % exc
    # Checked only when cheap tests say they might fail: a deep body would break the
    # code that walks it, and a lone surrogate the journal's (and any reply's) UTF-8.
    if raw.count(b"[") + raw.count(b"{") > _MAX_DEPTH:
        depth = _depth(body)
        if depth > _MAX_DEPTH:
            return None, "request body nests more than %d levels deep" % _MAX_DEPTH
    if b"\\ud" in raw or b"\\uD" in raw:
        try:
            json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            return None, ("request body has a lone UTF-16 surrogate (\\u%04x) in a string; expected "
                          "surrogates in pairs, or the character itself" % ord(exc.object[exc.start]))
    return body, ""


def redacted(secret: str) -> str:
    """How the journal shows a credential: never the value, only a short fingerprint,
    so a test can still tell which key arrived (``redacted("test-key")``)."""
    import hashlib

    return "[redacted sha256:%s]" % hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def _journal_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers as the journal keeps them: credentials replaced by their fingerprint
    (an auth scheme such as "Bearer" stays readable)."""
    kept = {}
    for name, value in headers.items():
        if name in _SECRET_HEADERS:
            scheme, space, credential = value.partition(" ")
            if space and name.endswith("authorization") and scheme.isalpha():
                value = "%s %s" % (scheme, redacted(credential))
            else:
                value = redacted(value)
        kept[name] = value
    return kept


def _depth(value: Any) -> int:
    """How deep a JSON value nests (without recursion: it may be very deep)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, level)
            if level <= _MAX_DEPTH:
                stack.extend((child, level + 1) for child in item if isinstance(child, (dict, list)))
    return deepest


class _Handler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 keep-alive, streams sent chunked, faults applied."""

    protocol_version = "HTTP/1.1"
    server_version = "TokenHubMock/" + __version__
    # Writes are buffered, so a head and its body, or a stream's events, leave in one
    # send rather than one each; http.server flushes at the end of every request, and
    # a pause (ttfb, drip, stall, a recording's pace) flushes first (_pause).
    wbufsize = 64 * 1024
    server: _Server

    def setup(self) -> None:
        # A silent client (mid-request, or idle between requests) frees its thread
        # after this; a client that stops reading a stream, too (writes time out).
        self.timeout = self.server.owner.client_timeout
        self.number = self.server.owner._next_connection()
        super().setup()
        # Replies go out as a head write then a body write (or one write per event);
        # with Nagle's algorithm each second write waits ~40 ms for a delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: Any = "-", size: Any = "-") -> None:
        pass  # one line per request is written by _handle, with more to say

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose >= 2:
            sys.stderr.write("mock_server: %s\n" % (format % args))

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (garbage, a request line or header too long, an
        unknown method), answered in JSON like every other error."""
        if self.request_version == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # no HTTP/0.9 here: always send a status line
        self.close_connection = True
        phrase = self.responses.get(code, ("error",))[0]
        detail = "%s: %s" % (phrase, message) if message and message != phrase else phrase
        error = _HTTPError(code, _kind_of(code), "the mock server cannot read this request: %s" % detail)
        out = _error_out("openai", error, "req_mock_rejected")
        try:
            self._write_head(out.status, out.headers + [("Content-Length", str(len(out.pieces[0])))])
            self.wfile.write(out.pieces[0])
        except OSError:
            pass
        self.server.owner._log("%s -> %d %s" % (_brief(self.requestline or "(no request line)", 60), code, detail))

    # http.server's parse_request reads the headers through the email package, a
    # quarter of all the time a small request costs here (the profile in bench/mock_load.py's
    # notes). This one checks the request line as it does (RFC 9112 §3), reads the
    # header lines itself with the same limits, and builds the same HTTPMessage
    # directly; a header block of any other shape (a folded line, a line with no
    # colon) still goes through the email parser, so nothing is read differently.
    def parse_request(self) -> bool:
        import http.client

        self.command = None
        self.request_version = version = self.default_request_version
        self.close_connection = True
        self.requestline = requestline = str(self.raw_requestline, "iso-8859-1").rstrip("\r\n")
        words = requestline.split()
        if not words:
            return False
        if len(words) >= 3:
            version = words[-1]
            numbers = version[5:].split(".") if version.startswith("HTTP/") else []
            if len(numbers) != 2 or not all(n.isdigit() and len(n) <= 10 for n in numbers):
                self.send_error(400, "Bad request version (%r)" % version)
                return False
            if (int(numbers[0]), int(numbers[1])) >= (2, 0):
                self.send_error(505, "Invalid HTTP version (%s)" % version[5:])
                return False
            self.close_connection = (int(numbers[0]), int(numbers[1])) < (1, 1)
            self.request_version = version
        if not 2 <= len(words) <= 3:
            self.send_error(400, "Bad request syntax (%r)" % requestline)
            return False
        self.command, self.path = words[0], words[1]
        if len(words) == 2:
            self.close_connection = True
            if self.command != "GET":
                self.send_error(400, "Bad HTTP/0.9 request type (%r)" % self.command)
                return False
        if self.path.startswith("//"):
            self.path = "/" + self.path.lstrip("/")  # not an authority: a path (as http.server does)
        lines = []
        while True:
            line = self.rfile.readline(65537)
            if len(line) > 65536:
                self.send_error(431, "Line too long", "header line")
                return False
            if line in (b"\r\n", b"\n", b""):
                break
            lines.append(line)
            if len(lines) > 100:
                self.send_error(431, "Too many headers", "got more than 100 headers")
                return False
        self.headers = message = http.client.HTTPMessage()
        pairs = [str(line, "iso-8859-1").partition(":") for line in lines]
        if all(colon and name and name == name.strip() and name[0] not in " \t" for name, colon, _ in pairs):
            for name, _, value in pairs:
                message[name] = value.lstrip(" \t").rstrip("\r\n")  # as the email parser keeps it
        else:
            import email.parser

            text = str(b"".join(lines), "iso-8859-1") + "\r\n"
            self.headers = email.parser.Parser(_class=http.client.HTTPMessage).parsestr(text)
        connection = self.headers.get("Connection", "").lower()
        if connection == "close":
            self.close_connection = True
        elif connection == "keep-alive":
            self.close_connection = False
        if self.headers.get("Expect", "").lower() == "100-continue" and self.request_version >= "HTTP/1.1":
            return self.handle_expect_100()  # curl asks before sending a large body
        return True

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:  # Claude Code checks the root with HEAD before it starts
        self._handle("HEAD")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        """Read the request, let the server's I/O-free core answer it, write the reply."""
        owner = self.server.owner
        started = time.monotonic()
        headers = self._headers()
        try:
            raw, refused = self._read_body(), None
        except _HTTPError as error:  # too large or malformed framing: answered, never read on
            raw, refused = b"", error
        exchange = owner.respond(method, self.path, headers, raw, refused=refused, connection=self.number)
        if exchange.forward:
            status = self._proxy(owner._recorder, exchange.record, headers, _route_of(self.path), exchange.protocol)
            owner._log_request(method, self.path, status, exchange.record, None, time.monotonic() - started)
            return
        out, fault = exchange.out, exchange.fault
        try:
            self._write(out, fault or _Fault(), exchange.protocol)
        except (ConnectionError, socket.timeout):
            self.close_connection = True  # the client went away mid-reply
        owner._log_request(method, self.path, out.status, exchange.record, fault, time.monotonic() - started)

    def _proxy(self, recorder: _Recorder, record: RecordedRequest, headers: dict[str, str], route: str,
               protocol: str) -> int:
        """Pass a request to the upstream and its reply back, each piece the moment it
        arrives; write the exchange as a fixture. Returns the status sent."""
        import http.client

        started = time.monotonic()
        query = self.path[len(self.path.split("?", 1)[0]):]
        conn = recorder.connect()
        try:
            conn.request(record.method, recorder.prefix + route + query, body=record.raw or None,
                         headers=recorder.forwarded(headers))
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            status = 504 if isinstance(exc, socket.timeout) else 502
            error = _HTTPError(status, "api_error", "the mock server could not reach its upstream %s: %s"
                               % (recorder.origin, exc))
            out = _error_out(protocol, error, "req_mock_upstream")
            self._write(out, _Fault(), protocol)
            if recorder.record_errors:
                recorder.save(record, {"status": status, "headers": dict(out.headers), "body": _to_text(out.pieces[0])},
                              time.monotonic() - started)
            return status
        try:
            pieces, offsets, broken = self._relay(response, started)
        finally:
            conn.close()
        if broken:
            self.close_connection = True  # the upstream broke off: so does this reply
        if (response.status < 400 and not broken) or recorder.record_errors:
            raw: dict[str, Any] = {"status": response.status, "headers": recorder.kept(response.getheaders())}
            if "text/event-stream" in (response.getheader("content-type") or ""):
                raw.update(events=[_to_text(piece) for piece in pieces], offsets=offsets)
            else:
                raw["body"] = _to_text(b"".join(pieces))
            recorder.save(record, raw, time.monotonic() - started)
        return response.status

    def _relay(self, response: Any, started: float) -> tuple[list[bytes], list[float], bool]:
        """Forward the upstream's body as it arrives: (its events, their offsets, broken off)."""
        import http.client

        headers = [(name, value) for name, value in response.getheaders() if name.lower() not in _HOP_HEADERS]
        self._write_head(response.status, headers + [("Transfer-Encoding", "chunked")])
        events: list[bytes] = []
        offsets: list[float] = []
        pending = b""
        try:
            while True:
                data = response.read1(65536)
                if not data:
                    break
                self._write_chunk(data)  # forwarded the moment it arrives, never held back
                self.wfile.flush()
                parts = _split_events(pending + data)
                pending = parts.pop() if parts and not parts[-1].endswith((b"\n\n", b"\r\r", b"\r\n\r\n")) else b""
                now = round(time.monotonic() - started, 4)
                events += parts
                offsets += [now] * len(parts)
        except (OSError, http.client.HTTPException):
            return events + ([pending] if pending else []), offsets + ([0.0] if pending else []), True
        if pending:  # a last event without its blank line: kept as it came
            events.append(pending)
            offsets.append(round(time.monotonic() - started, 4))
        self.wfile.write(b"0\r\n\r\n")
        return events, offsets, False

    def _headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _read_body(self) -> bytes:
        limit = self.server.owner.max_body
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked(limit)
        length = self.headers.get("content-length")
        if not length:
            return b""
        if not length.isdigit() or int(length) > limit:
            self.close_connection = True  # the unread body would be taken for the next request
            raise _HTTPError(413 if length.isdigit() else 400, _kind_of(413 if length.isdigit() else 400),
                             "expected a Content-Length of at most %d bytes, got %r" % (limit, length))
        return self.rfile.read(int(length))

    def _read_chunked(self, limit: int) -> bytes:
        parts, size = [], 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()
            # Hex digits only: int() would also take "-1", "+5", "0x1f" or "1_0" (and a
            # negative size read to the end of input, past max_body).
            if not line or line.strip(b"0123456789abcdefABCDEF") or len(line) > 16:
                self.close_connection = True
                raise _HTTPError(400, "invalid_request_error",
                                 "malformed chunked request body: expected a hex chunk size, got %r" % line[:40])
            length = int(line, 16)
            if length == 0:
                for _ in range(_MAX_TRAILERS + 1):
                    if not self.rfile.readline(1024).strip():
                        return b"".join(parts)
                self.close_connection = True
                raise _HTTPError(400, "invalid_request_error",
                                 "chunked request body: more than %d trailer lines" % _MAX_TRAILERS)
            size += length
            if size > limit:
                self.close_connection = True
                raise _HTTPError(413, "request_too_large", "expected a request body of at most %d bytes, "
                                 "got more than that (chunked)" % limit)
            parts.append(self.rfile.read(length))
            self.rfile.readline(8)

    def _write_head(self, status: int, headers: Iterable[tuple[str, str]]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()

    def _write(self, out: _Out, fault: _Fault, protocol: str) -> None:
        """Send a reply as the fault says: after ``ttfb``, paced by ``drip``, broken
        after N events. A non-streamed body counts as events of _BODY_PIECE bytes."""
        if fault.ttfb:
            self._pause(fault.ttfb)
        if out.stream:
            self._write_head(out.status, out.headers + [("Transfer-Encoding", "chunked")])
            if self._write_paced(list(out.pieces), fault, self._write_chunk, protocol, stream=True, offsets=out.offsets):
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.close_connection = True  # disconnect: the chunked body never ends
            return
        body = b"".join(out.pieces)
        paced = bool(fault.after or fault.drip)
        pieces = [body[i: i + _BODY_PIECE] for i in range(0, len(body), _BODY_PIECE)] if paced else [body]
        if "truncate" in fault.after:
            pieces = pieces[: fault.after["truncate"]]
        if "malformed" in fault.after:
            pieces.insert(min(fault.after["malformed"], len(pieces)), b"\x00<not JSON>\x00")
        # A cut or garbage makes a complete HTTP message holding broken JSON; a
        # disconnect leaves the promised length unmet.
        declared = sum(map(len, pieces)) if {"truncate", "malformed"} & set(fault.after) else len(body)
        self._write_head(out.status, out.headers + [("Content-Length", str(declared))])
        if self.command == "HEAD":
            return
        if not self._write_paced(pieces, fault, self.wfile.write, protocol, stream=False):
            self.close_connection = True

    def _write_paced(
        self, pieces: list[bytes], fault: _Fault, write: Callable[[bytes], Any], protocol: str, *, stream: bool,
        offsets: list[float] | None = None,
    ) -> bool:
        """Write ``pieces`` with the fault's actions between them, at their recorded
        ``offsets`` when given; False after a disconnect."""
        sent = 0
        started = time.monotonic()
        while True:
            for action in fault.due(sent):
                if action == "stall":
                    self._pause(fault.seconds if fault.seconds is not None else _STALL_SECONDS)
                elif action == "disconnect":
                    return False
                elif not stream:
                    continue  # a body's cut, garbage and error were settled before its head
                elif action == "malformed":
                    pieces[:1] = [_malformed(pieces[0] if pieces else b"")]
                elif action == "error":
                    write(_error_event(protocol, fault.error(protocol), sent))
                    return True
                else:  # truncate: a clean end, without the protocol's terminator
                    return True
            if not pieces:
                return True
            if sent and fault.drip:
                self._pause(fault.drip)
            if offsets is not None and sent < len(offsets):
                self._pause(max(0.0, started + offsets[sent] - time.monotonic()))
            write(pieces.pop(0))
            sent += 1

    def _pause(self, seconds: float) -> None:
        """A fault's or a recording's pause: what was written goes out first."""
        self.wfile.flush()
        self.server.owner._pause(seconds)

    def _write_chunk(self, data: bytes) -> None:
        if data:  # an empty chunk would end the body
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


class _Server(HTTPServer):
    """An HTTPServer with a thread per connection that it can end on demand."""

    daemon_threads = True
    request_queue_size = 1024  # a burst of 1,000 clients is queued, not refused (SYNs dropped cost 1 s each)

    def __init__(self, address: tuple[str, int], owner: MockServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.owner = owner
        self._lock = threading.Lock()
        self._live: dict[threading.Thread, socket.socket] = {}
        self._done = False
        self._wake_r, self._wake_w = socket.socketpair()  # stop_serving() wakes serve() with it
        try:
            super().__init__(address, _Handler)
        except BaseException:
            self._wake_r.close()
            self._wake_w.close()
            raise
        if owner.ssl_context is not None:
            # The handshake waits for the connection's own thread, so a slow or
            # failing client cannot hold up the accept loop.
            self.socket = owner.ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    def serve(self) -> None:
        """Accept connections until stop_serving(). The wait wakes the moment it is
        told to stop: socketserver's polled loop would cost its poll interval at
        every stop (about 50 ms a test, for a suite that starts a server per test)."""
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._done:
                for key, _ in selector.select():
                    if key.fileobj is self and not self._done:
                        self._handle_request_noblock()

    def stop_serving(self) -> None:
        self._done = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves its own name (socket.getfqdn), a DNS
        # lookup that can stall for seconds on a machine with no resolver.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address),
            name="mock_server connection", daemon=True,
        )
        with self._lock:
            self._live[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            if self.owner.ssl_context is not None:
                request.settimeout(self.owner.client_timeout)
                request.do_handshake()
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._lock:
                self._live.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout)) or type(exc).__module__ == "ssl":
            return  # a client hanging up (or refusing our certificate) is not the server's failure
        super().handle_error(request, client_address)

    def end_connections(self, timeout: float) -> None:
        """Hang up every open connection and wait for its thread."""
        with self._lock:
            live = list(self._live.items())
        for _, sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread, _ in live:
            thread.join(timeout)


# ---------------------------------------------------------------------------
# Recording: pass requests to a real TokenHub, write each exchange as a fixture
# ---------------------------------------------------------------------------

#: Region names accepted as an upstream (PROTOCOL.md, "Hosts and auth").
_REGION_ROOTS = {
    "singapore": "https://tokenhub-intl.tencentcloudmaas.com",
    "guangzhou": "https://tokenhub.tencentcloudmaas.com",
    "store": "https://tokenhub.store/api",
    "china": "https://tokenhub.tencentmaas.com",
    "china-singapore": "https://tokenhub-intl.tencentmaas.com",
}
# Never written to disk, whatever --redact-header adds.
_SECRET_HEADERS = frozenset(("authorization", "x-api-key", "api-key", "proxy-authorization", "cookie", "set-cookie"))
# Hop-by-hop and framing headers: the proxy sets its own.
_HOP_HEADERS = frozenset((
    "host", "connection", "keep-alive", "proxy-connection", "te", "upgrade", "content-length",
    "transfer-encoding", "accept-encoding",  # identity bodies, so that the bytes recorded are the bytes sent
))
# The reply headers a recording keeps.
_KEPT_HEADERS = ("content-type", "x-request-id", "request-id", "retry-after", "retry-after-ms", "x-should-retry")


class _Recorder:
    """The upstream a recording server passes requests to, and the folder it writes."""

    def __init__(self, upstream: str, directory: str, *, redact: Iterable[str] = (), record_errors: bool = False,
                 timeout: float = 600.0) -> None:
        from urllib.parse import urlsplit

        root = _REGION_ROOTS.get(upstream.strip().lower(), upstream).rstrip("/")
        parts = urlsplit(root)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("--record expects a TokenHub root URL or a region (%s), got %r"
                             % (", ".join(_REGION_ROOTS), upstream))
        self.scheme, self.host = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.prefix = parts.path  # tokenhub.store's /api
        self.origin = "%s://%s:%d%s" % (self.scheme, self.host, self.port, self.prefix)
        self.directory = directory
        self.redact = _SECRET_HEADERS | {name.strip().lower() for name in redact}
        self.record_errors = record_errors
        self.timeout = timeout
        self._lock = threading.Lock()
        self.failures: list[str] = []  # recordings that could not be written
        os.makedirs(directory, exist_ok=True)
        self._count = len([n for n in os.listdir(directory) if n.endswith(".json")])

    def connect(self) -> Any:
        import http.client

        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, timeout=self.timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def forwarded(self, headers: Mapping[str, str]) -> dict[str, str]:
        """The client's request headers for the upstream: its auth passes through."""
        return {name: value for name, value in headers.items() if name not in _HOP_HEADERS}

    def kept(self, headers: Iterable[tuple[str, str]]) -> dict[str, str]:
        """The reply headers worth replaying, none of them secret."""
        return {name: value for name, value in headers
                if (name.lower() in _KEPT_HEADERS or name.lower().startswith(("x-ratelimit", "anthropic-ratelimit")))
                and name.lower() not in self.redact}

    def save(self, record: RecordedRequest, raw: dict[str, Any], seconds: float) -> str | None:
        """Write one exchange as a fixture file; its path, or None when the write failed
        (said on stderr whatever the verbosity, and kept in ``failures``)."""
        match = _recorded_match(record)
        with self._lock:
            self._count += 1
            number = self._count
        label = re.sub(r"[^A-Za-z0-9]+", "-", "%s-%s" % (match.get("protocol", "other"), match.get("model", "")))
        name = "%04d-%s" % (number, label.strip("-")[:_MAX_LABEL].strip("-"))  # a safe, bounded file name
        fixture = {
            "name": name, "match": match, "response": {"raw": raw},
            "recorded": {"upstream": self.origin, "request": "%s %s" % (record.method, record.path.split("?")[0]),
                         "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "seconds": round(seconds, 3)},
        }
        text = json.dumps({"fixtures": [fixture]}, ensure_ascii=False, indent=1)
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # bytes that were not UTF-8, kept as escaped surrogates
            data = json.dumps({"fixtures": [fixture]}, indent=1).encode("ascii")
        path = os.path.join(self.directory, name + ".json")
        try:
            with open(path, "wb") as file:
                file.write(data)
        except OSError as exc:
            message = "the recording of %s %s was NOT written to %s: %s" % (
                record.method, _brief(record.path, 60), path, exc.strerror or exc)
            self.failures.append(message)
            sys.stderr.write("mock_server: %s\n" % message)
            return None
        return path


def _recorded_match(record: RecordedRequest) -> dict[str, Any]:
    """What a replayed request must be to get this recording: all of it that picks a reply."""
    path = record.path.split("?", 1)[0]
    protocol = _ROUTES.get(_route_of(path))
    if protocol is None or not isinstance(record.body, dict):
        return {"path": path}
    try:
        req = protocol.read(path, record.headers, record.body)
    except _HTTPError:  # a request the upstream refused: match it by what can be read
        return {"protocol": protocol.name, "path": path}
    return {
        "protocol": protocol.name, "model": req.model, "user_is": req.user_text,
        "tools": [name for name, _ in req.tools], "has_tool_result": bool(req.results),
        "turn": req.turn, "stream": req.stream,
    }


def _cassette_plan(cassette: str, upstream: str | None, mode: str, fixtures: Any, strict: bool) -> tuple[Any, bool, Any, Any]:
    """(fixtures, strict, record, record_to) for a cassette: replay it when it exists
    (or mode="replay"), record it from ``upstream`` when it does not (or mode="record")."""
    if mode not in ("auto", "replay", "record"):
        raise ValueError("mode must be 'auto', 'replay' or 'record', got %r" % (mode,))
    exists = os.path.exists(cassette)
    if mode == "replay" or (mode == "auto" and exists):
        if not exists:
            raise ValueError("cassette %s does not exist, and mode='replay' does not record" % cassette)
        return cassette, True, None, None  # a request no recording matches fails, naming it
    if upstream is None:
        raise ValueError("cassette %s does not exist yet: pass upstream=URL (or a region) to record it" % cassette)
    return fixtures, strict, upstream, cassette


# ---------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------


class _Exchange:
    """What the server's core made of one request: the reply and its fault, the
    journal entry, the protocol whose shape it takes, and whether (recording) the
    handler passes it upstream instead."""

    __slots__ = ("out", "fault", "record", "protocol", "forward")

    def __init__(self, out: _Out | None, fault: _Fault | None, record: RecordedRequest | None, protocol: str,
                 *, forward: bool = False) -> None:
        self.out = out
        self.fault = fault
        self.record = record
        self.protocol = protocol
        self.forward = forward


class MockServer:
    """TokenHub on loopback: ``with MockServer() as srv: ... srv.url ...``.

    ``MockServer(*, host="127.0.0.1", port=0, api_key=None, fixtures=None,
    strict=False, verbose=False, ssl_context=None, max_body=32 MiB,
    client_timeout=120.0)``:

    - ``port=0`` takes a free port; with ``api_key`` a request without that key
      (Bearer or ``x-api-key``) gets a 401; with a server-side ``ssl_context`` it
      serves https (for testing a client's TLS settings).
    - ``fixtures``: a fixture file, a folder of ``*.json`` fixture files, or the
      fixture data itself. These stay for the server's life; ``add()`` and
      ``load()`` add fixtures that ``reset()`` removes, tried before these, so a
      test can override a shared file. First match wins.
    - ``strict``: a request that no fixture matches gets a 404 naming it, instead
      of the canned reply.
    - ``verbose``: 1 (or True) logs one line per request to stderr, 2 adds detail.
    - ``max_body``: a larger request body gets a 413. ``client_timeout``: seconds
      a connection may sit silent (mid-request, or not reading a reply) before the
      server hangs up on it.
    - ``lenient_reasoning``: accept a tool-loop turn sent back without its
      reasoning, which DeepSeek's thinking models refuse (and so, by default, does the
      mock: a 400 with DeepSeek's message, so such a client fails in its tests).
    - ``journal_limit``: how many requests ``srv.requests`` keeps (1,000; also at
      most 64 MiB of bodies); older ones go, counted in ``srv.dropped``. The
      journal never holds credentials: ``Authorization``, ``x-api-key``, cookies
      and the like are kept as :func:`redacted` fingerprints.

    ``start()`` serves from a background thread, ``stop()`` (or leaving the
    ``with`` block) ends every connection and thread. ``srv.requests`` lists
    every request received, as :class:`RecordedRequest` objects, in arrival
    order (also as JSON at ``GET /_mock/requests``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        fixtures: Any = None,
        strict: bool = False,
        verbose: int = 0,
        ssl_context: Any = None,
        max_body: int = _MAX_BODY,
        client_timeout: float = _CLIENT_TIMEOUT,
        realtime: bool = False,
        record: str | None = None,
        record_to: str | None = None,
        redact_headers: Iterable[str] = (),
        record_errors: bool = False,
        cassette: str | None = None,
        upstream: str | None = None,
        mode: str = "auto",
        journal_limit: int = _JOURNAL_LIMIT,
        lenient_reasoning: bool = False,
    ) -> None:
        self.cassette = cassette
        self.lenient_reasoning = lenient_reasoning
        if cassette is not None:
            fixtures, strict, record, record_to = _cassette_plan(cassette, upstream, mode, fixtures, strict)
        elif record is not None and record_to is None:
            raise ValueError("record=%r needs record_to=DIR, the folder to write the fixtures in" % (record,))
        self.host = host
        self.port = port
        self.api_key = api_key
        self.strict = strict
        self.realtime = realtime
        self._recorder = _Recorder(record, record_to, redact=redact_headers, record_errors=record_errors) if record else None
        self.verbose = int(verbose)
        self.ssl_context = ssl_context
        self.max_body = max_body
        self.client_timeout = client_timeout
        if isinstance(journal_limit, bool) or not isinstance(journal_limit, int) or journal_limit < 0:
            raise ValueError("journal_limit must be a whole number >= 0, got %r" % (journal_limit,))
        self.journal_limit = journal_limit
        self.requests: list[RecordedRequest] = []
        self.dropped = 0  # requests the journal let go (journal_limit)
        self._journal_bytes = 0
        import collections

        self._kept: Any = collections.OrderedDict()  # stored responses: id -> (response, conversation items)
        self._unkept: Any = collections.OrderedDict()  # ids of responses made with store: false
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)  # notified as each request is journaled
        self._received = 0  # requests journaled since the start or the last reset(), dropped ones too
        self._count = 0
        self._connections = 0
        self._fixtures = self._build(fixtures, "fixtures") if fixtures is not None else []
        self._added: list[Fixture] = []
        self._faults: list[list[Any]] = []  # [fault, requests left]
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- fixtures and faults -------------------------------------------------

    @staticmethod
    def _build(source: Any, where: str, *, files: bool = True) -> list[Fixture]:
        return [Fixture(spec, name=name) for spec, name in _fixture_specs(source, where, files=files)]

    def add(
        self,
        response: Any = None,
        *,
        match: Mapping[str, Any] | None = None,
        fault: Any = None,
        times: int | None = None,
        name: str | None = None,
    ) -> Fixture:
        """Add one fixture and return it: ``srv.add("Hello", match={"user": "hi"})``.

        ``response`` is a string (the text), a response object (``text``,
        ``reasoning``, ``tool_calls``, ``finish_reason``, ``usage``, or ``raw``), or
        a list of them served in turn. ``fault`` is a fault spec such as
        ``"status=529"`` or ``{"disconnect_after": 3}``. Raises ValueError, saying
        what is wrong, on a malformed fixture.
        """
        spec: dict[str, Any] = {"match": dict(match or {})}
        for key, value in (("response", response), ("fault", fault), ("times", times)):
            if value is not None:
                spec[key] = value
        with self._lock:
            fixture = Fixture(spec, name=name or "srv.add #%d" % (len(self._added) + 1))
            self._added.append(fixture)
        return fixture

    def load(self, source: Any) -> list[Fixture]:
        """Add the fixtures of a file, a folder, or fixture data; returns them."""
        fixtures = self._build(source, "fixtures")
        with self._lock:
            self._added.extend(fixtures)
        return fixtures

    @property
    def fixtures(self) -> list[Fixture]:
        """Every fixture, in the order they are tried."""
        with self._lock:
            return self._added + self._fixtures

    def fail_next(self, fault: Any, *, times: int = 1) -> None:
        """Apply ``fault`` (e.g. ``"status=503"`` or ``"truncate-after=3"``) to the
        next ``times`` requests, whatever they match."""
        parsed = _Fault.parse(fault, "fail_next")
        if not isinstance(times, int) or times < 1:
            raise ValueError("fail_next: expected times to be a positive count, got %r" % (times,))
        with self._lock:
            self._faults.append([parsed, times])

    def wait_for_requests(self, count: int, *, timeout: float = 10.0) -> list[RecordedRequest]:
        """Block until ``count`` requests have arrived (since the start or the last
        ``reset()``), at most ``timeout`` seconds; the journal then. For a test
        whose client runs elsewhere (a thread, a subprocess): act on "the 5th
        request is in" with no polling. Raises TimeoutError saying how many came."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("wait_for_requests: expected a count >= 0, got %r" % (count,))
        with self._arrived:
            if not self._arrived.wait_for(lambda: self._received >= count, timeout):
                raise TimeoutError("expected %d request(s) within %gs, got %d" % (count, timeout, self._received))
            return list(self.requests)

    def reset(self) -> None:
        """Forget the requests, the fixtures added since start, queued faults, and
        how often each remaining fixture was used."""
        with self._lock:
            del self.requests[:]
            self.dropped = self._journal_bytes = self._received = 0
            self._kept.clear()
            self._unkept.clear()
            del self._added[:]
            del self._faults[:]
            for fixture in self._fixtures:
                fixture.used = 0

    def _match(self, req: _Request) -> tuple[Fixture | None, _Response | None]:
        for fixture in self.fixtures:
            if fixture.times is not None and fixture.used >= fixture.times or not fixture._matches(req):
                continue
            with self._lock:
                available, response = fixture._take()
            if available:
                return fixture, response
        return None, None

    def _request_fault(self, headers: Mapping[str, str]) -> _Fault | None:
        """The request's own fault header, else the next queued fault."""
        if _FAULT_HEADER in headers:
            try:
                return _Fault.parse(headers[_FAULT_HEADER], "the X-Mock-Fault header")
            except ValueError as exc:
                raise _HTTPError(400, "invalid_request_error", str(exc)) from None
        with self._lock:
            if not self._faults:
                return None
            entry = self._faults[0]
            entry[1] -= 1
            if not entry[1]:
                self._faults.pop(0)
            return entry[0]

    # -- answering, without I/O: the handler feeds requests in and writes what comes out

    def respond(self, method: str, target: str, headers: Mapping[str, str], raw: bytes, *,
                refused: _HTTPError | None = None, connection: int | None = None) -> _Exchange:
        """The reply to one request (``headers`` with lower-case names, ``raw`` its body
        bytes), and the fault to send it with. Touches no socket: the HTTP handler
        reads, calls this, and writes. ``refused``: the request could not be read;
        ``connection``: the number of the connection it came on, for the journal."""
        request_id = "req_mock_%d" % self._next_id()
        path = target.split("?", 1)[0]
        route = _route_of(path)
        protocol = self._protocol_for(route, headers)
        record = fault = None
        try:
            if refused is not None:
                raise refused
            body, problem = _parse_json(raw)
            if route.startswith("/_mock/"):
                kind = headers.get("content-type", "").split(";")[0].strip().lower()
                out = self._control(method, route, body, problem, kind)
            else:
                record = RecordedRequest(method, target, _journal_headers(headers), body, raw, connection)
                self._record(record)
                if self._recorder is not None:
                    return _Exchange(None, None, record, protocol, forward=True)
                out, fault = self._answer(record, route, path, headers, protocol, problem, request_id)
        except _HTTPError as error:
            out = _error_out(protocol, error, request_id)
        except Exception as exc:  # a bug of the mock's own: still a reply, and the server lives on
            import traceback

            sys.stderr.write("mock_server: internal error on %s %s:\n%s" % (
                method, _brief(target, 80), traceback.format_exc()))
            out = _error_out(protocol, _HTTPError(500, "api_error", "the mock server failed on this request: "
                                                  "%s (details on its stderr)" % type(exc).__name__), request_id)
            fault = None
        for header in ("x-request-id", "request-id") if protocol == "anthropic" else ("x-request-id",):
            # The Anthropic SDK reads request-id; OpenAI's x-request-id.
            if not any(name.lower() == header for name, _ in out.headers):
                out.headers.append((header, request_id))
        return _Exchange(out, fault, record, protocol)

    @staticmethod
    def _protocol_for(route: str, headers: Mapping[str, str]) -> str:
        """The protocol whose shape a reply (an error too) takes at this route."""
        served = _ROUTES.get(route)
        if served is not None:
            return served.name
        if route.startswith("/v1/messages/") or "x-api-key" in headers or "anthropic-version" in headers:
            return "anthropic"
        return "openai"

    def _answer(
        self, record: RecordedRequest, route: str, path: str, headers: Mapping[str, str], protocol: str,
        problem: str, request_id: str,
    ) -> tuple[_Out, _Fault | None]:
        """The reply to an API request, and the fault to send it with (a refusal too)."""
        fault = None
        try:
            self._check_key(headers)
            fault = self._request_fault(headers)
            if fault is not None and fault.status is not None:
                raise fault.error(protocol)  # before reading the request, as a gateway refuses
            if problem:
                raise _HTTPError(400, "invalid_request_error", problem)
            out, planned = self._route(record, route, path, headers)
            fault = fault or planned
            if fault is not None and (fault.status is not None or ("error" in fault.after and not out.stream)):
                raise fault.error(protocol)  # a body has no events: its in-stream error is the error reply
            return out, fault
        except _HTTPError as error:
            return _error_out(protocol, error, request_id), fault

    def _check_key(self, headers: Mapping[str, str]) -> None:
        if self.api_key is None:
            return
        bearer = headers.get("authorization", "")
        if bearer == "Bearer " + self.api_key or headers.get("x-api-key") == self.api_key:
            return
        given = "none" if not (bearer or headers.get("x-api-key")) else "a wrong one"
        raise _HTTPError(
            401, "authentication_error",
            "invalid API key: expected it in 'Authorization: Bearer <key>' or 'x-api-key', got %s" % given,
        )

    def _route(
        self, record: RecordedRequest, route: str, path: str, headers: Mapping[str, str]
    ) -> tuple[_Out, _Fault | None]:
        method, body = record.method, record.body
        served = _ROUTES.get(route)
        if served is not None:
            if method != "POST":
                raise _HTTPError(405, "invalid_request_error", "%s takes POST, got %s" % (route, method))
            if not isinstance(body, dict):
                raise _HTTPError(400, "invalid_request_error", "expected a JSON object body, got %s" % (
                    "none" if body is None else type(body).__name__))
            return self._reply(served.name, path, body, record, headers)
        if route == "/v1/messages/count_tokens":
            if method != "POST":
                raise _HTTPError(405, "invalid_request_error", "%s takes POST, got %s" % (route, method))
            if not isinstance(body, dict):
                raise _HTTPError(400, "invalid_request_error", "expected a JSON object body")
            req = _anthropic_request(path, headers, body, counting=True)
            return _json_out(200, {"input_tokens": req.prompt_tokens}), None  # the count replies' usage uses
        reading = method in ("GET", "HEAD")
        if route == "/" and reading:
            return _json_out(200, {"object": "service", "name": "TokenHub mock server", "version": __version__}), None
        if route == "/v1/models" and reading:
            return _json_out(200, _models_body(record.path)), None
        if route.startswith("/v1/responses/") and reading:
            wanted = route[len("/v1/responses/"):]
            with self._lock:
                kept = self._kept.get(wanted)
            if kept is None:
                raise _HTTPError(404, "invalid_request_error", "Response with id %s not found." % _shown(wanted),
                                 "response_id")
            return _json_out(200, kept[0]), None
        if route.startswith("/v1/models/") and reading:
            wanted = route[len("/v1/models/"):]
            for model in _models_body()["data"]:
                if model["id"] == wanted:
                    return _json_out(200, model), None
            raise _HTTPError(404, "not_found_error", "model %r not found" % wanted)
        raise _HTTPError(404, "not_found_error", "no route for %s %s" % (method, record.path))

    def _reply(
        self, protocol: str, path: str, body: dict[str, Any], record: RecordedRequest, headers: Mapping[str, str]
    ) -> tuple[_Out, _Fault | None]:
        """The reply to a chat request, and the fault of the fixture that chose it
        (``headers`` as received: fixtures may match on them; the journal's are redacted)."""
        served = _MOCK_PROTOCOLS[protocol]
        if served.threads:
            body = self._continued(body)
        req = served.read(path, headers, body)
        if served.reasoning_rule is not None and not self.lenient_reasoning and _keeps_reasoning(req):
            served.reasoning_rule(req, body)
        fixture, response = self._match(req)
        if fixture is None and self.strict:
            where = "no recording in cassette %s" % self.cassette if self.cassette else "no fixture"
            raise _HTTPError(404, "not_found_error", "%s matched %s %s (model %s, turn %d, last user "
                             "message %s)" % (where, record.method, path, _shown(req.model), req.turn, _shown(req.user_text)))
        record.fixture = fixture.name if fixture is not None else None
        fault = fixture.fault if fixture is not None else None
        if response is not None and response.raw is not None:
            raw = response.raw
            offsets = raw.offsets if self.realtime else None
            return _Out(raw.status, list(raw.headers), list(raw.pieces), stream=raw.stream, offsets=offsets), fault
        reply = _shape(response.reply(req) if response is not None else _plan(req), req)
        if served.threads:
            self._keep_response(req, reply, body)
        return served.render(reply, req), fault

    def _continued(self, body: dict[str, Any]) -> dict[str, Any]:
        """A Responses body with the conversation its ``previous_response_id`` stands for
        put in front of its input (``instructions`` are not carried over)."""
        previous = body.get("previous_response_id")
        if previous is None:
            return body
        with self._lock:
            kept = self._kept.get(previous)
        if kept is None:
            raise _HTTPError(400, "invalid_request_error", "Previous response with id %s not found%s."
                             % (_shown(previous), " (it was created with store: false)" if previous in self._unkept
                                else ""), "previous_response_id", code="previous_response_not_found")
        items = body.get("input")
        items = [{"role": "user", "content": items}] if isinstance(items, str) else list(items or [])
        return dict(body, input=list(kept[1]) + items)

    def _keep_response(self, req: _Request, reply: _Reply, body: Mapping[str, Any]) -> None:
        """Remember a response (unless ``store: false``), bounded like the journal."""
        reply_id = _responses_id(req)
        with self._lock:
            if body.get("store") is False:
                self._unkept[reply_id] = True
                while len(self._unkept) > _JOURNAL_LIMIT:
                    self._unkept.popitem(last=False)
                return
            response = _responses_object(reply, req, reply_id, body)
            items = body["input"]
            items = [{"role": "user", "content": items}] if isinstance(items, str) else list(items)
            self._kept[reply_id] = (response, items + response["output"])
            self._kept.move_to_end(reply_id)
            while len(self._kept) > _JOURNAL_LIMIT:
                self._kept.popitem(last=False)

    def _control(self, method: str, route: str, body: Any, problem: str, content_type: str) -> _Out:
        """The ``/_mock/`` routes: the journal, reset, and fixtures over HTTP. A POST
        must say ``Content-Type: application/json``: a web page can post text/plain
        across sites without asking, but not that."""
        if method == "POST" and content_type != "application/json":
            raise _HTTPError(415, "invalid_request_error", "the mock's control routes take Content-Type: "
                             "application/json, got %s" % (_shown(content_type) if content_type else "none"))
        if (method, route) == ("GET", "/_mock/requests"):
            with self._lock:
                journal = [request.to_dict() for request in self.requests]
                dropped = self.dropped
            return _json_out(200, {"requests": journal, "dropped": dropped})
        if (method, route) == ("POST", "/_mock/reset"):
            self.reset()
            return _json_out(200, {"reset": True})
        if (method, route) == ("GET", "/_mock/fixtures"):
            listed = [{"name": f.name, "used": f.used, "times": f.times} for f in self.fixtures]
            return _json_out(200, {"fixtures": listed})
        if (method, route) == ("POST", "/_mock/fixtures"):
            if problem or body is None:
                raise _HTTPError(400, "invalid_request_error", problem or "expected fixtures as a JSON body, got none")
            try:
                fixtures = self._build(body, "fixtures", files=False)
                with self._lock:
                    self._added.extend(fixtures)
                added = fixtures
            except ValueError as exc:
                raise _HTTPError(400, "invalid_request_error", str(exc)) from None
            return _json_out(200, {"added": [fixture.name for fixture in added]})
        raise _HTTPError(404, "not_found_error", "no mock control route %s %s (expected GET /_mock/requests, "
                         "POST /_mock/reset, GET or POST /_mock/fixtures)" % (method, route))

    # -- running -------------------------------------------------------------

    @property
    def url(self) -> str:
        """The base URL, ``http://HOST:PORT`` (the server must be started)."""
        if self._server is None:
            raise RuntimeError("the mock server is not started: call start() or use 'with'")
        host, port = self._server.server_address[:2]
        scheme = "http" if self.ssl_context is None else "https"
        return "%s://%s:%d" % (scheme, "[%s]" % host if ":" in host else host, port)

    def _bind(self) -> _Server:
        if self._server is not None:
            raise RuntimeError("the mock server is already started")
        self._stopping.clear()
        self._server = _Server((self.host, self.port), self)
        return self._server

    def start(self) -> MockServer:
        """Bind and serve from a background thread; returns self."""
        server = self._bind()
        self._thread = threading.Thread(target=server.serve, name="mock_server", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self, *, ready: Any = None) -> None:
        """Bind and serve in this thread until interrupted (Ctrl-C); ``ready(url)`` is
        called once the socket listens."""
        server = self._bind()
        if ready is not None:
            ready(self.url)
        try:
            server.serve()
        except KeyboardInterrupt:
            pass
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving, hang up open connections (cutting short any stall or
        delay a fault is in) and join every thread."""
        if self._server is None:
            return
        self._server.stop_serving()
        if self._thread is not None:
            self._thread.join()
        self._close()

    def _close(self) -> None:
        self._stopping.set()
        server, self._server, self._thread = self._server, None, None
        if server is not None:
            server.server_close()
            server.end_connections(timeout=5.0)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _pause(self, seconds: float) -> None:
        """A fault's delay, cut short (as a hang-up) when the server stops."""
        if self._stopping.wait(seconds):
            raise ConnectionAbortedError("the mock server is stopping")

    def _next_connection(self) -> int:
        with self._lock:
            self._connections += 1
            return self._connections

    def _next_id(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def _record(self, request: RecordedRequest) -> None:
        """Journal a request; past ``journal_limit`` requests (or ``_JOURNAL_BYTES`` of
        bodies) the oldest go, counted in ``dropped``."""
        with self._lock:
            self.requests.append(request)
            self._received += 1
            self._arrived.notify_all()
            self._journal_bytes += len(request.raw)
            while len(self.requests) > self.journal_limit or (
                self._journal_bytes > _JOURNAL_BYTES and len(self.requests) > 1
            ):
                self._journal_bytes -= len(self.requests.pop(0).raw)
                self.dropped += 1

    def _log(self, line: str) -> None:
        if self.verbose:
            sys.stderr.write("mock_server: %s\n" % line)

    def _log_request(
        self, method: str, target: str, status: int, record: RecordedRequest | None, fault: _Fault | None, seconds: float
    ) -> None:
        if not self.verbose:
            return
        body = record.body if record is not None and isinstance(record.body, dict) else {}
        parts = ["%s %s -> %d" % (method, target, status)]
        if isinstance(body.get("model"), str):
            parts.append(body["model"] + (" stream" if body.get("stream") is True else ""))
        if record is not None and record.fixture:
            parts.append("fixture=%s" % _shown(record.fixture))
        if fault is not None:
            parts.append("fault=%s" % _shown(fault.spec))
        if self.verbose >= 2 and isinstance(body.get("messages"), list):
            users = [m for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
            parts.append("user=%s" % _shown(_brief(_spoken(_content_text(users[-1].get("content"))))) if users else "")
        parts.append("(%.1f ms)" % (seconds * 1000))
        self._log(" ".join(part for part in parts if part))


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python3 mock_server.py [--port P] [--fixtures PATH] [--strict] [--api-key KEY] ...``."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(
        prog="mock_server.py",
        description="Serve TokenHub's two protocols offline: fixtures first, canned replies "
        "otherwise. Prints the base URL as the first line of stdout, then serves until "
        "interrupted. Faults on demand: send 'X-Mock-Fault: status=429,retry-after=1' "
        "(or disconnect-after=N, truncate-after=N, error-after=N, malformed-after=N, "
        "stall-after=N,seconds=S, drip=S, ttfb=S).",
        epilog="example: python3 mock_server.py --port 0 --fixtures tests/fixtures.json --strict",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--api-key", help="reject requests that do not carry this key")
    parser.add_argument("--fixtures", action="append", metavar="PATH",
                        help="a fixture JSON file or a folder of them (repeatable)")
    parser.add_argument("--strict", action="store_true",
                        help="answer a request no fixture matches with a 404, not a canned reply")
    parser.add_argument("--realtime", action="store_true", help="replay recorded streams at their recorded pace")
    parser.add_argument("--lenient-reasoning", action="store_true",
                        help="accept tool-loop turns sent back without their reasoning (DeepSeek's thinking "
                        "models refuse them, and so does the mock by default)")
    recording = parser.add_argument_group("recording (python3 mock_server.py --record singapore --fixtures DIR)")
    recording.add_argument("--record", metavar="UPSTREAM",
                           help="pass every request to UPSTREAM (a TokenHub root URL or a region: singapore, "
                           "guangzhou, store) and write each exchange as a fixture into the --fixtures folder")
    recording.add_argument("--redact-header", action="append", default=[], metavar="NAME",
                           help="another header never to write (Authorization and x-api-key never are)")
    recording.add_argument("--record-errors", action="store_true",
                           help="record failed exchanges too (refused, timed out, 4xx and 5xx)")
    loudness = parser.add_mutually_exclusive_group()
    loudness.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    loudness.add_argument("--verbose", action="store_true", help="log each request with more detail")
    args = parser.parse_args(argv)

    try:
        if args.record and len(args.fixtures or []) != 1:
            raise ValueError("--record needs one --fixtures DIR: the folder to write the recordings in")
        recording = {"record": args.record, "record_to": args.fixtures[0], "redact_headers": args.redact_header,
                     "record_errors": args.record_errors} if args.record else {"fixtures": args.fixtures}
        server = MockServer(host=args.host, port=args.port, api_key=args.api_key, strict=args.strict,
                            realtime=args.realtime, verbose=0 if args.quiet else 2 if args.verbose else 1,
                            lenient_reasoning=args.lenient_reasoning, **recording)
    except ValueError as exc:
        print("mock_server.py: %s" % exc, file=sys.stderr)
        return 2

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    try:
        server.serve_forever(ready=lambda url: print(url, flush=True))
    except OSError as exc:
        print("mock_server.py: cannot listen on %s:%d: %s" % (args.host, args.port, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
