"""Batches: tokenhub.run_batch (for and async for) and the tokenhub batch command,
against the mock server; resumable, concurrent, polite, within a cost limit."""

import asyncio
import json
import multiprocessing
import os
import pickle
import signal
import subprocess
import sys
import time

import pytest

import tokenhub
from batch_workers import ask, run_shard
from conftest import ENV_VARS, ROOT

TOKENHUB = os.path.join(ROOT, "tokenhub.py")
URLS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "responses": "/v1/responses"}


def text_of(reply):
    """The answer text of a finished reply of any protocol."""
    protocol = tokenhub._protocol_of(reply)
    return "".join(piece for kind, piece in protocol.final_pieces(reply) if kind == "text")


def request(custom_id, protocol, prompt, *, stream=False, model="deepseek-v4-flash"):
    """A Batch API request line for ``protocol``."""
    body = {"model": model, "stream": stream}
    if protocol == "responses":
        body["input"] = prompt
    else:
        body["messages"] = [{"role": "user", "content": prompt}]
    if protocol == "anthropic":
        body["max_tokens"] = 256
    return {"custom_id": custom_id, "method": "POST", "url": URLS[protocol], "body": body}


def collect(batch, how):
    """Every result of ``batch``, read with ``for`` or with ``async for`` (in a loop
    of its own, whose connections are closed after: the caller's async client's)."""
    if how == "for":
        return list(batch)

    async def read():
        results = [result async for result in batch]
        await batch._client.close()
        return results

    return asyncio.run(read())


def client_for(srv, kind, **options):
    cls = tokenhub.TokenHub if kind == "sync" else tokenhub.AsyncTokenHub
    return cls(api_key="test-key", base_url=srv.url, **options)


# The ways a batch is driven: a blocking or an async client, read with for or async for.
DRIVES = [("sync", "for"), ("async", "for"), ("sync", "async for"), ("async", "async for")]


# -- results -------------------------------------------------------------------


@pytest.mark.parametrize("kind,how", DRIVES)
@pytest.mark.parametrize("protocol", sorted(URLS))
def test_streamed_and_plain_requests_end_in_the_same_shape(mock, kind, how, protocol):
    requests = [request("plain", protocol, "hello there"), request("streamed", protocol, "hello there", stream=True)]
    results = {r.custom_id: r for r in collect(tokenhub.run_batch(requests, client=client_for(mock, kind)), how)}
    assert sorted(results) == ["plain", "streamed"]
    plain, streamed = results["plain"].response.body, results["streamed"].response.body
    assert text_of(plain) == text_of(streamed) == "This is the TokenHub mock server (deepseek-v4-flash). You said: hello there"
    assert tokenhub.usage_of(plain).output_tokens == tokenhub.usage_of(streamed).output_tokens > 0
    assert tokenhub._protocol_of(plain) is tokenhub._protocol_of(streamed) is tokenhub._PROTOCOLS[protocol]
    for result in results.values():
        assert result.error is None and result.response.status_code == 200
        assert result.id.startswith("batch_req_")
        assert result.response.request_id.startswith("req_mock_")  # the server's request id header
    assert {r.body["stream"] for r in mock.requests} == {False, True}
    assert [r.path for r in mock.requests] == [URLS[protocol]] * 2


def test_short_forms_take_their_position_as_id_and_the_default_model(mock):
    requests = ["first", {"prompt": "second", "temperature": 0.5}, {"messages": [{"role": "user", "content": "third"}]},
                {"prompt": "fourth", "custom_id": "mine", "model": "glm-5"}]
    results = list(tokenhub.run_batch(requests, client=client_for(mock, "sync"), model="kimi-k2.6"))
    assert sorted(r.custom_id for r in results) == ["1", "2", "3", "mine"]
    sent = {r.body["messages"][-1]["content"]: r.body for r in mock.requests}
    assert sent["first"]["model"] == sent["third"]["model"] == "kimi-k2.6"
    assert sent["second"]["temperature"] == 0.5 and "prompt" not in sent["second"]
    assert sent["fourth"]["model"] == "glm-5" and "custom_id" not in sent["fourth"]


