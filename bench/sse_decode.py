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
    return table


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
