"""Quickstart: TokenHub's three protocols, plain, streamed and with a tool call.

    python3 examples/quickstart.py

With TOKENHUB_API_KEY set it talks to TokenHub (TOKENHUB_REGION or
TOKENHUB_BASE_URL choose where; TOKENHUB_MODEL the model). Without a key it
starts the offline mock server in this process, so it runs anywhere.
"""

import json
import os
import sys

# Run from a checkout without installing: tokenhub.py sits one folder up.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import tokenhub  # noqa: E402

MODEL = os.environ.get("TOKENHUB_MODEL", "deepseek-v4-flash")  # a thinking model

# The seed's weather tool, once per protocol: same name, same JSON schema.
CITY_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "City name, such as: Beijing"}},
    "required": ["city"],
}
OPENAI_TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Obtain weather information for a specified city",
        "parameters": CITY_SCHEMA,
    },
}]
ANTHROPIC_TOOLS = [{
    "name": "get_weather",
    "description": "Obtain weather information for a specified city",
    "input_schema": CITY_SCHEMA,
}]
RESPONSES_TOOLS = [{  # the Responses protocol's function tools are flat
    "type": "function",
    "name": "get_weather",
    "description": "Obtain weather information for a specified city",
    "parameters": CITY_SCHEMA,
}]
QUESTION = "What is the weather like in Beijing today?"


def get_weather(city):
    """The tool itself: a stand-in for a real weather service."""
    return {"city": city, "temperature": 22, "weather": "Sunny", "humidity": 45}


def openai_protocol(client):
    print("== OpenAI Chat Completions protocol (%s) ==" % MODEL)
    hello = [{"role": "user", "content": "Hello, please introduce yourself"}]

    reply = client.chat.completions.create(model=MODEL, messages=hello)
    message = reply.choices[0].message
    if message.reasoning_content:  # thinking models put their reasoning beside the answer
        print("reasoning:", message.reasoning_content)
    print("answer:   ", message.content)
    print("usage:    ", reply.usage.prompt_tokens, "in /", reply.usage.completion_tokens, "out")

    print("streamed:  ", end="")
    with client.chat.completions.create(model=MODEL, messages=hello, stream=True) as stream:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                print(chunk.choices[0].delta.content, end="", flush=True)
    print()

    # A tool-call round: the model asks for get_weather, we run it, it answers.
    messages = [{"role": "user", "content": QUESTION}]
    reply = client.chat.completions.create(model=MODEL, messages=messages, tools=OPENAI_TOOLS)
    message = reply.choices[0].message
    messages.append(message)  # sent back whole: tool_calls and reasoning_content
    for call in message.tool_calls or []:
        arguments = json.loads(call.function.arguments)
        print("tool call: %s(%s)" % (call.function.name, call.function.arguments))
        result = get_weather(**arguments)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": json.dumps(result)})
    final = client.chat.completions.create(model=MODEL, messages=messages, tools=OPENAI_TOOLS)
    print("final:    ", final.choices[0].message.content)


def anthropic_protocol(client):
    print("== Anthropic Messages protocol (%s) ==" % MODEL)
    hello = [{"role": "user", "content": "Hi, how are you?"}]

    reply = client.messages.create(model=MODEL, max_tokens=2000, messages=hello)
    for block in reply.content:
        if block.type == "thinking":
            print("thinking: ", block.thinking)
        elif block.type == "text":
            print("answer:   ", block.text)
    print("usage:    ", reply.usage.input_tokens, "in /", reply.usage.output_tokens, "out")

    print("streamed:  ", end="")
    with client.messages.create(model=MODEL, max_tokens=2000, messages=hello, stream=True) as events:
        for event in events:
            if event.type == "content_block_delta" and event.delta.type == "text_delta":
                print(event.delta.text, end="", flush=True)
    print()

    messages = [{"role": "user", "content": QUESTION}]
    reply = client.messages.create(
        model=MODEL, max_tokens=2000, messages=messages, tools=ANTHROPIC_TOOLS
    )
    messages.append({"role": "assistant", "content": reply.content})
    results = []
    for block in reply.content:
        if block.type == "tool_use":
            print("tool call: %s(%s)" % (block.name, json.dumps(block.input)))
            results.append({
                "type": "tool_result",
                "tool_use_id": block.id,
                "content": json.dumps(get_weather(**block.input)),
            })
    messages.append({"role": "user", "content": results})
    final = client.messages.create(
        model=MODEL, max_tokens=2000, messages=messages, tools=ANTHROPIC_TOOLS
    )
    print("final:    ", "".join(b.text for b in final.content if b.type == "text"))


def responses_protocol(client):
    print("== OpenAI Responses protocol (%s) ==" % MODEL)
    reply = client.responses.create(model=MODEL, input="Hello, please introduce yourself")
    for item in reply.output:
        if item.type == "reasoning":  # reasoning arrives as an item of its own
            print("reasoning:", " ".join(part.text for part in item.content or item.summary))
    print("answer:   ", reply.output_text)
    print("usage:    ", reply.usage.input_tokens, "in /", reply.usage.output_tokens, "out")

    print("streamed:  ", end="")
    with client.responses.create(model=MODEL, input="Hello, please introduce yourself", stream=True) as events:
        for event in events:
            if event.type == "response.output_text.delta":
                print(event.delta, end="", flush=True)
    print()

    items = [{"role": "user", "content": QUESTION}]
    reply = client.responses.create(model=MODEL, input=items, tools=RESPONSES_TOOLS)
    items += reply.output  # the reply's items go back as input: reasoning, function calls
    for item in reply.output:
        if item.type == "function_call":
            print("tool call: %s(%s)" % (item.name, item.arguments))
            result = get_weather(**json.loads(item.arguments))
            items.append({"type": "function_call_output", "call_id": item.call_id, "output": json.dumps(result)})
    final = client.responses.create(model=MODEL, input=items, tools=RESPONSES_TOOLS)
    print("final:    ", final.output_text)


def main():
    if os.environ.get("TOKENHUB_API_KEY"):
        with tokenhub.TokenHub() as client:
            print("talking to", client.base_url)
            openai_protocol(client)
            anthropic_protocol(client)
            responses_protocol(client)
        return
    from mock_server import MockServer

    with MockServer() as server:
        print("no TOKENHUB_API_KEY set: using the offline mock server at", server.url)
        with tokenhub.TokenHub(api_key="mock-key", base_url=server.url) as client:
            openai_protocol(client)
            anthropic_protocol(client)
            responses_protocol(client)


if __name__ == "__main__":
    main()