@pytest.mark.parametrize("kind,how", DRIVES)
def test_a_few_hundred_requests_ride_out_429s_500s_and_broken_replies(mock, kind, how):
    # Ids ending in 1: a 429 first; in 2: a 500; in 3 (streamed): the stream breaks after two
    # events, or (plain) the connection drops before the reply; in 4: a 400, which no retry mends.
    mock.add(fault="status=429,retry-after-ms=1", match={"user": r"/^job \d*1$/"}, times=30)
    mock.add(fault="status=500,retry-after-ms=1", match={"user": r"/^job \d*2$/"}, times=30)
    mock.add(fault="disconnect-after=2", match={"user": r"/^job \d*3$/", "stream": True}, times=15)
    mock.add(fault="disconnect-after=0", match={"user": r"/^job \d*3$/", "stream": False}, times=15)
    mock.add(fault="status=400", match={"user": r"/^job \d*4$/"})
    protocols = sorted(URLS)
    requests = [request("job-%d" % n, protocols[n % 3], "job %d" % n, stream=n % 20 < 10) for n in range(300)]
    batch = tokenhub.run_batch(requests, client=client_for(mock, kind), concurrency=16, max_retries=30)
    lowest = 16
    results = []
    for result in (collect(batch, how) if how == "async for" else batch):
        results.append(result)
        lowest = min(lowest, batch.summary.concurrency)
    ids = [r.custom_id for r in results]
    assert sorted(ids) == sorted("job-%d" % n for n in range(300))  # each exactly once
    failed = [r for r in results if r.error is not None]
    assert sorted(r.custom_id for r in failed) == sorted("job-%d" % n for n in range(300) if n % 10 == 4)
    for result in failed:
        assert result.response.status_code == 400 and result.error.code == "invalid_request_error"
        assert "injected by the mock server" in result.error.message
    for result in results:
        if result.error is None:
            assert text_of(result.response.body).endswith("You said: job %s" % result.custom_id[4:])
    assert len(mock.requests) == 300 + 30 + 30 + 30  # each fault used once: one retry each, no more
    summary = batch.summary
    assert (summary.succeeded, summary.failed, summary.total, summary.in_flight) == (270, 30, 300, 0)
    if how == "for":
        assert lowest < 16  # the 429s lowered the concurrency


def test_a_slow_down_halves_the_limit_and_successes_climb_back():
    async def run():
        gate = tokenhub._Gate(8)
        tickets = [await gate.enter() for _ in range(8)]
        gate.leave(tickets[0], slow_down=0.0)
        assert gate.limit == 4
        gate.leave(tickets[1], slow_down=0.0)  # sent before the cut: the same wave, no second cut
        assert gate.limit == 4
        waiting = asyncio.ensure_future(gate.enter())  # 6 in flight, limit 4: it waits...
        await asyncio.sleep(0)
        assert not waiting.done()
        for ticket in tickets[2:5]:
            gate.leave(ticket, succeeded=True)  # ...until fewer than the limit are in flight
        assert await waiting == 9 and gate.active == 4
        for ticket in tickets[5:]:
            gate.leave(ticket, succeeded=True)
        gate.leave(9, slow_down=0.0)  # a request sent after the cut cuts again
        assert 2 <= gate.limit < 3
        for _ in range(40):
            gate.leave(await gate.enter(), succeeded=True)
        assert gate.limit == 8  # back to the ceiling, never past it

    asyncio.run(run())


def test_retry_after_holds_every_new_request_back(mock):
    mock.add(fault="status=429,retry-after=1", match={"user": "first"}, times=1)
    results = {}
    batch = tokenhub.run_batch(["first", "second", "third"], client=client_for(mock, "sync"), concurrency=1, model="deepseek-v4-flash")
    started = time.monotonic()
    for result in batch:
        results[result.custom_id] = time.monotonic() - started
    assert sorted(results) == ["1", "2", "3"]
    assert min(results.values()) >= 0.9  # nothing finished before the server's second had passed


