"""``LLMStream``: the async iterator of text deltas, and how the reply ended."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType

from ._types import StreamStats


@dataclass
class StreamState:
    """What the producer of a stream reports to its :class:`LLMStream`.

    A separate object, so that the producer (an async generator) does not hold
    its own :class:`LLMStream`: without that cycle, a stream dropped without
    ``aclose`` is finalized at once, in order, by reference counting.
    """

    stats: StreamStats | None = None
    thinking_chars: int = 0


class LLMStream(AsyncIterator[str]):
    """The text deltas of one reply (``str``), then why the model stopped.

    Returned by :meth:`LLMClient.astream_chat`, :meth:`LLMClient.astream_generate`
    and :meth:`Conversation.astream_reply`. Iterate it once with ``async for``;
    close it early with :meth:`aclose` (or ``async with stream:``,
    ``contextlib.aclosing``, or by cancelling the task), which closes the HTTP
    response / stops local generation at once.

    """

    def __init__(self, body: Callable[[StreamState], AsyncGenerator[str, None]]) -> None:
        """Internal: ``body(state)`` yields the deltas and fills ``state``."""
        self._state = StreamState()
        self._deltas = body(self._state)

    @property
    def stats(self) -> StreamStats | None:
        """:class:`~llm.StreamStats` once the stream ended (completed, failed or
        closed), ``None`` before."""
        return self._state.stats

    @property
    def thinking_chars(self) -> int:
        """Characters of reasoning ("thinking") output received so far, live.

        That output is dropped (never yielded, never spoken); a caller may show
        "thinking..." while this grows and no text came yet.
        """
        return self._state.thinking_chars

    @property
    def finish_reason(self) -> str | None:
        """Why the model stopped, once the stream was exhausted normally.

        ``"stop"`` (a complete answer), ``"length"`` (cut off at the token
        limit), ``"content_filter"``, ``"refusal"``, or the provider's own
        value for anything else (see :mod:`llm._finish`); ``None`` while
        streaming, after a failure or an early close, or when the server did
        not say. :func:`~llm.explain_finish_reason` turns it into a warning.
        """
        stats = self.stats
        return stats.finish_reason if stats is not None and stats.completed else None

    def __aiter__(self) -> LLMStream:
        return self

    async def __anext__(self) -> str:
        return await self._deltas.__anext__()

    async def aclose(self) -> None:
        """Stop the stream now (closes the HTTP response); idempotent."""
        await self._deltas.aclose()

    async def __aenter__(self) -> LLMStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
