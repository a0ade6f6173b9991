"""A hostile or broken peer: the client against raw servers that misbehave on purpose,
and the mock against hostile requests. Replies never cross between calls, nothing
hangs past its deadline, every failure is an APIError, and no secret leaks.

Each test plays one defect on real sockets on 127.0.0.1, for both protocols and
both ways of reading a reply (streamed and not) where it applies.
"""

import gc
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

import tokenhub
from conftest import timed, ROOT, host_port, raw_request
from mock_server import MockServer, redacted

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

HI = [{"role": "user", "content": "Hi"}]
MARGIN = 1.5  # seconds a deadline may overrun on a loaded machine
PROTOCOLS = ["openai", "anthropic", "responses"]
WAYS = ["plain", "stream"]


def make_client(url, **kw):
    kw.setdefault("max_retries", 0)
    return tokenhub.TokenHub(api_key="k", base_url=url, **kw)


def response_for(text):
    return {"id": "resp_1", "object": "response", "status": "completed", "model": "m", "output": [
        {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": text, "annotations": []}]}]}


def body_for(protocol, text):
    if protocol == "responses":
        return json.dumps(response_for(text)).encode()
    if protocol == "openai":
        reply = {"id": "c1", "object": "chat.completion", "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}
    else:
        reply = {"id": "m1", "type": "message", "role": "assistant", "model": "m",
                 "content": [{"type": "text", "text": text}], "stop_reason": "end_turn"}
    return json.dumps(reply).encode()


def events_for(protocol, text):
    """A whole event stream whose answer is ``text``, terminator included."""
    if protocol == "openai":
        return ('data: {"id":"c1","object":"chat.completion.chunk","model":"m","choices":[{"index":0,'
                '"delta":{"role":"assistant","content":%s}}]}\n\ndata: [DONE]\n\n' % json.dumps(text)).encode()
    if protocol == "responses":
        done = response_for(text)
        events = [
            {"type": "response.created", "response": dict(done, status="in_progress", output=[])},
            {"type": "response.output_item.added", "output_index": 0,
             "item": dict(done["output"][0], content=[], status="in_progress")},
            {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 0, "content_index": 0,
             "delta": text},
            {"type": "response.output_item.done", "output_index": 0, "item": done["output"][0]},
            {"type": "response.completed", "response": done},
        ]
        return b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(dict(e, sequence_number=n)).encode())
                        for n, e in enumerate(events))
    events = [
        {"type": "message_start", "message": {"id": "m1", "type": "message", "role": "assistant", "model": "m",
                                              "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_stop"},
    ]
    return b"".join(b"event: %s\ndata: %s\n\n" % (e["type"].encode(), json.dumps(e).encode()) for e in events)


def reply_bytes(protocol, way, text, *, head=b"", close=False):
    """One whole reply with a Content-Length: JSON, or an event stream."""
    body = events_for(protocol, text) if way == "stream" else body_for(protocol, text)
    kind = b"text/event-stream" if way == "stream" else b"application/json"
    lines = [b"HTTP/1.1 200 OK", b"Content-Type: " + kind, b"Content-Length: %d" % len(body)]
    if close:
        lines.append(b"Connection: close")
    return head + b"\r\n".join(lines) + b"\r\n\r\n" + body


def ask(client, protocol, way):
    """The answer's text, read the way a user reads it."""
    if protocol == "responses":
        if way == "stream":
            with client.responses.stream(model="m", input="Hi") as stream:
                return stream.get_final_text()
        return client.responses.create(model="m", input="Hi").output_text
    if protocol == "openai":
        if way == "stream":
            with client.chat.completions.stream(model="m", messages=HI) as stream:
                return stream.get_final_text()
        return client.chat.completions.create(model="m", messages=HI).choices[0].message.content
    if way == "stream":
        with client.messages.stream(model="m", max_tokens=10, messages=HI) as stream:
            return stream.get_final_text()
    return client.messages.create(model="m", max_tokens=10, messages=HI).content[0].text


def open_stream(client, protocol, *, helper=False, model="m"):
    """A stream of any protocol: raw ``create(stream=True)``, or the ``.stream()`` helper."""
    if protocol == "openai":
        api, params = client.chat.completions, {"messages": HI}
    elif protocol == "responses":
        api, params = client.responses, {"input": HI}
    else:
        api, params = client.messages, {"messages": HI, "max_tokens": 5000}
    return api.stream(model=model, **params) if helper else api.create(model=model, stream=True, **params)


def dripper(head, piece, every, stop):
    """A script step: ``head`` at once, then ``piece`` every ``every`` seconds until stopped
    (pacing, as a slow network would; nothing waits on it to synchronise)."""
    def step(conn):
        conn.sendall(head)
        while not stop.wait(every):
            conn.sendall(piece)
    return step


# ---------------------------------------------------------------------------
# Replies never cross: interim responses, bytes past the end
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_interim_1xx_responses_are_skipped_and_the_connection_stays_in_step(raw_server, protocol, way):
    interim = (b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
               b"HTTP/1.1 100 Continue\r\n\r\n")
    with raw_server(reply_bytes(protocol, way, "first", head=interim), reply_bytes(protocol, way, "second")) as srv:
        client = make_client(srv.url)
        assert ask(client, protocol, way) == "first"
        assert ask(client, protocol, way) == "second"  # not the first call's reply, on the same connection
        assert srv.connections == 1


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_101_switch_is_refused_and_its_connection_closed(raw_server, protocol):
    switch = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
    with raw_server(switch + reply_bytes(protocol, "plain", "forged"), reply_bytes(protocol, "plain", "second")) as srv:
        client = make_client(srv.url)
        with pytest.raises(tokenhub.ProtocolError, match="switched protocols"):
            ask(client, protocol, "plain")
        assert ask(client, protocol, "plain") == "second"
        assert srv.connections == 2


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bytes_past_the_content_length_never_reach_the_next_call(raw_server, protocol, way):
    forged = reply_bytes(protocol, way, "forged")  # a whole reply, hidden past the first one's end
    with raw_server(reply_bytes(protocol, way, "first") + forged, reply_bytes(protocol, way, "second")) as srv:
        client = make_client(srv.url)
        assert ask(client, protocol, way) == "first"
        assert ask(client, protocol, way) == "second"
        assert srv.connections == 2  # the first connection had stray bytes: never reused


def test_bytes_that_arrive_after_the_reply_close_the_idle_connection(raw_server):
    first_read, arrived = threading.Event(), threading.Event()

    def late_bytes(conn):
        conn.sendall(reply_bytes("openai", "plain", "first"))
        first_read.wait(10)
        conn.sendall(reply_bytes("openai", "plain", "stray"))  # unasked for, while the connection idles
        arrived.set()
        conn.recv(65536)  # a request sent here would read the stray reply as its own

    with raw_server(late_bytes, reply_bytes("openai", "plain", "second")) as srv:
        client = make_client(srv.url)
        assert ask(client, "openai", "plain") == "first"
        first_read.set()
        assert arrived.wait(10)
        assert ask(client, "openai", "plain") == "second"
        assert srv.connections == 2


# ---------------------------------------------------------------------------
# Deadlines hold over the whole exchange
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_total_deadline_holds_while_the_head_drips(raw_server, protocol, way):
    stop = threading.Event()
    with raw_server(dripper(b"HTTP/1.1 200 OK\r\nX-Drip: ", b"a", 0.02, stop)) as srv:
        client = make_client(srv.url, timeout=tokenhub.Timeout(read=5, total=0.4))
        with pytest.raises(tokenhub.APITimeoutError, match=r"Timeout.total"):
            timed(lambda: ask(client, protocol, way))
        stop.set()
    assert 0.35 <= timed.elapsed < 0.4 + MARGIN


def test_the_connect_deadline_covers_a_proxy_tunnel_that_drips(monkeypatch):
    """A proxy that accepts, then answers CONNECT a byte at a time, forever."""
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    accepted = []

    def serve():
        conn, _ = listener.accept()
        accepted.append(conn)
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 Connection established\r\nX-Drip: ")
        while not stop.wait(0.02):
            try:
                conn.sendall(b"a")
            except OSError:
                return

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:%d" % listener.getsockname()[1])
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        client = make_client("https://gateway.test", timeout=tokenhub.Timeout(connect=0.4, read=30))
        with pytest.raises(tokenhub.APITimeoutError, match=r"connecting to .*Timeout.connect"):
            timed(lambda: client.chat.completions.create(model="m", messages=HI))
    finally:
        stop.set()
        thread.join(5)
        for conn in accepted:
            conn.close()
        listener.close()
    assert 0.35 <= timed.elapsed < 0.4 + MARGIN


def chunked_stream(protocol, text):
    """The head and first chunk of a chunked event stream: every event, terminator included."""
    events = events_for(protocol, text)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(events) + events + b"\r\n")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_stream_ends_at_its_terminator_even_if_the_chunked_body_never_does(raw_server, protocol):
    stop = threading.Event()
    with raw_server(dripper(chunked_stream(protocol, "done"), b"", 5, stop), reply_bytes(protocol, "plain", "next")) as srv:
        client = make_client(srv.url)  # no idle or total limit: the drain's own bound applies
        timed(lambda: ask(client, protocol, "stream"))
        assert ask(client, protocol, "plain") == "next"
        stop.set()
        assert srv.connections == 2  # the unfinished connection was not reused
    assert timed.elapsed < 0.5 + MARGIN  # tokenhub's drain gives up after 0.5 s


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_the_drain_after_a_terminator_keeps_to_the_total_deadline(raw_server, protocol):
    stop = threading.Event()
    step = dripper(chunked_stream(protocol, "done") + b"0\r\n", b"X-Trailer: a\r\n", 0.01, stop)  # endless trailers
    with raw_server(step) as srv:
        client = make_client(srv.url, timeout=tokenhub.Timeout(total=0.3))
        timed(lambda: ask(client, protocol, "stream"))
        stop.set()
    assert timed.elapsed < 0.3 + MARGIN


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_endless_trailers_end_a_plain_call(raw_server, protocol):
    body = body_for(protocol, "ok")
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n" % len(body) + body + b"\r\n0\r\n")
    stop = threading.Event()
    with raw_server(dripper(head, b"X-Trailer: " + b"a" * 1000 + b"\r\n", 0.001, stop),
                    dripper(head, b"X-Trailer: a\r\n", 0.02, stop)) as srv:
        client = make_client(srv.url, timeout=tokenhub.Timeout(read=5, total=0.4))
        with pytest.raises(tokenhub.SizeLimitError, match="trailers exceed"):
            ask(client, protocol, "plain")
        with pytest.raises(tokenhub.APITimeoutError, match="Timeout.total"):
            timed(lambda: ask(client, protocol, "plain"))
        stop.set()
    assert timed.elapsed < 0.4 + MARGIN


# ---------------------------------------------------------------------------
# Long lines, deep JSON: linear time, typed errors
# ---------------------------------------------------------------------------


def test_a_long_line_fed_in_small_pieces_is_held_as_pieces_and_joined_once():
    """Linear whatever the chunking: the pieces of an unfinished line are kept, not
    re-concatenated at every feed (1 MiB in 16-byte pieces took 11 s when they were)."""
    decoder = tokenhub.SSEDecoder()
    line = b"data: " + b"x" * (1 << 20)
    pieces = [line[i:i + 16] for i in range(0, len(line), 16)]
    start = time.monotonic()
    for piece in pieces:
        assert decoder.feed(piece) == []
    assert len(decoder._tail) == len(pieces) and decoder._tail_size == len(line)
    [event] = decoder.feed(b"\n\n")
    assert event.data == "x" * (1 << 20) and decoder.pending is False
    assert time.monotonic() - start < 60  # a hang guard only; bench/sse_decode.py measures it


def test_a_long_line_in_small_pieces_still_hits_max_line_size():
    decoder = tokenhub.SSEDecoder(max_line_size=1000)
    with pytest.raises(tokenhub.SizeLimitError, match="exceeds 1000 bytes"):
        for _ in range(100):
            decoder.feed(b"y" * 16)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_long_line_dripped_over_the_wire_arrives_whole(raw_server, protocol):
    text = "\u00e9" * 200_000
    events = events_for(protocol, text)

    def step(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(events))
        for i in range(0, len(events), 4096):
            conn.sendall(events[i:i + 4096])

    with raw_server(step) as srv:
        assert ask(make_client(srv.url), protocol, "stream") == text


DEEP = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_deeply_nested_json_is_a_protocol_error_everywhere(raw_server, protocol):
    plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(DEEP) + DEEP
    error = plain.replace(b"200 OK", b"400 Bad Request", 1)
    event = b"data: " + DEEP + b"\n\n"
    stream = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(event) + event
    with raw_server(plain, error, stream) as srv:
        client = make_client(srv.url)
        with pytest.raises(tokenhub.ProtocolError, match="nested too deeply"):
            ask(client, protocol, "plain")
        with pytest.raises(tokenhub.BadRequestError) as info:
            ask(client, protocol, "plain")
        assert isinstance(info.value.body, str)  # kept as text, not lost
        with pytest.raises(tokenhub.StreamError, match="invalid JSON"):
            ask(client, protocol, "stream")


def test_deep_json_from_the_command_line_is_an_error_line_not_a_traceback(raw_server):
    plain = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(DEEP) + DEEP
    with raw_server(plain) as srv:
        env = dict(os.environ, TOKENHUB_API_KEY="k", TOKENHUB_BASE_URL=srv.url)
        result = subprocess.run([sys.executable, os.path.join(ROOT, "tokenhub.py"), "chat", "--no-stream", "Hi"],
                                capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "nested too deeply" in result.stderr


# ---------------------------------------------------------------------------
# Secrets never in messages; headers never smuggle lines
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("ending", ["\n", "\r", "\r\n", "\x00"])
def test_a_key_with_a_line_break_is_refused_without_showing_it(monkeypatch, ending):
    key = "sk-live-0123456789abcdef"
    with pytest.raises(ValueError) as info:
        tokenhub.TokenHub(api_key=key + ending, base_url="http://127.0.0.1:9")
    message = str(info.value)
    assert "api_key" in message and "position %d" % len(key) in message
    assert "sk-" not in message and "0123" not in message
    if ending == "\x00":
        return  # an environment variable cannot hold a NUL byte
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", key + ending)
    with pytest.raises(ValueError, match="ANTHROPIC_AUTH_TOKEN contains") as info:
        tokenhub.Anthropic(base_url="http://127.0.0.1:9")
    assert "sk-" not in str(info.value)


def test_the_command_line_refuses_a_pasted_key_without_a_traceback(mock):
    env = dict(os.environ, TOKENHUB_API_KEY="sk-pasted-secret-key\n", TOKENHUB_BASE_URL=mock.url)
    result = subprocess.run([sys.executable, os.path.join(ROOT, "tokenhub.py"), "chat", "Hi"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "TOKENHUB_API_KEY contains a line feed" in result.stderr and "secret" not in result.stderr
    assert mock.requests == []


@pytest.mark.parametrize("password", ["pa#ss-w0rd-secret", "pa?ss-w0rd-secret", "pa/ss-w0rd-secret"])
def test_a_proxy_password_with_unescaped_delimiters_is_refused_without_showing_it(monkeypatch, mock, password):
    monkeypatch.setenv("HTTPS_PROXY", "http://user:%s@127.0.0.1:9" % password)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    client = make_client("https://gateway.test")
    with pytest.raises(ValueError, match="percent-encode") as info:
        client.chat.completions.create(model="m", messages=HI)
    message = str(info.value)
    assert "w0rd" not in message and "secret" not in message and "pa" + password[2] not in message


@pytest.mark.parametrize("where", ["extra_headers", "default_headers"])
@pytest.mark.parametrize("name,value,words", [
    ("X-Team", "a\r\nX-Injected: 1", "X-Team: its value contains a carriage return"),
    ("X-Team", "a\nX-Injected: 1", "X-Team: its value contains a line feed"),
    ("X-Team", "folded\r\n continued", "X-Team: its value contains a carriage return"),
    ("X Team", "value", "invalid header name 'X Team'"),
    ("X-Team:", "value", "invalid header name 'X-Team:'"),
])
def test_header_injection_is_refused_naming_the_header_not_its_value(mock, where, name, value, words):
    if where == "default_headers":
        client = tokenhub.TokenHub(api_key="k", base_url=mock.url, default_headers={name: value})
        call = lambda: client.chat.completions.create(model="m", messages=HI)  # noqa: E731
    else:
        client = make_client(mock.url)
        call = lambda: client.chat.completions.create(model="m", messages=HI, extra_headers={name: value})  # noqa: E731
    with pytest.raises(ValueError) as info:
        call()
    assert words in str(info.value) and "Injected" not in str(info.value) and "continued" not in str(info.value)
    assert mock.requests == []  # nothing reached the wire


# ---------------------------------------------------------------------------
# Streams: a dropped one frees its socket; a raw one keeps nothing
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_dropped_stream_closes_its_connection_at_once_without_the_collector(raw_server, protocol):
    closed = threading.Event()
    first = events_for(protocol, "x").split(b"\n\n")[0] + b"\n\n"

    def endless(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n" + first)
        if conn.recv(1) == b"":  # the client's close
            closed.set()

    with raw_server(endless) as srv:
        client = make_client(srv.url)
        gc.disable()
        try:
            stream = open_stream(client, protocol)
            next(stream)
            del stream
            assert closed.wait(10), "the server still holds the connection of a dropped stream"
        finally:
            gc.enable()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_raw_stream_keeps_no_snapshot_and_says_so(mock, protocol):
    stream = open_stream(make_client(mock.url), protocol, model="glm-5")
    items = list(stream)
    assert len(items) > 5 and stream._core._snapshot is None and stream._core._run == []
    with pytest.raises(tokenhub.StreamError, match=r"first %d item\(s\) were read raw" % len(items)):
        stream.get_final_text()


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_kept_snapshot_is_bounded_with_a_named_error(mock, protocol):
    mock.add(" ".join("word%d" % n for n in range(400)))
    client = tokenhub.TokenHub(api_key="k", base_url=mock.url, max_retries=0, max_snapshot_size=2000)
    stream = open_stream(client, protocol, helper=True)
    with pytest.raises(tokenhub.SizeLimitError, match=r"passed 2000 characters .*\(max_snapshot_size\)") as info:
        stream.get_final_text()
    assert info.value.snapshot is not None  # what was kept up to the limit
    plain = tokenhub.TokenHub(api_key="k", base_url=mock.url, max_retries=0, max_snapshot_size=2000)
    assert len(list(open_stream(plain, protocol))) > 400  # raw reading keeps nothing, so no limit applies


# ---------------------------------------------------------------------------
# The command line on a terminal; strict JSON
# ---------------------------------------------------------------------------


def run_on_a_terminal(args, env):
    """(exit status, what the terminal showed) of one run with stdout and stderr on a pty."""
    import pty
    import select

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "tokenhub.py"), *args], stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave, env=env)
    os.close(slave)
    seen = b""
    try:
        deadline = time.monotonic() + 60
        while True:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "the command said nothing more; so far %r" % seen
            try:
                data = os.read(master, 65536)
            except OSError:  # the other side closed (Linux reports EIO)
                break
            if not data:
                break
            seen += data
        status = proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return status, seen.decode("utf-8", "replace")


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_escape_sequences_from_the_server_are_shown_not_obeyed_on_a_terminal(mock, protocol):
    mock.add({"text": "Red \x1b[31malert\x1b]0;pwned\x07 done\r", "reasoning": "think \x1b[2J"})
    env = dict(os.environ, TOKENHUB_API_KEY="k", TOKENHUB_BASE_URL=mock.url, NO_COLOR="1")
    status, screen = run_on_a_terminal(["chat", "--protocol", protocol, "-m", "glm-5", "--show-reasoning", "Hi"], env)
    assert status == 0
    assert "\x1b" not in screen and "\x07" not in screen
    assert "Red \\x1b[31malert\\x1b]0;pwned\\x07 done\\x0d" in screen and "think \\x1b[2J" in screen


def test_json_output_is_strict_json(raw_server):
    body = b'{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant",' \
           b'"content":"ok"},"finish_reason":"stop"}],"usage":{"score":NaN,"big":1e999,"low":-Infinity}}'
    wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with raw_server(wire) as srv:
        env = dict(os.environ, TOKENHUB_API_KEY="k", TOKENHUB_BASE_URL=srv.url)
        result = subprocess.run([sys.executable, os.path.join(ROOT, "tokenhub.py"), "chat", "--no-stream", "--json", "Hi"],
                                capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0

    def refuse(constant):
        raise ValueError("not JSON: %s" % constant)

    reply = json.loads(result.stdout, parse_constant=refuse)
    assert reply["usage"] == {"score": None, "big": None, "low": None}
    assert "3 number(s) in the reply were not finite" in result.stderr


# ---------------------------------------------------------------------------
# The mock: no freezes, no lost replies, no secrets or files over HTTP, limits
# ---------------------------------------------------------------------------


def test_many_unclosed_reminders_do_not_freeze_the_mock(mock):
    """Quadratic once (a 265 KB message took 12.5 s); this one is 2 MB."""
    text = "<system-reminder>" * 120_000 + " please say hi"
    client = make_client(mock.url, timeout=tokenhub.Timeout(total=60))
    reply = client.chat.completions.create(model="m", messages=[{"role": "user", "content": text}])
    assert reply.choices[0].message.content.startswith("This is the TokenHub mock server")


def test_reminders_are_still_stripped():
    from mock_server import _spoken

    assert _spoken("a <system-reminder>b</system-reminder> c <system-reminder>d</system-reminder>") == "a  c"
    assert _spoken("<system-reminder>open <system-reminder>x</system-reminder> kept") == "kept"
    assert _spoken("x <system-reminder>never closed") == "x <system-reminder>never closed"


@pytest.mark.parametrize("path,headers", [("/v1/chat/completions", {}), ("/v1/messages", {"x-api-key": "k"})])
def test_a_lone_surrogate_is_a_400_and_the_journal_keeps_working(mock, path, headers):
    body = b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "bad \\ud800 here"}]}'
    status, _, error = raw_request(mock, "POST", path, body, dict(headers, **{"Content-Type": "application/json"}))
    assert status == 400 and "lone UTF-16 surrogate (\\ud800)" in error["error"]["message"]
    assert ("type" in error) == (path == "/v1/messages")  # each protocol's own error shape
    status, _, journal = raw_request(mock, "GET", "/_mock/requests")
    assert status == 200 and len(journal["requests"]) == 1
    assert make_client(mock.url).chat.completions.create(model="m", messages=HI).choices


@pytest.mark.parametrize("body", [DEEP, b'{"model": "m", "messages": ' + b"[" * 500 + b"]" * 500 + b"}"])
def test_a_deeply_nested_request_is_a_400_and_the_server_lives_on(mock, body):
    status, _, error = raw_request(mock, "POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    assert status == 400 and "nests" in error["error"]["message"]
    assert make_client(mock.url).chat.completions.create(model="m", messages=HI).choices


@pytest.mark.parametrize("spec,words", [
    ("stall-after=1,seconds=1e308", "'seconds' expects a number of seconds from 0 to 86400"),
    ("stall-after=1,seconds=inf", "'seconds' expects a number of seconds from 0 to 86400"),
    ("drip=nan", "'drip' expects a number of seconds"),
    ("ttfb=1e400", "'ttfb' expects a number of seconds"),
    ("disconnect-after=1e30", "'disconnect-after' expects an integer"),
])
def test_unbounded_fault_values_are_a_400(mock, spec, words):
    client = make_client(mock.url)
    with pytest.raises(tokenhub.BadRequestError, match=words):
        client.chat.completions.create(model="m", messages=HI, extra_headers={"X-Mock-Fault": spec})
    assert client.chat.completions.create(model="m", messages=HI).choices


def test_the_journal_never_holds_credentials_even_when_recording(tmp_path):
    secret = "sk-upstream-secret-77"
    with MockServer(api_key=secret) as upstream, \
            MockServer(record=upstream.url, record_to=str(tmp_path)) as recorder:
        client = tokenhub.Anthropic(api_key=secret, base_url=recorder.url, max_retries=0,
                                    default_headers={"Cookie": "session=cookie-secret"})
        assert client.messages.create(model="m", max_tokens=5, messages=HI).content  # the key reached upstream
        status, _, raw = wire_request(recorder, "GET", "/_mock/requests")
        assert status == 200 and secret not in raw and "cookie-secret" not in raw
        journal = json.loads(raw)["requests"][0]["headers"]
        assert journal["x-api-key"] == redacted(secret) and journal["cookie"] == redacted("session=cookie-secret")
        assert all(secret not in json.dumps(r.to_dict()) for r in recorder.requests + upstream.requests)
    assert all(secret not in p.read_text() for p in tmp_path.iterdir())


def wire_request(srv, method, path, body=None, headers=None):
    """(status, headers, body text) of one request, through the test's own http.client helper."""
    from conftest import raw_exchange

    status, head, data = raw_exchange(srv, method, path, body, headers)
    return status, head, data.decode()


def test_fixtures_over_http_are_data_never_file_paths(mock, tmp_path):
    secret_file = tmp_path / "private.json"
    secret_file.write_text('{"fixtures": [{"name": "from-a-file", "response": "file text TOP-SECRET"}]}')
    json_type = {"Content-Type": "application/json"}
    for body in (str(secret_file), [str(secret_file)], {"fixtures": [str(secret_file)]}):
        status, _, error = raw_request(mock, "POST", "/_mock/fixtures", body, json_type)
        assert status == 400 and "not file paths" in error["error"]["message"]
        assert "TOP-SECRET" not in json.dumps(error) and str(tmp_path) not in json.dumps(error)
    assert mock.fixtures == []


@pytest.mark.parametrize("route", ["/_mock/fixtures", "/_mock/reset"])
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_control_routes_refuse_what_a_web_page_can_post_cross_site(mock, route, content_type):
    mock.add("kept")
    headers = {"Content-Type": content_type} if content_type else {}
    status, _, error = raw_request(mock, "POST", route, {"fixtures": [{"response": "injected"}]}, headers)
    assert status == 415 and "application/json" in error["error"]["message"]
    assert [f.name for f in mock.fixtures] == ["srv.add #1"]  # neither added nor reset


@pytest.mark.parametrize("size", [b"-1", b"+10", b"0x10", b"1_0", b""])
def test_a_malformed_chunk_size_is_a_400_not_a_read_to_the_end(mock, size):
    host, port = host_port(mock)
    request = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + size + b"\r\n" + b"{" * 1000)
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(request)  # the client keeps its side open: a read to the end would never return
        reply = b""
        while True:
            data = sock.recv(65536)
            if not data:
                break
            reply += data
    assert reply.startswith(b"HTTP/1.1 400") and b"expected a hex chunk size" in reply


def test_the_journal_is_bounded_and_says_how_many_it_dropped():
    with MockServer(journal_limit=3) as srv:
        client = make_client(srv.url)
        for n in range(5):
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "q%d" % n}])
        assert [r.body["messages"][0]["content"] for r in srv.requests] == ["q2", "q3", "q4"]
        status, _, journal = raw_request(srv, "GET", "/_mock/requests")
        assert srv.dropped == 2 and journal["dropped"] == 2 and len(journal["requests"]) == 3
        srv.reset()
        assert srv.dropped == 0
    with pytest.raises(ValueError, match="journal_limit must be a whole number >= 0, got -1"):
        MockServer(journal_limit=-1)


def test_a_long_model_id_is_recorded_under_a_safe_bounded_name(tmp_path):
    model = "m/" + "x" * 300 + "/../../evil"
    with MockServer() as upstream, MockServer(record=upstream.url, record_to=str(tmp_path)) as recorder:
        make_client(recorder.url).chat.completions.create(model=model, messages=HI)
    [written] = list(tmp_path.iterdir())
    assert len(written.name) <= 100 and written.name.startswith("0001-openai-m-xxx") and "/" not in written.name
    assert json.loads(written.read_text())["fixtures"][0]["match"]["model"] == model


def test_a_recording_that_cannot_be_written_is_loud(tmp_path, capfd):
    folder = tmp_path / "recordings"
    with MockServer() as upstream, MockServer(record=upstream.url, record_to=str(folder)) as recorder:
        folder.rmdir()  # gone under the server's feet
        make_client(recorder.url).chat.completions.create(model="m", messages=HI)
        failures = recorder._recorder.failures
    assert len(failures) == 1 and "was NOT written" in failures[0]
    assert "was NOT written" in capfd.readouterr().err