def test_requests_really_run_concurrently(mock):
    # 16 requests that each take half a second: one at a time 8 s, 8 at a time about 1 s.
    mock.add("slow answer", fault="ttfb=0.5")
    started = time.monotonic()
    results = list(tokenhub.run_batch(["q%d" % n for n in range(16)], client=client_for(mock, "sync"), concurrency=8, model="deepseek-v4-flash"))
    elapsed = time.monotonic() - started
    assert len(results) == 16 and all(r.error is None for r in results)
    assert 0.95 <= elapsed < 4.0  # two rounds of 8 (never 16 at once), far from 16 in a row


def test_a_refused_key_stops_the_batch(mock):
    mock.api_key = "the-right-key"
    batch = tokenhub.run_batch(["a", "b", "c", "d"], client=tokenhub.TokenHub(api_key="sk-not-this-one", base_url=mock.url),
                               concurrency=1, model="deepseek-v4-flash")
    results = list(batch)
    assert len(mock.requests) == 1 and len(results) == 1
    assert results[0].error.code == "authentication_error" and results[0].response.status_code == 401
    assert "sk-not-this-one" not in json.dumps(results)  # the key is in no message
    assert batch.summary.stopped == "authentication" and batch.summary.not_started == 3


def test_a_batch_counts_in_the_clients_usage(mock):
    client = client_for(mock, "sync", prices={"deepseek-v4-flash": (1.0, 2.0)})
    batch = tokenhub.run_batch(["a", "b"], client=client, model="deepseek-v4-flash")
    results = list(batch)
    assert client.usage.requests == 2
    assert client.usage.output_tokens == batch.summary.output_tokens == sum(
        tokenhub.usage_of(r.response.body).output_tokens for r in results)
    assert batch.summary.cost == pytest.approx(client.usage.cost) and batch.summary.cost > 0


def test_a_batch_runs_once(mock):
    batch = tokenhub.run_batch(["a"], client=client_for(mock, "sync"), model="deepseek-v4-flash")
    assert len(list(batch)) == 1
    with pytest.raises(RuntimeError, match="runs once"):
        list(batch)


def test_leaving_a_batch_early_cancels_what_is_in_flight(mock):
    mock.add("slow", fault="ttfb=30", match={"user": "slow"})
    batch = tokenhub.run_batch(["fast", "slow", "slow", "slow"], client=client_for(mock, "sync"), concurrency=4, model="deepseek-v4-flash")
    started = time.monotonic()
    for result in batch:
        assert result.custom_id == "1"
        break  # the loop lets go of the iterator, which cancels the three still waiting
    assert time.monotonic() - started < 10  # not the 30 s they would take
    assert batch.summary.stopped == "interrupted" and batch.summary.in_flight == 0


# -- input ---------------------------------------------------------------------


def test_bad_requests_are_all_listed_before_anything_is_sent(mock):
    requests = ["fine", 42, {"custom_id": "x", "url": "/v1/embeddings", "body": {}}, {"prompt": "a", "custom_id": "d"},
                {"prompt": "b", "custom_id": "d"}, {"custom_id": "y", "url": "/v1/messages",
                                                   "body": {"model": "m", "messages": [{"role": "user", "content": "hi"}]}},
                {"messages": []}, {"custom_id": "", "url": "/v1/chat/completions", "body": {"messages": [1]}},
                {"custom_id": "z", "url": "/v1/chat/completions", "method": "GET", "body": {}},
                {"custom_id": "w", "url": "/v1/chat/completions", "body": {"messages": [1]}, "extra": 1}]
    with pytest.raises(tokenhub.BatchInputError) as caught:
        tokenhub.run_batch(requests, client=client_for(mock, "sync"), model="m")
    problems = dict(caught.value.problems)
    assert sorted(problems) == [2, 3, 5, 6, 7, 8, 9, 10]
    assert "got a number (42)" in problems[2]
    assert '"url" to be one of /v1/chat/completions, /v1/messages, /v1/responses' in problems[3]
    assert "custom_id 'd' was already used on request 4" in problems[5]
    assert '"max_tokens"' in problems[6] and "non-empty list" in problems[7]
    assert '"custom_id" to be a non-empty string' in problems[8]
    assert '"method": "POST", got a string ("GET")' in problems[9] and "'extra'" in problems[10]
    assert str(caught.value).startswith("8 bad requests in the batch input; nothing was sent:\n  request 2: ")
    assert mock.requests == []


