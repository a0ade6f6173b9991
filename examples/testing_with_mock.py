"""Testing your own code with MockServer, in pytest.

    python3 examples/testing_with_mock.py      (runs these tests with pytest when it is
                                                installed, or plainly when it is not)

The code under test is summarize(); the tests script the model's replies with
fixtures and faults, then check what the code did and what it sent.
"""

import contextlib
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import tokenhub  # noqa: E402
from mock_server import MockServer  # noqa: E402


# --- the code under test -----------------------------------------------------

def summarize(client, text):
    """One-line summary of a text, or None when the service is unavailable."""
    try:
        reply = client.chat.completions.create(
            model="deepseek-v4-flash", max_tokens=200,
            messages=[{"role": "system", "content": "Summarize in one line."}, {"role": "user", "content": text}])
    except tokenhub.APIStatusError:
        return None
    return reply.choices[0].message.content.strip()


# --- the tests ---------------------------------------------------------------

@contextlib.contextmanager
def mock_client(**options):
    with MockServer() as server, tokenhub.TokenHub(api_key="test", base_url=server.url, **options) as client:
        yield server, client


def test_summary_comes_from_the_model():
    with mock_client() as (server, client):
        server.add("A short summary.", match={"system": "summarize"})
        assert summarize(client, "A long text...") == "A short summary."
        sent = server.requests[0].body
        assert sent["max_tokens"] == 200 and sent["messages"][1]["content"] == "A long text..."


def test_summary_survives_one_overload():
    with mock_client(max_retries=1) as (server, client):
        server.fail_next("status=529,retry-after-ms=1")
        assert summarize(client, "text") is not None
        assert len(server.requests) == 2  # the failure, then the retry


def test_unavailable_service_gives_none():
    with mock_client(max_retries=0) as (server, client):
        server.fail_next("status=503")
        assert summarize(client, "text") is None


if __name__ == "__main__":
    try:
        import pytest
    except ImportError:  # no pytest here: run the tests plainly
        tests = [value for name, value in sorted(globals().items()) if name.startswith("test_")]
        for test in tests:
            test()
            print("passed:", test.__name__)
        sys.exit(0)
    sys.exit(pytest.main(["-q", "-p", "no:cacheprovider", __file__]))
