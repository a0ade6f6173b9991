"""iter_sse and SSEDecoder against the WHATWG event-stream rules, fed whole and byte by byte."""

import io
import socket

import pytest

import tokenhub
from tokenhub import ServerSentEvent as E


class ByteByByte(io.RawIOBase):
    """A file whose every read returns one byte: the worst split a network can make."""

    def __init__(self, data):
        self._data = data
        self._pos = 0

    def readable(self):
        return True

    def read1(self, n=-1):
        byte = self._data[self._pos:self._pos + 1]
        self._pos += len(byte)
        return byte

    read = read1


def decode_whole(data, **kw):
    return list(tokenhub.iter_sse(io.BytesIO(data), **kw))


def decode_bytewise(data, **kw):
    return list(tokenhub.iter_sse(ByteByByte(data), **kw))


CASES = [
    ("plain", b"data: hello\n\n", [E("hello")]),
    ("named event", b"event: ping\ndata: {}\n\n", [E("{}", event="ping")]),
    ("CRLF", b"data: a\r\n\r\ndata: b\r\n\r\n", [E("a"), E("b")]),
    ("CR", b"data: a\r\rdata: b\r\r", [E("a"), E("b")]),
    ("mixed ends", b"data: a\r\ndata: b\rdata: c\n\n", [E("a\nb\nc")]),
    ("multi-line data", b"data: one\ndata: two\ndata:\n\n", [E("one\ntwo\n")]),
    ("only one space stripped", b"data:  two spaces\ndata:none\n\n", [E(" two spaces\nnone")]),
    ("comments", b": keep-alive\ndata: x\n: more\n\n", [E("x")]),
    ("leading BOM", b"\xef\xbb\xbfdata: bom\n\n", [E("bom")]),
    ("second BOM is not stripped", b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\ndata: y\n\n", [E("y")]),
    ("no data, no dispatch", b"event: lonely\n\ndata: next\n\n", [E("next")]),
    ("field without colon", b"data\n\n", [E("")]),
    ("unknown field ignored", b"foo: bar\ndata: x\n\n", [E("x")]),
    ("id persists", b"id: 7\ndata: a\n\ndata: b\n\n", [E("a", id="7"), E("b", id="7")]),
    ("id with NUL ignored", b"id: 1\ndata: a\n\nid: 2\x00\ndata: b\n\n", [E("a", id="1"), E("b", id="1")]),
    ("retry digits only", b"retry: 1500\ndata: a\n\nretry: 1.5\ndata: b\n\n", [E("a", retry=1500), E("b")]),
    ("unfinished event dropped at EOF", b"data: done\n\ndata: half", [E("done")]),
    ("invalid UTF-8 replaced", b"data: caf\xc3\n\n", [E("caf\ufffd")]),
    ("UTF-8 split by bytes", "data: 你好\n\n".encode(), [E("你好")]),
    ("colon in value", b"data: {\"a\":1}\n\n", [E('{"a":1}')]),
]


@pytest.mark.parametrize("name,data,expected", CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("decode", [decode_whole, decode_bytewise], ids=["whole", "bytewise"])
def test_event_stream_rules(decode, name, data, expected):
    assert decode(data) == expected


def test_every_split_point_gives_the_same_events():
    data = b"\xef\xbb\xbfevent: a\r\ndata: 1\r\n\r\n: c\rdata: 2\r\rdata: 3\n\n"
    expected = decode_whole(data)
    assert [e.data for e in expected] == ["1", "2", "3"]
    for cut in range(len(data) + 1):
        decoder = tokenhub.SSEDecoder()
        events = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert events == expected, cut


def test_crlf_split_across_feeds_is_one_line_end():
    decoder = tokenhub.SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\n") == []  # the LF completes the CR: no blank line yet
    assert decoder.feed(b"\r\n") == [E("a")]


def test_event_type_resets_after_each_dispatch():
    events = decode_whole(b"event: first\ndata: 1\n\ndata: 2\n\n")
    assert [(e.event, e.data) for e in events] == [("first", "1"), ("message", "2")]


def test_decoder_reports_pending_state():
    decoder = tokenhub.SSEDecoder()
    decoder.feed(b"data: x\n")
    assert decoder.pending
    decoder.feed(b"\n")
    assert not decoder.pending


def test_line_over_limit_raises_named_error():
    with pytest.raises(tokenhub.SizeLimitError, match="exceeds 64 bytes"):
        decode_whole(b"data: " + b"x" * 100 + b"\n\n", max_line_size=64)
    with pytest.raises(tokenhub.SizeLimitError):
        decode_bytewise(b"data: " + b"x" * 100, max_line_size=64)  # no line end ever comes


def test_event_data_over_limit_raises_named_error():
    many_lines = b"".join(b"data: 0123456789\n" for _ in range(10))
    with pytest.raises(tokenhub.SizeLimitError, match="event's data"):
        decode_whole(many_lines + b"\n", max_line_size=64)


def test_event_json_helper():
    (event,) = decode_whole(b'data: {"a": [1, 2]}\n\n')
    assert event.json() == {"a": [1, 2]}
    assert "data='{\"a\": [1, 2]}'" in repr(event)


def test_yields_each_event_before_more_bytes_arrive():
    """The reader must hand over an event at its blank line, not wait to fill a buffer."""
    writer, reader_sock = socket.socketpair()
    reader_sock.settimeout(10)  # a reader that waited for more bytes would fail here, not hang
    try:
        events = tokenhub.iter_sse(reader_sock.makefile("rb"))
        writer.sendall(b"data: first\n\n")
        assert next(events) == E("first")
        writer.sendall(b"event: x\ndata: second\n\n")
        assert next(events) == E("second", event="x")
        writer.close()
        assert list(events) == []
    finally:
        reader_sock.close()


def test_random_splits_with_a_fixed_seed():
    import random

    whole = [data for name, data, _ in CASES if data.endswith((b"\n", b"\r"))]
    data = b"".join(whole) + "data: 日本語 ✓ é\r\n\r\n".encode()
    assert len(decode_whole(data)) > 20
    rng = random.Random(20261122)
    for _ in range(200):
        decoder = tokenhub.SSEDecoder()
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 40)))
        events = []
        for start, end in zip([0] + cuts, cuts + [len(data)]):
            events += decoder.feed(data[start:end])
        assert [e.data for e in events] == [e.data for e in decode_whole(data)]
    assert decode_whole(data)[-1].data == "日本語 ✓ é"