def test_no_model_anywhere_is_a_bad_request(mock):
    with pytest.raises(tokenhub.BatchInputError, match=r'request 1: no "model" in the body, and no default model'):
        tokenhub.run_batch(["hi"], client=client_for(mock, "sync"))


def test_options_are_checked(mock):
    client = client_for(mock, "sync")
    for options, message in (({"concurrency": 0}, "concurrency must be a whole number >= 1, got 0"),
                             ({"max_cost": -1}, "max_cost must be a number of USD >= 0, got -1"),
                             ({"shard": (4, 4)}, r"shard must be \(index, count\) with 0 <= index < count, got \(4, 4\)"),
                             ({"max_retries": -1}, "max_retries must be a whole number >= 0, got -1"),
                             ({"max_cost": 1, "model": "glm-5"}, "max_cost needs a price for every model, and glm-5 has none")):
        with pytest.raises(ValueError, match=message):
            tokenhub.run_batch(["hi"], client=client, **dict({"model": "deepseek-v4-flash"}, **options))


# -- cost ----------------------------------------------------------------------

# Each answer: 10 tokens in, 10 out; at 50,000 USD per million each way, exactly $1 a request.
DOLLAR = {"text": "ok", "usage": {"prompt_tokens": 10, "completion_tokens": 10}}


@pytest.mark.parametrize("concurrency", [1, 4])
def test_the_cost_limit_stops_new_requests(mock, concurrency):
    mock.add(DOLLAR)
    batch = tokenhub.run_batch(["q%d" % n for n in range(30)], client=client_for(mock, "sync"), model="priced",
                               prices={"priced": (50000.0, 50000.0)}, max_cost=10.5, concurrency=concurrency)
    results = list(batch)
    # At most $10.5: ten requests. The first `concurrency` start before any price is known,
    # and each later one only when the spent cost plus those in flight leaves room for it.
    assert len(results) == len(mock.requests) == 10
    assert batch.summary.cost == pytest.approx(10.0) and batch.summary.stopped == "cost"
    assert batch.summary.not_started == 20


# -- shards and processes ------------------------------------------------------


def test_shards_cover_the_input_exactly_once(mock):
    requests = ["prompt %d" % n for n in range(200)]
    client = client_for(mock, "sync")
    shards = [sorted(r.custom_id for r in tokenhub.run_batch(requests, client=client, model="m", shard=(i, 4)))
              for i in range(4)]
    every = [custom_id for shard in shards for custom_id in shard]
    assert sorted(every) == sorted(str(n) for n in range(1, 201))  # disjoint, and together whole
    assert all(30 <= len(shard) <= 70 for shard in shards)  # a hash spreads them
    again = sorted(r.custom_id for r in tokenhub.run_batch(requests, client=client, model="m", shard=(2, 4)))
    assert again == shards[2]  # stable: resuming a shard takes the same requests


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_client_pickles_as_its_configuration(mock, kind):
    client = client_for(mock, kind, timeout=7.0, max_retries=4, prices={"x": (1.0, 2.0)},
                        default_headers={"X-Team": "data"})
    copy = pickle.loads(pickle.dumps(client))
    assert type(copy) is type(client)
    assert (copy.base_url, copy.timeout, copy.max_retries, copy.default_headers, copy._api_key) == (
        mock.url, client.timeout, 4, {"X-Team": "data"}, "test-key")
    assert copy._meter is not client._meter and copy._meter.prices == {"x": (1.0, 2.0)}
    results = list(tokenhub.run_batch(["hi"], client=copy, model="deepseek-v4-flash"))
    assert results[0].error is None and mock.requests[0].headers["x-team"] == "data"


