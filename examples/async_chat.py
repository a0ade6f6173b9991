"""Many questions at once with the asyncio client: three streamed answers side by side.

    python3 examples/async_chat.py

With TOKENHUB_API_KEY set it asks TokenHub; without it, the offline mock server
answers (started in this process). The code is what you would write for
openai.AsyncOpenAI: only the import differs.
"""

import asyncio
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import tokenhub  # noqa: E402

MODEL = os.environ.get("TOKENHUB_MODEL", "deepseek-v4-flash")
QUESTIONS = ["What is a hash map?", "What is a B-tree?", "What is a bloom filter?"]


async def answer(client, question):
    """Stream one answer; return it whole."""
    async with client.chat.completions.stream(model=MODEL, messages=[{"role": "user", "content": question}]) as stream:
        pieces = [text async for text in stream.text_stream]
    completion = await stream.get_final_completion()
    return "".join(pieces), completion.usage.total_tokens


async def main(**options):
    async with tokenhub.AsyncTokenHub(**options) as client:
        results = await asyncio.gather(*(answer(client, q) for q in QUESTIONS))
    for question, (text, tokens) in zip(QUESTIONS, results):
        print("Q: %s\nA: %s (%d tokens)\n" % (question, text.strip(), tokens))
    print("%d answers at once" % len(results))


if __name__ == "__main__":
    if os.environ.get("TOKENHUB_API_KEY"):
        asyncio.run(main())
    else:
        from mock_server import MockServer

        with MockServer() as server:
            print("(offline: no TOKENHUB_API_KEY, so the mock server at %s answers)" % server.url)
            asyncio.run(main(api_key="mock-key", base_url=server.url))
