"""The OpenAI Responses protocol end to end: tokenhub's client against the mock (and
against raw servers for the wire shapes a mock would not send)."""

import json

import pytest

import tokenhub
from conftest import raw_request, wire_bytes, post_bytes, dechunk, sse_response
from mock_server import redacted

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

ANSWER = "This is the TokenHub mock server (%s). You said: %s"
WEATHER_TOOL = {"type": "function", "name": "get_weather", "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
ASK = "What's the weather in Paris?"


def without_clock(value):
    if isinstance(value, dict):
        return {k: without_clock(v) for k, v in value.items() if k != "created_at"}
    return [without_clock(v) for v in value] if isinstance(value, list) else value


def test_a_plain_response(client, mock):
    reply = client.responses.create(model="deepseek-v4-flash", input="Hello there", instructions="Be brief.",
                                    metadata={"team": "a"})
    assert reply.object == "response" and reply.status == "completed" and reply.id.startswith("resp_")
    assert reply.output_text == ANSWER % ("deepseek-v4-flash", "Hello there")
    reasoning, message = reply.output
    assert reasoning.type == "reasoning" and reasoning.id.startswith("rs_") and reasoning.content[0].text
    assert message.type == "message" and message.id.startswith("msg_") and message.role == "assistant"
    usage = reply.usage
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens and usage.output_tokens_details.reasoning_tokens
    assert reply.instructions == "Be brief." and reply.metadata == {"team": "a"}
    request = mock.requests[0]
    assert request.path == "/v1/responses" and request.headers["authorization"] == "Bearer " + redacted("test-key")
    assert request.body == {"model": "deepseek-v4-flash", "input": "Hello there", "instructions": "Be brief.",
                            "metadata": {"team": "a"}}


def test_a_stream_is_every_event_numbered_and_adds_up_to_the_plain_reply(client, mock):
    plain = client.responses.create(model="glm-5", input="Hello there")
    events = list(client.responses.create(model="glm-5", input="Hello there", stream=True))
    types = [event.type for event in events]
    assert types[:2] == ["response.created", "response.in_progress"] and types[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert "response.output_text.delta" in types and "response.reasoning_text.delta" in types
    folded = None
    for event in events:
        folded = tokenhub.accumulate_response_event(folded, event)
    assert without_clock(tokenhub.final_response(folded)) == without_clock(plain)
    assert tokenhub.final_response(folded).output_text == plain.output_text
    with client.responses.stream(model="glm-5", input="Hello there") as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_response()
    assert text == plain.output_text and without_clock(final) == without_clock(plain)
    assert stream.get_final_text() == plain.output_text


def test_the_stream_on_the_wire_has_event_types_and_no_done_line(mock):
    wire = wire_bytes(mock, post_bytes("/v1/responses", {"model": "glm-5", "input": "Hi", "stream": True}))
    body, ended = dechunk(wire)
    assert ended and b"[DONE]" not in body
    for block in body.decode().strip().split("\n\n"):
        event, data = block.split("\n")
        payload = json.loads(data[len("data: "):])
        assert event == "event: " + payload["type"] and isinstance(payload["sequence_number"], int)


def test_reasoning_summaries_when_asked(client):
    with client.responses.stream(model="glm-5", input="Hi", reasoning={"summary": "auto"}) as stream:
        thought = "".join(stream.reasoning_stream)
        final = stream.get_final_response()
    assert thought and final.output[0].summary[0].text == thought


def test_tools_and_a_tool_round_by_hand(client, mock):
    reply = client.responses.create(model="glm-5", input=ASK, tools=[WEATHER_TOOL])
    (call,) = [item for item in reply.output if item.type == "function_call"]
    assert call.id.startswith("fc_") and call.call_id.startswith("call_") and json.loads(call.arguments) == {"city": "Paris"}
    items = [{"role": "user", "content": ASK}] + reply.output + [
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}]
    final = client.responses.create(model="glm-5", input=items, tools=[WEATHER_TOOL])
    assert final.output_text == "Here is what I found: get_weather returned sunny."
    assert client.responses.create(model="glm-5", input=ASK, tools=[WEATHER_TOOL], tool_choice="none").output_text


@pytest.mark.parametrize("stream", [False, True])
def test_run_tools_sends_reasoning_back_within_the_loop(client, mock, stream):
    @tokenhub.tool
    def get_weather(city: str) -> dict:
        """Weather for a city."""
        return {"city": city, "sky": "clear"}

    assert get_weather.responses() == {"type": "function", "name": "get_weather", "description": "Weather for a city.",
                                       "parameters": get_weather.parameters}
    runner = client.responses.run_tools(model="glm-5", input=ASK, tools=[get_weather], stream=stream)
    final = runner.until_done()
    assert final.output_text == 'Here is what I found: get_weather returned {"city": "Paris", "sky": "clear"}.'
    kinds = [item.get("type") or item.get("role") for item in runner.messages]
    assert kinds == ["user", "reasoning", "function_call", "function_call_output", "reasoning", "message"]
    second = mock.requests[1].body["input"]
    assert [item.get("type") or item.get("role") for item in second] == kinds[:4]  # reasoning went back
    assert tokenhub.assistant_message(final) == runner.messages[-1:]  # old reasoning left out across turns


def test_previous_response_id_continues_and_retrieve_reads_it(client, mock):
    mock.add("second turn", match={"protocol": "responses", "turn": 2, "user": "and tomorrow"})
    first = client.responses.create(model="glm-5", input="What's up?")
    second = client.responses.create(model="glm-5", input="and tomorrow?", previous_response_id=first.id)
    assert second.output_text == "second turn"  # the fixture saw the whole conversation: turn 2
    assert second.previous_response_id == first.id
    assert without_clock(client.responses.retrieve(first.id)) == without_clock(first)
    with pytest.raises(tokenhub.NotFoundError, match="resp_nothing"):
        client.responses.retrieve("resp_nothing")


def test_previous_response_not_found(client):
    unstored = client.responses.create(model="glm-5", input="Hi", store=False)
    for previous in (unstored.id, "resp_never"):
        with pytest.raises(tokenhub.BadRequestError) as caught:
            client.responses.create(model="glm-5", input="again", previous_response_id=previous)
        error = caught.value.body["error"]
        assert error["code"] == "previous_response_not_found" and error["param"] == "previous_response_id"


@pytest.mark.parametrize("body,param,words", [
    ({"input": "Hi"}, "model", "missing required field: 'model'"),
    ({"model": "m"}, "input", "missing required field: 'input'"),
    ({"model": "m", "input": 5}, "input", "must be a string or a list"),
    ({"model": "m", "input": [{"type": "function_call_output", "call_id": "call_x", "output": "1"}]}, "input",
     "matches no function_call earlier in the conversation"),
    ({"model": "m", "input": "Hi", "temperature": 3}, "temperature", "from 0 to 2"),
])
def test_validation_errors_name_the_field(mock, body, param, words):
    status, _, reply = raw_request(mock, "POST", "/v1/responses", body, {"Content-Type": "application/json"})
    assert status == 400 and reply["error"]["param"] == param and words in reply["error"]["message"]


def test_max_output_tokens_makes_an_incomplete_response(client):
    plain = client.responses.create(model="glm-5", input="Hello there", max_output_tokens=3)
    assert plain.status == "incomplete" and plain.incomplete_details.reason == "max_output_tokens"
    events = list(client.responses.create(model="glm-5", input="Hello there", max_output_tokens=3, stream=True))
    assert events[-1].type == "response.incomplete"  # ends the stream, no exception
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


def test_json_schema_output(client):
    schema = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
              "required": ["name", "age"]}
    reply = client.responses.create(model="glm-5", input="Who?", text={"format": {
        "type": "json_schema", "name": "person", "schema": schema, "strict": True}})
    person = json.loads(reply.output_text)
    assert isinstance(person["name"], str) and isinstance(person["age"], int)
    assert json.loads(client.responses.create(model="glm-5", input="Hi", text={"format": {"type": "json_object"}})
                      .output_text)


