"""A conversation over several turns.

    python3 examples/multi_turn.py

Each reply goes back into the history with tokenhub.assistant_message(), which
leaves the model's old reasoning out: across separate user turns it need not be
sent again (seed 004, the DeepSeek guide). Only a tool-call loop within one
turn sends it back (see interleaved_thinking.py).
"""

from _connect import MODEL, connect, tokenhub

QUESTIONS = ["My name is Ada. Remember it.", "What is 2 + 2?", "What is my name?"]

with connect() as (client, _):
    history = [{"role": "system", "content": "You are a helpful assistant."}]
    for question in QUESTIONS:
        history.append({"role": "user", "content": question})
        reply = client.chat.completions.create(model=MODEL, messages=history)
        history.append(tokenhub.assistant_message(reply))
        print("user:     ", question)
        print("assistant:", reply.choices[0].message.content)
    print("history:   %d messages, reasoning sent back: %s" % (
        len(history), any("reasoning_content" in m for m in history)))
