"""Tools that run themselves: @tokenhub.tool and run_tools, on both protocols.

    python3 examples/tool_runner.py

A plain Python function becomes a tool (its JSON schema comes from the type
hints, its descriptions from the docstring). run_tools calls the model, runs
every tool it asks for, sends the results back, and repeats until the model
answers.
"""

from typing import Literal

from _connect import MODEL, connect, tokenhub

QUESTION = "What's the weather and the local time in Beijing?"


@tokenhub.tool
def get_weather(city: str, unit: Literal["celsius", "fahrenheit"] = "celsius") -> dict:
    """Current weather for a city.

    Args:
        city: The city's name, such as Beijing.
        unit: The temperature unit.
    """
    return {"city": city, "temperature": 22 if unit == "celsius" else 72, "sky": "sunny"}


@tokenhub.tool
def get_local_time(city: str) -> str:
    """The local time in a city, as HH:MM.

    Args:
        city: The city's name.
    """
    return "14:30"  # a stand-in for a real clock service


def openai_protocol(client):
    print("== OpenAI protocol: chat.completions.run_tools ==")
    runner = client.chat.completions.run_tools(
        model=MODEL, messages=[{"role": "user", "content": QUESTION}],
        tools=[get_weather, get_local_time],
    )
    for reply in runner:  # each model reply: first the tool calls, then the answer
        message = reply.choices[0].message
        for call in message.tool_calls or []:
            print("calls:  %s(%s)" % (call.function.name, call.function.arguments))
    print("answer:", runner.until_done().choices[0].message.content)
    # runner.messages holds the whole exchange, reasoning and tool results
    # included, ready for the next user turn.
    print("turns: ", " -> ".join(m["role"] for m in runner.messages))


def anthropic_protocol(client):
    print("== Anthropic protocol: messages.run_tools, streamed ==")
    runner = client.messages.run_tools(
        model=MODEL, max_tokens=2000, messages=[{"role": "user", "content": QUESTION}],
        tools=[get_weather, get_local_time], stream=True,
    )
    for stream in runner:  # with stream=True, each reply is a Stream to read as it arrives
        text = "".join(stream.text_stream)
        message = stream.get_final_message()
        for block in message.content:
            if block.type == "tool_use":
                print("calls:  %s(%s)" % (block.name, dict(block.input)))
        if text:
            print("answer:", text)

with connect() as (client, _):
    openai_protocol(client)
    anthropic_protocol(client)
