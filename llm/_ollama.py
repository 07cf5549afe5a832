"""Ollama: ``POST /api/chat`` and ``POST /api/generate``, NDJSON streaming.

Protocol source: Ollama ``docs/api.md`` ("Generate a completion", "Generate a
chat completion") and "Thinking" (``docs/capabilities/thinking``). Each line is
one JSON object: ``{"message": {"role": "assistant", "content": "<delta>"},
"done": false}`` (``/api/chat``) or ``{"response": "<delta>", "done": false}``
(``/api/generate``); a thinking model streams its reasoning first in
``message.thinking`` (``/api/generate``: ``thinking``) with empty content:
that is liveness, never text. The last line has ``"done": true``,
``done_reason`` (``"stop"``, ``"length"``...), ``eval_count`` (output tokens)
and ``eval_duration`` (nanoseconds). An error inside the stream is a line
``{"error": "<message>"}``; before the stream, an HTTP status with
``{"error": ...}`` (404 naming the model for an unknown one; a plain
``404 page not found`` for a wrong path). Options: ``temperature``,
``num_predict`` (= ``max_tokens``).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

from ._errors import LLMStreamError
from ._http import HTTPClient, with_path
from ._options import ClientOptions
from ._records import RecordParser, count, seconds_from_ns
from ._types import ChatRequest, Report, Thinking

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

    def _base_url_hint(self) -> str | None:
        path = urlsplit(self.base_url).path.rstrip("/")
        for suffix in ("/v1", "/api"):
            if path.endswith(suffix):
                fixed = with_path(self.base_url, path.removesuffix(suffix))
                return (
                    f"Ollama's own API is at the server root, not under {suffix}: "
                    f"did you mean base URL {fixed}? (for Ollama's OpenAI-compatible "
                    f"API under /v1, use the openai provider)"
                )
        return (
            "no Ollama API there: is this an Ollama server? For an OpenAI-compatible "
            "server use the openai provider with a base URL ending in /v1"
        )

    async def _astream(
        self, request: ChatRequest, report: Report
    ) -> AsyncGenerator[str | Thinking, None]:
        path, body = self._body(request)
        async with self._post_stream(path, body) as response:
            parser = OllamaParser(report, generate=request.kind == "generate")
            async for item in self._parse(response, parser, sse=False):
                yield item


class OllamaParser(RecordParser[str]):
    """One NDJSON line at a time; see the module docstring."""

    provider = "ollama"
    end_marker = 'the final "done": true record'

    def __init__(self, report: Report, *, generate: bool) -> None:
        super().__init__(report)
        self._generate = generate

    def feed(self, piece: str) -> list[str | Thinking]:
        if not piece.strip():
            return []
        f = self.fields
        record = f.load(piece)
        if "error" in record:
            err = record["error"]
            message = err if isinstance(err, str) else json.dumps(err)[:500]
            raise LLMStreamError(f"ollama: {message}", provider=self.provider)
        if self._generate:
            text = f.text(record.get("response"), "response")
            thinking = f.text(record.get("thinking"), "thinking")
        else:
            reply = f.obj(record.get("message"), "message")
            text = f.text(reply.get("content"), "message.content")
            thinking = f.text(reply.get("thinking"), "message.thinking")
        items: list[str | Thinking] = []
        if thinking:
            items.append(Thinking(thinking))
        if text:
            items.append(text)
        if record.get("done") is True:
            self.report.output_tokens = count(record.get("eval_count"))
            self.report.generation_s = seconds_from_ns(record.get("eval_duration"))
            self.finish(f.name(record.get("done_reason"), "done_reason"))
            self.ended = self.complete = True
        return items

