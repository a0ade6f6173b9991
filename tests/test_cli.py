"""The tokenhub command line, run as a user runs it, against the mock server."""

import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from conftest import ENV_VARS, ROOT

TOKENHUB = os.path.join(ROOT, "tokenhub.py")


def environment(srv=None, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ENV_VARS + ("TOKENHUB_MODEL", "NO_COLOR")}
    if srv is not None:
        env.update(TOKENHUB_API_KEY="test-key", TOKENHUB_BASE_URL=srv.url)
    env.update(extra)
    return env


def cli(*args, srv=None, stdin="", env=None):
    """(exit status, stdout, stderr) of one run."""
    result = subprocess.run([sys.executable, TOKENHUB, *args], input=stdin, capture_output=True, text=True,
                            timeout=60, env=env or environment(srv))
    return result.returncode, result.stdout, result.stderr


ANSWER = "This is the TokenHub mock server (deepseek-v4-flash). You said: %s\n"


PATHS = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "responses": "/v1/responses"}


@pytest.mark.parametrize("protocol", sorted(PATHS))
def test_chat_streams_the_answer(mock, protocol):
    status, out, err = cli("chat", "--protocol", protocol, "Hello there", srv=mock)
    assert (status, out, err) == (0, ANSWER % "Hello there", "")
    body = mock.requests[0].body
    assert body["stream"] is True and body["model"] == "deepseek-v4-flash"
    assert mock.requests[0].path == PATHS[protocol]


def test_the_prompt_from_stdin(mock):
    assert cli("chat", srv=mock, stdin="piped question\n")[1] == ANSWER % "piped question"
    assert cli("chat", "-", srv=mock, stdin="dash question")[1] == ANSWER % "dash question"
    status, _, err = cli("chat", srv=mock, stdin="  \n")
    assert status == 2 and "no prompt" in err


@pytest.mark.parametrize("protocol", sorted(PATHS))
def test_every_option_reaches_the_request(mock, protocol):
    status, out, _ = cli("chat", "--protocol", protocol, "-m", "glm-5", "-s", "Be terse.", "-t", "0.2",
                         "--max-tokens", "300", "--thinking", "off", "--reasoning-effort", "low", "--no-stream",
                         "Hi", srv=mock)
    assert status == 0 and out == "This is the TokenHub mock server (glm-5). You said: Hi\n"
    body = mock.requests[0].body
    assert "stream" not in body and body["thinking"] == {"type": "disabled"}
    if protocol == "responses":  # in the Responses protocol's own names
        assert (body["model"], body["temperature"], body["max_output_tokens"]) == ("glm-5", 0.2, 300)
        assert body["reasoning"] == {"effort": "low"} and body["instructions"] == "Be terse."
        assert body["input"] == [{"role": "user", "content": "Hi"}]
        return
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("glm-5", 0.2, 300)
    assert body["reasoning_effort"] == "low"
    if protocol == "anthropic":
        assert body["system"] == "Be terse." and body["messages"] == [{"role": "user", "content": "Hi"}]
    else:
        assert body["messages"][0] == {"role": "system", "content": "Be terse."}


def test_model_from_the_environment_and_anthropic_max_tokens_default(mock):
    cli("chat", "--protocol", "anthropic", "Hi", env=environment(mock, TOKENHUB_MODEL="kimi-k2.6"))
    assert mock.requests[0].body["model"] == "kimi-k2.6" and mock.requests[0].body["max_tokens"] == 4096


@pytest.mark.parametrize("stream", [[], ["--no-stream"]])
def test_json_prints_the_final_object(mock, stream):
    status, out, err = cli("chat", "--json", *stream, "Hi", srv=mock)
    reply = json.loads(out)
    assert status == 0 and err == "" and reply["object"] == "chat.completion"
    assert reply["choices"][0]["message"]["content"] == ANSWER.strip() % "Hi"
    assert reply["usage"]["total_tokens"] > 0


def test_reasoning_goes_to_stderr_only_when_asked_and_usage_with_v(mock):
    status, out, err = cli("chat", "--show-reasoning", "-v", "Hi", srv=mock)
    assert status == 0 and out == ANSWER % "Hi"
    reasoning, usage = err.splitlines()
    assert reasoning == "The user said 'Hi'. I will reply briefly." and "\x1b[" not in err  # not a terminal
    # deepseek-v4-flash's list price: $0.15 in / $0.30 out per million tokens
    assert usage.startswith("tokenhub: deepseek-v4-flash: 2 tokens in, 30 out (12 reasoning), $0.000009, finish stop, ")
    assert cli("chat", "Hi", srv=mock)[2] == ""
    status, _, err = cli("chat", "-v", "--protocol", "anthropic", "--no-stream", "Hi", srv=mock)
    assert "tokens in, 30 out, $0.000009, finish end_turn" in err
    status, out, err = cli("chat", "-v", "--protocol", "responses", "--show-reasoning", "Hi", srv=mock)
    reasoning, usage = err.splitlines()
    assert out == ANSWER % "Hi" and reasoning == "The user said 'Hi'. I will reply briefly."
    assert "2 tokens in, 30 out (12 reasoning), $0.000009, finish completed" in usage
    status, _, err = cli("chat", "-v", "-m", "glm-5", "Hi", srv=mock)
    assert "tokens in, 28 out (12 reasoning), cost unknown, finish stop" in err  # no list price: never a guess


