"""The mock server under load: sequential requests/s and 100 concurrent streams.

The mock runs as its own process (its command line); the load comes from this one.
"""

import os
import subprocess
import sys
import threading
import time

from _common import ROOT, Table, repeat, target

import tokenhub

REQUESTS = 500
STREAMS = 100
HI = [{"role": "user", "content": "Hello, mock"}]


class MockProcess:
    def __enter__(self):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, "mock_server.py"), "--port", "0", "--quiet"],
                                     stdout=subprocess.PIPE, text=True)
        return self.proc.stdout.readline().strip()

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(30)
        self.proc.stdout.close()


def sequential(url):
    with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0) as client:
        started = time.perf_counter()
        for _ in range(REQUESTS):
            client.chat.completions.create(model="glm-5", messages=HI)
        return REQUESTS / (time.perf_counter() - started)


def concurrent(url):
    """(total seconds, slowest stream's seconds, errors) of STREAMS streams at once."""
    slowest, errors = [0.0], []
    go = threading.Event()

    def one():
        try:
            with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0) as client:
                go.wait()
                started = time.perf_counter()
                text = "".join(client.chat.completions.create(model="glm-5", messages=HI, stream=True).text_stream)
                assert text.endswith("You said: Hello, mock"), text
                slowest[0] = max(slowest[0], time.perf_counter() - started)
        except Exception as exc:  # counted and reported, not raised
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(STREAMS)]
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    go.set()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, slowest[0], len(errors)


def run():
    with MockProcess() as url:
        rates = repeat(lambda: sequential(url))
        loads = repeat(lambda: concurrent(url))
    table = Table("The mock server: %d sequential requests; %d concurrent streams" % (REQUESTS, STREAMS),
                  ["requests/s", "100 streams: total (s)", "slowest stream (s)", "errors"])
    table.add("mock_server.py (own process)", rates, [l[0] for l in loads], [l[1] for l in loads], [l[2] for l in loads])
    table.show()
    target("100 concurrent streams served without error", all(l[2] == 0 for l in loads))
    return table


if __name__ == "__main__":
    run()
