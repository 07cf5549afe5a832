"""A wrong base URL gets a hint, not "model not found"; a missing key fails at creation."""

from __future__ import annotations

import pytest

import llm
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.llm.conftest import USER

KEYS = {"anthropic": {"api_key": "k"}, "gemini": {"api_key": "k"}}


async def _fail(provider: str, base_url: str) -> llm.LLMError:
    async with llm.create_client(
        provider, model="fake-model", base_url=base_url, max_retries=2, retry_backoff=0,
        **KEYS.get(provider, {}),
    ) as client:
        with pytest.raises(llm.LLMError) as info:
            async for _ in client.astream_chat(USER):
                pass
    return info.value


@pytest.mark.parametrize(
    ("provider", "path", "requested", "suggested"),
    [
        # the issue's case: an OpenAI-compatible server's URL without /v1
        ("openai", "", "/chat/completions", ""),
        ("openai", "/v1/chat/completions", "/v1/chat/completions/chat/completions", "/v1"),
        # Ollama given an OpenAI-style URL
        ("ollama", "/v1", "/v1/api/chat", ""),
        ("ollama", "/api", "/api/api/chat", ""),
        ("anthropic", "/v1", "/v1/v1/messages", ""),
        ("gemini", "", "/models/fake-model:streamGenerateContent", ""),
        ("gemini", "/v1beta/models", "/v1beta/models/models/fake-model:streamGenerateContent",
         "/v1beta"),
    ],
)
async def test_404_at_a_wrong_path_names_the_url_and_the_likely_fix(
    provider: str, path: str, requested: str, suggested: str, server: FakeLLMServer
) -> None:
    error = await _fail(provider, server.url + path)
    message = str(error)
    assert type(error) is llm.LLMResponseError  # not ModelNotFoundError
    assert error.status_code == 404 and not error.retryable
    assert f"HTTP 404 at {server.url}{requested}" in message
    fix = {"openai": "/v1", "gemini": "/v1beta"}.get(provider, "") if path == "" else suggested
    assert f"did you mean base URL {server.url}{fix}?" in message
    assert len(server.requests) == 1


async def test_openai_hint_reads_like_the_issue_asks(server: FakeLLMServer) -> None:
    message = str(await _fail("openai", server.url))
    assert message == (
        f"openai: HTTP 404 at {server.url}/chat/completions: 404 page not found; "
        "OpenAI-compatible servers usually serve under /v1: "
        f"did you mean base URL {server.url}/v1?"
    )


async def test_ollama_at_a_non_ollama_path_says_so(server: FakeLLMServer) -> None:
    message = str(await _fail("ollama", server.url + "/somewhere"))
    assert "is this an Ollama server?" in message and "openai provider" in message


@pytest.mark.parametrize("provider", ["ollama", "openai", "anthropic", "gemini"])
async def test_404_naming_the_model_stays_model_not_found(
    provider: str, server: FakeLLMServer
) -> None:
    server.push(Reply(status=404))
    path = {"openai": "/v1", "gemini": "/v1beta"}.get(provider, "")
    error = await _fail(provider, server.url + path)
    assert type(error) is llm.ModelNotFoundError
    assert "did you mean" not in str(error)


async def test_a_web_page_instead_of_an_api_is_named(server: FakeLLMServer) -> None:
    server.push(Reply(raw_body=b"<!doctype html><title>Router admin</title>"))
    error = await _fail("openai", server.url)
    assert type(error) is llm.LLMResponseError
    assert "answered with a web page (text/html)" in str(error)
    assert f"did you mean base URL {server.url}/v1?" in str(error)


# -- API keys ----------------------------------------------------------------------------


@pytest.fixture
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY", "OPENAI_API_KEY",
                 "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize(
    ("provider", "variable"),
    [
        ("anthropic", "ANTHROPIC_API_KEY"),
        ("gemini", "GEMINI_API_KEY"),
        ("openai", "OPENAI_API_KEY"),
    ],
)
def test_missing_key_fails_at_creation_naming_the_variable(
    provider: str, variable: str, no_keys: None
) -> None:
    with pytest.raises(llm.LLMAuthError, match=variable) as info:
        llm.create_client(provider)
    assert isinstance(info.value, llm.LLMError)  # one error of ours, before any connection
    assert info.value.provider == provider and info.value.status_code is None


def test_openai_compatible_local_server_needs_no_key(no_keys: None) -> None:
    client = llm.create_client("openai", base_url="http://127.0.0.1:8080/v1")
    assert client.base_url == "http://127.0.0.1:8080/v1"  # type: ignore[attr-defined]


def test_openai_key_from_the_environment(
    no_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    client = llm.create_client("openai")
    assert client._headers()["Authorization"] == "Bearer sk-env"  # type: ignore[attr-defined]


async def test_a_404_page_quoting_the_path_is_not_model_not_found(server: FakeLLMServer) -> None:
    """Google's front end answers an unknown path with an HTML page that quotes it
    (and Gemini's paths contain ``/models/``): that is a path error, not a model."""
    path = "/v1beta/models/fake-model:streamGenerateContent"
    page = (
        "<!DOCTYPE html><html lang=en><title>Error 404 (Not Found)!!1</title>"
        f"<p>The requested URL <code>{path}</code> was not found on this server."
    )
    server.push(Reply(status=404, error_body=page))
    error = await _fail("gemini", server.url + "/v1beta")
    assert type(error) is llm.LLMResponseError
    assert str(error) == (
        f"gemini: HTTP 404 at {server.url}{path}: an HTML page (Error 404 (Not Found)!!1); "
        "no such endpoint: check the base URL"
    )
