"""Stream helpers on both protocols, and the two accumulators on their own."""

import copy
import json

import pytest

import tokenhub
from tokenhub import accumulate_chunk, accumulate_event, final_completion, final_message

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

WEATHER = [{"role": "user", "content": "What's the weather and the stock price in Paris?"}]
OPENAI_TOOLS = [{"type": "function", "function": {"name": n, "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}} for n in ("get_weather", "get_stock_price")]
ANTHROPIC_TOOLS = [{"name": t["function"]["name"], "input_schema": t["function"]["parameters"]} for t in OPENAI_TOOLS]
HELLO = [{"role": "user", "content": "Hello there, how are you?"}]


def without_created(obj):
    data = obj.to_dict()
    data.pop("created", None)
    return data


# ---------------------------------------------------------------------------
# OpenAI protocol
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {"model": "deepseek-v4-flash", "messages": HELLO},  # reasoning, then text
    {"model": "deepseek-v3.2", "messages": WEATHER, "tools": OPENAI_TOOLS},  # two parallel tool calls
    {"model": "glm-5", "messages": WEATHER, "tools": OPENAI_TOOLS},  # reasoning and tool calls
    {"model": "glm-5", "messages": HELLO, "n": 2, "logprobs": True, "top_logprobs": 2},
    {"model": "glm-5", "messages": HELLO, "max_tokens": 4},
])
def test_final_completion_equals_the_non_streamed_reply(client, params):
    plain = client.chat.completions.create(**params)
    with client.chat.completions.stream(**params) as stream:
        final = stream.get_final_completion()
    assert without_created(final) == without_created(plain)
    assert final.usage.total_tokens == plain.usage.total_tokens  # stream() asks for usage


def test_text_reasoning_and_deltas(client):
    params = {"model": "deepseek-v4-flash", "messages": HELLO}
    message = client.chat.completions.create(**params).choices[0].message
    with client.chat.completions.stream(**params) as stream:
        pieces = list(stream.text_stream)
        assert stream.get_final_text() == message.content
    assert "".join(pieces) == message.content and len(pieces) > 3
    with client.chat.completions.stream(**params) as stream:
        assert "".join(stream.reasoning_stream) == message.reasoning_content
        assert stream.get_final_completion().choices[0].message.content == message.content  # still gathered
    with client.chat.completions.stream(**params) as stream:
        kinds = [kind for kind, _ in stream.deltas]
    assert kinds == sorted(kinds) and set(kinds) == {"reasoning", "text"}  # every reasoning piece first


def test_the_snapshot_grows_while_iterating_and_until_done_reads_the_rest(client):
    stream = client.chat.completions.create(model="glm-5", messages=HELLO, stream=True)
    assert stream.snapshot is None
    next(stream)
    next(stream)
    assert stream.snapshot.choices[0].message.reasoning_content
    final = stream.until_done()
    assert final.choices[0].finish_reason == "stop" and stream.received > 2
    assert final.usage is None  # create(stream=True) sends the request as given: no usage asked


def test_a_stream_cut_short_raises_with_the_partial_snapshot(client):
    stream = client.chat.completions.stream(
        model="deepseek-v3.2", messages=HELLO, extra_headers={"X-Mock-Fault": "truncate-after=4"})
    with pytest.raises(tokenhub.IncompleteStreamError) as caught:
        stream.get_final_text()
    partial = caught.value.snapshot
    assert partial.object == "chat.completion" and partial.choices[0].message.content == "This is the "


# ---------------------------------------------------------------------------
# Anthropic protocol
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("params", [
    {"model": "deepseek-v4-flash", "messages": HELLO},
    {"model": "deepseek-v3.2", "messages": WEATHER, "tools": ANTHROPIC_TOOLS},
    {"model": "glm-5", "messages": WEATHER, "tools": ANTHROPIC_TOOLS},
    {"model": "glm-5", "messages": HELLO, "stop_sequences": ["mock"]},
    {"model": "deepseek-v3.2", "messages": HELLO, "max_tokens": 3},
])
def test_final_message_equals_the_non_streamed_reply(anthropic, params):
    params = dict({"max_tokens": 500}, **params)
    plain = anthropic.messages.create(**params)
    with anthropic.messages.stream(**params) as stream:
        final = stream.get_final_message()
    assert final.to_dict() == plain.to_dict()


def test_anthropic_text_and_thinking_streams(anthropic):
    params = {"model": "glm-5", "max_tokens": 500, "messages": HELLO}
    blocks = anthropic.messages.create(**params).content
    with anthropic.messages.stream(**params) as stream:
        text = "".join(stream.text_stream)
    assert text == blocks[1].text and stream.get_final_text() == text
    with anthropic.messages.stream(**params) as stream:
        assert "".join(stream.reasoning_stream) == blocks[0].thinking
        assert stream.get_final_message().content == blocks


def test_anthropic_stream_cut_short_keeps_what_arrived(anthropic):
    stream = anthropic.messages.stream(model="deepseek-v3.2", max_tokens=500, messages=WEATHER, tools=ANTHROPIC_TOOLS,
                                       extra_headers={"X-Mock-Fault": "disconnect-after=5"})
    with pytest.raises(tokenhub.APIConnectionError) as caught:
        stream.until_done()
    partial = caught.value.snapshot
    assert partial.type == "message" and partial.content[0].type == "tool_use"
    assert partial.content[0].name == "get_weather" and "partial_json" in partial.content[0]  # unparsed, not lost


def test_a_stream_error_event_carries_the_snapshot(anthropic):
    with pytest.raises(tokenhub.OverloadedError) as caught:
        anthropic.messages.stream(model="deepseek-v3.2", max_tokens=500, messages=HELLO,
                                  extra_headers={"X-Mock-Fault": "error-after=5,type=overloaded_error"}).until_done()
    assert caught.value.snapshot.content[0].text == "This is "  # start, ping, block start, two deltas


# ---------------------------------------------------------------------------
# accumulate_chunk on its own
# ---------------------------------------------------------------------------


def chunk(*choices, **top):
    return dict({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": list(choices)}, **top)


def delta(index=0, finish=None, **fields):
    return {"index": index, "delta": fields, "finish_reason": finish}


def fold_chunks(chunks):
    snapshot = None
    for item in chunks:
        snapshot = accumulate_chunk(snapshot, item)
    return final_completion(snapshot)


def test_a_repeated_id_and_name_are_taken_once():
    """Some providers resend a call's id and name in every chunk (the official SDK
    then says "call_1call_1")."""
    pieces = ['{"city"', ': "Par', 'is"}']
    chunks = [chunk(delta(tool_calls=[{"index": 0, "id": "call_1", "type": "function",
                                       "function": {"name": "get_weather", "arguments": p}}])) for p in pieces]
    chunks.append(chunk(delta(finish="tool_calls")))
    (call,) = fold_chunks(chunks).choices[0].message.tool_calls
    assert call == {"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}


def test_interleaved_parallel_calls_merge_by_index():
    def call(index, **fields):
        return chunk(delta(tool_calls=[dict(fields, index=index)]))

    chunks = [
        call(1, id="call_b", function={"name": "get_time", "arguments": ""}),
        call(0, id="call_a", function={"name": "get_", "arguments": '{"ci'}),
        call(1, function={"arguments": '{"tz": '}),
        call(0, function={"name": "weather", "arguments": 'ty": "X"}'}),  # a name in fragments
        call(1, function={"arguments": '"CET"}'}),
    ]
    calls = fold_chunks(chunks).choices[0].message.tool_calls
    assert [(c.id, c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("call_a", "get_weather", {"city": "X"}), ("call_b", "get_time", {"tz": "CET"})]


def test_calls_without_an_index_follow_their_id():
    chunks = [
        chunk(delta(tool_calls=[{"id": "a", "function": {"name": "f", "arguments": "{"}}])),
        chunk(delta(tool_calls=[{"function": {"arguments": "}"}}])),
        chunk(delta(tool_calls=[{"id": "b", "function": {"name": "g", "arguments": "{}"}}])),
    ]
    calls = fold_chunks(chunks).choices[0].message.tool_calls
    assert [(c.id, c.function.arguments) for c in calls] == [("a", "{}"), ("b", "{}")]


def test_choices_unknown_fields_and_the_last_usage():
    chunks = [
        chunk(delta(0, role="assistant", content=""), system_fingerprint="fp1", usage=None),
        chunk(delta(1, content="B", audio={"id": "x"}), usage=None),
        chunk(delta(0, content="A", reasoning_content="think"), usage=None),
        chunk(delta(0, finish="stop"), delta(1, finish="length"), usage=None, provider_extra=[1]),
        chunk(usage={"prompt_tokens": 1, "completion_tokens": 2}),
        chunk(usage={"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}),
    ]
    originals = copy.deepcopy(chunks)
    final = fold_chunks(chunks)
    assert chunks == originals  # the chunks are not changed by folding
    assert final.id == "c1" and final.system_fingerprint == "fp1" and final.provider_extra == [1]
    assert [c.index for c in final.choices] == [0, 1]
    first, second = final.choices
    assert first.message == {"role": "assistant", "content": "A", "reasoning_content": "think"}
    assert second.message == {"role": "assistant", "content": "B", "audio": {"id": "x"}}
    assert (first.finish_reason, second.finish_reason) == ("stop", "length")
    assert final.usage == {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}


def test_a_long_stream_accumulates_in_linear_time():
    snapshot = None
    piece = chunk(delta(content="x" * 1000))
    for _ in range(20000):  # 20 MB: quadratic concatenation would take minutes
        snapshot = accumulate_chunk(snapshot, piece)
    assert len(snapshot.choices[0].message.content) == 20000 * 1000


# ---------------------------------------------------------------------------
# accumulate_event on its own
# ---------------------------------------------------------------------------


def fold_events(events):
    snapshot = None
    for event in events:
        snapshot = accumulate_event(snapshot, event)
    return final_message(snapshot)


START = {"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "m",
                                              "content": [], "stop_reason": None, "usage": {"input_tokens": 5, "output_tokens": 1}}}


def test_the_seeds_inconsistent_indexes_still_make_one_block():
    """Seed 000's sample starts a block at index 1 and sends its deltas at index 0."""
    events = [
        START,
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": {"output_tokens": 7}},
        {"type": "message_stop"},
        {"type": "some_future_event", "x": 1},
    ]
    originals = copy.deepcopy(events)
    message = fold_events(events)
    assert events == originals
    assert message.content == [{"type": "text", "text": "Hello"}]
    assert message.stop_reason == "end_turn" and message.usage == {"input_tokens": 5, "output_tokens": 7}


def test_tool_input_thinking_signature_and_citations():
    events = [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "citations_delta", "citation": {"cited_text": "c"}}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"a": '}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "[1, 2]}"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "t2", "name": "g", "input": {}}},
        {"type": "content_block_stop", "index": 3},
    ]
    thinking, text, first, second = fold_events(events).content
    assert thinking == {"type": "thinking", "thinking": "Hmm.", "signature": "sig"}
    assert text == {"type": "text", "text": "", "citations": [{"cited_text": "c"}]}
    assert first == {"type": "tool_use", "id": "t1", "name": "f", "input": {"a": [1, 2]}}
    assert second == {"type": "tool_use", "id": "t2", "name": "g", "input": {}}


def test_tool_input_that_never_parses_is_kept_as_text():
    events = [
        START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use", "id": "t1", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a": tru'}},
        {"type": "content_block_stop", "index": 0},
    ]
    (block,) = fold_events(events).content
    assert block.input == {} and block.partial_json == '{"a": tru'


def test_events_without_message_start_are_still_kept():
    message = fold_events([{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}])
    assert message.type == "message" and message.content == [{"type": "text", "text": "hi"}]


@pytest.mark.parametrize("protocol", ["openai", "anthropic"])
def test_the_snapshot_is_exact_at_every_step(client, anthropic, protocol):
    """Runs of plain text pieces are folded together; the snapshot never lags behind."""
    if protocol == "openai":
        stream = client.chat.completions.create(model="glm-5", messages=HELLO, stream=True)
        fold, final = accumulate_chunk, final_completion
    else:
        stream = anthropic.messages.create(model="glm-5", max_tokens=500, messages=HELLO, stream=True)
        fold, final = accumulate_event, final_message
    assert stream.snapshot is None  # asked for before the first item: the stream keeps one
    mine = None
    for item in stream:
        mine = fold(mine, copy.deepcopy(item))
        assert final(copy.deepcopy(stream.snapshot)) == final(copy.deepcopy(mine))
    assert stream.until_done() == final(mine)


def test_a_long_run_of_text_pieces_is_gathered_in_parts(client, mock):
    mock.add(" ".join("w%d" % n for n in range(1000)))  # more pieces than one run holds
    plain = client.chat.completions.create(model="m", messages=HELLO)
    with client.chat.completions.stream(model="m", messages=HELLO) as stream:
        assert sum(1 for _ in stream.text_stream) == 1000
        final = stream.get_final_completion()
    assert without_created(final) == without_created(plain)


def test_the_chunk_parser_takes_only_a_whole_json_object():
    parse = tokenhub._decoder()
    assert parse('{"a":[1,{"b":null}]}') == {"a": [1, {"b": None}]}
    assert parse(' {"a":1} ') == {"a": 1}  # whitespace around it: the full path
    assert isinstance(parse('{"a":{"b":1}}')["a"], tokenhub.APIObject)
    assert parse("{}") == {}
    for text in ('{"a":1} {"b":2}', '{"a":1}}', '{"a":1}x}', '{"a":'):  # a value, then more: not one object
        with pytest.raises(ValueError):
            parse(text)
