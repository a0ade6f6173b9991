"""TokenHub's models as they behave: reasoning in three shapes, the interleaved-thinking
rule, and usage and cost read the same way for every protocol."""

import json
import os
import subprocess
import sys

import pytest

import tokenhub
from conftest import ROOT, raw_request, sse_response
from mock_server import MockServer

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

HI = [{"role": "user", "content": "Hi"}]
ANSWER = "This is the TokenHub mock server (%s). You said: Hi"
THOUGHT = "The user said 'Hi'. I will reply briefly."
WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]


# ---------------------------------------------------------------------------
# One reasoning channel over three shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["reasoning_content", "reasoning_details", "think"])
def test_every_reasoning_shape_reads_the_same(client, mock, shape):
    mock.add({"text": "The answer.", "reasoning": "Some careful thought.", "reasoning_shape": shape})
    plain = client.chat.completions.create(model="m", messages=HI)
    with client.chat.completions.stream(model="m", messages=HI) as stream:
        kinds = list(stream.deltas)
        final = stream.get_final_completion()
    thought = "".join(text for kind, text in kinds if kind == "reasoning")
    answer = "".join(text for kind, text in kinds if kind == "text")
    assert (thought.strip(), answer) == ("Some careful thought.", "The answer.")
    assert stream.get_final_text() == "The answer." == tokenhub._CHAT.text(plain)
    with client.chat.completions.stream(model="m", messages=HI) as again:
        assert "".join(again.reasoning_stream).strip() == "Some careful thought."
    assert final.choices[0].message == plain.choices[0].message  # raw fields untouched, streamed or not
    if shape == "think":
        assert plain.choices[0].message.content.startswith("<think>")  # kept, to be sent back whole
    if shape == "reasoning_details":
        assert plain.choices[0].message.reasoning_details[0].text == "Some careful thought."


@pytest.mark.parametrize("body,shape", [({}, "think"), ({"reasoning_split": True}, "reasoning_details")])
def test_minimax_sends_reasoning_its_own_way(client, body, shape):
    message = client.chat.completions.create(model="minimax-m2.7", messages=HI, extra_body=body).choices[0].message
    assert ("<think>" in message.content) is (shape == "think") and ("reasoning_details" in message) is (shape != "think")
    assert tokenhub._CHAT.text(client.chat.completions.create(model="minimax-m2.7", messages=HI, extra_body=body)) \
        == ANSWER % "minimax-m2.7"


@pytest.mark.parametrize("pieces", [
    ["<think>", "plan", "</think>", "\n\nDone."],
    ["<thi", "nk>pl", "an</th", "ink>\n", "\nDo", "ne."],
    ["  <", "think>\nplan\n<", "/think>Done."],
])
def test_a_think_block_is_recognised_with_its_tags_cut_across_chunks(raw_server, pieces):
    chunks = "".join('data: {"choices":[{"index":0,"delta":{"content":%s}}]}\n\n' % json.dumps(piece) for piece in pieces)
    with raw_server(sse_response(chunks + "data: [DONE]\n\n")) as srv:
        client = tokenhub.TokenHub(api_key="k", base_url=srv.url)
        with client.chat.completions.stream(model="m", messages=HI) as stream:
            kinds = list(stream.deltas)
    assert "".join(t for k, t in kinds if k == "reasoning").strip() == "plan"
    assert "".join(t for k, t in kinds if k == "text") == "Done."


def test_the_command_line_shows_every_shape_as_reasoning(mock):
    mock.add({"text": "The answer.", "reasoning": "Some careful thought.", "reasoning_shape": "think"})
    env = dict(os.environ, TOKENHUB_API_KEY="k", TOKENHUB_BASE_URL=mock.url)
    for stream in ([], ["--no-stream"]):
        result = subprocess.run([sys.executable, os.path.join(ROOT, "tokenhub.py"), "chat", "--show-reasoning", "Hi",
                                 *stream], capture_output=True, text=True, timeout=60, env=env)
        assert result.stdout == "The answer.\n" and result.stderr.strip() == "Some careful thought."


