"""A canned-bytes HTTP server for the benchmarks, run as its own process.

    python3 bench/_server.py CHUNKS [CHARS]   (prints its port, then serves until stdin closes)

It answers every request on a kept-alive connection, as fast as the socket
takes the bytes: a POST whose body asks to stream gets CHUNKS
chat.completion.chunk events and [DONE] (each chunk's content "word ", or with
CHARS a run of that many non-ASCII characters, sent as UTF-8); any other request a
small chat.completion. A request with "Connection: close" is answered, then closed; one
with "X-Bench-Framing: close" gets the stream with no Content-Length, ended by closing.
"""

import json
import socket
import sys
import threading

CHUNK = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1767225600,
         "model": "deepseek-v4-flash", "choices": [{"index": 0, "delta": {"content": "word "},
                                                    "logprobs": None, "finish_reason": None}]}
COMPLETION = {"id": "chatcmpl-bench", "object": "chat.completion", "created": 1767225600, "model": "deepseek-v4-flash",
              "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "logprobs": None,
                           "finish_reason": "stop"}],
              "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}}


def responses(chunks, chars=0):
    """(the streamed reply, the plain reply), each a complete HTTP response."""
    chunk = CHUNK
    if chars:
        text = ("d\u00e9j\u00e0 vu \u4e2d\u6587 " * chars)[:chars]
        chunk = dict(CHUNK, choices=[dict(CHUNK["choices"][0], delta={"content": text})])
    event = b"data: " + json.dumps(chunk, separators=(",", ":"), ensure_ascii=False).encode() + b"\n\n"
    stream = event * chunks + b"data: [DONE]\n\n"
    plain = json.dumps(COMPLETION).encode()

    def http(body, kind):
        head = "HTTP/1.1 200 OK\r\nContent-Type: %s\r\nContent-Length: %d\r\nx-request-id: bench\r\n\r\n" % (kind, len(body))
        return head.encode() + body

    return http(stream, "text/event-stream"), http(plain, "application/json"), (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\nx-request-id: bench\r\n\r\n" + stream)


def serve(conn, streamed, plain, delimited):
    reader = conn.makefile("rb")
    try:
        while True:
            head = []
            while True:
                line = reader.readline(65536)
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                head.append(line.lower())
            length = next((int(h.split(b":")[1]) for h in head if h.startswith(b"content-length:")), 0)
            body = reader.read(length)
            if any(h.startswith(b"x-bench-framing:") and b"close" in h for h in head):
                conn.sendall(delimited)  # no Content-Length: the body ends when the connection does
                return
            conn.sendall(streamed if b'"stream":true' in body.replace(b" ", b"") else plain)
            if any(h.startswith(b"connection:") and b"close" in h for h in head):
                return
    except OSError:
        return
    finally:
        reader.close()
        conn.close()


def main():
    streamed, plain, delimited = responses(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    print(listener.getsockname()[1], flush=True)

    def accept():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            threading.Thread(target=serve, args=(conn, streamed, plain, delimited), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    sys.stdin.read()  # the benchmark closes our stdin when it is done
    listener.close()


if __name__ == "__main__":
    main()
