"""@tokenhub.tool schemas, and the run_tools loop on both protocols against the mock."""

import enum
import json
import sys
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

import pytest

import tokenhub
from tokenhub import Tool, tool

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers


class Unit(enum.Enum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


# ---------------------------------------------------------------------------
# Schemas from type hints and docstrings
# ---------------------------------------------------------------------------


def test_every_supported_hint():
    def f(text: str, count: int, ratio: float, flag: bool, nothing: None, names: List[str],
          scores: Dict[str, int], mode: Literal["fast", "slow"], unit: Unit, maybe: Optional[int],
          either: Union[int, str], pair: Tuple[int, ...], anything: Any, raw, plain_list: list,
          plain_dict: dict, mixed: Literal[1, "a"]):
        """Do many things."""

    properties = tool(f).parameters["properties"]
    assert properties == {
        "text": {"type": "string"}, "count": {"type": "integer"}, "ratio": {"type": "number"},
        "flag": {"type": "boolean"}, "nothing": {"type": "null"},
        "names": {"type": "array", "items": {"type": "string"}},
        "scores": {"type": "object", "additionalProperties": {"type": "integer"}},
        "mode": {"type": "string", "enum": ["fast", "slow"]},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "maybe": {"type": ["integer", "null"]},
        "either": {"type": ["integer", "string"]},
        "pair": {"type": "array", "items": {"type": "integer"}},
        "anything": {}, "raw": {}, "plain_list": {"type": "array"}, "plain_dict": {"type": "object"},
        "mixed": {"enum": [1, "a"]},
    }


@pytest.mark.skipif(sys.version_info < (3, 10), reason="X | None and list[str] need Python 3.10")
def test_new_style_hints():
    namespace = {}
    exec("def g(a: list[str], b: int | None = None, c: dict[str, list[int]] = None): pass", namespace)
    properties = tool(namespace["g"]).parameters["properties"]
    assert properties["a"] == {"type": "array", "items": {"type": "string"}}
    assert properties["b"] == {"type": ["integer", "null"], "default": None}
    assert properties["c"]["additionalProperties"] == {"type": "array", "items": {"type": "integer"}}


@pytest.mark.skipif(sys.version_info < (3, 9), reason="typing.Annotated is Python 3.9+")
def test_annotated_gives_a_description():
    from typing import Annotated

    def f(city: Annotated[str, "The city, e.g. Paris"]):
        pass

    assert tool(f).parameters["properties"]["city"] == {"type": "string", "description": "The city, e.g. Paris"}


def test_defaults_are_not_required_and_are_shown():
    def f(city: str, unit: Unit = Unit.CELSIUS, days: int = 3, note: Optional[str] = None, obj: Any = object()):
        pass

    schema = tool(f).parameters
    assert schema["required"] == ["city"] and schema["additionalProperties"] is False
    assert schema["properties"]["unit"]["default"] == "celsius"
    assert schema["properties"]["days"]["default"] == 3 and schema["properties"]["note"]["default"] is None
    assert "default" not in schema["properties"]["obj"]


def test_an_object_parameter_type_is_refused_clearly():
    def f(obj: object):
        pass

    with pytest.raises(TypeError, match=r"cannot describe f\(obj\): type <class 'object'> \(expected str, int"):
        tool(f)


GOOGLE = '''Get the weather.

    More detail on a second paragraph.

    Args:
        city (str): The city's name,
            as the user wrote it.
        days: How many days.

    Returns:
        The forecast.
    '''
NUMPY = '''Get the weather.

    Parameters
    ----------
    city : str
        The city's name,
        as the user wrote it.
    days : int
        How many days.

    Returns
    -------
    str
    '''
REST = '''Get the weather.

    :param str city: The city's name,
        as the user wrote it.
    :param days: How many days.
    :returns: the forecast
    '''


@pytest.mark.parametrize("doc", [GOOGLE, NUMPY, REST], ids=["google", "numpy", "rest"])
def test_docstring_styles(doc):
    def get_weather(city: str, days: int = 1):
        pass

    get_weather.__doc__ = doc
    made = tool(get_weather)
    assert made.description.startswith("Get the weather.")
    assert "Returns" not in made.description and "city" not in made.description
    assert made.parameters["properties"]["city"]["description"] == "The city's name, as the user wrote it."
    assert made.parameters["properties"]["days"]["description"] == "How many days."


def test_tool_objects_render_both_formats_and_stay_callable():
    @tool(name="weather_now", description="Now.")
    def get_weather(city: str) -> str:
        return "sunny in " + city

    assert isinstance(get_weather, Tool) and get_weather("Paris") == "sunny in Paris"
    assert get_weather.openai() == {"type": "function", "function": {
        "name": "weather_now", "description": "Now.", "parameters": get_weather.parameters}}
    assert get_weather.anthropic() == {"name": "weather_now", "description": "Now.", "input_schema": get_weather.parameters}
    assert "weather_now" in repr(get_weather)


def test_run_converts_enum_values():
    @tool
    def convert(unit: Unit) -> str:
        return unit.name

    assert convert.run({"unit": "fahrenheit"}) == "FAHRENHEIT"


def test_star_args_are_refused():
    def f(*args):
        pass

    with pytest.raises(TypeError, match=r"takes \*args; a tool's parameters must be named"):
        tool(f)


# ---------------------------------------------------------------------------
# The loop, against the mock server
# ---------------------------------------------------------------------------

CALLS = []


@tool
def get_weather(city: str) -> dict:
    """The weather in a city."""
    CALLS.append(("get_weather", city))
    return {"city": city, "sky": "clear"}


@tool
def get_time(city: str) -> str:
    """The local time in a city."""
    CALLS.append(("get_time", city))
    return "12:00"


@tool
def explode(city: str) -> str:
    """Always fails."""
    raise RuntimeError("the sensor is offline")


ASK = [{"role": "user", "content": "What's the weather and the time in Paris?"}]


@pytest.fixture(autouse=True)
def forget_calls():
    CALLS.clear()


def run(client, protocol, **params):
    if protocol == "openai":
        return client.chat.completions.run_tools(**params)
    return client.messages.run_tools(max_tokens=1000, **params)


def final_text(reply):
    if "choices" in reply:
        return reply.choices[0].message.content
    return "".join(b.text for b in reply.content if b.type == "text")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_two_tools_in_one_turn_then_an_answer(client, anthropic, protocol, stream):
    runner = run(client if protocol == "openai" else anthropic, protocol, model="deepseek-v3.2",
                 messages=ASK, tools=[get_weather, get_time], stream=stream)
    replies = list(runner)
    assert len(replies) == 2 and not runner.max_iterations_reached
    if stream:
        assert all(isinstance(r, tokenhub.Stream) for r in replies)
    assert CALLS == [("get_weather", "Paris"), ("get_time", "Paris")]  # in the order asked
    final = runner.until_done()
    assert final_text(final) == ('Here is what I found: get_weather returned {"city": "Paris", "sky": "clear"}; '
                                 "get_time returned 12:00.")
    roles = [m["role"] for m in runner.messages]
    if protocol == "openai":
        assert roles == ["user", "assistant", "tool", "tool", "assistant"]
    else:
        assert roles == ["user", "assistant", "user", "assistant"]
        assert [b["type"] for b in runner.messages[2]["content"]] == ["tool_result", "tool_result"]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_the_transcript_continues_the_conversation(client, anthropic, mock, protocol):
    api = client if protocol == "openai" else anthropic
    runner = run(api, protocol, model="deepseek-v3.2", messages=ASK, tools=[get_weather])
    runner.until_done()
    more = runner.messages + [{"role": "user", "content": "Thanks! And tomorrow?"}]
    if protocol == "openai":
        reply = client.chat.completions.create(model="deepseek-v3.2", messages=more)
    else:
        reply = anthropic.messages.create(model="deepseek-v3.2", max_tokens=100, messages=more)
    assert "tomorrow" in final_text(reply)  # the mock checked every tool result's id: a 400 otherwise


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_a_raising_tool_reports_its_error_to_the_model(client, anthropic, mock, protocol):
    mock.add({"tool_calls": [{"name": "explode", "arguments": {"city": "Paris"}}]}, match={"has_tool_result": False})
    runner = run(client if protocol == "openai" else anthropic, protocol, model="m", messages=ASK, tools=[explode])
    final = runner.until_done()
    expected = "Error: explode raised RuntimeError: the sensor is offline"
    assert expected in final_text(final)
    if protocol == "openai":
        assert runner.messages[2] == {"role": "tool", "tool_call_id": runner.messages[1]["tool_calls"][0]["id"],
                                      "content": expected}
    else:
        (result,) = runner.messages[2]["content"]
        assert result["is_error"] is True and result["content"] == expected


# Broken JSON arguments reach an Anthropic client only in a stream (a message's input is an object).
@pytest.mark.parametrize("protocol,stream", [("openai", False), ("openai", True), ("anthropic", True)])
def test_bad_json_arguments_and_unknown_tools_go_back_as_errors(client, anthropic, mock, protocol, stream):
    mock.add({"tool_calls": [{"name": "get_weather", "arguments": '{"city": "Par'},
                             {"name": "launch_rocket", "arguments": {}}]}, match={"has_tool_result": False})
    runner = run(client if protocol == "openai" else anthropic, protocol, model="m", messages=ASK,
                 tools=[get_weather], stream=stream)
    runner.until_done()
    if protocol == "openai":
        contents = [m["content"] for m in runner.messages if m["role"] == "tool"]
    else:
        contents = [b["content"] for b in runner.messages[2]["content"]]
    assert contents[0].startswith("Error: the arguments are not valid JSON") and '{"city": "Par' in contents[0]
    assert contents[1] == "Error: there is no tool named 'launch_rocket' (the tools are: get_weather)"
    assert CALLS == []


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_the_iteration_limit(client, anthropic, mock, protocol):
    mock.add({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Rome"}}]})  # it never stops asking
    runner = run(client if protocol == "openai" else anthropic, protocol, model="m", messages=ASK,
                 tools=[get_weather], max_iterations=3)
    runner.until_done()
    assert len(mock.requests) == 3 and runner.max_iterations_reached
    assert CALLS == [("get_weather", "Rome")] * 3  # the last turn's tools ran too: the transcript is complete
    assert runner.messages[-1]["role"] == ("tool" if protocol == "openai" else "user")
    with pytest.raises(ValueError, match="max_iterations must be a whole number >= 1, got 0"):
        client.chat.completions.run_tools(model="m", messages=ASK, tools=[get_weather], max_iterations=0)


def test_thinking_goes_back_inside_the_loop_openai(client, mock):
    client.chat.completions.run_tools(model="glm-5", messages=ASK, tools=[get_weather]).until_done()
    second = mock.requests[1].body["messages"][1]
    assert second["role"] == "assistant" and second["reasoning_content"].startswith("The user asked")
    assert second["tool_calls"][0]["function"]["name"] == "get_weather"
    assert mock.requests[1].body["tools"] == [get_weather.openai()]


def test_thinking_goes_back_inside_the_loop_anthropic(anthropic, mock):
    anthropic.messages.run_tools(model="glm-5", max_tokens=1000, messages=ASK, tools=[get_weather], stream=True).until_done()
    second = mock.requests[1].body["messages"][1]
    assert [b["type"] for b in second["content"]] == ["thinking", "tool_use"]
    assert mock.requests[1].body["tools"] == [get_weather.anthropic()] and mock.requests[1].body["stream"] is True


def test_plain_functions_work_as_tools_and_duplicates_are_refused(client):
    def lookup(city: str) -> str:
        """Look a city up."""
        return city.upper()

    runner = client.chat.completions.run_tools(model="m", messages=[{"role": "user", "content": "lookup Oslo"}], tools=[lookup])
    assert "OSLO" in runner.until_done().choices[0].message.content
    with pytest.raises(ValueError, match="two tools are named 'lookup'"):
        client.chat.completions.run_tools(model="m", messages=ASK, tools=[lookup, lookup])


# ---------------------------------------------------------------------------
# assistant_message: what a plain multi-turn conversation sends back
# ---------------------------------------------------------------------------


def test_assistant_message_leaves_old_reasoning_out_by_default(client, anthropic):
    reply = client.chat.completions.create(model="glm-5", messages=ASK, tools=[get_weather.openai()])
    turn = tokenhub.assistant_message(reply)
    assert "reasoning_content" not in turn and turn["tool_calls"][0]["function"]["name"] == "get_weather"
    assert tokenhub.assistant_message(reply, keep_reasoning=True)["reasoning_content"]
    message = anthropic.messages.create(model="glm-5", max_tokens=500, messages=[{"role": "user", "content": "Hi"}])
    assert [b["type"] for b in tokenhub.assistant_message(message)["content"]] == ["text"]
    assert [b["type"] for b in tokenhub.assistant_message(message, keep_reasoning=True)["content"]] == ["thinking", "text"]
    json.dumps(turn)  # ready for the next request