@pytest.mark.parametrize("shape", ["reasoning_content", "reasoning_details", "think"])
def test_old_reasoning_is_dropped_across_turns_and_kept_in_a_tool_loop(client, mock, shape):
    mock.add({"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
              "reasoning": "I need the weather.", "reasoning_shape": shape}, match={"has_tool_result": False})
    mock.add({"text": "Sunny.", "reasoning": "Done.", "reasoning_shape": shape}, match={"has_tool_result": True})
    runner = client.chat.completions.run_tools(model="m", messages=WEATHER,
                                               tools=[tokenhub.tool(lambda city: "sunny")], max_iterations=3)
    final = runner.until_done()
    sent = mock.requests[-1].body["messages"][1]  # the assistant tool-call turn, as it went back
    original = mock.requests[0]
    assert sent["tool_calls"] and original  # the loop's second request carries it
    if shape == "think":
        assert sent["content"].startswith("<think>") and "I need the weather." in sent["content"]
    else:
        assert sent[shape]  # reasoning_content / reasoning_details, as received
    turn = tokenhub.assistant_message(final)
    assert turn["content"] == "Sunny." and "reasoning_content" not in turn and "reasoning_details" not in turn


# ---------------------------------------------------------------------------
# The interleaved-thinking rule, enforced offline
# ---------------------------------------------------------------------------


def tool_round(with_reasoning):
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
    assistant = {"role": "assistant", "content": None, "tool_calls": [call]}
    if with_reasoning:
        assistant["reasoning_content"] = ""  # present, even empty, is what DeepSeek asks
    return WEATHER + [assistant, {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]


def test_a_thinking_deepseek_turn_without_its_reasoning_gets_deepseeks_400(client, mock):
    with pytest.raises(tokenhub.BadRequestError) as caught:
        client.chat.completions.create(model="deepseek-v4-flash", messages=tool_round(False), tools=TOOLS)
    assert caught.value.body["error"]["message"] == \
        "Missing `reasoning_content` field in the assistant message at message index 1"
    assert client.chat.completions.create(model="deepseek-v4-flash", messages=tool_round(True), tools=TOOLS).choices
    # Not thinking, or not DeepSeek: no such rule.
    assert client.chat.completions.create(model="deepseek-v3.2", messages=tool_round(False), tools=TOOLS).choices
    assert client.chat.completions.create(model="glm-5", messages=tool_round(False), tools=TOOLS).choices


def test_the_rule_on_the_anthropic_protocol(anthropic, mock):
    use = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}}
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
    tools = [{"name": "get_weather", "input_schema": {"type": "object"}}]
    without = WEATHER + [{"role": "assistant", "content": [use]}, result]
    with pytest.raises(tokenhub.BadRequestError, match="Expected `thinking` or `redacted_thinking`, but found `tool_use`"):
        anthropic.messages.create(model="deepseek-v4-flash", max_tokens=500, messages=without, tools=tools)
    thought = {"type": "thinking", "thinking": "I need the weather.", "signature": ""}
    kept = WEATHER + [{"role": "assistant", "content": [thought, use]}, result]
    assert anthropic.messages.create(model="deepseek-v4-flash", max_tokens=500, messages=kept, tools=tools).content


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_tokenhubs_own_tool_loop_passes_the_rule(client, anthropic, protocol):
    @tokenhub.tool
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return "sunny"

    if protocol == "openai":
        final = client.chat.completions.run_tools(model="deepseek-v4-flash", messages=WEATHER, tools=[get_weather])
        assert "get_weather returned sunny" in final.until_done().choices[0].message.content
    else:
        final = anthropic.messages.run_tools(model="deepseek-v4-flash", max_tokens=500, messages=WEATHER,
                                             tools=[get_weather])
        assert "get_weather returned sunny" in final.until_done().content[-1].text


