"""A system prompt, on both protocols.

    python3 examples/system_prompt.py

The OpenAI protocol takes it as the first message; the Anthropic protocol as
the ``system`` parameter (a string, or a list of text blocks).
"""

from _connect import MODEL, connect

SYSTEM = "You are a terse assistant. Answer in one sentence."
QUESTION = "What is TokenHub?"

with connect() as (client, _):
    reply = client.chat.completions.create(model=MODEL, messages=[
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ])
    print("openai:   ", reply.choices[0].message.content)

    message = client.messages.create(model=MODEL, max_tokens=1000, system=SYSTEM,
                                     messages=[{"role": "user", "content": QUESTION}])
    print("anthropic:", "".join(block.text for block in message.content if block.type == "text"))
