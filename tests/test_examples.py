"""The examples run as a newcomer runs them: a fresh interpreter, no key, offline."""

import os
import subprocess
import sys

from conftest import ENV_VARS, ROOT


def run_example(name):
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS}
    return subprocess.run(
        [sys.executable, os.path.join("examples", name)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_quickstart_offline():
    result = run_example("quickstart.py")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.startswith("no TOKENHUB_API_KEY set: using the offline mock server at http://127.0.0.1:")
    for protocol in ("OpenAI Chat Completions", "Anthropic Messages"):
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
