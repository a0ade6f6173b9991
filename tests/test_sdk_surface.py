"""The official SDKs' everyday surface, through the mock: raw and streaming responses,
request ids, errors as the SDKs shape them, serialisation, pages, the stream
helpers' events, structured outputs, token counting, the module-level client."""

import asyncio
import dataclasses
import json
import threading
from typing import TypedDict

import pytest

import tokenhub
from conftest import raw_request, sse_response
from tokenhub import TokenHub as BlockingTokenHub  # the blocking class itself, whichever driver runs

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

HI = [{"role": "user", "content": "Hi"}]
WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]
OPENAI_WEATHER = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


class Address:
    """A stand-in for a pydantic model class: the two methods tokenhub uses, no pydantic."""

    def __init__(self, city):
        self.city = city

    @classmethod
    def model_json_schema(cls):
        return {"title": "Address", "type": "object", "properties": {"city": {"type": "string"}}}

    @classmethod
    def model_validate_json(cls, text):
        return cls(**json.loads(text))


class Person:
    """A person (a pydantic-shaped class whose schema nests Address through $defs)."""

    def __init__(self, name, age, addresses):
        self.name, self.age, self.addresses = name, age, [Address(**a) for a in addresses]

    @classmethod
    def model_json_schema(cls):
        return {"title": "Person", "type": "object", "$defs": {"Address": Address.model_json_schema()},
                "properties": {"name": {"type": "string"}, "age": {"type": "integer", "minimum": 18},
                               "addresses": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/Address"}},
                               "nickname": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}}}

    @classmethod
    def model_validate_json(cls, text):
        data = json.loads(text)
        return cls(data["name"], data["age"], data["addresses"])


@dataclasses.dataclass
class Point:
    x: int
    y: int


class Movie(TypedDict):
    title: str
    year: int


# ---------------------------------------------------------------------------
# Raw and streaming responses, request ids
# ---------------------------------------------------------------------------


def test_with_raw_response_on_every_resource(client, anthropic, mock):
    raw = client.chat.completions.with_raw_response.create(model="glm-5", messages=HI)
    assert raw.status_code == 200 and raw.headers["X-Request-Id"] == raw.request_id == "req_mock_1"
    assert raw.retries_taken == 0 and raw.elapsed >= 0 and json.loads(raw.text)["object"] == "chat.completion"
    completion = raw.parse()
    assert completion.choices[0].message.content.startswith("This is") and completion._request_id == "req_mock_1"
    message = anthropic.messages.with_raw_response.create(model="glm-5", max_tokens=100, messages=HI)
    assert message.headers["request-id"] == message.request_id and message.parse().type == "message"
    assert client.responses.with_raw_response.create(model="glm-5", input="Hi").parse().output_text
    assert client.models.with_raw_response.list().parse().data
    mock.fail_next("status=503")
    retried = client.with_options(max_retries=1).chat.completions.with_raw_response.create(model="glm-5", messages=HI)
    assert retried.retries_taken == 1 and retried.status_code == 200


def test_request_ids_on_every_returned_object(client, anthropic):
    assert client.chat.completions.create(model="glm-5", messages=HI)._request_id.startswith("req_mock_")
    assert anthropic.messages.create(model="glm-5", max_tokens=100, messages=HI)._request_id.startswith("req_mock_")
    with client.chat.completions.stream(model="glm-5", messages=HI) as stream:
        assert stream.get_final_completion()._request_id == stream.request_id
    assert anthropic.messages.count_tokens(model="glm-5", messages=HI)._request_id.startswith("req_mock_")
    assert tokenhub.APIObject(a=1)._request_id is None and "_request_id" not in tokenhub.APIObject(a=1)


