"""Value objects of the ``llm`` package: requests, reports, stats, sync-API chunks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from ._errors import LLMError


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
        pace: the ``pace`` hook of :meth:`~llm.LLMClient.astream_chat`, or ``None``.
    """

    messages: tuple[dict[str, str], ...]
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    kind: Literal["chat", "generate"] = "chat"
    prompt: str | None = None
    pace: Callable[[], Awaitable[None]] | None = None


@dataclass(kw_only=True)
class Report:
    """What the server reported during one attempt; the provider hook fills it in.

    Attributes:
        output_tokens: generated tokens as counted by the server (Ollama
            ``eval_count``, OpenAI ``usage.completion_tokens``, Anthropic
            ``usage.output_tokens``, Gemini ``usageMetadata.candidatesTokenCount``,
            llama.cpp: tokens generated), or ``None`` if not reported.
        generation_s: decode time in seconds as reported by the server (Ollama
            ``eval_duration`` ns / 1e9) or measured in-process, else ``None``.
        finish_reason: why generation stopped, normalized (see
            :mod:`llm._finish`), or ``None`` if the server did not say.
    """

    output_tokens: int | None = None
    generation_s: float | None = None
    finish_reason: str | None = None


@dataclass(frozen=True, slots=True)
class Thinking:
    """A provider hook yields this for reasoning ("thinking") output.

    It proves the model is alive (it resets the timeouts) but is never
    yielded to the caller, never spoken and never part of the text; only its
    length is counted (:attr:`StreamStats.thinking_chars`). ``text`` may be
    ``""`` for thinking that carries no text (a signature, a redacted block).
    """

    text: str


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
        finish_reason: why the model stopped, once ``completed``: ``"stop"``
            (a complete answer), ``"length"`` (cut off at the token limit),
            ``"content_filter"``, ``"refusal"``, or the provider's own value
            for anything else; ``None`` when the server did not say or the
            stream did not complete. See :func:`~llm.explain_finish_reason`.
        thinking_chars: characters of reasoning ("thinking") output received
            and dropped (never yielded, never spoken); 0 for other models.
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
    finish_reason: str | None = None
    thinking_chars: int = 0


@dataclass(frozen=True)
class StreamChunk:
    """One chunk of the sync streaming API (seed-compatible).

    ``text`` is a delta. The last chunk has ``done=True`` and ``text=""``;
    on failure ``error`` is the error's message and ``exception`` the
    :class:`~llm.LLMError` itself (its type, ``retryable``, ``status_code``;
    the sync API reports errors, it never raises them), otherwise
    ``finish_reason`` says why the model stopped (as in
    :attr:`StreamStats.finish_reason`).
    """

    text: str
    done: bool
    error: str | None = None
    finish_reason: str | None = None
    exception: LLMError | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ModelResponse:
    """Result of the sync :meth:`LLMClient.generate` (seed-compatible).

    ``text`` holds everything received, also on failure (the partial text);
    ``status_code`` is the HTTP status of a failed request, else ``None`` (or 200).
    ``success`` means the stream completed; ``finish_reason`` then says whether
    the answer is whole (``"stop"``) or was cut off (``"length"``, ...), as in
    :attr:`StreamStats.finish_reason`.
    """

    text: str
    success: bool
    error: str | None = None
    status_code: int | None = None
    done: bool = True
    stats: StreamStats | None = field(default=None, compare=False)
    finish_reason: str | None = None
