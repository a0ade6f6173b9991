"""A file of requests, many at once: tokenhub.run_batch, then the tokenhub batch command.

    python3 examples/batch.py

examples/batch_input.jsonl holds seven requests in every form a batch takes: prompt
strings, {"prompt": ...}, {"messages": [...]}, and OpenAI Batch API lines for each
of TokenHub's three protocols (one of them streamed). With TOKENHUB_API_KEY set
they go to TokenHub; without it, the offline mock server answers.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, os.pardir))

import tokenhub  # noqa: E402

INPUT = os.path.join(HERE, "batch_input.jsonl")
MODEL = os.environ.get("TOKENHUB_MODEL", "deepseek-v4-flash")


def answer_of(body):
    """The answer text of a reply, whichever protocol it came by."""
    if body.get("object") == "chat.completion":
        return body.choices[0].message.content
    if body.get("type") == "message":
        return "".join(block.text for block in body.content if block.type == "text")
    return body.output_text  # a Responses API response


def from_python(client):
    with open(INPUT) as lines:
        requests = [json.loads(line) for line in lines if line.strip()]
    batch = tokenhub.run_batch(requests, client=client, model=MODEL, concurrency=4)
    for result in batch:  # as each finishes, not in input order
        if result.error is None:
            answer = " ".join(answer_of(result.response.body).split())  # on one line
            print("%-16s %s" % (result.custom_id, answer if len(answer) <= 110 else answer[:109] + "..."))
        else:
            print("%-16s failed: %s" % (result.custom_id, result.error.message))
    summary = batch.summary
    print("run_batch: %d succeeded, %d failed, %d tokens out, %.2f s"
          % (summary.succeeded, summary.failed, summary.output_tokens, summary.elapsed))


def from_the_shell(environment):
    """The same file through the command, twice: the second run finds everything done."""
    folder = tempfile.mkdtemp()
    output = os.path.join(folder, "results.jsonl")
    command = [sys.executable, os.path.join(HERE, os.pardir, "tokenhub.py"), "batch", INPUT, "-o", output, "-j", "4"]
    for run in ("first", "second"):
        done = subprocess.run(command, env=environment, capture_output=True, text=True)
        print("$ tokenhub batch examples/batch_input.jsonl -o results.jsonl -j 4   (%s run, exit %d)"
              % (run, done.returncode))
        for line in done.stderr.splitlines():
            print("  " + line.replace(output, "results.jsonl"))
    with open(output) as lines:
        ids = sorted(json.loads(line)["custom_id"] for line in lines)
    print("results.jsonl: %d lines, ids %s" % (len(ids), ", ".join(ids)))
    os.remove(output)
    os.rmdir(folder)


if __name__ == "__main__":
    if os.environ.get("TOKENHUB_API_KEY"):
        with tokenhub.TokenHub() as client:
            from_python(client)
        from_the_shell(dict(os.environ))
    else:
        from mock_server import MockServer

        with MockServer() as server:
            print("(offline: no TOKENHUB_API_KEY, so the mock server at %s answers)" % server.url)
            with tokenhub.TokenHub(api_key="mock-key", base_url=server.url) as client:
                from_python(client)
            from_the_shell(dict(os.environ, TOKENHUB_API_KEY="mock-key", TOKENHUB_BASE_URL=server.url))