def test_with_streaming_response_reads_lazily():
    """Blocking and async, natively: the async reader's methods are awaited."""
    from mock_server import MockServer

    with MockServer() as mock:
        client = BlockingTokenHub(api_key="k", base_url=mock.url)
        with client.chat.completions.with_streaming_response.create(model="glm-5", messages=HI, stream=True) as resp:
            assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
            lines = list(resp.iter_lines())
        assert lines[-2:] == ["data: [DONE]", ""] and lines[0].startswith("data: {")
        with client.messages.with_streaming_response.create(model="glm-5", max_tokens=100, messages=HI) as resp:
            assert resp.json()["type"] == "message" and resp.parse().content[-1].text.startswith("This is")
            assert resp.read() == resp.text().encode()
        with client.chat.completions.with_streaming_response.create(model="glm-5", messages=HI, stream=True) as resp:
            assert [chunk.object for chunk in resp.parse()][-1] == "chat.completion.chunk"
            with pytest.raises(tokenhub.StreamError, match="read already"):
                resp.read()

        async def main():
            async with tokenhub.AsyncTokenHub(api_key="k", base_url=mock.url) as aclient:
                raw = await aclient.chat.completions.with_raw_response.create(model="glm-5", messages=HI)
                assert raw.parse().choices[0].message.content.startswith("This is")
                async with aclient.messages.with_streaming_response.create(
                        model="glm-5", max_tokens=100, messages=HI, stream=True) as resp:
                    chunks = [chunk async for chunk in resp.iter_bytes()]
                assert b"event: message_stop" in b"".join(chunks)

        asyncio.run(main())


# ---------------------------------------------------------------------------
# Errors and serialisation as the SDKs shape them
# ---------------------------------------------------------------------------


def test_status_errors_carry_the_response_code_param_and_type(client):
    with pytest.raises(tokenhub.BadRequestError) as caught:
        client.chat.completions.create(model="glm-5", messages=HI, temperature=5)
    error = caught.value
    assert error.response.status_code == 400 and error.response.headers["X-Request-Id"] == error.request_id
    assert error.response.json() == error.body and "temperature" in error.response.text
    assert (error.param, error.type, error.code) == ("temperature", "invalid_request_error", None)


def test_model_dump_options(client):
    reply = client.chat.completions.create(model="glm-5", messages=HI)
    assert reply.model_dump(mode="json") == reply.to_dict()
    dumped = reply.model_dump(exclude_none=True)
    assert "logprobs" not in dumped["choices"][0] and reply.choices[0].logprobs is None
    assert set(reply.model_dump(include={"id", "model"})) == {"id", "model"}
    assert "usage" not in reply.model_dump(exclude={"usage"})
    assert json.loads(reply.model_dump_json(indent=2)) == reply.to_dict() and "\n  " in reply.model_dump_json(indent=2)
    with pytest.raises(ValueError, match="mode must be"):
        reply.model_dump(mode="xml")


def test_model_pages(client, anthropic):
    everything = [model.id for model in client.models.list()]
    assert len(everything) == 16 and client.models.list().has_next_page() is False
    page = anthropic.models.list(limit=4)
    assert len(page.data) == 4 and page.has_next_page() and page.last_id == page.data[-1].id
    assert [m.id for m in page] == everything  # iterating goes through every page
    second = page.get_next_page()
    assert [m.id for m in second.data] == everything[4:8]
    assert [m.id for m in anthropic.models.list(limit=3, before_id=everything[5]).data] == everything[2:5]
    assert [m.id for m in page.auto_paging_iter()] == everything


# ---------------------------------------------------------------------------
# The stream helpers' events
# ---------------------------------------------------------------------------


