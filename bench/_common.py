"""What every benchmark shares: paths, timing, peers, and the tables they print."""

import importlib.util
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

RUNS = int(os.environ.get("BENCH_RUNS", "5"))  # each figure is the median of this many runs


def installed(module):
    """Whether a peer library can be imported by this interpreter."""
    return importlib.util.find_spec(module) is not None


def repeat(measure, runs=None):
    """Call ``measure()`` (which returns one figure) ``runs`` times; the figures."""
    return [measure() for _ in range(runs or RUNS)]


def timed(function):
    """Seconds one call of ``function()`` takes."""
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


class Table:
    """One benchmark's results: a row per contender, median (min-max) of each figure."""

    def __init__(self, title, units, *, higher_is_better=True):
        self.title = title
        self.units = units  # the figures' names, e.g. ["MB/s", "events/s"]
        self.higher_is_better = higher_is_better
        self.rows = []  # (name, [figures per unit] or a skip reason)

    def add(self, name, *series):
        self.rows.append((name, series))

    def skip(self, name, why):
        self.rows.append((name, why))

    def median(self, name, unit=0):
        for row, series in self.rows:
            if row == name and not isinstance(series, str):
                return statistics.median(series[unit])
        return None

    def show(self, reference=None):
        """Print the table; ``reference``: the row the last column compares with (first figure)."""
        base = self.median(reference) if reference else None
        print("\n== %s (median of %d, min-max)" % (self.title, RUNS))
        header = ["%-34s" % ""] + ["%26s" % unit for unit in self.units]
        if base:
            header.append("  vs %s" % reference)
        print("".join(header))
        for name, series in self.rows:
            if isinstance(series, str):
                print("%-34s %s" % (name, series))
                continue
            cells = ["%-34s" % name] + ["%26s" % _figure(values) for values in series]
            if base:
                ratio = statistics.median(series[0]) / base
                cells.append("  %.2fx" % ratio)
            print("".join(cells))
        sys.stdout.flush()


def _figure(values):
    middle, low, high = statistics.median(values), min(values), max(values)
    return "%s (%s-%s)" % (_short(middle), _short(low), _short(high))


def _short(value):
    if value >= 100:
        return "%.0f" % value
    if value >= 10:
        return "%.1f" % value
    return "%.2f" % value


def target(text, met):
    """One line of the targets summary."""
    print("  [%s] %s" % ("met" if met else "MISSED", text))


class CannedServer:
    """``with CannedServer(chunks) as url:``: bench/_server.py in its own process."""

    def __init__(self, chunks, chars=0):
        import subprocess

        self._proc = subprocess.Popen(
            [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_server.py"), str(chunks),
             str(chars)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        self.url = "http://127.0.0.1:%s" % self._proc.stdout.readline().strip()

    def __enter__(self):
        return self.url

    def pin(self):
        """Put the server on the first core and this process on the second, where the
        system allows it: left to the scheduler, the two share one core in some runs
        and not in others, and the figures of a run jump by a factor of two."""
        if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
            first, second = sorted(os.sched_getaffinity(0))[:2]
            os.sched_setaffinity(self._proc.pid, {first})
            os.sched_setaffinity(0, {second})
            return {first, second}
        return None

    def unpin(self, cores):
        if cores:
            os.sched_setaffinity(0, cores)

    def __exit__(self, *exc):
        self._proc.stdin.close()
        self._proc.wait(30)
        self._proc.stdout.close()
