"""OpenAI-compatible chat completions: ``POST {base_url}/chat/completions``, SSE.

Protocol source: OpenAI API reference, "Create chat completion" with
``stream: true`` and "The chat completion chunk object": each SSE ``data:``
is a ``chat.completion.chunk`` whose ``choices[0].delta.content`` is the text
delta and whose last choice chunk carries ``finish_reason`` (``"stop"``,
``"length"``, ``"content_filter"``, ``"tool_calls"``); with ``stream_options:
{"include_usage": true}`` one more chunk with empty ``choices`` and
``usage.completion_tokens`` comes before the terminating ``data: [DONE]``.
Reasoning models served OpenAI-style stream their reasoning first in
``delta.reasoning_content`` (DeepSeek, llama.cpp server, older vLLM) or
``delta.reasoning`` (newer vLLM, OpenRouter) with ``content`` null: that is
liveness, never text. An error inside the stream arrives as ``data:
{"error": {"message": ...}}`` (some servers name the event ``error``).
``base_url`` includes the version prefix (``https://api.openai.com/v1``), as
in the OpenAI SDKs' ``OPENAI_BASE_URL``; a 404 at a base URL without one gets
a hint. Works with llama.cpp server, vLLM, LM Studio and Ollama's ``/v1``.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

from ._errors import LLMAuthError, LLMStreamError
from ._http import HTTPClient, error_message, with_path
from ._options import ClientOptions
from ._records import RecordParser, count
from ._sse import SSEEvent
from ._types import ChatRequest, Report, Thinking

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIClient(HTTPClient):
    """Streaming client for any OpenAI-compatible server (``OPENAI_BASE_URL``/``OPENAI_API_KEY``).

    The API key is optional for other servers (local ones need none; without
    it no ``Authorization`` header is sent) but required for
    ``api.openai.com``: :func:`~llm.create_client` raises
    :class:`~llm.LLMAuthError` naming ``OPENAI_API_KEY`` without one.
    """

    provider = "openai"

    @classmethod
    def from_config(
        cls,
        *,
        model: str | None,
        base_url: str | None,
        api_key: str | None,
        options: ClientOptions,
    ) -> OpenAIClient:
        url = base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key and urlsplit(url).hostname == urlsplit(DEFAULT_BASE_URL).hostname:
            raise LLMAuthError(
                f"openai: no API key for {url}: set OPENAI_API_KEY (or pass api_key=); "
                "a local OpenAI-compatible server needs none: set its base URL instead",
                provider=cls.provider,
            )
        return cls(model=model or DEFAULT_MODEL, base_url=url, api_key=key, options=options)

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        messages = list(request.messages)
        if request.system is not None:
            messages.insert(0, {"role": "system", "content": request.system})
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            body["max_tokens"] = request.max_tokens
        return body

    def _base_url_hint(self) -> str | None:
        path = urlsplit(self.base_url).path.rstrip("/")
        if path.endswith("/chat/completions"):
            fixed = with_path(self.base_url, path.removesuffix("/chat/completions"))
            return (
                "the base URL must not include /chat/completions (it is added): "
                f"did you mean base URL {fixed}?"
            )
        if not _VERSIONED.search(path):
            fixed = with_path(self.base_url, path + "/v1")
            return (
                f"OpenAI-compatible servers usually serve under /v1: "
                f"did you mean base URL {fixed}?"
            )
        return None

    async def _astream(
        self, request: ChatRequest, report: Report
    ) -> AsyncGenerator[str | Thinking, None]:
        async with self._post_stream("/chat/completions", self._body(request)) as response:
            parser = OpenAIParser(report)
            async for item in self._parse(response, parser, sse=True):
                yield item


_VERSIONED = re.compile(r"/v\d+[a-z0-9]*$")  # /v1, /v1beta, /api/v3 ...


class OpenAIParser(RecordParser[SSEEvent]):
    """One SSE event at a time; see the module docstring."""

    provider = "openai"
    end_marker = "data: [DONE]"

    def feed(self, piece: SSEEvent) -> list[str | Thinking]:
        if piece.data.strip() == "[DONE]":
            self.ended = self.complete = True
            return []
        f = self.fields
        if piece.event == "error":
            raise LLMStreamError(
                f"openai: error in stream: {error_message(piece.data)}", provider=self.provider
            )
        record = f.load(piece.data)
        if "error" in record:
            raise LLMStreamError(
                f"openai: error in stream: {error_message(piece.data)}", provider=self.provider
            )
        usage = record.get("usage")
        if isinstance(usage, dict) and count(usage.get("completion_tokens")) is not None:
            self.report.output_tokens = count(usage.get("completion_tokens"))
        items: list[str | Thinking] = []
        for i, raw in enumerate(f.array(record.get("choices"), "choices")):
            choice = f.obj(raw, f"choices[{i}]")
            if choice.get("index", 0) != 0:
                continue
            delta = f.obj(choice.get("delta"), f"choices[{i}].delta")
            for key in ("reasoning_content", "reasoning"):
                # Liveness only, never text: a shape we do not know still counts.
                thinking = delta.get(key)
                if thinking:
                    items.append(Thinking(thinking if isinstance(thinking, str) else ""))
                    break
            text = f.text(delta.get("content"), f"choices[{i}].delta.content")
            if text:
                items.append(text)
            self.finish(f.name(choice.get("finish_reason"), f"choices[{i}].finish_reason"))
        return items
