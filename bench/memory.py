"""Memory: peak RSS of a process that streams 50 MB through .text_stream, not
keeping the text, against a process that only imports tokenhub.

The stream's content is one word per chunk, as models send it; the finished
message (the stream's snapshot) does keep that text, about 3% of the bytes.
"""

import os
import subprocess
import sys

from _common import CannedServer, Table, repeat, target

CHUNKS = 300000  # about 50 MB of chat.completion.chunk events


def probe(*args):
    """Peak RSS in MB of ``python bench/memory.py --probe ...``."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe", *args],
                            capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1]) / 1024


def run():
    with CannedServer(CHUNKS) as url:
        imported = repeat(lambda: probe("import"), 3)
        streamed = repeat(lambda: probe("stream", url), 3)
    table = Table("Memory: peak RSS", ["MB"], higher_is_better=False)
    table.add("import tokenhub only", imported)
    table.add("stream 50 MB through .text_stream", streamed)
    table.show()
    growth = sorted(streamed)[1] - sorted(imported)[1]
    target("streaming 50 MB grows peak RSS by under 10 MB (%.1f MB)" % growth, growth < 10)
    return table


def _peak_kb():
    """This process's peak RSS. VmHWM, where there is one: ru_maxrss also counts the
    parent's memory when the kernel forked us from it before exec."""
    try:
        with open("/proc/self/status") as status:
            return int(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
    except (OSError, StopIteration):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _probe(kind, url=None):
    import tokenhub

    if kind == "stream":
        with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0) as client:
            stream = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hi"}], stream=True)
            received = sum(len(text) for text in stream.text_stream)
            assert received == CHUNKS * len("word "), received
    print(_peak_kb())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        _probe(*sys.argv[2:])
    else:
        run()
