"""``LLMClient``: the one streaming seam, and the shared work around it.

Providers implement one hook, :meth:`LLMClient._astream`, that yields the text
deltas of ONE attempt (and :class:`~llm._types.Thinking` items for reasoning
output) and raises :class:`~llm.LLMError` subclasses. The base class does the
rest, once for all providers: time-to-first-token and idle timeouts (thinking
counts as liveness, never as text), retries with back-off before the first
delta (honouring ``Retry-After``), ``partial_text`` on errors,
:class:`~llm.StreamStats` and the finish reason on the returned
:class:`~llm.LLMStream`, closing the hook (and so the HTTP response or the
llama.cpp worker) as soon as the caller stops iterating, and the sync twins
(one thin wrapper over the async API, run in the client's own event loop
thread, :class:`~llm.PortalHolder`).
"""

from __future__ import annotations

import asyncio
import io
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Sequence
from types import TracebackType
from typing import Any

from ._errors import LLMError, LLMTimeoutError
from ._options import ClientOptions
from ._stream import LLMStream, StreamState
from ._sync import PortalHolder, iterate_in_portal
from ._types import ChatRequest, ModelResponse, Report, StreamChunk, StreamStats, Thinking
from ._watchdog import Watchdog

_ROLES = frozenset({"system", "user", "assistant"})
_END = object()
RETRY_AFTER_CAP_S = 30.0  # a server asking for a longer wait fails at once instead


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
    run the async one in the client's own event loop thread, started on first
    use and stopped by :meth:`close` (so connections are reused across sync
    calls). Use one API family per client at a time.

    Attributes:
        provider: ``"ollama"``, ``"openai"``, ``"anthropic"``, ``"gemini"`` or ``"local"``.
        model: the model name (a GGUF path for ``"local"``).
        options: the validated :class:`~llm.ClientOptions`.
    """

    provider: str = ""
    #: True when generation runs on this process's CPU (``"local"``): only then
    #: does a ``pace`` hook given to :meth:`astream_chat` hold generation back.
    runs_in_process: bool = False

    def __init__(self, *, model: str, options: ClientOptions) -> None:
        self.model = model
        self.options = options
        self._last_stats: StreamStats | None = None
        self._closed = False
        self._sync = PortalHolder(name=f"speakstream-llm-{self.provider or 'client'}")

    # -- the hook -------------------------------------------------------------

    @abstractmethod
    def _astream(
        self, request: ChatRequest, report: Report
    ) -> AsyncGenerator[str | Thinking, None]:
        """Yield the text deltas of one attempt; fill ``report`` as the server reports.

        Yield :class:`~llm._types.Thinking` for reasoning output (it keeps the
        timeouts from firing and is counted, never passed on). Must be an async
        generator: the base closes it (``aclose``) when the caller stops, and
        the provider releases its response/worker in ``finally``. Raise
        :class:`~llm.LLMError` subclasses only, translated from foreign errors
        with ``raise ... from exc``; return normally only when the server
        ended the stream properly (then ``report.finish_reason`` says why).
        """

    async def _arelease_loop_resources(self) -> None:  # noqa: B027 - optional hook
        """Release what is bound to an event loop (the pooled HTTP client)."""

    # -- public async API -----------------------------------------------------

    @property
    def last_stats(self) -> StreamStats | None:
        """:class:`~llm.StreamStats` of the last finished stream, ``None`` before any.

        With several streams at once, read each stream's own
        :attr:`LLMStream.stats` instead.
        """
        return self._last_stats

    def astream_chat(
        self,
        messages: list[dict[str, str]],
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> LLMStream:
        """Stream the assistant's reply to ``messages`` as text deltas (``str``).

        Args:
            messages: ``[{"role": "user"|"assistant"|"system", "content": str}, ...]``.
            system: system prompt (sent the provider's way), or ``None``.
            temperature: 0..2, or ``None`` for the server's default.
            max_tokens: cap on output tokens (>= 1), or ``None`` for the default.
            pace: for a client that generates in this process
                (:attr:`runs_in_process`, i.e. ``"local"``): awaited after each
                delta is yielded, before generation goes on; it returns when
                generation may continue (the pipeline holds generation back
                while synthesis needs the CPU). Time spent in it counts against
                neither timeout; generation stops within a couple of tokens
                once it waits. Network clients ignore it.

        Returns:
            An :class:`~llm.LLMStream`: an async iterator of the deltas, as they
            arrive (no buffering). Once exhausted, its ``finish_reason`` says
            whether the answer is complete (``"stop"``) or was cut off
            (``"length"``, ``"content_filter"``, ``"refusal"``, ...); its
            ``stats`` holds the :class:`~llm.StreamStats`. Reasoning ("thinking")
            output is never yielded: it only keeps the timeouts from firing.
            Close it early (``break`` inside ``async with stream:`` or
            ``contextlib.aclosing(...)``, ``aclose()``, or cancelling the task)
            and the HTTP response is closed at once / local generation stops.

        Raises:
            ValueError: bad arguments (raised by this call, before any request).
            LLMConnectionError, LLMTimeoutError, LLMAuthError, ModelNotFoundError,
            LLMRateLimitError, LLMResponseError, PromptBlockedError: the request
                failed before any text (after ``max_retries`` retries for
                retryable ones).
            LLMStreamError, LLMTimeoutError(phase="idle"): the stream broke after
                it started; ``partial_text`` holds every delta already yielded.
            RuntimeError: the client was closed.
        """
        request = ChatRequest(
            messages=_check_messages(messages),
            system=system,
            temperature=temperature,
            max_tokens=max_tokens,
            pace=pace,
        )
        _check_sampling(temperature, max_tokens)
        return LLMStream(lambda state: self._run(request, state))

    def astream_generate(
        self,
        prompt: str,
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> LLMStream:
        """Stream a reply to one ``prompt``; same stream and errors as :meth:`astream_chat`.

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
        return LLMStream(lambda state: self._run(request, state))

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

    async def _run(self, request: ChatRequest, state: StreamState) -> AsyncGenerator[str, None]:
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        opts = self.options
        text = io.StringIO()  # everything yielded: the partial text of an error
        attempts = 0
        while True:
            attempts += 1
            report = Report()
            started = time.perf_counter()
            first_at: float | None = None
            last_at = started
            alive = False  # text or thinking arrived in this attempt
            thinking = 0
            completed = False
            delay: float | None = None
            inner = self._astream(request, report)
            watchdog = Watchdog()  # the timeouts: one timer per lapse, not one per token
            try:
                while True:
                    phase = "idle" if alive else "first_token"
                    limit = opts.idle_timeout if alive else opts.first_token_timeout
                    watchdog.arm(limit)
                    try:
                        item = await anext(inner, _END)
                    except asyncio.CancelledError:
                        if not watchdog.expired():
                            raise
                        raise LLMTimeoutError(
                            f"{self.provider}: nothing received for {limit} s ({phase} timeout)",
                            phase=phase,
                            provider=self.provider,
                        ) from TimeoutError(f"{limit} s")
                    finally:
                        watchdog.disarm()
                    if item is _END:
                        completed = True
                        return
                    if isinstance(item, Thinking):
                        alive = True
                        thinking += len(item.text)
                        state.thinking_chars = thinking
                        continue
                    assert isinstance(item, str)
                    if not item:
                        continue
                    alive = True
                    last_at = time.perf_counter()
                    if first_at is None:
                        first_at = last_at
                    text.write(item)
                    yield item
                    if request.pace is not None and self.runs_in_process:
                        # Outside the timeouts: a paced wait is not a silent server.
                        await request.pace()
            except LLMError as exc:
                exc.partial_text = text.getvalue()
                exc.provider = exc.provider or self.provider
                if first_at is not None or not exc.retryable or attempts > opts.max_retries:
                    raise
                delay = _retry_delay(exc, opts.retry_backoff, attempts)
                if delay is None:
                    raise
            finally:
                watchdog.close()
                await inner.aclose()
                stats = self._stats(
                    started, first_at, last_at, report, text, thinking, attempts, completed
                )
                self._last_stats = stats
                state.stats = stats
            assert delay is not None  # set by the retrying except branch
            await asyncio.sleep(delay)

    def _stats(
        self,
        started: float,
        first_at: float | None,
        last_at: float,
        report: Report,
        text: io.StringIO,
        thinking: int,
        attempts: int,
        completed: bool,
    ) -> StreamStats:
        ended = time.perf_counter()
        tokens = report.output_tokens
        rate: float | None = None
        if tokens:
            if report.generation_s:
                rate = tokens / report.generation_s
            elif first_at is not None and tokens > 1 and last_at > first_at:
                rate = (tokens - 1) / (last_at - first_at)
        return StreamStats(
            provider=self.provider,
            model=self.model,
            ttft_s=None if first_at is None else first_at - started,
            total_s=ended - started,
            output_tokens=tokens,
            tokens_per_s=rate,
            text_chars=text.tell(),
            attempts=attempts,
            completed=completed,
            finish_reason=report.finish_reason if completed else None,
            thinking_chars=thinking,
        )

    # -- sync twins (one thin wrapper over the async API) -------------------------

    def _iter_sync(self, stream: LLMStream) -> Iterator[StreamChunk]:
        """Iterate ``stream`` in the client's loop thread, as StreamChunks.

        The last chunk has ``done=True`` and either ``finish_reason`` or, on an
        :class:`LLMError`, ``error``/``exception`` (the partial text was already
        delivered chunk by chunk).
        """
        try:
            for delta in iterate_in_portal(self._sync.portal, lambda: stream):
                yield StreamChunk(delta, False)
        except LLMError as exc:
            yield StreamChunk("", True, error=str(exc), exception=exc)
            return
        yield StreamChunk("", True, finish_reason=stream.finish_reason)

    def generate_stream(self, prompt: str, **kwargs: Any) -> Iterator[StreamChunk]:
        """Sync twin of :meth:`astream_generate`: yields :class:`~llm.StreamChunk`.

        Never raises :class:`~llm.LLMError`: the final chunk (``done=True``)
        carries the error (``error`` message, ``exception`` object) or the
        ``finish_reason``. ``kwargs``: ``system``, ``temperature``,
        ``max_tokens``. ``ValueError`` for bad arguments is raised.
        """
        return self._iter_sync(self.astream_generate(prompt, **kwargs))

    def chat_stream(
        self, message: str, history: list[dict[str, str]] | None = None, **kwargs: Any
    ) -> Iterator[StreamChunk]:
        """Sync chat: ``history`` (``{"role","content"}`` dicts) plus one user ``message``.

        Same chunks and error reporting as :meth:`generate_stream`.
        """
        messages = [*(history or []), {"role": "user", "content": message}]
        return self._iter_sync(self.astream_chat(messages, **kwargs))

    def generate(self, prompt: str, stream: bool = False, **kwargs: Any) -> ModelResponse:
        """Sync, whole reply at once (seed-compatible); never raises :class:`LLMError`.

        The reply is always streamed from the server and joined here, so
        ``stream`` only exists for compatibility. On failure ``success`` is
        ``False``, ``text`` keeps the partial text, ``error`` the message and
        ``status_code`` the HTTP status when there was one. On success
        ``finish_reason`` says whether the answer is whole (``"stop"``).
        """
        del stream  # always streamed underneath; kept for API compatibility
        parts: list[str] = []
        last = StreamChunk("", True)
        for chunk in self._iter_sync(self.astream_generate(prompt, **kwargs)):
            parts.append(chunk.text)
            last = chunk
        failure = last.exception
        if failure is not None:
            return ModelResponse(
                "".join(parts),
                False,
                error=str(failure),
                status_code=failure.status_code,
                done=True,
                stats=self._last_stats,
            )
        return ModelResponse(
            "".join(parts), True, stats=self._last_stats, finish_reason=last.finish_reason
        )

    def close(self) -> None:
        """Sync twin of :meth:`aclose`; also stops the client's loop thread."""
        try:
            self._sync.portal.call(self.aclose)
        finally:
            self._sync.close()

    def __enter__(self) -> LLMClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _retry_delay(exc: LLMError, backoff: float, attempts: int) -> float | None:
    """Seconds to wait before the next attempt, or ``None``: do not retry.

    Exponential back-off (``backoff * 2 ** (attempts - 1)``), or the server's
    ``Retry-After`` when longer; a ``Retry-After`` above
    :data:`RETRY_AFTER_CAP_S` is not waited for (the error is raised at once,
    its message saying how long the server asked to wait).
    """
    delay = backoff * 2 ** (attempts - 1)
    if exc.retry_after is None:
        return delay
    if exc.retry_after > RETRY_AFTER_CAP_S:
        exc.args = (
            f"{exc} (the server asks to retry after {exc.retry_after:g} s: "
            f"more than {RETRY_AFTER_CAP_S:g} s, not retried)",
        )
        return None
    return max(delay, exc.retry_after)
