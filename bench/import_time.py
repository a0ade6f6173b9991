"""Import time: ``import tokenhub`` in a fresh interpreter, against a bare start and the peers.

Two figures per module: the cumulative microseconds ``-X importtime`` reports
for it, and the wall time of ``python -c "import X"`` minus that of
``python -c pass``. Bytecode is cached (in a temporary PYTHONPYCACHEPREFIX,
warmed first) so that compiling is not counted, whatever PYTHONDONTWRITEBYTECODE says.
"""

import os
import subprocess
import sys
import tempfile
import time

from _common import ROOT, Table, installed, repeat, target

STARTS = 15  # pairs of interpreter starts (with and without) per wall-time figure


def environment(cache):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    env.update(PYTHONPYCACHEPREFIX=cache, PYTHONPATH=ROOT)
    return env


def importtime(module, env):
    """The cumulative microseconds -X importtime gives the module."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", "import " + module],
                            env=env, capture_output=True, text=True, check=True)
    for line in reversed(result.stderr.splitlines()):
        fields = [field.strip() for field in line.split("|")]
        if len(fields) == 3 and fields[2] == module:
            return int(fields[1]) / 1000
    raise RuntimeError("no importtime line for %s" % module)


def added(module, env, starts):
    """Milliseconds ``import module`` adds to an interpreter start: the median
    difference of starts with and without it, taken in pairs so that the
    machine's drift hits both alike."""
    import statistics

    pairs = [_start("import " + module, env) - _start("pass", env) for _ in range(starts)]
    return statistics.median(pairs) * 1000


def _start(code, env):
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=True)
    return time.perf_counter() - started


def run():
    table = Table("Import in a fresh interpreter", ["importtime (ms)", "added to a bare start (ms)"],
                  higher_is_better=False)
    with tempfile.TemporaryDirectory() as cache:
        env = environment(cache)
        bare = [_start("pass", env) * 1000 for _ in range(STARTS)]
        table.add("python -c pass (bare start)", [0.0], bare)
        for module in ("tokenhub", "openai", "anthropic"):
            if module != "tokenhub" and not installed(module):
                table.skip("import " + module, "skipped (not installed)")
                continue
            importtime(module, env)  # warm the bytecode cache
            # The peers take a second or more a start: fewer starts keep the run short.
            starts, runs = (STARTS, None) if module == "tokenhub" else (3, 3)
            table.add("import " + module, repeat(lambda: importtime(module, env), runs),
                      repeat(lambda: added(module, env, starts), runs))
    table.show(reference="import tokenhub")
    ours = table.median("import tokenhub", 1)
    target("tokenhub adds at most 10 ms to a bare interpreter start (%.1f ms)" % ours, ours <= 10)
    peer = table.median("import openai")
    if peer:
        ratio = peer / table.median("import tokenhub")
        target("at least 30x less import time than openai (%.0fx)" % ratio, ratio >= 30)
    return table


if __name__ == "__main__":
    run()
