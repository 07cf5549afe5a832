"""``Conversation``: multi-turn history over any :class:`~llm.LLMClient`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from contextlib import aclosing

from ._base import LLMClient
from ._stream import LLMStream, StreamState
from ._types import StreamChunk


class Conversation:
    """A chat whose history grows by one user/assistant pair per COMPLETED reply.

    Args:
        client: any client from :func:`~llm.create_client`.
        system: system prompt sent with every turn, or ``None``.
        history: initial ``[{"role": "user"|"assistant", "content": str}, ...]``.

    A reply that fails, is cancelled or is closed early leaves the history
    unchanged (the error's ``partial_text`` still has what was said); a reply
    that completed is history even when it was cut off (its stream's
    ``finish_reason`` says so). One reply at a time: starting a second while
    one streams raises ``RuntimeError``.
    """

    def __init__(
        self,
        client: LLMClient,
        *,
        system: str | None = None,
        history: list[dict[str, str]] | None = None,
    ) -> None:
        self.client = client
        self.system = system
        self._history: list[dict[str, str]] = [dict(m) for m in history or []]
        self._busy = False

    @property
    def history(self) -> list[dict[str, str]]:
        """A copy of the completed turns, ``{"role", "content"}`` dicts, oldest first."""
        return [dict(m) for m in self._history]

    def astream_reply(
        self,
        user_text: str,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
        pace: Callable[[], Awaitable[None]] | None = None,
    ) -> LLMStream:
        """Send ``user_text``; an :class:`~llm.LLMStream` of the reply's deltas.

        Deltas, ``finish_reason``, ``stats`` and errors as in
        :meth:`LLMClient.astream_chat`; ``temperature``, ``max_tokens`` and
        ``pace`` apply to this reply only.
        """
        return LLMStream(
            lambda state: self._reply(user_text, state, temperature=temperature,
                                      max_tokens=max_tokens, pace=pace)
        )

    async def _reply(
        self, user_text: str, outer: StreamState, *, temperature: float | None,
        max_tokens: int | None, pace: Callable[[], Awaitable[None]] | None,
    ) -> AsyncGenerator[str, None]:
        if self._busy:
            raise RuntimeError("Conversation: a reply is already streaming")
        self._busy = True
        try:
            user = {"role": "user", "content": user_text}
            parts: list[str] = []
            # Any client will do whose astream_chat gives an async iterator of
            # str (duck-typed test doubles too); an LLMStream also reports.
            inner = self.client.astream_chat(
                [*self._history, user], system=self.system,
                temperature=temperature, max_tokens=max_tokens,
                **({"pace": pace} if pace is not None else {}),
            )
            try:
                async with aclosing(inner):
                    async for delta in inner:
                        parts.append(delta)
                        outer.thinking_chars = getattr(inner, "thinking_chars", 0)
                        yield delta
            finally:
                outer.thinking_chars = getattr(inner, "thinking_chars", 0)
                outer.stats = getattr(inner, "stats", None)
            self._history += [user, {"role": "assistant", "content": "".join(parts)}]
        finally:
            self._busy = False

    def send_message_stream(self, user_text: str) -> Iterator[StreamChunk]:
        """Sync twin of :meth:`astream_reply`: :class:`~llm.StreamChunk` s, errors in the last."""
        return self.client._iter_sync(self.astream_reply(user_text))
