"""Batches: requests/s of tokenhub.run_batch at a few concurrency levels, beside a naive loop.

Two loads against mock_server.py (its own process): 10,000 short requests answered at
once, where the mock's own speed is the limit; and 500 requests that each take the
server 20 ms, as a model's reply takes time, where being concurrent is what counts.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, Table, repeat, target

import tokenhub

SHORT = 10000
SLOW = 500
LATENCY = 0.02
LEVELS = (1, 8, 32, 64)


class Mock:
    """mock_server.py in its own process; ``latency``: how long every reply takes."""

    def __init__(self, latency=0.0):
        self.latency = latency

    def __enter__(self):
        args = [sys.executable, os.path.join(ROOT, "mock_server.py"), "--port", "0", "--quiet"]
        self.fixtures = None
        if self.latency:
            fd, self.fixtures = tempfile.mkstemp(suffix=".json")
            with os.fdopen(fd, "w") as out:
                json.dump([{"match": {}, "response": "ok", "fault": "ttfb=%g" % self.latency}], out)
            args += ["--fixtures", self.fixtures]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        return self.proc.stdout.readline().strip()

    def __exit__(self, *exc):
        self.proc.terminate()
        self.proc.wait(30)
        self.proc.stdout.close()
        if self.fixtures:
            os.remove(self.fixtures)


def prompts(count):
    return ["prompt %d" % n for n in range(count)]


def naive(url, count):
    """What people write by hand: a loop, one call at a time (kept-alive connection)."""
    with tokenhub.TokenHub(api_key="bench", base_url=url) as client:
        started = time.perf_counter()
        for prompt in prompts(count):
            client.chat.completions.create(model="deepseek-v4-flash", messages=[{"role": "user", "content": prompt}])
        return count / (time.perf_counter() - started)


def batch(url, count, concurrency):
    client = tokenhub.TokenHub(api_key="bench", base_url=url)
    started = time.perf_counter()
    results = list(tokenhub.run_batch(prompts(count), client=client, model="deepseek-v4-flash",
                                      concurrency=concurrency))
    rate = count / (time.perf_counter() - started)
    assert len(results) == count and all(r.error is None for r in results)
    return rate


def measure(title, count, latency):
    table = Table(title, ["requests/s"])
    with Mock(latency) as url:
        table.add("naive loop (TokenHub, one at a time)", repeat(lambda: naive(url, count)))
        for level in LEVELS:
            table.add("run_batch, concurrency %d" % level, repeat(lambda: batch(url, count, level)))
    table.show(reference="naive loop (TokenHub, one at a time)")
    return table


def run():
    short = measure("%d short requests, answered at once" % SHORT, SHORT, 0.0)
    slow = measure("%d requests taking the server %d ms each" % (SLOW, LATENCY * 1000), SLOW, LATENCY)
    naive_short = short.median("naive loop (TokenHub, one at a time)")
    target("run_batch at concurrency 8 keeps pace with a naive loop on instant replies (%.0f vs %.0f requests/s)"
           % (short.median("run_batch, concurrency 8"), naive_short),
           short.median("run_batch, concurrency 8") >= 0.8 * naive_short)
    speedup = slow.median("run_batch, concurrency 32") / slow.median("naive loop (TokenHub, one at a time)")
    target("run_batch at concurrency 32 is over 10x a naive loop when each reply takes %d ms (%.1fx)"
           % (LATENCY * 1000, speedup), speedup > 10)
    return short, slow


if __name__ == "__main__":
    run()
