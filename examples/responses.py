"""The OpenAI Responses protocol: a reply, a stream, a conversation and a tool loop.

    python3 examples/responses.py

With TOKENHUB_API_KEY set it asks TokenHub; without it, the offline mock server
answers. The code is what you would write with the openai SDK's client.responses.
"""

from _connect import MODEL, connect

import tokenhub


@tokenhub.tool
def get_weather(city: str) -> dict:
    """Current weather for a city.

    Args:
        city: The city's name, such as Paris.
    """
    return {"city": city, "temperature": 18, "sky": "cloudy"}


with connect() as (client, _):
    reply = client.responses.create(model=MODEL, input="Name three prime numbers.", instructions="Be brief.")
    print("answer:   ", reply.output_text)
    print("items:    ", [item.type for item in reply.output])

    with client.responses.stream(model=MODEL, input="Count to five.") as stream:
        print("streamed: ", "".join(stream.text_stream))
    print("status:   ", stream.get_final_response().status)

    follow_up = client.responses.create(model=MODEL, input="And two more?", previous_response_id=reply.id)
    print("continued:", follow_up.output_text)

    runner = client.responses.run_tools(model=MODEL, input="What's the weather in Paris?", tools=[get_weather])
    final = runner.until_done()
    print("tool loop:", " -> ".join(item.get("type") or item.get("role") for item in runner.messages))
    print("final:    ", final.output_text)
