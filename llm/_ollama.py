"""Ollama: ``POST /api/chat`` and ``POST /api/generate``, NDJSON streaming.

Protocol source: Ollama ``docs/api.md`` ("Generate a completion", "Generate a
chat completion"). Each line is one JSON object: ``{"message": {"role":
"assistant", "content": "<delta>"}, "done": false}`` (``/api/chat``) or
``{"response": "<delta>", "done": false}`` (``/api/generate``); the last has
``"done": true`` with ``eval_count`` (output tokens) and ``eval_duration``
(nanoseconds). An error inside the stream is a line ``{"error": "<message>"}``;
before the stream, an HTTP status with ``{"error": ...}`` (404 for an unknown
model). Options: ``temperature``, ``num_predict`` (= ``max_tokens``).
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any
from urllib.parse import urlsplit

from ._errors import LLMStreamError
from ._http import HTTPClient, parse_json
from ._options import ClientOptions
from ._types import ChatRequest, Usage

DEFAULT_HOST = "http://127.0.0.1:11434"
DEFAULT_MODEL = "llama3.2"


def ollama_base_url(host: str | None) -> str:
    """Base URL from ``OLLAMA_HOST``-style values: ``host``, ``host:port`` or a URL."""
    if not host:
        return DEFAULT_HOST
    if "://" not in host:
        host = "http://" + host
    parts = urlsplit(host)
    if parts.port is None:
        host = f"{parts.scheme}://{parts.hostname}:11434{parts.path}"
    return host.rstrip("/")


class OllamaClient(HTTPClient):
    """Streaming client for an Ollama server (``OLLAMA_HOST``, default 127.0.0.1:11434)."""

    provider = "ollama"

    @classmethod
    def from_config(
        cls,
        *,
        model: str | None,
        base_url: str | None,
        api_key: str | None,
        options: ClientOptions,
    ) -> OllamaClient:
        return cls(
            model=model or DEFAULT_MODEL,
            base_url=base_url or ollama_base_url(os.environ.get("OLLAMA_HOST")),
            api_key=api_key,
            options=options,
        )

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _body(self, request: ChatRequest) -> tuple[str, dict[str, Any]]:
        body: dict[str, Any] = {"model": self.model, "stream": True}
        options: dict[str, Any] = {}
        if request.temperature is not None:
            options["temperature"] = request.temperature
        if request.max_tokens is not None:
            options["num_predict"] = request.max_tokens
        if options:
            body["options"] = options
        if request.kind == "generate":
            body["prompt"] = request.prompt
            if request.system is not None:
                body["system"] = request.system
            return "/api/generate", body
        messages = list(request.messages)
        if request.system is not None:
            messages.insert(0, {"role": "system", "content": request.system})
        body["messages"] = messages
        return "/api/chat", body

    async def _astream(self, request: ChatRequest, usage: Usage) -> AsyncGenerator[str, None]:
        path, body = self._body(request)
        async with (
            self._post_stream(path, body) as response,
            aclosing(self._lines(response)) as lines,
        ):
            async for line in lines:
                if not line.strip():
                    continue
                record = parse_json(self.provider, line)
                if not isinstance(record, dict):
                    raise LLMStreamError(
                        f"ollama: unexpected record {line[:200]!r}", provider=self.provider
                    )
                if "error" in record:
                    raise LLMStreamError(f"ollama: {record['error']}", provider=self.provider)
                if request.kind == "generate":
                    text = record.get("response") or ""
                else:
                    text = (record.get("message") or {}).get("content") or ""
                if text:
                    yield text
                if record.get("done"):
                    if isinstance(record.get("eval_count"), int):
                        usage.output_tokens = record["eval_count"]
                    if record.get("eval_duration"):
                        usage.generation_s = record["eval_duration"] / 1e9
                    return
        raise self._truncated('the final "done": true record')