def test_an_api_error_is_one_line_and_exit_1(mock):
    mock.fail_next("status=400,message=model not found", times=3)
    status, out, err = cli("chat", "Hi", srv=mock)
    assert status == 1 and out == "" and "Traceback" not in err
    assert err.startswith("tokenhub: HTTP 400: model not found") and len(err.splitlines()) == 1


def test_timeout_applies_to_the_request(mock):
    mock.fail_next("ttfb=5", times=3)
    status, _, err = cli("chat", "--timeout", "0.3", "Hi", srv=mock)
    assert status == 1 and "timed out after 0.3s" in err


def test_usage_errors_exit_2(mock):
    status, _, err = cli("chat", "Hi", env=environment())
    assert status == 2 and "set the TOKENHUB_API_KEY environment variable" in err
    status, _, err = cli("chat", "--protocol", "grpc", "Hi", srv=mock)
    assert status == 2 and "invalid choice: 'grpc'" in err
    status, _, err = cli("chat", "--region", "mars", "Hi", env=environment(TOKENHUB_API_KEY="k"))
    assert status == 2 and "unknown region 'mars'" in err
    assert cli(srv=mock)[0] == 2 and mock.requests == []


def test_help_on_every_command_with_examples():
    for args in (["--help"], ["chat", "--help"], ["models", "--help"]):
        status, out, _ = cli(*args)
        assert status == 0 and "examples:" in out
    assert "--show-reasoning" in cli("chat", "--help")[1]
    assert cli("--version")[1].strip().startswith("tokenhub ")


def test_python_dash_m_runs_the_same_command(mock):
    result = subprocess.run([sys.executable, "-m", "tokenhub", "chat", "Hi"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env=environment(mock))
    assert result.returncode == 0 and result.stdout == ANSWER % "Hi"


def test_models_from_the_gateway_or_the_documented_table(mock):
    status, out, err = cli("models", srv=mock)
    assert status == 0 and err == "" and out.splitlines()[0].split() == ["deepseek-v4-flash-202605", "deepseek"]
    status, out, err = cli("models", "--json", env=environment())
    assert status == 0 and "could not list the gateway's models (no API key" in err
    assert json.loads(out)[-1] == {"id": "hy3-preview", "owned_by": "tencent"}
    mock.fail_next("status=503,retry-after-ms=1", times=3)
    status, out, err = cli("models", srv=mock)
    assert status == 0 and "HTTP 503" in err and len(out.splitlines()) == 16


def test_ctrl_c_keeps_the_partial_answer_and_exits_130(mock):
    mock.add(" ".join("word%d" % n for n in range(200)), fault="drip=0.05")
    proc = subprocess.Popen([sys.executable, TOKENHUB, "chat", "Hi"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=environment(mock))
    try:
        first = os.read(proc.stdout.fileno(), 100)  # the answer has started
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = (first + rest).decode()
    assert proc.returncode == 130 and output.startswith("word0") and "word199" not in output
    assert output.endswith("\n") and b"Traceback" not in err


def test_interactive_chat_keeps_history_without_old_reasoning(mock):
    """On a pseudo-terminal, as a person types."""
    import pty

    master, slave = pty.openpty()
    # All three on the terminal: input() writes its "> " prompt to stderr.
    proc = subprocess.Popen([sys.executable, TOKENHUB, "chat", "-m", "glm-5", "--show-reasoning"], stdin=slave,
                            stdout=slave, stderr=slave, env=environment(mock))
    os.close(slave)
    seen = b""

    def read_until(marker):
        nonlocal seen
        deadline = time.monotonic() + 30
        while seen.count(marker) < read_until.count + 1:
            ready, _, _ = select.select([master], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, "no %r from the interactive chat; got %r" % (marker, seen)
            seen += os.read(master, 4096)
        read_until.count += 1

    read_until.count = 0
    try:
        read_until(b"> ")
        os.write(master, b"First question\r")
        read_until(b"> ")
        os.write(master, b"Second question\r")
        read_until(b"> ")
        os.write(master, b"/exit\r")
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    screen = seen.decode()
    assert screen.startswith("tokenhub chat: glm-5 over the openai protocol. /exit or Ctrl-D to leave.")
    assert "You said: First question" in screen and "You said: Second question" in screen
    assert "\x1b[2mThe \x1b[0m" in screen  # reasoning dimmed on a terminal
    first, second = (r.body["messages"] for r in mock.requests)
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert second[1] == {"role": "assistant", "content": "This is the TokenHub mock server (glm-5). You said: First question"}
    assert first == second[:1]
