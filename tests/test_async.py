"""The asyncio client as async code uses it: async for / async with, the stream
helpers, tools (async def too), cancellation, one pool per event loop, many
streams at once. (Every behaviour test also runs on this driver, through the
facade in tests/drivers.py; these are the parts only async code can show.)
"""

import asyncio
import subprocess
import sys
import threading

import pytest

import tokenhub
from conftest import ROOT, http_response
from mock_server import MockServer

HI = [{"role": "user", "content": "Hi"}]
ANSWER = "This is the TokenHub mock server (glm-5). You said: Hi"


def run(coroutine):
    return asyncio.run(coroutine)


def test_code_written_for_the_async_sdks_runs_after_changing_the_import(mock):
    """As the AsyncOpenAI and AsyncAnthropic READMEs show it."""
    async def main():
        client = tokenhub.AsyncOpenAI(api_key="k", base_url=mock.url + "/v1")
        completion = await client.chat.completions.create(model="glm-5", messages=HI)
        assert completion.choices[0].message.content == ANSWER
        stream = await client.chat.completions.create(model="glm-5", messages=HI, stream=True)
        pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
        assert "".join(pieces) == ANSWER
        async with client.chat.completions.stream(model="glm-5", messages=HI) as stream:
            texts = [text async for text in stream.text_stream]
        final = await stream.get_final_completion()
        assert "".join(texts) == ANSWER == final.choices[0].message.content and final.usage.total_tokens
        await client.close()

        anthropic = tokenhub.AsyncAnthropic(api_key="k", base_url=mock.url)
        message = await anthropic.messages.create(model="glm-5", max_tokens=500, messages=HI)
        assert message.content[-1].text == ANSWER
        async with anthropic.messages.stream(model="glm-5", max_tokens=500, messages=HI) as stream:
            thinking = [piece async for piece in stream.reasoning_stream]
        assert "".join(thinking) == message.content[0].thinking
        assert (await stream.get_final_message()).content == message.content
        assert await stream.get_final_text() == ANSWER  # the stream is done: the same final object
        events = await anthropic.messages.create(model="glm-5", max_tokens=500, messages=HI, stream=True)
        async with events:
            kinds = [event.type async for event in events]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
        models = await anthropic.models.list()
        assert models.data and (await anthropic.models.retrieve(models.data[0].id)).id == models.data[0].id
        await anthropic.close()

    run(main())


def test_deltas_until_done_and_with_options(mock):
    async def main():
        async with tokenhub.AsyncTokenHub(api_key="k", base_url=mock.url) as client:
            quick = client.with_options(timeout=5, max_retries=0)
            assert isinstance(quick, tokenhub.AsyncTokenHub) and quick.max_retries == 0
            async with quick.chat.completions.stream(model="deepseek-v4-flash", messages=HI) as stream:
                kinds = [kind async for kind, _ in stream.deltas]
                final = await stream.until_done()
            assert kinds == sorted(kinds) and set(kinds) == {"reasoning", "text"}
            assert final.choices[0].message.reasoning_content

    run(main())


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_tools_may_be_async_functions(mock, protocol):
    calls = []

    @tokenhub.tool
    async def get_weather(city: str) -> dict:
        """Current weather for a city."""
        await asyncio.sleep(0)
        calls.append(city)
        return {"city": city, "sky": "clear"}

    @tokenhub.tool
    def get_time(city: str) -> str:
        """The local time in a city."""
        return "12:00"

    async def main():
        async with tokenhub.AsyncTokenHub(api_key="k", base_url=mock.url) as client:
            ask = [{"role": "user", "content": "What is the weather and the time in Paris?"}]
            if protocol == "openai":
                runner = client.chat.completions.run_tools(model="deepseek-v3.2", messages=ask,
                                                           tools=[get_weather, get_time], stream=True)
            else:
                runner = client.messages.run_tools(model="deepseek-v3.2", max_tokens=500, messages=ask,
                                                   tools=[get_weather, get_time], stream=True)
            replies = [reply async for reply in runner]
            assert len(replies) == 2 and all(isinstance(r, tokenhub.AsyncStream) for r in replies)
            final = await runner.until_done()
            text = final.choices[0].message.content if protocol == "openai" else final.content[-1].text
            assert 'get_weather returned {"city": "Paris", "sky": "clear"}' in text and "12:00" in text

    run(main())
    assert calls == ["Paris"]


def test_a_client_built_where_no_loop_runs_is_used_from_one_later(mock):
    code = (
        "import asyncio, tokenhub\n"
        "client = tokenhub.AsyncTokenHub(api_key='k', base_url=%r)\n"  # module level: no loop yet
        "async def main():\n"
        "    async with client:\n"
        "        reply = await client.chat.completions.create(model='glm-5', messages=[{'role': 'user', 'content': 'Hi'}])\n"
        "        print(reply.choices[0].message.content)\n"
        "asyncio.run(main())\n" % mock.url
    )
    out = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ANSWER


def test_importing_tokenhub_does_not_load_asyncio():
    code = "import sys, tokenhub; print('asyncio' in sys.modules, 'ssl' in sys.modules)"
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "False"], out.stderr


