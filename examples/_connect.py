"""Shared by the examples: a client for TokenHub, or for the offline mock server.

With TOKENHUB_API_KEY set, ``connect()`` yields a client for TokenHub (the
region from TOKENHUB_REGION, or TOKENHUB_BASE_URL). Without it, it starts
mock_server.py in this process and yields a client for that, so every example
runs anywhere, with no key and no network. TOKENHUB_MODEL picks the model.
"""

import contextlib
import os
import sys

# Run from a checkout without installing: tokenhub.py sits one folder up.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))

import tokenhub  # noqa: E402

MODEL = os.environ.get("TOKENHUB_MODEL", "deepseek-v4-flash")  # thinks by default


@contextlib.contextmanager
def connect(**options):
    """Yield (client, the mock server or None when talking to TokenHub)."""
    if os.environ.get("TOKENHUB_API_KEY"):
        with tokenhub.TokenHub(**options) as client:
            yield client, None
        return
    from mock_server import MockServer

    with MockServer() as server:
        print("(offline: no TOKENHUB_API_KEY, so the mock server at %s answers)" % server.url)
        with tokenhub.TokenHub(api_key="mock-key", base_url=server.url, **options) as client:
            yield client, server
