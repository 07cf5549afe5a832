"""Several event streams, yielded one after the other, the next ones already running.

A batch job is a sequence of runs (chapters, items), each an async generator
of events. Run one at a time, the cores idle at every boundary: a run's last
segments are synthesized while its other workers wait for nothing, then the
next run starts from an empty queue. :func:`in_order` starts the next
``ahead`` streams while the current one is consumed, holds their events, and
yields everything in stream order, so a consumer sees exactly what the
sequential loop gave it (only later). How many segments are synthesized at
once stays the engine's business (``parallel``), so overlapping runs fill
idle slots instead of adding more.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Generic, TypeVar

T = TypeVar("T")

_END = object()


class _Pump(Generic[T]):
    """One stream pumped into an unbounded queue by its own task.

    The queue holds the events of one stream that has not had its turn yet:
    a chapter's or an item's (a few per segment, no audio), never the job's.
    """

    def __init__(self, stream: AsyncGenerator[T, None]) -> None:
        self._stream = stream
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._error: BaseException | None = None
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        try:
            async with contextlib.aclosing(self._stream):
                async for event in self._stream:
                    self._queue.put_nowait(event)
        except Exception as exc:  # re-raised in the consumer, at this stream's turn
            self._error = exc
        finally:
            self._queue.put_nowait(_END)

    async def events(self) -> AsyncGenerator[T, None]:
        while (event := await self._queue.get()) is not _END:
            yield event
        if self._error is not None:
            raise self._error

    def cancel(self) -> asyncio.Task[None]:
        """Stop the stream (its generator is closed: a run keeps its files);
        the task to wait for."""
        self._task.cancel()
        return self._task


async def in_order(streams: AsyncIterator[AsyncGenerator[T, None]], *,
                   ahead: int = 0) -> AsyncGenerator[T, None]:
    """Yield every event of each of ``streams`` in turn, the next ``ahead``
    streams running meanwhile (``0``: one at a time, the sequential loop).

    ``streams`` is consumed lazily: a stream is created (and its side effects
    happen) when it is started, at most ``ahead`` before its turn, and once
    the stream before it has given its first event (the current run starts
    first; from then on the two share the engine's slots). A stream not
    started ahead is iterated directly, so its own backpressure holds. An
    error a stream raises, or ``streams`` raises making it, is raised at its
    turn, after every event before it. Closing this generator cancels the
    streams running ahead (each closes as a cancelled run does: files written
    so far stay).
    """
    pumps: deque[_Pump[T]] = deque()
    head: _Pump[T] | None = None
    exhausted = False

    async def fill() -> None:
        nonlocal exhausted
        while len(pumps) < ahead and not exhausted:
            try:
                stream = await anext(streams, None)
            except Exception as exc:  # making the next stream failed: raised at its turn
                exhausted = True
                pumps.append(_Pump(_raising(exc)))
                return
            if stream is None:
                exhausted = True
            else:
                pumps.append(_Pump(stream))

    try:
        while True:
            direct = None
            if pumps:
                head = pumps.popleft()
            elif not exhausted:
                direct = await anext(streams, None)
                exhausted = direct is None
            if head is None and direct is None:
                return
            events = head.events() if head is not None else direct
            assert events is not None
            async with contextlib.aclosing(events):
                async for event in events:
                    yield event
                    await fill()
            await fill()  # a stream that gave no event
            head = None
    finally:
        # Every stream is told to stop before any is waited for, so a second
        # cancellation of the caller while it waits leaves none running on.
        # (It is not swallowed: asyncio.wait does not raise the tasks' own.)
        stopping = {pump.cancel() for pump in (head, *pumps) if pump is not None}
        try:
            if stopping:
                await asyncio.wait(stopping)
        finally:
            aclose = getattr(streams, "aclose", None)
            if aclose is not None:
                await aclose()


async def _raising(exc: Exception) -> AsyncGenerator[Any, None]:
    """A stream that raises ``exc`` when its turn comes."""
    raise exc
    yield  # pragma: no cover - makes this an async generator