def test_a_client_with_its_own_ssl_context_says_why_it_cannot_pickle():
    import ssl

    client = tokenhub.TokenHub(api_key="k", base_url="https://127.0.0.1:9", ssl_context=ssl.create_default_context())
    with pytest.raises(TypeError, match="ssl_context= cannot be pickled.*pass ca_file= and client_cert= instead"):
        pickle.dumps(client)


# The mock server's threads run in this process, so Python 3.12+ warns that fork() may deadlock a
# child; the children here touch none of those threads' locks (that is what is being tested).
FORK_IN_THREADS = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")


@FORK_IN_THREADS
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_shards_run_in_worker_processes(mock, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip("no %s on this platform" % method)
    requests = ["prompt %d" % n for n in range(40)]
    client = client_for(mock, "sync")
    with multiprocessing.get_context(method).Pool(2) as pool:
        shards = pool.starmap(run_shard, [(client, [{"prompt": p, "model": "m"} for p in requests], i, 3)
                                          for i in range(3)])
    done = [custom_id for shard in shards for custom_id, ok in shard if ok]
    assert sorted(done) == sorted(str(n) for n in range(1, 41))


@FORK_IN_THREADS
def test_a_forked_child_never_uses_the_parents_connections(mock):
    if "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("no fork on this platform")
    client = client_for(mock, "sync")
    assert ask(client, "parent first").endswith("parent first")  # leaves a kept-alive connection
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(ask, (client, "child")).endswith("You said: child")
    assert ask(client, "parent again").endswith("parent again")
    first, child, again = mock.requests
    assert child.connection != first.connection  # the child opened its own
    assert again.connection == first.connection  # and the parent's is still open and still its own


# -- the command ---------------------------------------------------------------


def environment(srv, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS + ("TOKENHUB_MODEL", "NO_COLOR")}
    env.update(TOKENHUB_API_KEY="test-key", TOKENHUB_BASE_URL=srv.url)
    env.update(extra)
    return env


def batch_cli(srv, *args, **extra):
    """(exit status, stdout, stderr) of one tokenhub batch run."""
    result = subprocess.run([sys.executable, TOKENHUB, "batch", *args], capture_output=True, text=True,
                            timeout=120, env=environment(srv, **extra))
    return result.returncode, result.stdout, result.stderr


def write_lines(path, values):
    with open(path, "w") as out:
        for value in values:
            out.write(value if isinstance(value, str) and value.startswith(("{", "\n", " ")) else json.dumps(value))
            out.write("\n")


def read_results(path):
    if not os.path.exists(path):
        return []
    with open(path) as lines:
        return [json.loads(line) for line in lines]


def test_the_command_runs_a_file_into_results_and_errors(mock, tmp_path):
    mock.add(fault="status=400", match={"user": "bad"})
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, ["hello", {"prompt": "bad one"}, request("r3", "anthropic", "streamed", stream=True),
                         request("r4", "responses", "plain")])
    status, stdout, stderr = batch_cli(mock, str(source), "-o", str(out))
    assert (status, stdout) == (1, "")
    results = {r["custom_id"]: r for r in read_results(out)}
    assert sorted(results) == ["1", "r3", "r4"]
    assert results["r3"]["response"]["body"]["type"] == "message" and results["r3"]["error"] is None
    errors = read_results(tmp_path / "out.errors.jsonl")
    assert [e["custom_id"] for e in errors] == ["2"]
    assert errors[0]["response"]["status_code"] == 400 and errors[0]["error"]["code"] == "invalid_request_error"
    assert "3 succeeded (in %s), 1 failed (in %s)" % (out, tmp_path / "out.errors.jsonl") in stderr
    assert "tokens: " in stderr and "requests/s" in stderr

    # Again: what is in OUTPUT is skipped; the failure is tried again (now mended), once.
    mock.reset()
    status, stdout, stderr = batch_cli(mock, str(source), "-o", str(out))
    assert (status, stdout) == (0, "")
    assert [r.body["messages"][0]["content"] for r in mock.requests] == ["bad one"]
    assert sorted(r["custom_id"] for r in read_results(out)) == ["1", "2", "r3", "r4"]
    assert not os.path.exists(tmp_path / "out.errors.jsonl")
    assert "1 succeeded (in %s), 0 failed, 3 skipped as already done" % out in stderr


