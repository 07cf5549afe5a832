"""Shared fixtures: a fake server and a client factory per provider."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

import llm
from tests.fakes.llm_server import FakeLLMServer

HTTP_PROVIDERS = ["ollama", "openai", "anthropic", "gemini"]
USER = [{"role": "user", "content": "Say hello."}]


def client_kwargs(provider: str, url: str) -> dict[str, Any]:
    """create_client arguments that point ``provider`` at the fake server."""
    return {
        "ollama": {"base_url": url},
        "openai": {"base_url": url + "/v1"},
        "anthropic": {"base_url": url, "api_key": "sk-ant-test"},
        "gemini": {"base_url": url + "/v1beta", "api_key": "g-test"},
    }[provider]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as fake:
        yield fake


MakeClient = Callable[..., llm.LLMClient]


@pytest.fixture
def make_client(server: FakeLLMServer) -> MakeClient:
    def make(provider: str, **options: Any) -> llm.LLMClient:
        options.setdefault("retry_backoff", 0)
        return llm.create_client(
            provider, model="fake-model", **client_kwargs(provider, server.url), **options
        )

    return make
