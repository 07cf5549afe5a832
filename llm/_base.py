"""``LLMClient``: the one streaming seam, and the shared work around it.

Providers implement one hook, :meth:`LLMClient._astream`, that yields the text
deltas of ONE attempt and raises :class:`~llm.LLMError` subclasses. The base
class does the rest, once for all providers: time-to-first-token and idle
timeouts, retries with back-off before the first delta, ``partial_text`` on
errors, :class:`~llm.StreamStats`, closing the hook (and so the HTTP response
or the llama.cpp worker) as soon as the caller stops iterating, and the sync
twins (one thin wrapper over the async API, run in an anyio blocking portal).
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

from anyio.from_thread import start_blocking_portal

from ._errors import LLMError, LLMTimeoutError
from ._options import ClientOptions
from ._types import ChatRequest, ModelResponse, StreamChunk, StreamStats, Usage

_ROLES = frozenset({"system", "user", "assistant"})
_END = object()


def _check_messages(messages: Sequence[dict[str, str]]) -> tuple[dict[str, str], ...]:
    if isinstance(messages, str | bytes) or not messages:
        raise ValueError(
            f"messages={messages!r} is invalid: expected a non-empty list of "
            '{"role": "system"|"user"|"assistant", "content": str} dicts'
        )
    checked = []
    for i, message in enumerate(messages):
        if (
            not isinstance(message, dict)
            or message.get("role") not in _ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise ValueError(
                f"messages[{i}]={message!r} is invalid: expected "
                '{"role": "system"|"user"|"assistant", "content": str}'
            )
        checked.append({"role": message["role"], "content": message["content"]})
    return tuple(checked)


def _check_sampling(temperature: float | None, max_tokens: int | None) -> None:
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise ValueError(f"temperature={temperature!r} is invalid: expected 0..2 or None")
    if max_tokens is not None and (
        isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1
    ):
        raise ValueError(f"max_tokens={max_tokens!r} is invalid: expected an int >= 1 or None")


class LLMClient(ABC):
    """A streaming chat client for one provider and model.

    Use it as ``async with create_client(...) as client:`` (or call
    :meth:`aclose`). The async API is primary; the sync twins
    (:meth:`generate_stream`, :meth:`generate`, :meth:`chat_stream`, :meth:`close`)
    each run the async one in a short-lived anyio blocking portal. Use one API
    family per client at a time.

    Attributes:
        provider: ``"ollama"``, ``"openai"``, ``"anthropic"``, ``"gemini"`` or ``"local"``.
        model: the model name (a GGUF path for ``"local"``).
        options: the validated :class:`~llm.ClientOptions`.
    """

    provider: str = ""

    def __init__(self, *, model: str, options: ClientOptions) -> None:
        self.model = model
        self.options = options
        self._last_stats: StreamStats | None = None
        self._closed = False

    # -- the hook -------------------------------------------------------------

    @abstractmethod
    def _astream(self, request: ChatRequest, usage: Usage) -> AsyncGenerator[str, None]:
        """Yield the text deltas of one attempt; fill ``usage`` when reported.

        Must be an async generator: the base closes it (``aclose``) when the
        caller stops, and the provider releases its response/worker in
        ``finally``. Raise :class:`~llm.LLMError` subclasses only, translated
        from foreign errors with ``raise ... from exc``; return normally only
        when the server ended the stream properly.
        """

    async def _arelease_loop_resources(self) -> None:  # noqa: B027 - optional hook
        """Release what is bound to the running event loop (pooled HTTP client)."""

    # -- public async API -----------------------------------------------------

    @property
    def last_stats(self) -> StreamStats | None:
        """:class:`~llm.StreamStats` of the last finished stream, ``None`` before any."""
        return self._last_stats

    def astream_chat(
        self,
        messages: list[dict[str, str]],
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[str, None]:
        """Stream the assistant's reply to ``messages`` as text deltas (``str``).

        Args:
            messages: ``[{"role": "user"|"assistant"|"system", "content": str}, ...]``.
            system: system prompt (sent the provider's way), or ``None``.
            temperature: 0..2, or ``None`` for the server's default.
            max_tokens: cap on output tokens (>= 1), or ``None`` for the default.

        Deltas are yielded as they arrive (no buffering). Close the iterator early
        (``break`` inside ``async with contextlib.aclosing(...)``, ``aclose()``,
        or cancelling the task) and the HTTP response is closed at once / local
        generation stops.

        Raises:
            ValueError: bad arguments (raised by this call, before any request).
            LLMConnectionError, LLMTimeoutError, LLMAuthError, ModelNotFoundError,
            LLMRateLimitError, LLMResponseError: the request failed before any text
                (after ``max_retries`` retries for retryable ones).
            LLMStreamError, LLMTimeoutError(phase="idle"): the stream broke after
                it started; ``partial_text`` holds every delta already yielded.
            RuntimeError: the client was closed.
        """
        request = ChatRequest(
            messages=_check_messages(messages),
            system=system,
            temperature=temperature,
            max_tokens=max_tokens,
        )
        _check_sampling(temperature, max_tokens)
        return self._run(request)

    def astream_generate(
        self,
        prompt: str,
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> AsyncGenerator[str, None]:
        """Stream a reply to one ``prompt``; same deltas and errors as :meth:`astream_chat`.

        Ollama uses ``/api/generate``; the other providers send the prompt as
        one user message.
        """
        if not isinstance(prompt, str):
            raise ValueError(f"prompt={prompt!r} is invalid: expected a str")
        _check_sampling(temperature, max_tokens)
        request = ChatRequest(
            messages=({"role": "user", "content": prompt},),
            system=system,
            temperature=temperature,
            max_tokens=max_tokens,
            kind="generate",
            prompt=prompt,
        )
        return self._run(request)

    async def aclose(self) -> None:
        """Close pooled connections; later streams raise ``RuntimeError``. Idempotent."""
        self._closed = True
        await self._arelease_loop_resources()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- shared streaming machinery ---------------------------------------------

    async def _run(self, request: ChatRequest) -> AsyncGenerator[str, None]:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        opts = self.options
        yielded: list[str] = []
        attempts = 0
        while True:
            attempts += 1
            usage = Usage()
            started = time.perf_counter()
            first_at: float | None = None
            last_at = started
            completed = False
            inner = self._astream(request, usage)
            try:
                while True:
                    phase = "first_token" if first_at is None else "idle"
                    limit = opts.first_token_timeout if first_at is None else opts.idle_timeout
                    try:
                        async with asyncio.timeout(limit):
                            delta = await anext(inner, _END)
                    except TimeoutError as exc:
                        raise LLMTimeoutError(
                            f"{self.provider}: no text for {limit} s ({phase} timeout)",
                            phase=phase,
                            provider=self.provider,
                        ) from exc
                    if delta is _END:
                        completed = True
                        return
                    assert isinstance(delta, str)
                    if not delta:
                        continue
                    last_at = time.perf_counter()
                    if first_at is None:
                        first_at = last_at
                    yielded.append(delta)
                    yield delta
            except LLMError as exc:
                exc.partial_text = "".join(yielded)
                exc.provider = exc.provider or self.provider
                if yielded or not exc.retryable or attempts > opts.max_retries:
                    raise
            finally:
                await inner.aclose()
                self._last_stats = self._stats(
                    started, first_at, last_at, usage, yielded, attempts, completed
                )
            await asyncio.sleep(opts.retry_backoff * 2 ** (attempts - 1))

    def _stats(
        self,
        started: float,
        first_at: float | None,
        last_at: float,
        usage: Usage,
        yielded: list[str],
        attempts: int,
        completed: bool,
    ) -> StreamStats:
        ended = time.perf_counter()
        tokens = usage.output_tokens
        rate: float | None = None
        if tokens:
            if usage.generation_s:
                rate = tokens / usage.generation_s
            elif first_at is not None and tokens > 1 and last_at > first_at:
                rate = (tokens - 1) / (last_at - first_at)
        return StreamStats(
            provider=self.provider,
            model=self.model,
            ttft_s=None if first_at is None else first_at - started,
            total_s=ended - started,
            output_tokens=tokens,
            tokens_per_s=rate,
            text_chars=sum(len(d) for d in yielded),
            attempts=attempts,
            completed=completed,
        )

    # -- sync twins (one thin wrapper over the async API) -------------------------

    def _iter_sync(self, factory: Callable[[], AsyncGenerator[str, None]]) -> Iterator[StreamChunk]:
        """Run ``factory()``'s async iterator in a blocking portal, as StreamChunks.

        The last chunk has ``done=True``; an :class:`LLMError` becomes its
        ``error`` (the partial text was already delivered chunk by chunk).
        """
        with start_blocking_portal() as portal:
            stream = factory()

            async def step() -> Any:
                return await anext(stream, _END)

            try:
                while (delta := portal.call(step)) is not _END:
                    yield StreamChunk(delta, False)
            except LLMError as exc:
                yield StreamChunk("", True, error=str(exc))
                return
            finally:
                portal.call(stream.aclose)
                portal.call(self._arelease_loop_resources)
            yield StreamChunk("", True)

    def generate_stream(self, prompt: str, **kwargs: Any) -> Iterator[StreamChunk]:
        """Sync twin of :meth:`astream_generate`: yields :class:`~llm.StreamChunk`.

        Never raises :class:`~llm.LLMError`: the final chunk (``done=True``)
        carries the error message. ``kwargs``: ``system``, ``temperature``,
        ``max_tokens``. ``ValueError`` for bad arguments is raised.
        """
        return self._iter_sync(lambda: self.astream_generate(prompt, **kwargs))

    def chat_stream(
        self, message: str, history: list[dict[str, str]] | None = None, **kwargs: Any
    ) -> Iterator[StreamChunk]:
        """Sync chat: ``history`` (``{"role","content"}`` dicts) plus one user ``message``.

        Same chunks and error reporting as :meth:`generate_stream`.
        """
        messages = [*(history or []), {"role": "user", "content": message}]
        return self._iter_sync(lambda: self.astream_chat(messages, **kwargs))

    def generate(self, prompt: str, stream: bool = False, **kwargs: Any) -> ModelResponse:
        """Sync, whole reply at once (seed-compatible); never raises :class:`LLMError`.

        The reply is always streamed from the server and joined here, so
        ``stream`` only exists for compatibility. On failure ``success`` is
        ``False``, ``text`` keeps the partial text, ``error`` the message and
        ``status_code`` the HTTP status when there was one.
        """
        del stream  # always streamed underneath; kept for API compatibility
        parts: list[str] = []
        failure: LLMError | None = None

        async def collect() -> AsyncGenerator[str, None]:
            nonlocal failure
            try:
                async for delta in self.astream_generate(prompt, **kwargs):
                    parts.append(delta)
                    yield delta
            except LLMError as exc:
                failure = exc
                raise

        for _ in self._iter_sync(collect):
            pass
        if failure is not None:
            return ModelResponse(
                "".join(parts),
                False,
                error=str(failure),
                status_code=failure.status_code,
                done=True,
                stats=self._last_stats,
            )
        return ModelResponse("".join(parts), True, stats=self._last_stats)

    def close(self) -> None:
        """Sync twin of :meth:`aclose`."""
        with start_blocking_portal() as portal:
            portal.call(self.aclose)

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
