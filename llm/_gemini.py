"""Google Gemini: ``POST {base_url}/models/{model}:streamGenerateContent?alt=sse``.

Protocol source: Gemini API reference, "models.streamGenerateContent" and the
REST streaming example (``alt=sse``, header ``x-goog-api-key``). The request is
the ``generateContent`` body: ``contents`` (``role`` ``"user"``/``"model"``,
``parts: [{"text": ...}]``), ``systemInstruction``, ``generationConfig``
(``temperature``, ``maxOutputTokens``). Each SSE ``data:`` is a
``GenerateContentResponse``: text in ``candidates[0].content.parts[].text``
(a part with ``"thought": true`` is reasoning: liveness, never text),
``usageMetadata.candidatesTokenCount``, and ``finishReason`` on the last one
(``STOP``, ``MAX_TOKENS``, ``SAFETY``, ``RECITATION``...: reported as the
stream's finish reason, see :mod:`llm._finish`). There is no ``[DONE]``
sentinel: the stream ends after the chunk with a ``finishReason``. A prompt
the API refuses comes back as a chunk with ``promptFeedback.blockReason``
(``SAFETY``, ``OTHER``, ``BLOCKLIST``, ``PROHIBITED_CONTENT``...) and no
candidates: :class:`~llm.PromptBlockedError`, never retried.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import quote, urlsplit

from ._errors import LLMAuthError, LLMStreamError, PromptBlockedError
from ._http import HTTPClient, error_message, split_system, with_path
from ._options import ClientOptions
from ._records import RecordParser, count
from ._sse import SSEEvent
from ._types import ChatRequest, Report, Thinking

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com/v1beta"
DEFAULT_MODEL = "gemini-2.0-flash"
_VERSIONED = re.compile(r"/v\d+[a-z0-9]*$")


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
                "gemini: no API key: set GEMINI_API_KEY or GOOGLE_API_KEY (or pass api_key=)",
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

    def _base_url_hint(self) -> str | None:
        path = urlsplit(self.base_url).path.rstrip("/")
        if path.endswith("/models"):
            fixed = with_path(self.base_url, path.removesuffix("/models"))
            return (
                "the base URL must not include /models (it is added): "
                f"did you mean base URL {fixed}?"
            )
        if not _VERSIONED.search(path):
            fixed = with_path(self.base_url, path + "/v1beta")
            return f"the Gemini API is served under a version: did you mean base URL {fixed}?"
        return None

    async def _astream(
        self, request: ChatRequest, report: Report
    ) -> AsyncGenerator[str | Thinking, None]:
        path = f"/models/{quote(self.model, safe='')}:streamGenerateContent"
        async with self._post_stream(path, self._body(request), params={"alt": "sse"}) as response:
            parser = GeminiParser(report)
            async for item in self._parse(response, parser, sse=True):
                yield item


class GeminiParser(RecordParser[SSEEvent]):
    """One SSE event at a time; see the module docstring."""

    provider = "gemini"
    end_marker = "a chunk with finishReason"

    def feed(self, piece: SSEEvent) -> list[str | Thinking]:
        f = self.fields
        record = f.load(piece.data)
        if "error" in record:
            raise LLMStreamError(
                f"gemini: error in stream: {error_message(piece.data)}", provider=self.provider
            )
        feedback = f.obj(record.get("promptFeedback"), "promptFeedback")
        blocked = f.name(feedback.get("blockReason"), "promptFeedback.blockReason")
        if blocked:
            detail = f.text(feedback.get("blockReasonMessage"), "promptFeedback.blockReasonMessage")
            raise PromptBlockedError(
                f"gemini: the prompt was blocked (blockReason {blocked})"
                + (f": {detail}" if detail else "")
                + "; not retried: rephrase it or check the safety settings",
                provider=self.provider,
                reason=blocked,
            )
        meta = record.get("usageMetadata")
        if isinstance(meta, dict) and count(meta.get("candidatesTokenCount")) is not None:
            self.report.output_tokens = count(meta.get("candidatesTokenCount"))
        candidates = f.array(record.get("candidates"), "candidates")
        if not candidates:
            return []
        candidate = f.obj(candidates[0], "candidates[0]")
        content = f.obj(candidate.get("content"), "candidates[0].content")
        items: list[str | Thinking] = []
        for j, raw in enumerate(f.array(content.get("parts"), "candidates[0].content.parts")):
            part = f.obj(raw, f"candidates[0].content.parts[{j}]")
            text = f.text(part.get("text"), f"candidates[0].content.parts[{j}].text")
            if part.get("thought") is True:
                items.append(Thinking(text))
            elif text:
                items.append(text)
        finish = f.name(candidate.get("finishReason"), "candidates[0].finishReason")
        if finish:
            self.finish(finish)
            self.complete = True  # the body ends after this chunk; keep reading to it
        return items
