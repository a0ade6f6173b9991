"""Errors and retries: what can go wrong, and what tokenhub does about it.

    python3 examples/errors_and_retries.py

Every error is a tokenhub.APIError. Status errors (APIStatusError and its
children: BadRequestError, RateLimitError, OverloadedError...) carry
status_code, body and request_id. Connection errors and 408/409/429/5xx are
retried (max_retries, default 2), honouring retry-after headers; a stream that
breaks raises with what had arrived in .snapshot. Offline, the mock server
injects the faults; against TokenHub only the bad request is shown.
"""

from _connect import MODEL, connect, tokenhub

HI = [{"role": "user", "content": "Hi"}]

with connect(max_retries=2, timeout=tokenhub.Timeout(connect=5, read=60, idle=30)) as (client, server):
    try:
        client.chat.completions.create(model=MODEL, messages=HI, temperature=5)  # out of range
    except tokenhub.BadRequestError as error:
        print("bad request: status %d, request id %s" % (error.status_code, error.request_id))
        print("  message:", error.message)

    if server is not None:
        server.fail_next("status=529,retry-after-ms=10", times=2)  # overloaded twice, then fine
        reply = client.chat.completions.create(model=MODEL, messages=HI)
        print("after 2 retries:", reply.choices[0].message.content[:40], "...")

        server.fail_next("status=429,retry-after-ms=10", times=2)  # the try and its one retry
        try:
            client.with_options(max_retries=1).chat.completions.create(model=MODEL, messages=HI)
        except tokenhub.RateLimitError as error:
            print("gave up: %s (HTTP %d)" % (type(error).__name__, error.status_code))

        server.fail_next("truncate-after=6")  # the stream ends without [DONE]
        try:
            with client.chat.completions.stream(model=MODEL, messages=HI) as stream:
                stream.until_done()
        except tokenhub.IncompleteStreamError as error:
            partial = error.snapshot.choices[0].message
            print("stream cut short after %d chunks; reasoning so far: %r" % (error.received, partial.reasoning_content))

        try:
            client.chat.completions.create(model=MODEL, messages=HI, extra_headers={"X-Mock-Fault": "ttfb=5"},
                                           timeout=tokenhub.Timeout(read=0.2), max_retries=0)
        except tokenhub.APITimeoutError as error:
            print("timeout:", error)
