"""Client configuration: keys, base URLs, regions and environment variables."""

import pytest

import tokenhub
from mock_server import redacted

pytestmark = pytest.mark.usefixtures("driver")  # every test here runs on both drivers

HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("region,root", [
    (None, "https://tokenhub-intl.tencentcloudmaas.com"),
    ("singapore", "https://tokenhub-intl.tencentcloudmaas.com"),
    ("guangzhou", "https://tokenhub.tencentcloudmaas.com"),
    ("Guangzhou", "https://tokenhub.tencentcloudmaas.com"),
    ("store", "https://tokenhub.store/api"),
])
def test_regions(region, root):
    assert tokenhub.TokenHub(api_key="k", region=region).base_url == root


def test_region_from_environment(monkeypatch):
    monkeypatch.setenv("TOKENHUB_REGION", "guangzhou")
    assert tokenhub.TokenHub().base_url == "https://tokenhub.tencentcloudmaas.com"


def test_unknown_region_lists_the_choices():
    with pytest.raises(ValueError, match="unknown region 'mars': expected one of china, china-singapore, guangzhou, singapore, store"):
        tokenhub.TokenHub(region="mars")


def test_base_url_and_region_conflict():
    with pytest.raises(ValueError, match="base_url or region"):
        tokenhub.TokenHub(base_url="http://127.0.0.1:1", region="store")


@pytest.mark.parametrize("url", ["ftp://example.com", "127.0.0.1:8000", "http://", "http://h/v1?x=1"])
def test_bad_base_url(url):
    with pytest.raises(ValueError, match="base_url"):
        tokenhub.TokenHub(base_url=url)


@pytest.mark.parametrize("given,expected", [
    ("https://tokenhub-intl.tencentcloudmaas.com/v1", "https://tokenhub-intl.tencentcloudmaas.com"),
    ("https://tokenhub.store/api/v1/", "https://tokenhub.store/api"),
    ("http://[::1]:8000/v1", "http://[::1]:8000"),
    ("HTTP://Example.COM:80/", "http://example.com:80"),
])
def test_base_url_normalised_to_root(given, expected):
    if given.lower().startswith("http://example"):
        with pytest.warns(RuntimeWarning, match="plain http"):
            assert tokenhub.TokenHub(base_url=given).base_url == expected
    else:
        assert tokenhub.TokenHub(base_url=given).base_url == expected


def test_tokenhub_environment(monkeypatch, mock):
    monkeypatch.setenv("TOKENHUB_API_KEY", "env-key")
    monkeypatch.setenv("TOKENHUB_BASE_URL", mock.url + "/v1")
    client = tokenhub.TokenHub()
    client.chat.completions.create(model="glm-5", messages=HI)
    client.messages.create(model="glm-5", max_tokens=5, messages=HI)
    openai_request, anthropic_request = mock.requests
    assert openai_request.headers["authorization"] == "Bearer " + redacted("env-key")
    assert anthropic_request.headers["x-api-key"] == redacted("env-key")


def test_explicit_arguments_beat_environment(monkeypatch, mock):
    monkeypatch.setenv("TOKENHUB_API_KEY", "env-key")
    monkeypatch.setenv("TOKENHUB_BASE_URL", "http://127.0.0.1:9")
    client = tokenhub.TokenHub("arg-key", base_url=mock.url)
    client.chat.completions.create(model="glm-5", messages=HI)
    assert mock.requests[0].headers["authorization"] == "Bearer " + redacted("arg-key")


def test_openai_shaped_client_reads_openai_variables(monkeypatch, mock):
    monkeypatch.setenv("OPENAI_API_KEY", "openai-key")
    monkeypatch.setenv("OPENAI_BASE_URL", mock.url + "/v1")
    monkeypatch.setenv("TOKENHUB_API_KEY", "tokenhub-key")
    client = tokenhub.OpenAI()
    client.chat.completions.create(model="glm-5", messages=HI)
    assert mock.requests[0].headers["authorization"] == "Bearer " + redacted("openai-key")