def test_what_codex_sends_is_accepted_and_its_shell_call_rendered(client, mock):
    mock.add({"tool_calls": [{"name": "local_shell", "arguments": {"command": ["ls", "-la"]}}]},
             match={"protocol": "responses", "has_tool_result": False})
    body = {
        "model": "glm-5", "instructions": "You are Codex.", "store": False, "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc", "reasoning": {"summary": "auto"}, "parallel_tool_calls": False, "tool_choice": "auto",
        "tools": [{"type": "local_shell"}, {"type": "custom", "name": "apply_patch", "format": {"type": "grammar"}},
                  {"type": "web_search"}, {"type": "namespace", "name": "mcp", "tools": []}, WEATHER_TOOL],
        "input": [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "ctx"}]},
                  {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list files"}]}],
        "client_metadata": {"x": "y"},
    }
    headers = {"originator": "codex_exec", "session-id": "s-1"}
    body_copy = dict(body)
    events = list(client.responses.create(stream=True, extra_headers=headers, **body_copy))
    done = [e.item for e in events if e.type == "response.output_item.done"]
    shell = [item for item in done if item.type == "local_shell_call"]
    assert shell and shell[0].action == {"type": "exec", "command": ["ls", "-la"], "env": {}, "timeout_ms": None,
                                         "user": None, "working_directory": None}
    assert events[-1].type == "response.completed" and events[-1].response.id.startswith("resp_")
    result = {"type": "local_shell_call_output", "call_id": shell[0].call_id, "output": "a.txt"}
    body_copy = dict(body, input=body["input"] + done + [result])
    final = client.responses.create(extra_headers=headers, **body_copy)
    assert final.output_text == "Here is what I found: local_shell returned a.txt."


