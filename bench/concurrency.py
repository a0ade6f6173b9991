"""Many streams at once: N concurrent streams of CHUNKS chunks each against a local
server (bench/_server.py, its own process), through tokenhub's async client, beside
openai.AsyncOpenAI when it is installed, and through the blocking client on threads.

Each figure: total chunks/s over the whole run, and resident memory per open stream,
sampled while all N streams are open (every stream has read its first chunk and
waits until the last one has). Each contender runs in a fresh process.
"""

import json
import os
import subprocess
import sys

from _common import RUNS, CannedServer, Table, installed, target

CHUNKS = 300  # per stream
LEVELS = (10, 100, 1000)


def probe(kind, url, streams):
    """(chunks/s, KB of RSS per open stream) of one run in a fresh process."""
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe", kind, url, str(streams)],
                         capture_output=True, text=True, check=True, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    return result["rate"], result["kb_per_stream"]


def run():
    contenders = [("tokenhub AsyncTokenHub", "tokenhub")]
    if installed("openai"):
        contenders.append(("openai AsyncOpenAI", "openai"))
    rows = {}
    with CannedServer(CHUNKS) as url:
        table = Table("Concurrent streams (%d chunks each)" % CHUNKS, ["chunks/s", "KB per open stream"])
        for streams in LEVELS:
            for name, kind in contenders:
                figures = [probe(kind, url, streams) for _ in range(max(1, RUNS // 2))]
                rows[(kind, streams)] = figures
                table.add("%s, %d streams" % (name, streams), [f[0] for f in figures], [f[1] for f in figures])
        threaded = [probe("threads", url, 100) for _ in range(max(1, RUNS // 2))]
        table.add("tokenhub TokenHub, 100 threads", [f[0] for f in threaded], [f[1] for f in threaded])
    if not installed("openai"):
        table.skip("openai AsyncOpenAI", "skipped: openai is not installed")
    table.show()
    ours = table.median("tokenhub AsyncTokenHub, 1000 streams")
    memory = table.median("tokenhub AsyncTokenHub, 1000 streams", 1)
    peer = table.median("openai AsyncOpenAI, 1000 streams")
    if peer:
        peer_memory = table.median("openai AsyncOpenAI, 1000 streams", 1)
        target("1,000 streams: at least 3x openai's chunks/s (%.1fx)" % (ours / peer), ours >= 3 * peer)
        target("1,000 streams: at most a third of openai's memory per stream (%.1f KB against %.1f KB)"
               % (memory, peer_memory), memory * 3 <= peer_memory)
    else:
        target("1,000 concurrent streams complete (%.0f chunks/s, %.1f KB per open stream)" % (ours, memory), ours > 0)
    _svg(rows)
    return table


def _svg(rows):
    """bench/concurrency.svg: chunks/s against streams, one line per contender (plain text, no dependency)."""
    import statistics

    kinds = sorted({kind for kind, _ in rows})
    top = max(statistics.median(f[0] for f in figures) for figures in rows.values()) or 1
    width, height, pad = 480, 260, 40
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" '
             'font-size="11">' % (width, height),
             '<text x="%d" y="16">chunks/s by concurrent streams (%d chunks each)</text>' % (pad, CHUNKS)]
    colours = {"tokenhub": "#1f77b4", "openai": "#d62728"}
    for number, kind in enumerate(kinds):
        points = []
        for index, streams in enumerate(LEVELS):
            rate = statistics.median(f[0] for f in rows[(kind, streams)])
            x = pad + index * (width - 2 * pad) / (len(LEVELS) - 1)
            y = height - pad - rate / top * (height - 2 * pad)
            points.append("%.0f,%.0f" % (x, y))
            parts.append('<text x="%.0f" y="%d">%d</text>' % (x - 8, height - pad + 16, streams))
        parts.append('<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>'
                     % (colours.get(kind, "#333"), " ".join(points)))
        parts.append('<text x="%d" y="%d" fill="%s">%s</text>' % (width - 120, 36 + 14 * number,
                                                                  colours.get(kind, "#333"), kind))
    parts.append("</svg>")
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "concurrency.svg"), "w") as out:
        out.write("\n".join(parts) + "\n")


def _rss_kb():
    with open("/proc/self/status") as status:
        return int(next(line.split()[1] for line in status if line.startswith("VmRSS:")))


def _probe(kind, url, streams):
    import asyncio
    import time

    messages = [{"role": "user", "content": "Hi"}]
    if kind == "openai":
        import openai  # noqa: F401  (imported before the baseline, as tokenhub is)
    import tokenhub  # noqa: F401

    before = _rss_kb()
    sampled = []

    if kind == "threads":
        import threading

        import tokenhub

        client = tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0)
        barrier = threading.Barrier(streams + 1)
        counts = []

        def one():
            stream = client.chat.completions.create(model="m", messages=messages, stream=True)
            next(stream)
            barrier.wait()
            barrier.wait()
            counts.append(1 + sum(1 for _ in stream))

        threads = [threading.Thread(target=one) for _ in range(streams)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        barrier.wait()
        sampled.append(_rss_kb())
        barrier.wait()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        total = sum(counts)
    else:
        async def main():
            if kind == "openai":
                import openai  # its default limits admit 1,000 connections to one host

                client = openai.AsyncOpenAI(api_key="bench", base_url=url + "/v1", max_retries=0)
            else:
                import tokenhub

                client = tokenhub.AsyncTokenHub(api_key="bench", base_url=url, max_retries=0)
            opened, release = [0], asyncio.Event()
            everyone = asyncio.Event()

            async def one():
                stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
                count = 0
                async for _ in stream:
                    count += 1
                    if count == 1:
                        opened[0] += 1
                        if opened[0] == streams:
                            everyone.set()
                        await release.wait()
                return count

            started = time.perf_counter()
            tasks = [asyncio.ensure_future(one()) for _ in range(streams)]
            await everyone.wait()
            sampled.append(_rss_kb())
            release.set()
            counts = await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - started
            await client.close()
            return sum(counts), elapsed

        total, elapsed = asyncio.run(main())
    assert total == streams * CHUNKS, total
    print(json.dumps({"rate": total / elapsed, "kb_per_stream": (sampled[0] - before) / streams}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        _probe(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        run()
