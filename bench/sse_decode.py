"""SSE decoding: 50 MB of chat.completion.chunk events held in memory.

Against a floor of merely splitting the same bytes into lines, and against the
peers' decoders (openai, anthropic, httpx_sse) fed the same 64 KiB chunks.
"""

import io
import json

from _common import Table, installed, repeat, target, timed

import tokenhub

SIZE = 50 * 1024 * 1024
READ = 64 * 1024


def corpus():
    """(the stream's bytes, its event count): realistic chunks, one word of content each."""
    chunk = {"id": "chatcmpl-8f2c1a9e", "object": "chat.completion.chunk", "created": 1767225600,
             "model": "deepseek-v4-flash", "choices": [{"index": 0, "delta": {"content": "word "},
                                                        "logprobs": None, "finish_reason": None}]}
    event = b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\n"
    count = SIZE // len(event)
    return event * count, count


def realistic():
    """(bytes, event count): chunks as models send them: real-looking ids, a model
    name, non-ASCII content, ``data:`` lines of 150 to 2,000 bytes."""
    import random

    rng = random.Random(7)
    words = ["d\u00e9j\u00e0", "vu", "\u4e2d\u6587", "\u65e5\u672c\u8a9e", "na\u00efve", "stream", "token",
             "\u0417\u0434\u0440\u0430\u0432\u0441\u0442\u0432\u0443\u0439", "model", "\U0001F600"]
    events, size, count = [], 0, 0
    while size < SIZE:
        length = rng.choice((20, 60, 150, 400, 900))
        text = " ".join(rng.choice(words) for _ in range(length // 6 + 1))[:length]
        chunk = {"id": "chatcmpl-%032x" % rng.getrandbits(128), "object": "chat.completion.chunk",
                 "created": 1767225600 + count, "model": "deepseek-v4-flash-202605", "system_fingerprint": "fp_3a5770e1b4",
                 "choices": [{"index": 0, "delta": {"content": text}, "logprobs": None, "finish_reason": None}]}
        event = b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"
        events.append(event)
        size += len(event)
        count += 1
    return b"".join(events), count


def pieces(data):
    return [data[i: i + READ] for i in range(0, len(data), READ)]


def run():
    data, events = corpus()
    chunks = pieces(data)
    megabytes = len(data) / 1e6
    table = Table("SSE decoding: %.0f MB, %d events, in memory" % (megabytes, events), ["MB/s", "events/s"])

    def add(name, decode):
        seconds = repeat(lambda: timed(decode))
        table.add(name, [megabytes / s for s in seconds], [events / s for s in seconds])

    add("floor: bytes.split into lines", lambda: [c.split(b"\n") for c in chunks])
    add("tokenhub iter_sse", lambda: sum(1 for _ in tokenhub.iter_sse(io.BytesIO(data))))
    for name, make in _peers():
        if make is None:
            table.skip(name, "skipped (not installed)")
        else:
            add(name, make(chunks))
    table.show(reference="tokenhub iter_sse")
    ours = table.median("tokenhub iter_sse")
    peers = [table.median(name) for name, make in _peers() if make is not None]
    if peers:
        target("iter_sse at least 1.5x the fastest peer decoder (%.1fx)" % (ours / max(peers)), ours >= 1.5 * max(peers))
    floor = table.median("floor: bytes.split into lines")
    target("iter_sse at least 25%% of the line-split floor (%.0f%%)" % (100 * ours / floor), ours >= 0.25 * floor)
    return table, fair()


def fair():
    """Realistic events through 64 KiB read1s, beside the path httpx-sse 0.4.3 really runs."""
    data, events = realistic()
    megabytes = len(data) / 1e6
    table = Table("SSE decoding, realistic events (150-2,000 byte lines, non-ASCII): %.0f MB, %d events, "
                  "64 KiB read1s" % (megabytes, events), ["MB/s", "events/s"])

    def add(name, decode):
        seconds = repeat(lambda: timed(decode))
        table.add(name, [megabytes / s for s in seconds], [events / s for s in seconds])

    add("tokenhub iter_sse", lambda: sum(1 for _ in tokenhub.iter_sse(io.BufferedReader(io.BytesIO(data)))))
    if installed("httpx_sse") and installed("httpx"):
        add("httpx_sse 0.4.3 path (iter_text, SSELineDecoder)", _httpx_sse_fair(data))
    else:
        table.skip("httpx_sse 0.4.3 path", "skipped (not installed)")
    table.show(reference="tokenhub iter_sse")
    peer = table.median("httpx_sse 0.4.3 path (iter_text, SSELineDecoder)")
    if peer:
        ours = table.median("tokenhub iter_sse")
        target("realistic events: iter_sse at least 1.5x httpx-sse's own path (%.2fx)" % (ours / peer), ours >= 1.5 * peer)
    return table


def _httpx_sse_fair(data):
    """What ``EventSource.iter_sse()`` does over a response: ``iter_text()`` (an incremental
    UTF-8 decoder over the body's reads), its ``SSELineDecoder``, its ``SSEDecoder``."""
    import codecs

    from httpx_sse._decoders import SSEDecoder, SSELineDecoder

    def decode():
        text, lines, sse, n = codecs.getincrementaldecoder("utf-8")(), SSELineDecoder(), SSEDecoder(), 0
        fp = io.BufferedReader(io.BytesIO(data))
        while True:
            chunk = fp.read1(READ)
            if not chunk:
                break
            for line in lines.decode(text.decode(chunk)):
                n += sse.decode(line.rstrip("\n")) is not None
        return n
    return decode


def _peers():
    """(name, a factory of the decode function, or None when the peer is missing)."""
    def sdk(module):
        def make(chunks):
            decoder_class = __import__(module + "._streaming", fromlist=["SSEDecoder"]).SSEDecoder
            return lambda: sum(1 for _ in decoder_class().iter_bytes(iter(chunks)))
        return make

    def httpx_sse(chunks):
        import codecs

        from httpx._decoders import LineDecoder
        from httpx_sse._decoders import SSEDecoder

        def decode():
            text, lines, sse, n = codecs.getincrementaldecoder("utf-8")(), LineDecoder(), SSEDecoder(), 0
            for chunk in chunks:
                for line in lines.decode(text.decode(chunk)):
                    n += sse.decode(line) is not None
            return n
        return decode

    return [
        ("openai SSEDecoder", sdk("openai") if installed("openai") else None),
        ("anthropic SSEDecoder", sdk("anthropic") if installed("anthropic") else None),
        ("httpx_sse SSEDecoder", httpx_sse if installed("httpx_sse") and installed("httpx") else None),
    ]


if __name__ == "__main__":
    run()
