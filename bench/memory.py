"""Memory: peak RSS of a process that streams 50 MB, against a process that only
imports tokenhub.

Two streams. Through .text_stream, one word per chunk as models send it: the
helper keeps the snapshot for get_final_*(), i.e. the text, about 3% of the bytes.
Raw iteration of create(stream=True) over 2,000-character chunks of non-ASCII
text (UTF-8 on the wire): nothing is kept, so memory stays flat however long.
And what a helper keeps, measured with tracemalloc: bytes per character of answer.
"""

import os
import subprocess
import sys

from _common import CannedServer, Table, repeat, target

CHUNKS = 300000  # about 50 MB of chat.completion.chunk events
LONG_CHUNKS, LONG_CHARS = 10000, 2000  # about 50 MB again, in 2,000-character chunks
KEPT_WORDS, KEPT_LONG = 100000, 1000  # answers of 500,000 and 2,000,000 characters


def probe(*args):
    """Peak RSS in MB of ``python bench/memory.py --probe ...``."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe", *args],
                            capture_output=True, text=True, check=True)
    return int(result.stdout.split()[-1]) / 1024


def run():
    with CannedServer(CHUNKS) as url:
        imported = repeat(lambda: probe("import"), 3)
        streamed = repeat(lambda: probe("stream", url), 3)
    with CannedServer(LONG_CHUNKS, LONG_CHARS) as url:
        raw = repeat(lambda: probe("raw", url), 3)
    table = Table("Memory: peak RSS", ["MB"], higher_is_better=False)
    table.add("import tokenhub only", imported)
    table.add("stream 50 MB through .text_stream", streamed)
    table.add("raw create(stream=True), 50 MB", raw)
    table.show()
    growth = sorted(streamed)[1] - sorted(imported)[1]
    target("streaming 50 MB grows peak RSS by under 10 MB (%.1f MB)" % growth, growth < 10)
    growth = sorted(raw)[1] - sorted(imported)[1]
    target("raw iteration of 50 MB in 2,000-character non-ASCII chunks grows peak RSS by under 10 MB (%.1f MB)"
           % growth, growth < 10)
    kept = Table("What a stream helper keeps for get_final_*(), per character of answer (tracemalloc)",
                 ["bytes per character"], higher_is_better=False)
    with CannedServer(KEPT_WORDS) as url:
        kept.add("%d one-word ASCII chunks" % KEPT_WORDS, repeat(lambda: kept_per_char(url), 3))
    with CannedServer(KEPT_LONG, LONG_CHARS) as url:
        kept.add("%d chunks of 2,000 non-ASCII characters" % KEPT_LONG, repeat(lambda: kept_per_char(url), 3))
    kept.show()
    return table, kept


def kept_per_char(url):
    """Bytes held by a finished .stream() (its snapshot, for get_final_completion()), per answer character."""
    result = subprocess.run([sys.executable, os.path.abspath(__file__), "--probe", "kept", url],
                            capture_output=True, text=True, check=True)
    return float(result.stdout.split()[-1])


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
    if kind == "raw":
        with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0) as client:
            stream = client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hi"}], stream=True)
            received = sum(len(chunk.choices[0].delta.content) for chunk in stream)
            assert received == LONG_CHUNKS * LONG_CHARS, received
    if kind == "kept":
        import tracemalloc

        with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0) as client:
            with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "Hi"}]) as stream:
                stream.until_done()  # a first stream imports what streams use (json, ssl): not counted
            tracemalloc.start()
            before = tracemalloc.get_traced_memory()[0]
            with client.chat.completions.stream(model="m", messages=[{"role": "user", "content": "Hi"}]) as stream:
                characters = sum(len(text) for text in stream.text_stream)
                kept = tracemalloc.get_traced_memory()[0] - before
                assert stream.get_final_completion().choices[0].message.content.__len__() == characters
        print(kept / characters)
        return
    print(_peak_kb())


if __name__ == "__main__":
    if sys.argv[1:2] == ["--probe"]:
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        _probe(*sys.argv[2:])
    else:
        run()