def test_fixture_protocol_values_keep_their_meaning(client, mock):
    mock.add("from the chat fixture", match={"protocol": "openai"})
    mock.add("from the responses fixture", match={"protocol": "responses"})
    assert client.responses.create(model="m", input="Hi").output_text == "from the responses fixture"
    assert client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Hi"}]) \
        .choices[0].message.content == "from the chat fixture"
    with pytest.raises(ValueError, match='expected one of "openai", "anthropic", "responses"'):
        mock.add("x", match={"protocol": "grpc"})


# ---------------------------------------------------------------------------
# Wire shapes from a raw server: both error shapes, failure, an early end
# ---------------------------------------------------------------------------


def events(*payloads):
    return "".join("event: %s\ndata: %s\n\n" % (p["type"], json.dumps(dict(p, sequence_number=n)))
                   for n, p in enumerate(payloads))


CREATED = {"type": "response.created", "response": {"id": "resp_1", "object": "response", "status": "in_progress",
                                                    "output": []}}


@pytest.mark.parametrize("error,cls,status", [
    ({"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None}, tokenhub.RateLimitError, 429),
    ({"type": "error", "error": {"type": "overloaded_error", "code": "overloaded_error", "message": "busy"}},
     tokenhub.OverloadedError, 529),
    ({"type": "error", "code": "server_error", "message": "oops"}, tokenhub.InternalServerError, 500),
    ({"type": "response.failed", "response": {"id": "resp_1", "object": "response", "status": "failed",
                                              "error": {"code": "rate_limit_exceeded", "message": "quota"}}},
     tokenhub.RateLimitError, 429),
])
def test_error_events_of_both_shapes_and_a_failed_response_raise_their_class(raw_server, error, cls, status):
    with raw_server(sse_response(events(CREATED, error))) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url, max_retries=0)
        stream = client.responses.stream(model="m", input="Hi")
        with pytest.raises(cls) as caught:
            stream.get_final_response()
    assert caught.value.status_code == status
    assert caught.value.snapshot.id == "resp_1"  # what had arrived


def test_an_end_before_a_terminal_event_is_an_incomplete_stream(raw_server):
    with raw_server(sse_response(events(CREATED) + "data: [DONE]\n\n")) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url, max_retries=0)
        with pytest.raises(tokenhub.IncompleteStreamError, match="after 1 item"):
            list(client.responses.create(model="m", input="Hi", stream=True))


def test_an_injected_error_event_is_numbered_in_sequence(mock):
    wire = wire_bytes(mock, post_bytes("/v1/responses", {"model": "glm-5", "input": "Hi", "stream": True},
                                       {"X-Mock-Fault": "error-after=3,type=rate_limit_error"}))
    blocks = dechunk(wire)[0].decode().strip().split("\n\n")
    numbers = [json.loads(block.split("data: ", 1)[1])["sequence_number"] for block in blocks]
    last = json.loads(blocks[-1].split("data: ", 1)[1])
    assert numbers == [0, 1, 2, 3] and last["type"] == "error" and last["code"] == "rate_limit_error"


def test_the_accumulator_places_parts_and_never_grows_on_a_wild_index():
    events = [
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "message", "content": []}},
        {"type": "response.content_part.added", "output_index": 0, "content_index": 0,
         "part": {"type": "output_text", "text": ""}},
        {"type": "response.output_text.delta", "output_index": 0, "content_index": 0, "delta": "Hel"},
        {"type": "response.output_text.delta", "content_index": 0, "delta": "lo"},  # no output_index: the last item
        {"type": "response.output_item.added", "output_index": 10 ** 9, "item": {"type": "function_call"}},
    ]
    snapshot = None
    for event in events:
        snapshot = tokenhub.accumulate_response_event(snapshot, event)
    assert len(snapshot.output) == 2 and snapshot.output[1].type == "function_call"
    assert tokenhub.final_response(snapshot).output_text == "Hello"
