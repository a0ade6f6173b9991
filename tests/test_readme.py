"""The README's snippets run as written, against the mock server, offline."""

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap

from conftest import ENV_VARS, ROOT

with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as readme:
    README = readme.read()
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, re.S)
PYTHON = [code for kind, code in BLOCKS if kind == "python"]
PYTEST_FILES = [code for code in PYTHON if code.startswith(("# conftest.py", "# test_agent.py"))]
SESSION = [code for code in PYTHON if code not in PYTEST_FILES]

# The snippets run in order in one namespace, as a reader pastes them, with the
# environment pointing tokenhub.TokenHub() at a mock server (``srv`` in the snippets).
PRELUDE = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, %r)
    from mock_server import MockServer
    srv = MockServer().start()
    os.environ.update(TOKENHUB_API_KEY="readme-key", TOKENHUB_BASE_URL=srv.url)
    with open("capture.sse", "wb") as f:
        f.write(b"event: greeting\\ndata: hello\\nid: 1\\n\\n")
""")


def clean_env():
    return {k: v for k, v in os.environ.items() if k not in ENV_VARS}


def test_the_session_snippets_run(tmp_path):
    blocks = "\n".join("exec(%r)\nprint('== block %d ok')" % (code, n) for n, code in enumerate(SESSION))
    script = PRELUDE % ROOT + blocks + "\nsrv.stop()\n"
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=clean_env(),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "== block %d ok" % (len(SESSION) - 1) in result.stdout
    assert "greeting hello 1 None" in result.stdout  # the SSE snippet read the capture


def test_the_pytest_snippets_pass(tmp_path):
    for code in PYTEST_FILES:
        name = code.splitlines()[0][2:].strip()
        (tmp_path / name).write_text(code)
    fixtures = [code for kind, code in BLOCKS if kind == "json" and '"fixtures"' in code]
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "fixtures.json").write_text(fixtures[0])
    json.loads(fixtures[0])
    for module in ("tokenhub.py", "mock_server.py"):
        shutil.copy(os.path.join(ROOT, module), str(tmp_path))
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
                            cwd=tmp_path, env=clean_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout


def test_the_shell_commands_are_the_ones_ci_runs():
    shell = [code for kind, code in BLOCKS if kind == "sh"]
    assert shell[0].strip() == "python3 examples/quickstart.py"
    test_command = shell[1].strip()
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        assert test_command in f.read()