def test_the_command_refuses_bad_input_with_line_numbers(mock, tmp_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out"
    write_lines(source, ["ok", "\n", "{not json", {"prompt": "x", "custom_id": "2"}, [1, 2], {"messages": "no"}])
    status, stdout, stderr = batch_cli(mock, str(source), "-o", str(out))
    assert (status, stdout) == (2, "")
    assert "3 bad requests in the batch input; nothing was sent:" in stderr
    assert "line 4: not JSON: " in stderr  # the blank line 2-3 counted
    assert "line 5" not in stderr  # its id "2" is free: line 2 is blank, so no request has it
    assert "line 6: expected a batch request" in stderr and "got a list ([1, 2])" in stderr
    assert 'line 7: expected "messages" to be a non-empty list, got a string ("no")' in stderr
    assert mock.requests == [] and not os.path.exists(out)
    write_lines(source, ["a", {"prompt": "b", "custom_id": "1"}])
    status, _, stderr = batch_cli(mock, str(source), "-o", str(out))
    assert status == 2 and "line 2: custom_id '1' was already used on line 1" in stderr


@pytest.mark.parametrize("args,message", [
    (["--shard", "4/4"], "--shard: expected I/N with 0 <= I < N (such as 0/4), got '4/4'"),
    (["--price", "glm-5=1"], "--price: expected MODEL=IN/OUT in USD per million tokens"),
    (["--max-cost", "1", "-m", "glm-5"], "--max-cost needs a price" if False else "glm-5 has none; give --price MODEL=IN/OUT"),
    (["-j", "0"], "-j/--concurrency: expected a whole number >= 1, got 0"),
])
def test_the_command_refuses_bad_options(mock, tmp_path, args, message):
    source = tmp_path / "in.jsonl"
    write_lines(source, ["hi"])
    status, stdout, stderr = batch_cli(mock, str(source), "-o", str(tmp_path / "out.jsonl"), *args)
    assert (status, stdout) == (2, "") and message in stderr and mock.requests == []


def test_the_command_refuses_an_input_without_requests(mock, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("\n  \n")
    status, _, stderr = batch_cli(mock, str(source), "-o", str(tmp_path / "out.jsonl"))
    assert status == 2 and "in.jsonl has no requests (expected one JSON value a line)" in stderr


def test_the_command_will_not_write_over_its_input(mock, tmp_path):
    source = tmp_path / "in.jsonl"
    write_lines(source, ["hi"])
    status, _, stderr = batch_cli(mock, str(source), "-o", str(source))
    assert status == 2 and "is the input: give -o a file of its own" in stderr


def test_the_command_stops_at_the_cost_limit_and_resumes_with_more(mock, tmp_path):
    mock.add(DOLLAR)
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, ["q%d" % n for n in range(25)])
    price = ["--price", "priced=50000/50000", "-m", "priced", "-j", "3"]
    status, stdout, stderr = batch_cli(mock, str(source), "-o", str(out), "--max-cost", "10.5", *price)
    assert (status, stdout) == (3, "")
    assert len(read_results(out)) == 10 and "cost $10.000000" in stderr
    assert "stopped at the cost limit: 15 request(s) not started; run again with a higher --max-cost" in stderr
    status, _, stderr = batch_cli(mock, str(source), "-o", str(out), "--max-cost", "100", *price)
    assert status == 0 and "15 succeeded" in stderr and "10 skipped as already done" in stderr
    assert sorted(r["custom_id"] for r in read_results(out)) == sorted(str(n) for n in range(1, 26))


def test_shards_of_the_command_cat_into_the_whole(mock, tmp_path):
    source = tmp_path / "in.jsonl"
    write_lines(source, ["p%d" % n for n in range(60)])
    for index in range(3):
        status, _, _ = batch_cli(mock, str(source), "-o", str(tmp_path / ("part%d.jsonl" % index)), "--shard", "%d/3" % index)
        assert status == 0
    every = [r["custom_id"] for index in range(3) for r in read_results(tmp_path / ("part%d.jsonl" % index))]
    assert sorted(every) == sorted(str(n) for n in range(1, 61)) and len(mock.requests) == 60


def start_batch(srv, *args):
    return subprocess.Popen([sys.executable, TOKENHUB, "batch", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=environment(srv))


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_a_killed_run_resumes_with_each_request_exactly_once(mock, tmp_path, how):
    # 60 quick requests, then 40 that hang: with 4 in flight, the 64th request to arrive
    # means every quick one was sent and 4 hanging ones are in flight. Then the kill.
    mock.add("late", fault="ttfb=60", match={"user": "slow"})
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, ["fast %d" % n for n in range(60)] + ["slow %d" % n for n in range(40)])
    process = start_batch(mock, str(source), "-o", str(out), "-j", "4")
    try:
        mock.wait_for_requests(64, timeout=60)
        process.send_signal(signal.SIGKILL if how == "SIGKILL" else signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    if how == "SIGKILL":
        assert process.returncode == -signal.SIGKILL
    else:
        assert (process.returncode, stdout) == (130, "")
        assert "interrupted: requests in flight were cancelled; run again to go on" in stderr
    kept = read_results(out)  # every line whole
    assert 0 < len(kept) <= 60 and all(r["custom_id"] in {str(n) for n in range(1, 61)} for r in kept)
    with open(out, "a") as torn:
        torn.write('{"id":"batch_req_x","custom_id":"61","resp')  # as a kill in mid-write leaves it

    mock.reset()  # drops the hanging fixture, and the journal
    status, stdout, stderr = batch_cli(mock, str(source), "-o", str(out), "-j", "4")
    assert (status, stdout) == (0, ""), stderr
    assert "dropped an unfinished last line of %s" % out in stderr
    ids = [r["custom_id"] for r in read_results(out)]
    assert sorted(ids) == sorted(str(n) for n in range(1, 101))  # each exactly once
    assert len(mock.requests) == 100 - len(kept)  # nothing done was sent again
    assert not os.path.exists(tmp_path / "out.errors.jsonl")


def test_progress_is_a_live_line_on_a_terminal(mock, tmp_path):
    import pty

    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_lines(source, ["p%d" % n for n in range(30)])
    mock.add("ok", fault="ttfb=0.05")
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, TOKENHUB, "batch", str(source), "-o", str(out), "-j", "2"],
                               stdout=subprocess.DEVNULL, stderr=follower, env=environment(mock))
    os.close(follower)
    seen = b""
    while True:
        try:
            piece = os.read(leader, 4096)
        except OSError:  # the terminal closed with the process
            break
        if not piece:
            break
        seen += piece
    process.wait(timeout=60)
    os.close(leader)
    text = seen.decode()
    assert process.returncode == 0
    assert "\r\x1b[K" in text and "/30 done" in text and "ETA" in text and "concurrency 2" in text
    assert text.rstrip().splitlines()[-3].endswith("30 succeeded (in %s), 0 failed, 0 skipped as already done" % out)


