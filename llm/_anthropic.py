"""Anthropic Messages API: ``POST {base_url}/v1/messages`` with ``stream: true``, SSE.

Protocol source: Anthropic docs, "Streaming Messages": the event flow is
``message_start`` (``message.usage``), per content block ``content_block_start``
/ ``content_block_delta`` / ``content_block_stop``, then ``message_delta``
(``usage.output_tokens``, ``delta.stop_reason``: ``"end_turn"``,
``"max_tokens"``, ``"refusal"``...) and a final ``message_stop``; any number of
``ping`` events; ``error`` events (e.g. ``overloaded_error``) may arrive
mid-stream. Text deltas are ``content_block_delta`` with ``delta.type ==
"text_delta"`` and ``delta.text``. With extended thinking ("Building with
extended thinking", streaming) a ``thinking`` block comes first
(``thinking_delta`` deltas, then a ``signature_delta``), or a
``redacted_thinking`` block: liveness, never text. Headers: ``x-api-key``,
``anthropic-version: 2023-06-01``. ``max_tokens`` is required by the API
(default 1024 here). Unknown event and delta types are ignored, as the docs
ask.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import urlsplit

from ._errors import LLMAuthError, LLMStreamError
from ._http import HTTPClient, error_message, split_system, with_path
from ._options import ClientOptions
from ._records import RecordParser, count
from ._sse import SSEEvent
from ._types import ChatRequest, Report, Thinking

DEFAULT_BASE_URL = "https://api.anthropic.com"
DEFAULT_MODEL = "claude-3-5-haiku-latest"
API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 1024


class AnthropicClient(HTTPClient):
    """Streaming client for the Anthropic Messages API (``ANTHROPIC_API_KEY``)."""

    provider = "anthropic"

    @classmethod
    def from_config(
        cls,
        *,
        model: str | None,
        base_url: str | None,
        api_key: str | None,
        options: ClientOptions,
    ) -> AnthropicClient:
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        if not key:
            raise LLMAuthError(
                "anthropic: no API key: set ANTHROPIC_API_KEY (or pass api_key=)",
                provider=cls.provider,
            )
        return cls(
            model=model or DEFAULT_MODEL,
            base_url=base_url or DEFAULT_BASE_URL,
            api_key=key,
            options=options,
        )

    def _headers(self) -> dict[str, str]:
        return {"x-api-key": self._api_key or "", "anthropic-version": API_VERSION}

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        system, turns = split_system(request.system, request.messages)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": turns,
            "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
            "stream": True,
        }
        if system is not None:
            body["system"] = system
        if request.temperature is not None:
            body["temperature"] = request.temperature  # API range 0..1: it answers 400 beyond
        return body

    def _base_url_hint(self) -> str | None:
        path = urlsplit(self.base_url).path.rstrip("/")
        for suffix in ("/v1/messages", "/v1"):
            if path.endswith(suffix):
                fixed = with_path(self.base_url, path.removesuffix(suffix))
                return (
                    f"the base URL must not include {suffix} (it is added): "
                    f"did you mean base URL {fixed}?"
                )
        return None

    async def _astream(
        self, request: ChatRequest, report: Report
    ) -> AsyncGenerator[str | Thinking, None]:
        async with self._post_stream("/v1/messages", self._body(request)) as response:
            parser = AnthropicParser(report)
            async for item in self._parse(response, parser, sse=True):
                yield item


_THINKING_BLOCKS = frozenset({"thinking", "redacted_thinking"})
_THINKING_DELTAS = {"thinking_delta": "thinking", "signature_delta": None}


class AnthropicParser(RecordParser[SSEEvent]):
    """One SSE event at a time; see the module docstring."""

    provider = "anthropic"
    end_marker = "message_stop"

    def feed(self, piece: SSEEvent) -> list[str | Thinking]:
        f = self.fields
        record = f.load(piece.data)
        kind = record.get("type", piece.event)
        if kind == "content_block_start":
            block = f.obj(record.get("content_block"), "content_block")
            if block.get("type") in _THINKING_BLOCKS:
                return [Thinking(f.text(block.get("thinking"), "content_block.thinking"))]
        elif kind == "content_block_delta":
            delta = f.obj(record.get("delta"), "delta")
            delta_type = delta.get("type")
            if delta_type == "text_delta":
                text = f.text(delta.get("text"), "delta.text")
                return [text] if text else []
            if delta_type in _THINKING_DELTAS:
                key = _THINKING_DELTAS[delta_type]
                return [Thinking(f.text(delta.get(key), f"delta.{key}") if key else "")]
        elif kind == "message_delta":
            usage = record.get("usage")
            if isinstance(usage, dict) and count(usage.get("output_tokens")) is not None:
                self.report.output_tokens = count(usage.get("output_tokens"))
            delta = f.obj(record.get("delta"), "delta")
            self.finish(f.name(delta.get("stop_reason"), "delta.stop_reason"))
        elif kind == "message_stop":
            self.ended = self.complete = True
        elif kind == "error":
            err = record.get("error")
            raise LLMStreamError(
                f"anthropic: error in stream: {error_message(piece.data)}",
                provider=self.provider,
                retryable=isinstance(err, dict) and err.get("type") == "overloaded_error",
            )
        return []
