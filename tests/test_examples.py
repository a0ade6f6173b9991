"""Every example runs as a newcomer runs it: a fresh interpreter, no key, offline."""

import os
import subprocess
import sys

import pytest

from conftest import ENV_VARS, ROOT

OFFLINE = "(offline: no TOKENHUB_API_KEY, so the mock server at http://127.0.0.1:"


def run_example(name):
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS + ("TOKENHUB_MODEL",)}
    return subprocess.run(
        [sys.executable, os.path.join("examples", name)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_quickstart_offline():
    result = run_example("quickstart.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("no TOKENHUB_API_KEY set: using the offline mock server at http://127.0.0.1:")
    for protocol in ("OpenAI Chat Completions", "Anthropic Messages", "OpenAI Responses"):
        section = out.split("== %s protocol" % protocol)[1].split("\n== ")[0]
        assert "answer:    This is the TokenHub mock server" in section
        assert "streamed:  This is the TokenHub mock server" in section
        assert 'tool call: get_weather({"city": "Beijing"})' in section
        assert 'final:     Here is what I found: get_weather returned {"city": "Beijing"' in section
    assert "reasoning: The user said" in out and "thinking:  The user said" in out
    assert result.stderr == ""


def test_tool_runner_offline():
    result = run_example("tool_runner.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for protocol in ("OpenAI protocol", "Anthropic protocol"):
        section = out.split("== %s" % protocol)[1].split("\n== ")[0]
        assert "calls:  get_weather(" in section and "calls:  get_local_time(" in section
        assert "answer: Here is what I found: get_weather returned" in section
        assert "get_local_time returned 14:30." in section
    assert "turns:  user -> assistant -> tool -> tool -> assistant" in out
    assert result.stderr == ""


SAID = "This is the TokenHub mock server (%s). You said: %s"

EXPECTED = {
    "batch.py": [
        "claude-style     " + SAID % ("deepseek-v4-flash", "Write a haiku about queues."),
        "responses-style  " + SAID % ("deepseek-v4-flash", "Give one tip for writing tests."),
        "3                " + SAID % ("deepseek-v4-flash", "What is the capital of Japan?"),
        "run_batch: 7 succeeded, 0 failed, 308 tokens out",
        "(first run, exit 0)\n  tokenhub batch: 7 succeeded (in results.jsonl), 0 failed, 0 skipped as already done",
        "(second run, exit 0)\n  tokenhub batch: nothing to do: results.jsonl holds a result for each of the 7 request(s)",
        "results.jsonl: 7 lines, ids 1, 2, 3, claude-style, responses-style, summary-1, summary-2",
    ],
    "streaming.py": [
        "chunks: " + SAID % ("deepseek-v4-flash", "Write a haiku about the sea"),
        "text:   " + SAID % ("deepseek-v4-flash", "Write a haiku about the sea"),
        "final:   finish_reason=stop, 7 tokens in, 40 out",
        "anthropic: " + SAID % ("deepseek-v4-flash", "Write a haiku about the sea"),
        "final:   stop_reason=end_turn, 40 tokens out",
    ],
    "system_prompt.py": [
        "openai:    " + SAID % ("deepseek-v4-flash", "What is TokenHub?"),
        "anthropic: " + SAID % ("deepseek-v4-flash", "What is TokenHub?"),
    ],
    "multi_turn.py": [
        "user:      What is my name?",
        "assistant: " + SAID % ("deepseek-v4-flash", "What is my name?"),
        "history:   7 messages, reasoning sent back: False",
    ],
    "tool_calling.py": [
        "openai tool call: get_weather({'city': 'Beijing'})",
        'openai answer:    Here is what I found: get_weather returned {"city": "Beijing", "temperature": 22',
        "anthropic tool call: get_weather({'city': 'Beijing'})",
        'anthropic answer: Here is what I found: get_weather returned {"city": "Beijing"',
    ],
    "thinking.py": [
        "reasoning: The user said 'Is 1001 a prime number?'. I will reply briefly.",
        "answer:    " + SAID % ("deepseek-v4-flash", "Is 1001 a prime number?"),
        "reasoning tokens: 17 of 40",
        "thinking off, reasoning: None",
        "streamed: 12 reasoning pieces, then 14 answer pieces",
        "anthropic blocks: ['thinking', 'text']",
    ],
    "interleaved_thinking.py": [
        "tool call: get_weather('Shanghai')",
        'answer:    Here is what I found: get_weather returned {"city": "Shanghai", "rain": "likely"',
        "sent back: role=assistant, tool_calls=1, reasoning_content=True",
    ],
    "json_mode.py": [
        "json_object: {'answer': ",
        "json_schema: {'name': 'Ada', 'born': 1, 'fields': ['Lovelace']} (missing: none)",
    ],
    "anthropic_stream.py": [
        "text: " + SAID % ("deepseek-v4-flash", "Hello!"),
        "final: ['thinking', 'text'], stop_reason=end_turn, usage=",
        "thinking: The user asked \"What's the weather in Paris?\". I should call get_weather.",
        "tool_use: get_weather({'city': 'Paris'}), id toolu_",
    ],
    "async_chat.py": [
        "Q: What is a B-tree?\nA: " + SAID % ("deepseek-v4-flash", "What is a B-tree?") + " (",
        "3 answers at once",
    ],
    "responses.py": [
        "answer:    " + SAID % ("deepseek-v4-flash", "Name three prime numbers."),
        "items:     ['reasoning', 'message']",
        "streamed:  " + SAID % ("deepseek-v4-flash", "Count to five."),
        "status:    completed",
        "continued: " + SAID % ("deepseek-v4-flash", "And two more?"),
        "tool loop: user -> reasoning -> function_call -> function_call_output -> reasoning -> message",
        'final:     Here is what I found: get_weather returned {"city": "Paris", "temperature": 18, "sky": "cloudy"}.',
    ],
    "errors_and_retries.py": [
        "bad request: status 400, request id req_mock_1",
        "field 'temperature' must be a number from 0 to 2, got 5",
        "after 2 retries: This is the TokenHub mock server",
        "gave up: RateLimitError (HTTP 429)",
        "stream cut short after 6 chunks; reasoning so far: ",
        "timeout: POST http://127.0.0.1:",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_offline(name):
    result = run_example(name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(OFFLINE) and result.stderr == ""
    for line in EXPECTED[name]:
        assert line in result.stdout


def test_testing_with_mock_runs_its_tests():
    result = run_example("testing_with_mock.py")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 passed" in result.stdout


def test_every_example_is_tested():
    names = {n for n in os.listdir(os.path.join(ROOT, "examples")) if n.endswith(".py") and not n.startswith("_")}
    assert names == set(EXPECTED) | {"quickstart.py", "tool_runner.py", "testing_with_mock.py"}