def test_progress_lines_say_what_a_run_has_done():
    summary = tokenhub.APIObject(total=100, succeeded=40, failed=2, skipped=0, in_flight=4, not_started=54,
                                 concurrency=4, input_tokens=1200, output_tokens=3400, reasoning_tokens=900,
                                 cost=0.0123, unpriced=0, elapsed=21.0, requests_per_second=2.0, stopped=None)
    assert tokenhub._progress_line(summary) == (
        "42/100 done, 2.0/s, ETA 29s, tokens 1200 in / 3400 out, $0.0123, 2 errors, concurrency 4")
    lines = tokenhub._summary_lines(dict(summary, stopped="cost"), "o.jsonl", "o.errors.jsonl")
    assert lines == ["40 succeeded (in o.jsonl), 2 failed (in o.errors.jsonl), 0 skipped as already done",
                     "tokens: 1200 in, 3400 out (900 reasoning); cost $0.012300", "21.0 s, 2.0 requests/s",
                     "stopped at the cost limit: 54 request(s) not started; run again with a higher --max-cost to go on"]
    assert tokenhub._progress_line(dict(summary, cost=0.0, unpriced=42)).endswith("cost unknown, 2 errors, concurrency 4")
    assert [tokenhub._duration(s) for s in (5, 75, 7300)] == ["5s", "1m15s", "2h01m"]


