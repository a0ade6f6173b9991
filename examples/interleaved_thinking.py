"""Interleaved thinking: a thinking model calling tools, by hand.

    python3 examples/interleaved_thinking.py

In a tool-call loop, each assistant turn must go back with its tool_calls AND
its reasoning_content from that turn, then the tool results (TokenHub's
"Deep Thinking" docs). tokenhub.assistant_message(reply, keep_reasoning=True)
builds exactly that turn; run_tools does it for you. In thinking mode,
tool_choice supports only "auto" and "none".
"""

import json

from _connect import connect, tokenhub

MODEL = "deepseek-v4-pro"  # thinks by default
TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]

with connect() as (client, server):
    messages = [{"role": "user", "content": "Should I take an umbrella in Shanghai today? Check the weather."}]
    while True:
        reply = client.chat.completions.create(model=MODEL, messages=messages, tools=TOOLS)
        message = reply.choices[0].message
        print("reasoning:", message.reasoning_content)
        turn = tokenhub.assistant_message(reply, keep_reasoning=True)
        messages.append(turn)
        if not message.tool_calls:
            print("answer:   ", message.content)
            break
        for call in message.tool_calls:
            city = json.loads(call.function.arguments)["city"]
            print("tool call: get_weather(%r)" % city)
            messages.append({"role": "tool", "tool_call_id": call.id,
                             "content": json.dumps({"city": city, "rain": "likely", "temperature": 18})})
    if server is not None:  # offline: show what went back to the model on the second request
        sent = server.requests[-1].body["messages"][1]
        print("sent back: role=%s, tool_calls=%d, reasoning_content=%s" % (
            sent["role"], len(sent["tool_calls"]), "reasoning_content" in sent))