def test_openai_shaped_client_falls_back_to_tokenhub_variables(monkeypatch, mock):
    monkeypatch.setenv("TOKENHUB_API_KEY", "tokenhub-key")
    monkeypatch.setenv("TOKENHUB_BASE_URL", mock.url)
    tokenhub.OpenAI().chat.completions.create(model="glm-5", messages=HI)
    assert mock.requests[0].headers["authorization"] == "Bearer " + redacted("tokenhub-key")


def test_anthropic_shaped_client_reads_anthropic_variables(monkeypatch, mock):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "anthropic-key")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", mock.url)
    tokenhub.Anthropic().messages.create(model="glm-5", max_tokens=5, messages=HI)
    headers = mock.requests[0].headers
    assert headers["x-api-key"] == redacted("anthropic-key") and "authorization" not in headers


def test_anthropic_auth_token_from_environment(monkeypatch, mock):
    """Claude Code's setup: ANTHROPIC_AUTH_TOKEN sends a Bearer token, not x-api-key."""
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "claude-code-token")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", mock.url)
    monkeypatch.setenv("TOKENHUB_API_KEY", "unused")
    tokenhub.Anthropic().messages.create(model="glm-5", max_tokens=5, messages=HI)
    headers = mock.requests[0].headers
    assert headers["authorization"] == "Bearer " + redacted("claude-code-token") and "x-api-key" not in headers


def test_sdk_shaped_constructors_take_sdk_arguments(mock):
    openai_client = tokenhub.OpenAI(
        api_key="k", base_url=mock.url + "/v1", timeout=30.0, max_retries=1,
        default_headers={"X-App": "a"},
    )
    anthropic_client = tokenhub.Anthropic(
        api_key="k", base_url=mock.url, timeout=30.0, max_retries=1, default_headers={"X-App": "b"},
    )
    openai_client.chat.completions.create(model="glm-5", messages=HI)
    anthropic_client.messages.create(model="glm-5", max_tokens=5, messages=HI)
    assert [r.headers["x-app"] for r in mock.requests] == ["a", "b"]
    assert isinstance(openai_client, tokenhub.TokenHub) and isinstance(anthropic_client, tokenhub.TokenHub)
    # one client, both protocols, whichever constructor made it
    assert openai_client.messages.create(model="glm-5", max_tokens=5, messages=HI).type == "message"


def test_default_headers_override_user_agent(mock):
    client = tokenhub.TokenHub(api_key="k", base_url=mock.url, default_headers={"user-agent": "app/2"})
    client.chat.completions.create(model="glm-5", messages=HI)
    assert mock.requests[0].headers["user-agent"] == "app/2"


def test_max_retries_must_be_a_count():
    with pytest.raises(ValueError, match="max_retries"):
        tokenhub.TokenHub(max_retries=-1)


def test_unserialisable_body_is_a_clear_error(client):
    with pytest.raises(TypeError, match="not JSON-serializable"):
        client.chat.completions.create(model="glm-5", messages=HI, metadata={1, 2})
    with pytest.raises(TypeError, match="not JSON-serializable"):
        client.chat.completions.create(model="glm-5", messages=[{"role": "user", "content": "\ud800"}])


def test_module_surface():
    for name in tokenhub.__all__:
        assert hasattr(tokenhub, name), name
    assert tokenhub.__version__.count(".") == 2


def test_dropped_client_is_freed_at_once(mock):
    """No reference cycle: dropping the last reference closes the kept-alive sockets now."""
    import gc
    import weakref

    client = tokenhub.TokenHub(api_key="k", base_url=mock.url)
    client.chat.completions.create(model="glm-5", messages=HI)
    pools = client._pools if hasattr(client, "_pools") else next(iter(client._loop_pools.values()))
    pool = weakref.ref(pools[0])
    del pools
    gc.disable()
    try:
        del client
        assert pool() is None
    finally:
        gc.enable()