def test_lenient_reasoning_turns_the_rule_off():
    with MockServer(lenient_reasoning=True) as lenient:
        status, _, body = raw_request(lenient, "POST", "/v1/chat/completions",
                                      {"model": "deepseek-v4-flash", "messages": tool_round(False), "tools": TOOLS},
                                      {"Content-Type": "application/json"})
    assert status == 200 and body["choices"]


# ---------------------------------------------------------------------------
# Usage and cost, the same for every protocol
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "responses"])
def test_usage_reads_the_same_on_every_protocol(client, anthropic, mock, protocol):
    mock.add({"text": "Hello.", "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "reasoning_tokens": 50,
                                          "cached_tokens": 400}})
    if protocol == "openai":
        reply = client.chat.completions.create(model="deepseek-v4-flash", messages=HI)
    elif protocol == "anthropic":
        reply = anthropic.messages.create(model="deepseek-v4-flash", max_tokens=500, messages=HI)
    else:
        reply = client.responses.create(model="deepseek-v4-flash", input="Hi")
    usage = tokenhub.usage_of(reply)
    expected_input = 1400 if protocol == "anthropic" else 1000  # Anthropic counts cache reads apart
    assert (usage.input_tokens, usage.output_tokens, usage.cached_tokens) == (expected_input, 200, 400)
    assert usage.reasoning_tokens == (None if protocol == "anthropic" else 50) and usage.raw == reply.usage
    assert tokenhub.cost_of(reply) == pytest.approx((expected_input * 0.15 + 200 * 0.30) / 1e6)


def test_deepseeks_own_cache_counters(raw_server):
    body = json.dumps({"id": "c", "object": "chat.completion", "model": "deepseek-v4-pro", "choices": [], "usage": {
        "prompt_tokens": 100, "completion_tokens": 10, "total_tokens": 110,
        "prompt_cache_hit_tokens": 60, "prompt_cache_miss_tokens": 40}}).encode()
    wire = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with raw_server(wire) as srv:
        reply = tokenhub.TokenHub(api_key="k", base_url=srv.url).chat.completions.create(model="m", messages=HI)
    assert tokenhub.usage_of(reply).cached_tokens == 60
    assert tokenhub.cost_of(reply) == pytest.approx((100 * 1.80 + 10 * 3.60) / 1e6)  # cached billed at the input price


def test_unknown_models_have_an_unknown_cost_and_prices_extend(client):
    reply = client.chat.completions.create(model="glm-5", messages=HI)
    assert tokenhub.cost_of(reply) is None  # never a guess
    assert tokenhub.cost_of(reply, prices={"glm-5": (1.0, 2.0)}) == pytest.approx(
        (reply.usage.prompt_tokens * 1.0 + reply.usage.completion_tokens * 2.0) / 1e6)
    for alias in ("deepseek-v4-flash", "deepseek/deepseek-v4-flash"):
        assert tokenhub.cost_of({"model": alias, "choices": [], "usage": {"prompt_tokens": 10 ** 6,
                                                                          "completion_tokens": 0}}) == pytest.approx(0.15)


def test_a_clients_running_total(mock):
    client = tokenhub.TokenHub(api_key="k", base_url=mock.url, prices={"glm-5": (1.0, 1.0)})
    first = client.chat.completions.create(model="deepseek-v4-flash", messages=HI)
    with client.chat.completions.stream(model="glm-5", messages=HI) as stream:
        second = stream.get_final_completion()
    list(client.chat.completions.create(model="kimi-k2.6", messages=HI, stream=True))  # raw: keeps no usage
    client.chat.completions.create(model="kimi-k2.6", messages=HI)  # no price: counted, not costed
    total = client.usage
    assert total.requests == 3 and total.unpriced_requests == 1
    assert total.input_tokens >= first.usage.prompt_tokens + second.usage.prompt_tokens
    assert total.cost == pytest.approx(tokenhub.cost_of(first) + tokenhub.cost_of(second, prices={"glm-5": (1.0, 1.0)}))
    assert client.with_options(timeout=5).usage == total  # copies share the total