# ---------------------------------------------------------------------------
# Cancellation, pools per loop, the connection limit
# ---------------------------------------------------------------------------


def holding(arrived, closed, first=b""):
    """A script step: note the request, send ``first``, then wait for the client to hang up."""
    def step(conn):
        arrived.set()
        if first:
            conn.sendall(first)
        if conn.recv(1) == b"":
            closed.set()
    return step


@pytest.mark.parametrize("where", ["request", "stream"])
def test_a_cancelled_task_closes_its_connection(raw_server, where):
    arrived, closed = threading.Event(), threading.Event()
    first = b""
    if where == "stream":
        first = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                 b'data: {"choices":[{"index":0,"delta":{"content":"x"}}]}\n\n')
    with raw_server(holding(arrived, closed, first)) as srv:
        async def main():
            client = tokenhub.AsyncTokenHub(api_key="k", base_url=srv.url, max_retries=0)

            async def call():
                if where == "request":
                    return await client.chat.completions.create(model="m", messages=HI)
                stream = await client.chat.completions.create(model="m", messages=HI, stream=True)
                await stream.__anext__()
                arrived_item.set()
                await stream.__anext__()  # waits: the server sends nothing more

            arrived_item = asyncio.Event()
            task = asyncio.ensure_future(call())
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, arrived.wait, 10)
            if where == "stream":
                await arrived_item.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            pool = client._pools_here()[0]
            assert pool._idle == [] and pool._active == 0  # closed, never pooled
            assert await loop.run_in_executor(None, closed.wait, 10)
            await client.close()

        run(main())


def test_connections_are_pooled_per_event_loop(raw_server):
    ok = http_response(200, '{"choices": []}', {"Content-Type": "application/json"}, close=False)
    with raw_server(ok, ok, ok, ok) as srv:
        client = tokenhub.AsyncTokenHub(api_key="k", base_url=srv.url, max_retries=0)

        async def twice():
            await client.chat.completions.create(model="m", messages=HI)
            await client.chat.completions.create(model="m", messages=HI)
            await client.close()

        run(twice())
        assert srv.connections == 1  # reused within a loop
        run(twice())
        assert srv.connections == 2  # not across loops


def test_the_connection_limit_holds_and_calls_wait_their_turn():
    body = b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}'
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    open_now, peak = [0], [0]

    async def serve(reader, writer):
        open_now[0] += 1
        peak[0] = max(peak[0], open_now[0])
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")  # the client's requests carry a small body
                await reader.readuntil(b"}")
                await asyncio.sleep(0.05)  # pacing: calls overlap, so the limit is what keeps them apart
                writer.write(reply)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            open_now[0] -= 1
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = "http://127.0.0.1:%d" % server.sockets[0].getsockname()[1]
        try:
            async with tokenhub.AsyncTokenHub(api_key="k", base_url=url, max_connections=2, max_retries=0) as client:
                replies = await asyncio.gather(*[
                    client.chat.completions.create(model="m", messages=HI) for _ in range(6)])
        finally:
            server.close()
            await server.wait_closed()
        return [r.choices[0].message.content for r in replies]

    assert run(main()) == ["ok"] * 6
    assert peak[0] == 2
    with pytest.raises(ValueError, match="max_connections must be a whole number >= 1, got 0"):
        tokenhub.AsyncTokenHub(api_key="k", base_url="http://127.0.0.1:9", max_connections=0)


# ---------------------------------------------------------------------------
# Many streams at once
# ---------------------------------------------------------------------------


def test_a_thousand_concurrent_streams_against_the_mock():
    with MockServer() as srv:
        async def one(client, n):
            async with client.chat.completions.stream(
                    model="glm-5", messages=[{"role": "user", "content": "q%d" % n}]) as stream:
                return await stream.get_final_text()

        async def main():
            async with tokenhub.AsyncTokenHub(api_key="k", base_url=srv.url, timeout=60, max_retries=0) as client:
                return await asyncio.gather(*[one(client, n) for n in range(1000)])

        answers = run(main())
    assert answers == ["This is the TokenHub mock server (glm-5). You said: q%d" % n for n in range(1000)]


def test_a_thousand_concurrent_streams_against_a_bare_server():
    """A plain asyncio server that answers every request with a 300-chunk stream."""
    chunk = b'data: {"choices":[{"index":0,"delta":{"content":"w "}}]}\n\n'
    body = chunk * 300 + b"data: [DONE]\n\n"
    reply = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n" % len(body) + body

    async def serve(reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(next((line.split(b":")[1] for line in head.split(b"\r\n")
                                   if line.lower().startswith(b"content-length:")), b"0"))
                await reader.readexactly(length)
                writer.write(reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main():
        server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
        url = "http://127.0.0.1:%d" % server.sockets[0].getsockname()[1]
        try:
            async with tokenhub.AsyncTokenHub(api_key="k", base_url=url, timeout=60, max_retries=0) as client:
                async def one():
                    stream = await client.chat.completions.create(model="m", messages=HI, stream=True)
                    return sum([1 async for _ in stream])

                return await asyncio.gather(*[one() for _ in range(1000)])
        finally:
            server.close()
            await server.wait_closed()

    assert run(main()) == [300] * 1000
