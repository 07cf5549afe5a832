"""Google Gemini: ``POST {base_url}/models/{model}:streamGenerateContent?alt=sse``.

Protocol source: Gemini API reference, "models.streamGenerateContent" and the
REST streaming example (``alt=sse``, header ``x-goog-api-key``). The request is
the ``generateContent`` body: ``contents`` (``role`` ``"user"``/``"model"``,
``parts: [{"text": ...}]``), ``systemInstruction``, ``generationConfig``
(``temperature``, ``maxOutputTokens``). Each SSE ``data:`` is a
``GenerateContentResponse``: text in ``candidates[0].content.parts[].text``,
``usageMetadata.candidatesTokenCount``, and ``finishReason`` on the last one.
There is no ``[DONE]`` sentinel: the stream ends after the chunk with a
``finishReason``. A ``finishReason`` other than ``STOP``/``MAX_TOKENS`` (e.g.
``SAFETY``) is reported as :class:`~llm.LLMStreamError`, not dropped silently.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any
from urllib.parse import quote

from ._errors import LLMAuthError, LLMStreamError
from ._http import HTTPClient, error_message, parse_json, split_system
from ._options import ClientOptions
from ._types import ChatRequest, Usage

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
DEFAULT_MODEL = "gemini-2.0-flash"
_NORMAL_FINISH = frozenset({"STOP", "MAX_TOKENS", "FINISH_REASON_UNSPECIFIED"})


class GeminiClient(HTTPClient):
    """Streaming client for the Gemini API (``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``)."""

    provider = "gemini"

    @classmethod
    def from_config(
        cls,
        *,
        model: str | None,
        base_url: str | None,
        api_key: str | None,
        options: ClientOptions,
    ) -> GeminiClient:
        key = api_key or os.environ.get("GEMINI_API_KEY") or os.environ.get("GOOGLE_API_KEY")
        if not key:
            raise LLMAuthError(
                "gemini: no API key: pass api_key= or set GEMINI_API_KEY / GOOGLE_API_KEY",
                provider=cls.provider,
            )
        return cls(
            model=model or DEFAULT_MODEL,
            base_url=base_url or DEFAULT_BASE_URL,
            api_key=key,
            options=options,
        )

    def _headers(self) -> dict[str, str]:
        return {"x-goog-api-key": self._api_key or ""}

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        system, turns = split_system(request.system, request.messages)
        body: dict[str, Any] = {
            "contents": [
                {
                    "role": "model" if m["role"] == "assistant" else "user",
                    "parts": [{"text": m["content"]}],
                }
                for m in turns
            ]
        }
        if system is not None:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        config: dict[str, Any] = {}
        if request.temperature is not None:
            config["temperature"] = request.temperature
        if request.max_tokens is not None:
            config["maxOutputTokens"] = request.max_tokens
        if config:
            body["generationConfig"] = config
        return body

    async def _astream(self, request: ChatRequest, usage: Usage) -> AsyncGenerator[str, None]:
        path = f"/models/{quote(self.model, safe='')}:streamGenerateContent"
        async with (
            self._post_stream(path, self._body(request), params={"alt": "sse"}) as response,
            aclosing(self._events(response)) as events,
        ):
            finish: str | None = None
            async for event in events:
                record = parse_json(self.provider, event.data)
                if not isinstance(record, dict) or "error" in record:
                    raise LLMStreamError(
                        f"gemini: error in stream: {error_message(event.data)}",
                        provider=self.provider,
                    )
                meta = record.get("usageMetadata") or {}
                if isinstance(meta.get("candidatesTokenCount"), int):
                    usage.output_tokens = meta["candidatesTokenCount"]
                candidates = record.get("candidates") or [{}]
                candidate = candidates[0]
                for part in (candidate.get("content") or {}).get("parts") or ():
                    if (
                        isinstance(part.get("text"), str)
                        and part["text"]
                        and not part.get("thought")
                    ):
                        yield part["text"]
                finish = candidate.get("finishReason") or finish
            if finish is not None and finish not in _NORMAL_FINISH:
                raise LLMStreamError(
                    f"gemini: generation stopped: finishReason={finish}", provider=self.provider
                )
            if finish is not None:
                return
        raise self._truncated("a chunk with finishReason")
