"""Anthropic Messages API: ``POST {base_url}/v1/messages`` with ``stream: true``, SSE.

Protocol source: Anthropic docs, "Streaming Messages": the event flow is
``message_start`` (``message.usage``), per content block ``content_block_start``
/ ``content_block_delta`` / ``content_block_stop``, then ``message_delta``
(``usage.output_tokens``, ``stop_reason``) and a final ``message_stop``; any
number of ``ping`` events; ``error`` events (e.g. ``overloaded_error``) may
arrive mid-stream. Text deltas are ``content_block_delta`` with ``delta.type ==
"text_delta"`` and ``delta.text``. Headers: ``x-api-key``,
``anthropic-version: 2023-06-01``. ``max_tokens`` is required by the API
(default 1024 here). Unknown event types are ignored, as the docs ask.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from ._errors import LLMAuthError, LLMStreamError
from ._http import HTTPClient, error_message, parse_json, split_system
from ._options import ClientOptions
from ._types import ChatRequest, Usage

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
                "anthropic: no API key: pass api_key= or set ANTHROPIC_API_KEY",
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

    async def _astream(self, request: ChatRequest, usage: Usage) -> AsyncGenerator[str, None]:
        async with (
            self._post_stream("/v1/messages", self._body(request)) as response,
            aclosing(self._events(response)) as events,
        ):
            async for event in events:
                record = parse_json(self.provider, event.data)
                kind = record.get("type", event.event) if isinstance(record, dict) else None
                if kind == "content_block_delta":
                    delta = record.get("delta") or {}
                    if delta.get("type") == "text_delta" and delta.get("text"):
                        yield delta["text"]
                elif kind == "message_delta":
                    tokens = (record.get("usage") or {}).get("output_tokens")
                    if isinstance(tokens, int):
                        usage.output_tokens = tokens
                elif kind == "message_stop":
                    return
                elif kind == "error" or kind is None:
                    err = record.get("error") if isinstance(record, dict) else None
                    raise LLMStreamError(
                        f"anthropic: error in stream: {error_message(event.data)}",
                        provider=self.provider,
                        retryable=isinstance(err, dict) and err.get("type") == "overloaded_error",
                    )
        raise self._truncated("message_stop")
