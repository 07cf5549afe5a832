"""Value objects of the ``llm`` package: requests, usage, stats, sync-API chunks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True, kw_only=True)
class ChatRequest:
    """One request as the providers' hook sees it.

    Attributes:
        messages: ``[{"role": "user" | "assistant" | "system", "content": str}, ...]``.
        system: system prompt, or ``None``.
        temperature: sampling temperature, or ``None`` for the server default.
        max_tokens: cap on output tokens, or ``None`` for the provider default.
        kind: ``"chat"`` (from ``astream_chat``) or ``"generate"`` (from
            ``astream_generate``; ``prompt`` is then set and ``messages`` holds it
            as one user message, so providers without a generate endpoint just chat).
        prompt: the raw prompt of a ``"generate"`` request, else ``None``.
    """

    messages: tuple[dict[str, str], ...]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    kind: Literal["chat", "generate"] = "chat"
    prompt: str | None = None


@dataclass(kw_only=True)
class Usage:
    """Mutable usage a provider hook fills in while it streams (server-reported).

    Attributes:
        output_tokens: generated tokens as counted by the server (Ollama
            ``eval_count``, OpenAI ``usage.completion_tokens``, Anthropic
            ``usage.output_tokens``, Gemini ``usageMetadata.candidatesTokenCount``,
            llama.cpp: tokens generated), or ``None`` if not reported.
        generation_s: decode time in seconds as reported by the server (Ollama
            ``eval_duration`` ns / 1e9) or measured in-process, else ``None``.
    """

    output_tokens: int | None = None
    generation_s: float | None = None


@dataclass(frozen=True, kw_only=True)
class StreamStats:
    """Timing and usage of one finished stream (completed, failed or closed early).

    Attributes:
        provider: provider name.
        model: model name (or GGUF path for ``"local"``).
        ttft_s: seconds from the start of the successful attempt to the first text
            delta (time to first token, TTFT); ``None`` if no text arrived.
        total_s: seconds from the start of the successful attempt to the end of
            the stream (completion, failure or close).
        output_tokens: tokens generated as reported by the server, else ``None``.
        tokens_per_s: ``output_tokens`` divided by the server-reported decode
            time, else by the measured time from the first to the last delta;
            ``None`` without a token count or with a zero duration.
        text_chars: characters of text yielded to the caller.
        attempts: HTTP attempts made (1 + retries before the first token).
        completed: ``True`` only if the server ended the stream normally.
    """

    provider: str
    model: str
    ttft_s: float | None
    total_s: float
    output_tokens: int | None
    tokens_per_s: float | None
    text_chars: int
    attempts: int
    completed: bool


@dataclass(frozen=True)
class StreamChunk:
    """One chunk of the sync streaming API (seed-compatible).

    ``text`` is a delta; the last chunk has ``done=True`` and, on failure, ``error``
    set to the error's message (the sync API reports errors, it never raises).
    """

    text: str
    done: bool
    error: str | None = None


@dataclass(frozen=True)
class ModelResponse:
    """Result of the sync :meth:`LLMClient.generate` (seed-compatible).

    ``text`` holds everything received, also on failure (the partial text);
    ``status_code`` is the HTTP status of a failed request, else ``None`` (or 200).
    """

    text: str
    success: bool
    error: str | None = None
    status_code: int | None = None
    done: bool = True
    stats: StreamStats | None = field(default=None, compare=False)
