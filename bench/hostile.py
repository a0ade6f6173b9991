"""Hostile peers: what a long SSE line costs when it arrives in small pieces, and how
far past each deadline a call ends when a server drips or stalls (the overshoot).

Every server here is a thread on 127.0.0.1 that drips bytes until told to stop.
"""

import os
import socket
import threading

from _common import Table, repeat, target, timed

import tokenhub

LIMIT = 0.5  # seconds: every deadline measured here
HI = [{"role": "user", "content": "Hi"}]


def long_line(size, piece):
    """Seconds to decode one ``size``-byte SSE line fed ``piece`` bytes at a time."""
    line = b"data: " + b"x" * size
    pieces = [line[i:i + piece] for i in range(0, len(line), piece)]

    def decode():
        decoder = tokenhub.SSEDecoder()
        for chunk in pieces:
            decoder.feed(chunk)
        assert len(decoder.feed(b"\n\n")[0].data) == size

    return timed(decode)


class Dripper:
    """A server that answers every connection with ``head``, then ``piece`` every 10 ms."""

    def __init__(self, head, piece):
        self.head, self.piece = head, piece
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(8)
        self.url = "http://127.0.0.1:%d" % self.listener.getsockname()[1]
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn):
        try:
            conn.recv(65536)
            conn.sendall(self.head)
            while not self.stop.wait(0.01):
                conn.sendall(self.piece)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        for thread in self.threads:
            thread.join(5)


def overshoot(head, piece, *, timeout, proxy=False):
    """Seconds past LIMIT at which one call against a Dripper ends (with any error)."""
    server = Dripper(head, piece)
    saved = os.environ.get("HTTPS_PROXY")
    try:
        url = server.url
        if proxy:
            os.environ["HTTPS_PROXY"] = server.url
            url = "https://gateway.test"
        with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0, timeout=timeout) as client:
            def call():
                try:
                    with client.chat.completions.stream(model="m", messages=HI) as stream:
                        stream.until_done()
                except tokenhub.APIError:
                    pass

            return timed(call) - LIMIT
    finally:
        if proxy:
            if saved is None:
                os.environ.pop("HTTPS_PROXY", None)
            else:
                os.environ["HTTPS_PROXY"] = saved
        server.close()


DONE = b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\ndata: [DONE]\n\n'
STREAM_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
               + b"%x\r\n" % len(DONE) + DONE + b"\r\n")


def run():
    lines = Table("Hostile peers: one long SSE line fed in small pieces", ["seconds"], higher_is_better=False)
    lines.add("1 MiB in 16-byte pieces", repeat(lambda: long_line(1 << 20, 16)))
    lines.add("256 KiB in 1-byte pieces", repeat(lambda: long_line(1 << 18, 1)))
    lines.show()
    total = tokenhub.Timeout(read=30, total=LIMIT)
    shoots = Table("Hostile peers: ms past a %g s deadline when the call ends" % LIMIT, ["ms"], higher_is_better=False)
    for name, measure in (
        ("total; head dripped", lambda: overshoot(b"HTTP/1.1 200 OK\r\nX-Drip: ", b"a", timeout=total)),
        ("drain; chunked end never sent", lambda: overshoot(STREAM_HEAD, b"", timeout=600)),
        ("total; endless trailers", lambda: overshoot(STREAM_HEAD + b"0\r\n", b"X-T: a\r\n", timeout=total)),
        ("connect; CONNECT reply dripped", lambda: overshoot(
            b"HTTP/1.1 200 Connection established\r\nX-Drip: ", b"a",
            timeout=tokenhub.Timeout(connect=LIMIT, read=30), proxy=True)),
    ):
        shoots.add(name, [1000 * seconds for seconds in repeat(measure)])
    shoots.show()
    worst = max(shoots.median(name) for name, _ in shoots.rows)
    target("every deadline holds within 100 ms (worst median overshoot %.1f ms)" % worst, worst < 100)
    line = lines.median("1 MiB in 16-byte pieces")
    target("a 1 MiB line in 16-byte pieces decodes in under 1 s (%.2f s; 11 s when quadratic)" % line, line < 1)
    return lines


if __name__ == "__main__":
    run()
