"""mock_server: Tencent Cloud TokenHub, offline, in one standard-library file.

It answers both TokenHub protocols the way the gateway does, streamed or not:
OpenAI Chat Completions (``POST /v1/chat/completions``, also under tokenhub.store's
``/api`` root), Anthropic Messages (``POST /v1/messages``) and ``GET /v1/models``.
With no configuration its replies are canned and deterministic: text, a tool call
when the request asks for one, a final answer after a tool result, and reasoning
(``reasoning_content`` / a ``thinking`` block) for models that think by default.

From the shell (prints its base URL as the first line, then serves)::

    python3 mock_server.py --port 0
    # http://127.0.0.1:43117

From Python, on a free port in a background thread::

    from mock_server import MockServer
    import tokenhub

    with MockServer() as srv:
        client = tokenhub.TokenHub(api_key="test", base_url=srv.url)
        reply = client.chat.completions.create(
            model="deepseek-v3.2", messages=[{"role": "user", "content": "Hi"}])
        assert srv.requests[0].body["model"] == "deepseek-v3.2"
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["MockServer", "RecordedRequest", "MODELS", "main"]

import hashlib
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import TCPServer

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
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

_MAX_BODY = 32 * 1024 * 1024


# ---------------------------------------------------------------------------
# Requests as received
# ---------------------------------------------------------------------------


class RecordedRequest:
    """One request the server received: ``method``, ``path`` (with its query),
    ``headers`` (lower-case names), ``body`` (parsed JSON, or None) and ``raw`` bytes."""

    __slots__ = ("method", "path", "headers", "body", "raw")

    def __init__(
        self, method: str, path: str, headers: dict[str, str], body: Any, raw: bytes
    ) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body
        self.raw = raw

    def __repr__(self) -> str:
        return "RecordedRequest(%s %s, %d body bytes)" % (self.method, self.path, len(self.raw))


class _HTTPError(Exception):
    """An error reply in the protocol's shape."""

    def __init__(self, status: int, kind: str, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.param = param


# ---------------------------------------------------------------------------
# The canned reply: decided once, protocol-neutral
# ---------------------------------------------------------------------------


class _Call:
    """A tool call to make: its id, the tool's name and its arguments."""

    __slots__ = ("id", "name", "arguments")

    def __init__(self, id: str, name: str, arguments: dict[str, Any]) -> None:
        self.id = id
        self.name = name
        self.arguments = arguments


class _Reply:
    """What the model "says": reasoning, text, tool calls and token counts."""

    __slots__ = ("reasoning", "text", "calls", "prompt_tokens", "completion_tokens")

    def __init__(self, reasoning: str, text: str, calls: list[_Call], prompt_tokens: int) -> None:
        self.reasoning = reasoning
        self.text = text
        self.calls = calls
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = max(
            1,
            _count_tokens(reasoning)
            + _count_tokens(text)
            + sum(_count_tokens(json.dumps(c.arguments)) for c in calls),
        )

    @property
    def reasoning_tokens(self) -> int:
        return _count_tokens(self.reasoning)


class _Conversation:
    """The parts of a request, either protocol, that decide the canned reply."""

    __slots__ = ("model", "user_text", "tools", "tool_choice", "parallel", "results", "thinking")

    def __init__(self) -> None:
        self.model = ""
        self.user_text = ""  # the last user message's text
        self.tools: list[tuple[str, Any]] = []  # (name, JSON schema of the arguments)
        self.tool_choice = "auto"  # auto | none | required | <a tool's name>
        self.parallel = True
        self.results: list[tuple[str, str]] = []  # (tool name or id, result text) answered last
        self.thinking: Any = None  # the request's `thinking` field


def _count_tokens(text: str) -> int:
    """A stable stand-in for a tokenizer: words and punctuation marks."""
    return len(re.findall(r"\w+|[^\w\s]", text))


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


def _thinks(conv: _Conversation) -> bool:
    """Whether this model thinks for this request (PROTOCOL.md, "Thinking")."""
    name = conv.model.rsplit("/", 1)[-1].lower()
    if name.startswith(_THINKS_ALWAYS):
        return True
    kind = conv.thinking.get("type") if isinstance(conv.thinking, dict) else None
    if kind in ("enabled", "disabled"):
        return kind == "enabled"
    return name.startswith(_THINKS_BY_DEFAULT)


def _tool_words(name: str) -> list[str]:
    """The words a user would say to ask for a tool: get_weather -> ["weather"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).lower()
    words = [w for w in re.split(r"[^a-z0-9]+", spaced) if w]
    return [w for w in words if w not in _GENERIC_WORDS] or words


def _tools_named(conv: _Conversation) -> list[str]:
    """The offered tools that the last user message names, in the offered order."""
    text = conv.user_text.lower()
    named = []
    for name, _ in conv.tools:
        if name.lower() in text or any(
            re.search(r"\b" + re.escape(word), text) for word in _tool_words(name)
        ):
            named.append(name)
    return named


def _tools_to_call(conv: _Conversation) -> list[str]:
    """Which tools the canned model calls for this request."""
    if not conv.tools or conv.results or conv.tool_choice == "none":
        return []
    offered = [name for name, _ in conv.tools]
    if conv.tool_choice not in ("auto", "required"):
        return [conv.tool_choice] if conv.tool_choice in offered else []
    names = _tools_named(conv)
    if not names and conv.tool_choice == "required":
        names = offered[:1]
    return names if conv.parallel else names[:1]


def _sample(schema: Any, key: str, hint: list[str]) -> Any:
    """A value that satisfies a JSON schema; ``hint`` offers a word from the user."""
    if not isinstance(schema, dict):
        return "example"
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
        if options:
            return _sample(options[0], key, hint)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        return {
            name: _sample(sub, name, hint)
            for name, sub in (schema.get("properties") or {}).items()
        }
    if kind == "array":
        return [_sample(schema.get("items"), key, hint)] * max(1, schema.get("minItems", 1))
    if kind in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        value = low if low is not None else (min(1, high) if high is not None else 1)
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _sample_string(schema, key, hint)


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
    """Capitalised words after the first: "weather in Beijing today?" -> ["Beijing"]."""
    words = re.findall(r"[A-Za-z][\w-]*", text)
    return [w for w in words[1:] if w[0].isupper()]


def _call_id(prefix: str, seed: str, index: int) -> str:
    return prefix + hashlib.sha256(("%s/%d" % (seed, index)).encode()).hexdigest()[:24]


def _plan(conv: _Conversation, seed: str, *, id_prefix: str, prompt_tokens: int) -> _Reply:
    """The canned reply for a conversation: deterministic for the same request."""
    thinks = _thinks(conv)
    said = _brief(conv.user_text) or "(nothing)"
    if conv.results:
        used = "; ".join("%s returned %s" % (name, _brief(text)) for name, text in conv.results)
        reasoning = "The tool results are in. I will answer from them." if thinks else ""
        return _Reply(reasoning, "Here is what I found: %s." % used, [], prompt_tokens)
    calls = []
    schemas = dict(conv.tools)
    for index, name in enumerate(_tools_to_call(conv)):
        hint = _hint_words(conv.user_text)  # each call draws from the user's words afresh
        arguments = _sample(schemas[name] or {"type": "object"}, name, hint)
        if not isinstance(arguments, dict):
            arguments = {}
        calls.append(_Call(_call_id(id_prefix, seed, index), name, arguments))
    if calls:
        names = ", ".join(c.name for c in calls)
        reasoning = "The user asked %r. I should call %s." % (said, names) if thinks else ""
        return _Reply(reasoning, "", calls, prompt_tokens)
    reasoning = "The user said %r. I will reply briefly." % said if thinks else ""
    text = "This is the TokenHub mock server (%s). You said: %s" % (conv.model, said)
    return _Reply(reasoning, text, [], prompt_tokens)


def _brief(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _pieces(text: str) -> list[str]:
    """Stream-sized pieces of a text that join back to it exactly (a word each)."""
    return [p for p in re.split(r"(?<=\s)(?=\S)", text) if p]


def _fragments(text: str, size: int = 8) -> list[str]:
    """Fixed-size fragments, as tool-call arguments arrive on the wire."""
    return [text[i: i + size] for i in range(0, len(text), size)] or [""]


# ---------------------------------------------------------------------------
# OpenAI protocol
# ---------------------------------------------------------------------------


def _require(body: Mapping[str, Any], field: str, kind: type, what: str) -> Any:
    """A required field of the request body, or a 400 naming it."""
    if field not in body:
        raise _HTTPError(400, "invalid_request_error", "missing required field: %r" % field, field)
    value = body[field]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise _HTTPError(
            400, "invalid_request_error",
            "field %r must be %s, got %s" % (field, what, json.dumps(value)[:80]), field,
        )
    return value


def _openai_conversation(body: Mapping[str, Any]) -> _Conversation:
    conv = _Conversation()
    conv.model = _require(body, "model", str, "a string")
    messages = _require(body, "messages", list, "a list of messages")
    if not messages:
        raise _HTTPError(400, "invalid_request_error", "field 'messages' must not be empty", "messages")
    conv.thinking = body.get("thinking")
    conv.parallel = body.get("parallel_tool_calls") is not False
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name"):
            conv.tools.append((function["name"], function.get("parameters")))
    choice = body.get("tool_choice", "auto")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") or "auto"
    conv.tool_choice = choice if isinstance(choice, str) else "auto"
    names = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        for call in message.get("tool_calls") or []:
            if isinstance(call, dict):
                names[call.get("id")] = (call.get("function") or {}).get("name")
        if message.get("role") == "user":
            conv.user_text = _content_text(message.get("content"))
    for message in reversed(messages):  # the tool messages that answer the last turn
        if not isinstance(message, dict) or message.get("role") != "tool":
            break
        call_id = message.get("tool_call_id")
        conv.results.insert(0, (names.get(call_id) or call_id or "tool", _content_text(message.get("content"))))
    return conv


def _openai_usage(reply: _Reply) -> dict[str, Any]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.completion_tokens,
        "total_tokens": reply.prompt_tokens + reply.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": reply.reasoning_tokens},
    }


def _openai_finish(reply: _Reply) -> str:
    return "tool_calls" if reply.calls else "stop"


def _openai_tool_call(call: _Call) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
    }


def _openai_json(reply: _Reply, model: str, reply_id: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text or None}
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    if reply.calls:
        message["tool_calls"] = [_openai_tool_call(c) for c in reply.calls]
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _openai_finish(reply)}
        ],
        "usage": _openai_usage(reply),
    }


def _openai_sse(
    reply: _Reply, model: str, reply_id: str, include_usage: bool
) -> Iterator[bytes]:
    """The chunks of a streamed chat completion, each a ``data:`` event, then [DONE]."""
    head = {"id": reply_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        body = dict(head, choices=[{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}])
        if include_usage:  # with include_usage every chunk has the key, null until the last
            body["usage"] = None
        return _sse(body)

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(reply.reasoning):
        yield chunk({"reasoning_content": piece})
    for piece in _pieces(reply.text):
        yield chunk({"content": piece})
    for index, call in enumerate(reply.calls):
        first = {"index": index, "id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": ""}}
        yield chunk({"tool_calls": [first]})
        for fragment in _fragments(json.dumps(call.arguments, ensure_ascii=False)):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": fragment}}]})
    yield chunk({}, _openai_finish(reply))
    if include_usage:
        yield _sse(dict(head, choices=[], usage=_openai_usage(reply)))
    yield b"data: [DONE]\n\n"


def _sse(data: Any, event: str | None = None) -> bytes:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = "event: %s\n" % event if event else ""
    return ("%sdata: %s\n\n" % (head, text)).encode()


# ---------------------------------------------------------------------------
# Anthropic protocol
# ---------------------------------------------------------------------------


def _anthropic_conversation(body: Mapping[str, Any]) -> _Conversation:
    conv = _Conversation()
    conv.model = _require(body, "model", str, "a string")
    _require(body, "max_tokens", int, "an integer")
    messages = _require(body, "messages", list, "a list of messages")
    conv.thinking = body.get("thinking")
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("name"):
            conv.tools.append((tool["name"], tool.get("input_schema")))
    choice = body.get("tool_choice")
    choice = choice if isinstance(choice, dict) else {}
    kind = choice.get("type", "auto")
    conv.tool_choice = {"any": "required", "tool": choice.get("name") or "auto"}.get(kind, kind)
    conv.parallel = not choice.get("disable_parallel_tool_use")
    names = {}
    for message in messages:
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
        for block in blocks:
            if block.get("type") == "tool_use":
                names[block.get("id")] = block.get("name")
        if message.get("role") == "user":
            conv.user_text = _content_text(content) or conv.user_text
            conv.results = [
                (names.get(b.get("tool_use_id")) or b.get("tool_use_id") or "tool",
                 _content_text(b.get("content")))
                for b in blocks if b.get("type") == "tool_result"
            ]
        elif message.get("role") == "assistant":
            conv.results = []
    return conv


def _anthropic_blocks(reply: _Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.reasoning:
        blocks.append({"type": "thinking", "thinking": reply.reasoning, "signature": ""})
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for call in reply.calls:
        blocks.append({"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments})
    return blocks


def _anthropic_message(reply: _Reply, model: str, reply_id: str, *, streaming: bool) -> dict[str, Any]:
    return {
        "id": reply_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [] if streaming else _anthropic_blocks(reply),
        "stop_reason": None if streaming else _anthropic_stop(reply),
        "stop_sequence": None,
        "usage": {
            "input_tokens": reply.prompt_tokens,
            "output_tokens": 1 if streaming else reply.completion_tokens,
        },
    }


def _anthropic_stop(reply: _Reply) -> str:
    return "tool_use" if reply.calls else "end_turn"


_DELTAS = {"thinking": ("thinking_delta", "thinking"), "text": ("text_delta", "text")}


def _anthropic_sse(reply: _Reply, model: str, reply_id: str) -> Iterator[bytes]:
    """The events of a streamed message, in the documented order."""
    message = _anthropic_message(reply, model, reply_id, streaming=True)
    yield _sse({"type": "message_start", "message": message}, "message_start")
    yield _sse({"type": "ping"}, "ping")
    for index, block in enumerate(_anthropic_blocks(reply)):
        kind = block["type"]
        if kind == "tool_use":
            start = dict(block, input={})
            pieces = _fragments(json.dumps(block["input"], ensure_ascii=False))
            deltas = [{"type": "input_json_delta", "partial_json": p} for p in pieces]
        else:
            delta_type, field = _DELTAS[kind]
            start = dict(block, **{field: ""})
            deltas = [{"type": delta_type, field: p} for p in _pieces(block[field])]
        yield _sse({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start")
        for delta in deltas:
            yield _sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
        yield _sse({"type": "content_block_stop", "index": index}, "content_block_stop")
    yield _sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": _anthropic_stop(reply), "stop_sequence": None},
            "usage": {"output_tokens": reply.completion_tokens},
        },
        "message_delta",
    )
    yield _sse({"type": "message_stop"}, "message_stop")


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


def _error_body(protocol: str, error: _HTTPError, request_id: str) -> dict[str, Any]:
    if protocol == "anthropic":
        return {
            "type": "error",
            "error": {"type": error.kind, "message": error.message},
            "request_id": request_id,
        }
    return {
        "error": {"message": error.message, "type": error.kind, "param": error.param, "code": None}
    }


def _models_body() -> dict[str, Any]:
    """The model list, readable by both SDKs (OpenAI and Anthropic field names)."""
    data = [
        {
            "id": model_id, "object": "model", "created": _MODELS_CREATED, "owned_by": vendor,
            "type": "model", "display_name": name, "created_at": "2026-01-01T00:00:00Z",
        }
        for model_id, name, vendor in MODELS
    ]
    return {
        "object": "list", "data": data, "has_more": False,
        "first_id": data[0]["id"], "last_id": data[-1]["id"],
    }


def _parse_json(raw: bytes) -> tuple[Any, str]:
    """(parsed body or None, what is wrong with it or "")."""
    if not raw:
        return None, ""
    try:
        return json.loads(raw), ""
    except ValueError as exc:
        return None, "request body is not valid JSON: %s" % exc


class _Handler(BaseHTTPRequestHandler):
    """One connection: HTTP/1.1 keep-alive, streams sent chunked."""

    protocol_version = "HTTP/1.1"
    server_version = "TokenHubMock/" + __version__
    timeout = 120  # an idle keep-alive connection is closed after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Replies go out as a head write then a body write (or one write per event);
        # with Nagle's algorithm each second write waits ~40 ms for a delayed ACK.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.owner.verbose:
            sys.stderr.write("mock_server: %s\n" % (format % args))

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        owner = self.server.owner
        request_id = "req_mock_%d" % owner._next_id()
        path = self.path.split("?", 1)[0]
        route = path[4:] if path.startswith("/api/") else path  # tokenhub.store's /api root
        protocol = self._protocol(route)
        try:
            raw = self._read_body()
            body, problem = _parse_json(raw)
            owner._record(RecordedRequest(method, self.path, self._headers(), body, raw))
            self._check_key(owner.api_key)
            if problem:
                raise _HTTPError(400, "invalid_request_error", problem)
            self._route(method, route, body, request_id)
        except _HTTPError as error:
            self._send_json(error.status, _error_body(protocol, error, request_id), request_id)
        except (ConnectionError, socket.timeout):
            self.close_connection = True  # the client went away mid-reply

    def _protocol(self, route: str) -> str:
        if route.startswith("/v1/messages") or "x-api-key" in self.headers or "anthropic-version" in self.headers:
            return "anthropic"
        return "openai"

    def _headers(self) -> dict[str, str]:
        return {name.lower(): value for name, value in self.headers.items()}

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("transfer-encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("content-length")
        if not length:
            return b""
        if not length.isdigit() or int(length) > _MAX_BODY:
            self.close_connection = True
            raise _HTTPError(413 if length.isdigit() else 400, "invalid_request_error",
                             "expected a Content-Length of at most %d bytes, got %r" % (_MAX_BODY, length))
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes:
        parts, size = [], 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()
            try:
                length = int(line, 16)
            except ValueError:
                self.close_connection = True
                raise _HTTPError(400, "invalid_request_error", "malformed chunked request body") from None
            if length == 0:
                while self.rfile.readline(1024).strip():
                    pass  # trailers
                return b"".join(parts)
            size += length
            if size > _MAX_BODY:
                self.close_connection = True
                raise _HTTPError(413, "invalid_request_error", "request body over %d bytes" % _MAX_BODY)
            parts.append(self.rfile.read(length))
            self.rfile.readline(8)

    def _check_key(self, key: str | None) -> None:
        if key is None:
            return
        bearer = self.headers.get("authorization", "")
        if bearer == "Bearer " + key or self.headers.get("x-api-key") == key:
            return
        given = "none" if not (bearer or self.headers.get("x-api-key")) else "a wrong one"
        raise _HTTPError(
            401, "authentication_error",
            "invalid API key: expected it in 'Authorization: Bearer <key>' or 'x-api-key', got %s" % given,
        )

    def _route(self, method: str, route: str, body: Any, request_id: str) -> None:
        if route in ("/v1/chat/completions", "/v1/messages"):
            if method != "POST":
                raise _HTTPError(405, "invalid_request_error", "%s takes POST, got %s" % (route, method))
            if not isinstance(body, dict):
                raise _HTTPError(400, "invalid_request_error", "expected a JSON object body, got %s" % (
                    "none" if body is None else type(body).__name__))
            if route == "/v1/messages":
                self._messages(body, request_id)
            else:
                self._chat(body, request_id)
        elif route == "/v1/models" and method == "GET":
            self._send_json(200, _models_body(), request_id)
        elif route.startswith("/v1/models/") and method == "GET":
            wanted = route[len("/v1/models/"):]
            for model in _models_body()["data"]:
                if model["id"] == wanted:
                    return self._send_json(200, model, request_id)
            raise _HTTPError(404, "not_found_error", "model %r not found" % wanted)
        else:
            raise _HTTPError(404, "not_found_error", "no route for %s %s" % (method, self.path))

    def _chat(self, body: dict[str, Any], request_id: str) -> None:
        conv = _openai_conversation(body)
        seed = json.dumps(body, sort_keys=True)
        prompt = max(1, sum(_count_tokens(t) for t in _texts([body.get("messages"), body.get("tools")])))
        reply = _plan(conv, seed, id_prefix="call_", prompt_tokens=prompt)
        reply_id = "chatcmpl-" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        if body.get("stream") is True:
            options = body.get("stream_options")
            usage = isinstance(options, dict) and options.get("include_usage") is True
            self._send_sse(_openai_sse(reply, conv.model, reply_id, usage), request_id)
        else:
            self._send_json(200, _openai_json(reply, conv.model, reply_id), request_id)

    def _messages(self, body: dict[str, Any], request_id: str) -> None:
        conv = _anthropic_conversation(body)
        seed = json.dumps(body, sort_keys=True)
        parts = [body.get("system"), body.get("messages"), body.get("tools")]
        prompt = max(1, sum(_count_tokens(t) for t in _texts(parts)))
        reply = _plan(conv, seed, id_prefix="toolu_", prompt_tokens=prompt)
        reply_id = "msg_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
        if body.get("stream") is True:
            self._send_sse(_anthropic_sse(reply, conv.model, reply_id), request_id)
        else:
            self._send_json(200, _anthropic_message(reply, conv.model, reply_id, streaming=False), request_id)

    def _send_json(self, status: int, body: Any, request_id: str) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-request-id", request_id)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def _send_sse(self, events: Iterator[bytes], request_id: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("x-request-id", request_id)
        self.end_headers()
        for event in events:  # one HTTP chunk per event, written at once
            self.wfile.write(b"%x\r\n%s\r\n" % (len(event), event))
        self.wfile.write(b"0\r\n\r\n")


class _Server(HTTPServer):
    """An HTTPServer with a thread per connection that it can end on demand."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], owner: MockServer) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.owner = owner
        self._lock = threading.Lock()
        self._live: dict[threading.Thread, socket.socket] = {}
        super().__init__(address, _Handler)
        if owner.ssl_context is not None:
            # The handshake waits for the connection's own thread, so a slow or
            # failing client cannot hold up the accept loop.
            self.socket = owner.ssl_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

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
                request.settimeout(_Handler.timeout)
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


class MockServer:
    """TokenHub on loopback: ``with MockServer() as srv: ... srv.url ...``.

    ``MockServer(*, host="127.0.0.1", port=0, api_key=None, verbose=False,
    ssl_context=None)``: ``port=0`` takes a free port; with ``api_key`` a request
    without that key (Bearer or ``x-api-key``) gets a 401; with a server-side
    ``ssl_context`` it serves https (for testing a client's TLS settings). ``start()`` serves from a background
    thread, ``stop()`` (or leaving the ``with`` block) ends every connection and
    thread. ``srv.requests`` lists every request received, as
    :class:`RecordedRequest` objects, in arrival order.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        verbose: bool = False,
        ssl_context: Any = None,
    ) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.verbose = verbose
        self.ssl_context = ssl_context
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._count = 0
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

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
        self._server = _Server((self.host, self.port), self)
        return self._server

    def start(self) -> MockServer:
        """Bind and serve from a background thread; returns self."""
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="mock_server", daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self, *, ready: Any = None) -> None:
        """Bind and serve in this thread until interrupted (Ctrl-C); ``ready(url)`` is
        called once the socket listens."""
        server = self._bind()
        if ready is not None:
            ready(self.url)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            self._close()

    def stop(self) -> None:
        """Stop serving, hang up open connections and join every thread."""
        if self._server is None:
            return
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._close()

    def _close(self) -> None:
        server, self._server, self._thread = self._server, None, None
        if server is not None:
            server.server_close()
            server.end_connections(timeout=5.0)

    def __enter__(self) -> MockServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _next_id(self) -> int:
        with self._lock:
            self._count += 1
            return self._count

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python3 mock_server.py [--host H] [--port P] [--api-key KEY] [--quiet]``."""
    import argparse
    import signal

    parser = argparse.ArgumentParser(
        prog="mock_server.py",
        description="Serve TokenHub's two protocols offline with canned replies. "
        "Prints the base URL as the first line of stdout, then serves until interrupted.",
        epilog="example: python3 mock_server.py --port 0 --api-key test",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--api-key", help="reject requests that do not carry this key")
    parser.add_argument("--quiet", action="store_true", help="do not log requests to stderr")
    args = parser.parse_args(argv)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    server = MockServer(host=args.host, port=args.port, api_key=args.api_key, verbose=not args.quiet)
    try:
        server.serve_forever(ready=lambda url: print(url, flush=True))
    except OSError as exc:
        print("mock_server.py: cannot listen on %s:%d: %s" % (args.host, args.port, exc), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
