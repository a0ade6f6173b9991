"""Run every benchmark: ``python3 bench/run.py`` (or name some: ``python3 bench/run.py sse_decode``).

Standard library only. A peer (openai, anthropic, httpx_sse) installed in the
interpreter that runs this is measured beside tokenhub; a missing one is
reported as skipped. BENCH_RUNS sets how many runs each median takes (5).
Everything talks to servers on 127.0.0.1 only.
"""

import os
import platform
import sys
import time

import _common  # noqa: F401  (puts the repository on sys.path)
import batch
import concurrency
import hostile
import import_time
import memory
import mock_load
import request_overhead
import sse_decode
import streaming

BENCHMARKS = {
    "import_time": import_time, "sse_decode": sse_decode, "streaming": streaming,
    "request_overhead": request_overhead, "mock_load": mock_load, "memory": memory, "hostile": hostile,
    "concurrency": concurrency, "batch": batch,
}


def machine():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return "%s, %d cores, %s, Python %s (%s)" % (
        cpu, os.cpu_count() or 0, platform.platform(terse=True), platform.python_version(), sys.executable)


def main(names):
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print("unknown benchmark(s): %s; expected some of: %s" % (", ".join(unknown), ", ".join(BENCHMARKS)))
        return 2
    print("tokenhub benchmarks on %s" % machine())
    started = time.perf_counter()
    for name in names or BENCHMARKS:
        BENCHMARKS[name].run()
    print("\n(%d s in all)" % (time.perf_counter() - started))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
