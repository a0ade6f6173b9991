"""Streaming end to end: a 20,000-chunk reply from a local socket server.

Consumed through tokenhub's create(stream=True) and .text_stream, blocking and
async, with Content-Length and close-delimited, against a floor of a bare socket
read plus json.loads per chunk (for each framing), and against the openai client
on the same server. The server (bench/_server.py) runs in its own
process and writes canned bytes as fast as the socket takes them.
"""

import json
import socket
import time

from _common import CannedServer, Table, installed, repeat, target

import tokenhub

CHUNKS = 20000
REQUEST = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


CLOSE = {"X-Bench-Framing": "close"}  # the server sends no Content-Length and closes at the end


def floor(url, framing="length"):
    """(chunks/s, ms to the first chunk) of a bare socket read plus json.loads per chunk."""
    host, port = url.rsplit("/", 1)[1].split(":")
    body = json.dumps(REQUEST).encode()
    extra = "X-Bench-Framing: close\r\n" if framing == "close" else ""
    request = ("POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%s"
               "Content-Length: %d\r\n\r\n" % (host, extra, len(body))).encode() + body
    started = time.perf_counter()
    first, count = None, 0
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, buf = buf.partition(b"\r\n\r\n")
        if framing == "close":
            left = float("inf")
        else:
            left = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0]) - len(buf)
        tail = b""
        while True:
            lines = (tail + buf).split(b"\n")
            tail = lines.pop()
            for line in lines:
                if line[:7] == b"data: {":
                    json.loads(line[6:])
                    count += 1
                    if first is None:
                        first = time.perf_counter()
            if left <= 0:
                break
            buf = sock.recv(65536)
            if not buf:
                break
            left -= len(buf)
    return _rates(count, started, first)


def _rates(count, started, first):
    assert count == CHUNKS, count
    return count / (time.perf_counter() - started), (first - started) * 1000


def consume(start):
    """(chunks/s, ms to the first) of reading what ``start()`` returns (the request is timed too)."""
    started, first, count = time.perf_counter(), None, 0
    for _ in start():
        count += 1
        first = first or time.perf_counter()
    return _rates(count, started, first)


def consume_async(start):
    """``consume`` for an async stream: a coroutine function, run on the caller's loop."""
    async def read():
        started, first, count = time.perf_counter(), None, 0
        stream = await start()
        async for _ in stream:
            count += 1
            first = first or time.perf_counter()
        return _rates(count, started, first)

    return read


def run():
    table = Table("Streaming end to end: %d chunks from a local socket server" % CHUNKS,
                  ["chunks/s", "first chunk (ms)"])
    server = CannedServer(CHUNKS)
    with server as url:
        cores = server.pin()  # the floor and every client on one core, the server on another
        def add(name, measure):
            measure()  # a warm-up run: connections open, caches filled
            runs = repeat(measure)
            table.add(name, [r[0] for r in runs], [r[1] for r in runs])

        add("floor: socket + json.loads per chunk", lambda: floor(url))
        add("floor, close-delimited", lambda: floor(url, "close"))
        with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0) as client:
            add("tokenhub create(stream=True)", lambda: consume(lambda: client.chat.completions.create(**REQUEST)))
            add("tokenhub create(stream=True), close-delimited", lambda: consume(
                lambda: client.chat.completions.create(**REQUEST, extra_headers=CLOSE)))
            add("tokenhub .text_stream", lambda: consume(lambda: client.chat.completions.create(**REQUEST).text_stream))
        import asyncio

        loop = asyncio.new_event_loop()
        aclient = tokenhub.AsyncTokenHub(api_key="bench", base_url=url, max_retries=0)
        add("tokenhub async create(stream=True)", lambda: loop.run_until_complete(consume_async(
            lambda: aclient.chat.completions.create(**REQUEST))()))
        add("tokenhub async, close-delimited", lambda: loop.run_until_complete(consume_async(
            lambda: aclient.chat.completions.create(**REQUEST, extra_headers=CLOSE))()))
        loop.run_until_complete(aclient.close())
        loop.close()
        if installed("openai"):
            import openai

            with openai.OpenAI(api_key="bench", base_url=url + "/v1", max_retries=0) as client:
                add("openai create(stream=True)", lambda: consume(lambda: client.chat.completions.create(**REQUEST)))
        else:
            table.skip("openai create(stream=True)", "skipped (not installed)")
        server.unpin(cores)
    table.show(reference="tokenhub create(stream=True)")
    ours = table.median("tokenhub create(stream=True)")
    peer = table.median("openai create(stream=True)")
    if peer:
        target("at least 2x the openai client's chunks/s (%.1fx)" % (ours / peer), ours >= 2 * peer)
    for name, floor_name in (("tokenhub create(stream=True)", "floor: socket + json.loads per chunk"),
                             ("tokenhub create(stream=True), close-delimited", "floor, close-delimited"),
                             ("tokenhub async create(stream=True)", "floor: socket + json.loads per chunk"),
                             ("tokenhub async, close-delimited", "floor, close-delimited")):
        share = table.median(name) / table.median(floor_name)
        target("%s: at least 60%% of the floor (%.0f%%)" % (name, 100 * share), share >= 0.6)
    return table


if __name__ == "__main__":
    run()
