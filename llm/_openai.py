"""OpenAI-compatible chat completions: ``POST {base_url}/chat/completions``, SSE.

Protocol source: OpenAI API reference, "Create chat completion" with
``stream: true`` and "The chat completion chunk object": each SSE ``data:``
is a ``chat.completion.chunk`` whose ``choices[0].delta.content`` is the text
delta; with ``stream_options: {"include_usage": true}`` one more chunk with
empty ``choices`` and ``usage.completion_tokens`` comes before the terminating
``data: [DONE]``. An error inside the stream arrives as ``data: {"error":
{"message": ...}}`` (some servers name the event ``error``). ``base_url``
includes the version prefix (``https://api.openai.com/v1``), as in the OpenAI
SDKs' ``OPENAI_BASE_URL``. Works with llama.cpp server, vLLM, LM Studio and
Ollama's ``/v1``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from ._errors import LLMStreamError
from ._http import HTTPClient, error_message, parse_json
from ._options import ClientOptions
from ._types import ChatRequest, Usage

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"


class OpenAIClient(HTTPClient):
    """Streaming client for any OpenAI-compatible server (``OPENAI_BASE_URL``/``OPENAI_API_KEY``).

    The API key is optional (local servers need none); without it no
    ``Authorization`` header is sent.
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
        return cls(
            model=model or DEFAULT_MODEL,
            base_url=base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL,
            api_key=api_key or os.environ.get("OPENAI_API_KEY"),
            options=options,
        )

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

    async def _astream(self, request: ChatRequest, usage: Usage) -> AsyncGenerator[str, None]:
        async with (
            self._post_stream("/chat/completions", self._body(request)) as response,
            aclosing(self._events(response)) as events,
        ):
            async for event in events:
                if event.data.strip() == "[DONE]":
                    return
                record = parse_json(self.provider, event.data)
                if not isinstance(record, dict) or event.event == "error" or "error" in record:
                    raise LLMStreamError(
                        f"openai: error in stream: {error_message(event.data)}",
                        provider=self.provider,
                    )
                if isinstance(record.get("usage"), dict):
                    tokens = record["usage"].get("completion_tokens")
                    if isinstance(tokens, int):
                        usage.output_tokens = tokens
                for choice in record.get("choices") or ():
                    if choice.get("index", 0) == 0:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
        raise self._truncated("data: [DONE]")