def test_chat_stream_events(client):
    with client.chat.completions.stream(model="deepseek-v4-flash", messages=HI, logprobs=True) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    plain = client.chat.completions.create(model="deepseek-v4-flash", messages=HI, logprobs=True)
    assert kinds.count("chunk") == len([k for k in kinds if k == "chunk"]) > 5
    chunk = next(event for event in events if event.type == "chunk")
    assert chunk.chunk.object == "chat.completion.chunk" and chunk.snapshot.object == "chat.completion"
    deltas = [event for event in events if event.type == "content.delta"]
    assert "".join(e.delta for e in deltas) == deltas[-1].snapshot == plain.choices[0].message.content
    (done,) = [event for event in events if event.type == "content.done"]
    assert done.content == plain.choices[0].message.content and done.parsed is None
    reasoning = [event for event in events if event.type == "reasoning.delta"]
    assert "".join(e.delta for e in reasoning) == plain.choices[0].message.reasoning_content
    first_text = next(i for i, event in enumerate(events) if event.type == "content.delta" and event.delta)
    assert kinds.index("reasoning.done") < first_text  # reasoning ends where the answer starts
    assert "logprobs.content.delta" in kinds and kinds.count("logprobs.content.done") == 1
    assert stream.get_final_completion().choices[0].message.content == plain.choices[0].message.content


def test_chat_stream_tool_call_events(client):
    with client.chat.completions.stream(model="deepseek-v3.2", messages=[
            {"role": "user", "content": "weather and time in Paris?"}],
            tools=OPENAI_WEATHER + [tokenhub.pydantic_function_tool(Address, name="get_time")]) as stream:
        events = [event for event in stream if event.type.startswith("tool_calls.")]
    done = [event for event in events if event.type == "tool_calls.function.arguments.done"]
    assert [(e.name, e.index) for e in done] == [("get_weather", 0), ("get_time", 1)]
    assert json.loads(done[0].arguments) == {"city": "Paris"} and done[0].parsed_arguments is None  # not strict
    assert isinstance(done[1].parsed_arguments, Address)  # strict: parsed as its model
    deltas = [e for e in events if e.type == "tool_calls.function.arguments.delta" and e.index == 0]
    assert "".join(e.arguments_delta for e in deltas) == deltas[-1].arguments == done[0].arguments


def test_anthropic_message_stream_events(anthropic):
    with anthropic.messages.stream(model="glm-5", max_tokens=500, messages=WEATHER, tools=[
            {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]) as stream:
        events = list(stream)
    kinds = [event.type for event in events]
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop" and "ping" not in kinds
    thinking = [event for event in events if event.type == "thinking"]
    assert thinking and thinking[-1].snapshot == "".join(e.thinking for e in thinking)
    inputs = [event for event in events if event.type == "input_json"]
    assert inputs[-1].snapshot == {"city": "Paris"} and "".join(e.partial_json for e in inputs) == '{"city": "Paris"}'
    stops = [event.content_block for event in events if event.type == "content_block_stop"]
    assert [block.type for block in stops] == ["thinking", "tool_use"] and stops[1].input == {"city": "Paris"}
    assert events[-1].message.stop_reason == "tool_use" and events[-1].message == stream.get_final_message()
    with anthropic.messages.stream(model="glm-5", max_tokens=500, messages=HI) as stream:
        texts = [event for event in stream if event.type == "text"]
    assert texts[-1].snapshot == "".join(e.text for e in texts) == stream.get_final_text()


def test_citation_signature_and_unknown_events(raw_server):
    events = [
        {"type": "message_start", "message": {"id": "m", "type": "message", "role": "assistant", "content": []}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": "", "citations": []}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": {"cited_text": "x"}}},
        {"type": "brand_new_event", "detail": 1},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_stop"},
    ]
    wire = "".join("event: %s\ndata: %s\n\n" % (e["type"], json.dumps(e)) for e in events)
    with raw_server(sse_response(wire)) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url)
        with client.messages.stream(model="m", max_tokens=5, messages=HI) as stream:
            seen = list(stream)
    kinds = [event.type for event in seen]
    assert "signature" in kinds and "citation" in kinds and "brand_new_event" in kinds  # never dropped
    assert next(e for e in seen if e.type == "signature").signature == "sig"
    assert next(e for e in seen if e.type == "citation").snapshot == [{"cited_text": "x"}]


