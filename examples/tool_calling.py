"""Tool calling by hand: the seed's weather example, on both protocols.

    python3 examples/tool_calling.py

The model asks for get_weather; we run it and send the result back; the model
answers. The loop repeats while the model asks for tools (run_tools, in
tool_runner.py, does all of this for you).
"""

import json

from _connect import MODEL, connect

CITY = {"type": "object", "properties": {"city": {"type": "string", "description": "City name, such as: Beijing"}},
        "required": ["city"]}
OPENAI_TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Obtain weather information for a specified city", "parameters": CITY}}]
ANTHROPIC_TOOLS = [{"name": "get_weather", "description": "Obtain weather information for a specified city",
                    "input_schema": CITY}]


def get_weather(city):
    """A stand-in for a real weather service."""
    return {"city": city, "temperature": 22, "weather": "Sunny", "humidity": 45}


def openai_protocol(client):
    messages = [{"role": "user", "content": "What is the weather like in Beijing today?"}]
    while True:
        reply = client.chat.completions.create(model=MODEL, messages=messages, tools=OPENAI_TOOLS)
        message = reply.choices[0].message
        messages.append(message)  # whole: its tool_calls (and reasoning_content, see interleaved_thinking.py)
        if not message.tool_calls:
            print("openai answer:   ", message.content)
            return
        for call in message.tool_calls:
            arguments = json.loads(call.function.arguments)
            print("openai tool call: %s(%s)" % (call.function.name, arguments))
            messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(get_weather(**arguments))})


def anthropic_protocol(client):
    messages = [{"role": "user", "content": "What is the weather like in Beijing today?"}]
    while True:
        reply = client.messages.create(model=MODEL, max_tokens=2000, messages=messages, tools=ANTHROPIC_TOOLS)
        messages.append({"role": "assistant", "content": reply.content})
        calls = [block for block in reply.content if block.type == "tool_use"]
        if not calls:
            print("anthropic answer:", "".join(b.text for b in reply.content if b.type == "text"))
            return
        results = []
        for call in calls:
            print("anthropic tool call: %s(%s)" % (call.name, dict(call.input)))
            results.append({"type": "tool_result", "tool_use_id": call.id, "content": json.dumps(get_weather(**call.input))})
        messages.append({"role": "user", "content": results})


with connect() as (client, _):
    openai_protocol(client)
    anthropic_protocol(client)
