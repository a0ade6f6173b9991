"""The Anthropic protocol with the messages.stream helper, as in the Anthropic SDK.

    python3 examples/anthropic_stream.py

Text as it arrives, thinking as it arrives, and the final message, with a tool
call whose input arrives in JSON fragments and is parsed for you.
"""

from _connect import MODEL, connect

TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]

with connect() as (client, _):
    print("text: ", end="")
    with client.messages.stream(model=MODEL, max_tokens=2000, system="Be brief.",
                                messages=[{"role": "user", "content": "Hello!"}]) as stream:
        for text in stream.text_stream:
            print(text, end="", flush=True)
    print()
    message = stream.get_final_message()
    print("final: %s, stop_reason=%s, usage=%d in / %d out" % (
        [block.type for block in message.content], message.stop_reason,
        message.usage.input_tokens, message.usage.output_tokens))

    with client.messages.stream(model=MODEL, max_tokens=2000, tools=TOOLS,
                                messages=[{"role": "user", "content": "What's the weather in Paris?"}]) as stream:
        thinking = "".join(stream.reasoning_stream)
    print("thinking:", thinking)
    for block in stream.get_final_message().content:
        if block.type == "tool_use":
            print("tool_use: %s(%s), id %s" % (block.name, dict(block.input), block.id))