def test_the_errors_file_sits_beside_the_output():
    assert tokenhub._errors_path("out.jsonl") == "out.errors.jsonl"
    assert tokenhub._errors_path("results") == "results.errors.jsonl"
    assert tokenhub._errors_path("a/b.json") == "a/b.json.errors.jsonl"


def test_progress_off_a_terminal_is_a_plain_line_every_interval():
    class Run:  # what the ticker reads: a batch's summary
        summary = tokenhub.APIObject(total=10, succeeded=3, failed=0, skipped=0, in_flight=2, not_started=5,
                                     concurrency=2, input_tokens=30, output_tokens=90, reasoning_tokens=0,
                                     cost=0.0, unpriced=3, elapsed=1.5, requests_per_second=2.0, stopped=None)

    class Out:
        def __init__(self):
            self.lines = []
            self.enough = asyncio.Event()

        def write(self, text):
            self.lines.append(text)
            if len(self.lines) == 3:
                self.enough.set()

        def flush(self):
            pass

    async def run():
        out = Out()
        progress = tokenhub._Progress(out, live=False, every=0.01)
        progress.show(Run.summary)  # off a terminal, a result alone prints nothing...
        assert out.lines == []
        ticker = asyncio.ensure_future(progress.tick(Run()))
        await asyncio.wait_for(out.enough.wait(), 10)  # ...the ticker does, a line at a time
        ticker.cancel()
        return out.lines

    lines = asyncio.run(run())
    assert lines[0] == "tokenhub batch: 3/10 done, 2.0/s, ETA 4s, tokens 30 in / 90 out, cost unknown, 0 errors, concurrency 2\n"
    assert len(set(lines)) == 1 and "\r" not in "".join(lines)


@pytest.mark.parametrize("status", [429, 529, 500])
def test_429_and_529_cut_the_concurrency_and_other_errors_do_not(mock, status):
    mock.add(fault="status=%d,retry-after-ms=1" % status, match={"user": "first"}, times=1)
    batch = tokenhub.run_batch(["first", "second", "third"], client=client_for(mock, "sync"), model="deepseek-v4-flash",
                               concurrency=4)
    assert all(result.error is None for result in batch)
    assert (batch._gate.cut_at > 0) is (status in (429, 529))  # the limit was halved once, or never


def test_prices_may_come_from_the_client_and_the_call_at_once(mock):
    mock.add(DOLLAR)
    client = client_for(mock, "sync", prices={"priced": (1.0, 1.0)})
    batch = tokenhub.run_batch(["q"], client=client, model="priced", prices={"priced": (50000.0, 50000.0)})
    list(batch)
    assert batch.summary.cost == pytest.approx(1.0)  # the call's price wins
