"""Thinking models: reasoning beside the answer, and thinking turned off.

    python3 examples/thinking.py

deepseek-v4-*, glm-5* and kimi-k2.* think by default; their reasoning comes back
in ``reasoning_content`` (OpenAI protocol) or a ``thinking`` block (Anthropic),
never inside the answer. ``thinking: {"type": "disabled"}`` turns it off;
``reasoning_effort`` sets how hard they think. Reasoning and answer share
max_tokens: leave it unset or generous (seed 004 advises 2000+).
"""

from _connect import connect

QUESTION = [{"role": "user", "content": "Is 1001 a prime number?"}]

with connect() as (client, _):
    reply = client.chat.completions.create(model="deepseek-v4-flash", messages=QUESTION, reasoning_effort="high")
    message = reply.choices[0].message
    print("reasoning:", message.reasoning_content)
    print("answer:   ", message.content)
    print("reasoning tokens: %d of %d" % (
        reply.usage.completion_tokens_details.reasoning_tokens, reply.usage.completion_tokens))

    off = client.chat.completions.create(model="deepseek-v4-flash", messages=QUESTION,
                                         thinking={"type": "disabled"})
    print("thinking off, reasoning:", off.choices[0].message.reasoning_content)
    print("thinking off, answer:   ", off.choices[0].message.content)

    # Streamed: the reasoning arrives first, then the answer.
    with client.chat.completions.stream(model="glm-5", messages=QUESTION) as stream:
        kinds = [kind for kind, _ in stream.deltas]
    print("streamed: %d reasoning pieces, then %d answer pieces" % (kinds.count("reasoning"), kinds.count("text")))

    message = client.messages.create(model="glm-5", max_tokens=2000, messages=QUESTION)
    print("anthropic blocks:", [block.type for block in message.content])
