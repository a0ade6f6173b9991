"""Request overhead: 1,000 sequential small non-streamed requests to a local server.

With connection reuse (one client, kept-alive connections) and without (the
server closes each connection), for tokenhub and the openai client.
"""

import time

from _common import CannedServer, Table, installed, repeat, target

import tokenhub

REQUESTS = 1000
HI = [{"role": "user", "content": "Hi"}]
CLOSE = {"Connection": "close"}


def rate(call):
    started = time.perf_counter()
    for _ in range(REQUESTS):
        call()
    return REQUESTS / (time.perf_counter() - started)


def run():
    table = Table("Request overhead: %d sequential small requests" % REQUESTS, ["requests/s"])
    with CannedServer(1) as url:
        def add(name, call):
            call()
            table.add(name, repeat(lambda: rate(call)))

        with tokenhub.TokenHub(api_key="bench", base_url=url, max_retries=0) as client:
            create = client.chat.completions.create
            add("tokenhub, connection reused", lambda: create(model="m", messages=HI))
            add("tokenhub, a new connection each", lambda: create(model="m", messages=HI, extra_headers=CLOSE))
        if installed("openai"):
            import openai

            with openai.OpenAI(api_key="bench", base_url=url + "/v1", max_retries=0) as client:
                create = client.chat.completions.create
                add("openai, connection reused", lambda: create(model="m", messages=HI))
                add("openai, a new connection each", lambda: create(model="m", messages=HI, extra_headers=CLOSE))
        else:
            table.skip("openai", "skipped (not installed)")
    table.show(reference="tokenhub, connection reused")
    for kind in ("connection reused", "a new connection each"):
        ours, peer = table.median("tokenhub, " + kind), table.median("openai, " + kind)
        if peer:
            target("%s: at least the openai client's requests/s (%.1fx)" % (kind, ours / peer), ours >= peer)
    return table


if __name__ == "__main__":
    run()
