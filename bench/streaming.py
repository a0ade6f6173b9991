"""Streaming end to end: a 20,000-chunk reply from a local socket server.

Consumed through tokenhub's create(stream=True) and .text_stream, against a
floor of a bare socket read plus json.loads per chunk, and against the openai
client on the same server. The server (bench/_server.py) runs in its own
process and writes canned bytes as fast as the socket takes them.
"""

import json
import socket
import time

from _common import CannedServer, Table, installed, repeat, target

import tokenhub

CHUNKS = 20000
REQUEST = {"model": "deepseek-v4-flash", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def floor(url):
    """(chunks/s, ms to the first chunk) of a bare socket read plus json.loads per chunk."""
    host, port = url.rsplit("/", 1)[1].split(":")
    body = json.dumps(REQUEST).encode()
    request = ("POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
               "Content-Length: %d\r\n\r\n" % (host, len(body))).encode() + body
    started = time.perf_counter()
    first, count = None, 0
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(request)
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(65536)
        head, _, buf = buf.partition(b"\r\n\r\n")
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


def run():
    table = Table("Streaming end to end: %d chunks from a local socket server" % CHUNKS,
                  ["chunks/s", "first chunk (ms)"])
    with CannedServer(CHUNKS) as url:
        def add(name, measure):
            measure()  # a warm-up run: connections open, caches filled
            runs = repeat(measure)
            table.add(name, [r[0] for r in runs], [r[1] for r in runs])

        add("floor: socket + json.loads per chunk", lambda: floor(url))
        with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0) as client:
            add("tokenhub create(stream=True)", lambda: consume(lambda: client.chat.completions.create(**REQUEST)))
            add("tokenhub .text_stream", lambda: consume(lambda: client.chat.completions.create(**REQUEST).text_stream))
        if installed("openai"):
            import openai

            with openai.OpenAI(api_key="bench", base_url=url + "/v1", max_retries=0) as client:
                add("openai create(stream=True)", lambda: consume(lambda: client.chat.completions.create(**REQUEST)))
        else:
            table.skip("openai create(stream=True)", "skipped (not installed)")
    table.show(reference="tokenhub create(stream=True)")
    ours = table.median("tokenhub create(stream=True)")
    peer = table.median("openai create(stream=True)")
    if peer:
        target("at least 2x the openai client's chunks/s (%.1fx)" % (ours / peer), ours >= 2 * peer)
    floor_rate = table.median("floor: socket + json.loads per chunk")
    target("at least 50%% of the socket + json.loads floor (%.0f%%)" % (100 * ours / floor_rate), ours >= 0.5 * floor_rate)
    return table


if __name__ == "__main__":
    run()