def test_a_server_that_only_pings_does_not_hold_a_stream_past_the_idle_limit(raw_server):
    stop = threading.Event()

    def pings(conn):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n"
                     b'event: message_start\ndata: {"type":"message_start","message":{"content":[]}}\n\n')
        while not stop.wait(0.05):
            conn.sendall(b'event: ping\ndata: {"type": "ping"}\n\n')

    with raw_server(pings) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url, max_retries=0,
                                   timeout=tokenhub.Timeout(read=5, idle=0.5))
        events = client.messages.create(model="m", max_tokens=5, messages=HI, stream=True)
        try:
            with pytest.raises(tokenhub.APITimeoutError, match="Timeout.idle"):
                list(events)
        finally:
            stop.set()


# ---------------------------------------------------------------------------
# Structured outputs
# ---------------------------------------------------------------------------


def test_parse_with_a_pydantic_shaped_model_sends_a_strict_schema(client, mock):
    completion = client.chat.completions.parse(model="glm-5", messages=[{"role": "user", "content": "Who is Ada?"}],
                                               response_format=Person)
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person) and person.name == "Ada" and person.age == 18
    assert len(person.addresses) == 2 and isinstance(person.addresses[0], Address)  # $ref, minItems
    sent = mock.requests[-1].body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["name"] == "Person" and sent["json_schema"]["strict"]
    schema = sent["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and schema["required"] == ["name", "age", "addresses", "nickname"]
    assert schema["$defs"]["Address"] == {"title": "Address", "type": "object", "properties": {"city": {"type": "string"}},
                                          "additionalProperties": False, "required": ["city"]}
    assert "default" not in schema["properties"]["nickname"]


@pytest.mark.parametrize("kind,check", [
    (Point, lambda value: value == Point(x=1, y=1)),
    (Movie, lambda value: set(value) == {"title", "year"} and isinstance(value["year"], int)),
    ({"title": "answer", "type": "object", "properties": {"ok": {"type": "boolean"}, "mood": {"enum": ["calm", "busy"]},
                                                          "kind": {"const": "fixed"}}},
     lambda value: value == {"ok": True, "mood": "calm", "kind": "fixed"}),
])
def test_parse_with_a_dataclass_a_typeddict_or_a_schema(client, anthropic, kind, check):
    assert check(client.chat.completions.parse(model="glm-5", messages=HI, response_format=kind)
                 .choices[0].message.parsed)
    assert check(anthropic.messages.parse(model="glm-5", max_tokens=500, messages=HI, output_format=kind).parsed_output)


def test_messages_parse_sends_output_config(anthropic, mock):
    message = anthropic.messages.parse(model="glm-5", max_tokens=500, messages=HI, output_format=Person)
    assert isinstance(message.parsed_output, Person)
    config = mock.requests[-1].body["output_config"]
    assert config["format"]["type"] == "json_schema" and config["format"]["schema"]["additionalProperties"] is False


def test_a_refusal_parses_to_none(raw_server):
    body = {"id": "c", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop", "message": {
        "role": "assistant", "content": None, "refusal": "I can't help with that."}}]}
    data = json.dumps(body).encode()
    wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data
    with raw_server(wire) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url)
        message = client.chat.completions.parse(model="m", messages=HI, response_format=Point).choices[0].message
    assert message.parsed is None and message.refusal == "I can't help with that."


def test_pydantic_function_tool_calls_carry_parsed_arguments(client):
    made = tokenhub.pydantic_function_tool(Address, name="get_weather", description="Weather where?")
    assert made == {"type": "function", "function": {"name": "get_weather", "strict": True,
                                                     "description": "Weather where?", "parameters": {
                                                         "title": "Address", "type": "object",
                                                         "properties": {"city": {"type": "string"}},
                                                         "additionalProperties": False, "required": ["city"]}}}
    completion = client.chat.completions.parse(model="glm-5", messages=WEATHER, tools=[made])
    call = completion.choices[0].message.tool_calls[0]
    assert isinstance(call.function.parsed_arguments, Address) and call.function.parsed_arguments.city == "Paris"


