"""Streaming, three ways: raw chunks, the text alone, and the final object.

    python3 examples/streaming.py
"""

from _connect import MODEL, connect

QUESTION = [{"role": "user", "content": "Write a haiku about the sea"}]

with connect() as (client, _):
    # 1. Raw chunks, as the wire sends them: each carries a small delta.
    print("chunks: ", end="")
    with client.chat.completions.create(model=MODEL, messages=QUESTION, stream=True) as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
    print()

    # 2. Just the answer's text (reasoning left out), then the finished completion,
    #    the same object a non-streamed call returns, usage included.
    print("text:   ", end="")
    with client.chat.completions.stream(model=MODEL, messages=QUESTION) as stream:
        for text in stream.text_stream:
            print(text, end="", flush=True)
    print()
    completion = stream.get_final_completion()
    print("final:   finish_reason=%s, %d tokens in, %d out" % (
        completion.choices[0].finish_reason, completion.usage.prompt_tokens, completion.usage.completion_tokens))

    # 3. The same on the Anthropic protocol.
    print("anthropic: ", end="")
    with client.messages.stream(model=MODEL, max_tokens=2000, messages=QUESTION) as stream:
        for text in stream.text_stream:
            print(text, end="", flush=True)
    print()
    print("final:   stop_reason=%s, %d tokens out" % (
        stream.get_final_message().stop_reason, stream.get_final_message().usage.output_tokens))