def test_multibyte_utf8_split_at_every_byte():
    data = "data: 你好, мир, 🙂\n\n".encode()
    for cut in range(len(data) + 1):
        decoder = tokenhub.SSEDecoder()
        (event,) = decoder.feed(data[:cut]) + decoder.feed(data[cut:])
        assert event.data == "你好, мир, 🙂", cut


def test_the_bulk_path_and_the_line_loop_agree():
    """Blocks of one "data:" line take a faster path than the rest: same events either way."""
    body = (b"data: plain\n\ndata:nospace\n\nevent: named\ndata: x\n\nid: 7\ndata: y\n\n"
            b"data: two\ndata: lines\n\n: comment\n\ndata: caf\xc3\xa9 \xff\n\nretry: 5\ndata: z\n\n\n\ndata: end\n\n")
    whole = tokenhub.SSEDecoder().feed(body)
    byte_by_byte = tokenhub.SSEDecoder()
    pieces = [event for i in range(len(body)) for event in byte_by_byte.feed(body[i:i + 1])]
    crlf = tokenhub.SSEDecoder().feed(body.replace(b"\n", b"\r\n"))  # CR anywhere: the line loop only
    assert whole == pieces == crlf
    assert [(e.event, e.data, e.id, e.retry) for e in whole] == [
        ("message", "plain", "", None), ("message", "nospace", "", None), ("named", "x", "", None),
        ("message", "y", "7", None), ("message", "two\nlines", "7", None), ("message", "caf\u00e9 \ufffd", "7", None),
        ("message", "z", "7", 5), ("message", "end", "7", None),
    ]


@pytest.mark.parametrize("stream", [
    b"data: a\n\ndata:b\n\ndata: c\n\n",  # a block without the space, between two with it
    b"data: a\n\n: ping\n\ndata: b\n\n",  # a comment block
    b"data: a\n\nevent: x\ndata: b\n\ndata: c\n\n",  # another field
    b"data: \n\ndata: x\n\n",  # an empty payload
    b"data: a\ndata: b\n\ndata: c\n\n",  # two data lines in one event
    b"data: data: x\n\ndata: \n\ndata: y\n\n",  # payloads that look like fields
    b"data: a\n\n\ndata: b\n\n",  # an extra blank line
    b"data: a\n\ndata: b\n\ndata: unfinished",  # an event still arriving
    b"data: a\n\nid: 7\n\ndata: b\n\n",  # an id that the next event carries
    b"data: \xe4\xb8\xad\xe6\x96\x87 \xff\n\ndata: ok\n\n",  # non-ASCII, and a byte that is not UTF-8
])
def test_the_bulk_path_decodes_as_the_line_loop_does(stream):
    whole = tokenhub.SSEDecoder().feed(stream)  # one feed: the bulk paths
    dripped = tokenhub.SSEDecoder()
    one_by_one = [event for i in range(len(stream)) for event in dripped.feed(stream[i:i + 1])]
    assert [(e.event, e.data, e.id) for e in whole] == [(e.event, e.data, e.id) for e in one_by_one]
    assert whole  # the cases all dispatch something