def test_a_streamed_parse_shows_partial_values_then_the_parsed_object(client):
    with client.chat.completions.stream(model="glm-5", messages=HI, response_format=Point) as stream:
        events = list(stream)
    partial = [event.parsed for event in events if event.type == "content.delta"]
    assert partial[-1] == {"x": 1, "y": 1}
    (done,) = [event for event in events if event.type == "content.done"]
    assert done.parsed == Point(x=1, y=1) and stream.get_final_completion().choices[0].message.parsed == Point(1, 1)


@pytest.mark.parametrize("text,value", [
    ('{"a": "he', {"a": "he"}), ('{"a": [1, 2', {"a": [1, 2]}), ('{"a": {"b": tr', {"a": {}}),
    ('{"a": 1, "b"', {"a": 1}), ('{"a": "x\\"', {"a": 'x"'}), ("", None), ("[", []),
])
def test_partial_json(text, value):
    assert tokenhub._partial_json(text) == value


# ---------------------------------------------------------------------------
# Token counting, the module-level client
# ---------------------------------------------------------------------------


def test_count_tokens_agrees_with_the_usage_of_the_same_request(anthropic):
    params = {"model": "glm-5", "messages": WEATHER, "system": "Be brief.",
              "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}]}
    counted = anthropic.messages.count_tokens(**params)
    assert counted.input_tokens == anthropic.messages.create(max_tokens=500, **params).usage.input_tokens > 1


def test_the_module_level_client(mock, monkeypatch):
    monkeypatch.setattr(tokenhub, "api_key", "module-key")
    monkeypatch.setattr(tokenhub, "base_url", mock.url)
    reply = tokenhub.chat.completions.create(model="glm-5", messages=HI)
    assert reply.choices[0].message.content.startswith("This is")
    first = tokenhub._module_client()
    assert tokenhub._module_client() is first  # built once for the same settings
    monkeypatch.setattr(tokenhub, "api_key", "another-key")
    assert tokenhub._module_client() is not first
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        tokenhub.nothing


# ---------------------------------------------------------------------------
# The mock's side
# ---------------------------------------------------------------------------


def test_the_mock_refuses_message_threads_the_documented_way(mock):
    body = {"model": "glm-5", "max_tokens": 10, "messages": HI, "thread": {"type": "create"}}
    status, headers, reply = raw_request(mock, "POST", "/v1/messages", body, {"x-api-key": "k"})
    assert status == 400 and reply["error"]["details"] == {"error_code": "thread_unsupported_request", "unsupported": []}
    assert headers["request-id"] == headers["x-request-id"] == reply["request_id"]


def test_a_schema_in_the_prompt_gets_json_for_it(client):
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "sunny": {"type": "boolean"}}}
    ask = [{"role": "system", "content": "Reply in JSON matching this schema: %s" % json.dumps(schema)}] + HI
    reply = client.chat.completions.create(model="glm-5", messages=ask)
    assert json.loads(reply.choices[0].message.content) == {"city": "example city", "sunny": True}


def test_canned_json_follows_one_of_and_arrays_of_objects(client):
    schema = {"type": "object", "properties": {
        "shape": {"oneOf": [{"type": "object", "properties": {"radius": {"type": "number"}}}, {"type": "string"}]},
        "tags": {"type": "array", "items": {"type": "object", "properties": {"name": {"type": "string"}}}, "minItems": 3}}}
    reply = client.chat.completions.create(model="glm-5", messages=HI, response_format={
        "type": "json_schema", "json_schema": {"name": "x", "schema": schema}})
    value = json.loads(reply.choices[0].message.content)
    assert value == {"shape": {"radius": 1.0}, "tags": [{"name": "example name"}] * 3}


def test_hint_words_fill_strings(client):
    reply = client.chat.completions.parse(model="glm-5", messages=[{"role": "user", "content": "Who is Ada?"}],
                                          response_format=Movie)
    assert reply.choices[0].message.parsed["title"] == "Ada"


