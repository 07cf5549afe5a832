"""The one bridge from async code to sync callers: an event loop in a thread.

:class:`PortalHolder` owns an anyio blocking portal (an asyncio event loop
running in a daemon thread), started on first use and stopped by
:meth:`PortalHolder.close`. The object that needs sync twins (an
:class:`~llm.LLMClient`, a ``pipeline.StreamingPipeline``) keeps ONE holder for
its whole life, so HTTP connections, engines and models created in that loop
stay usable from one call to the next.

:func:`iterate_in_portal` iterates an async iterator from sync code. A pump
task in the portal's loop moves items into a thread-safe queue, at most
``ahead`` items ahead of the consumer, so a stream of small items (LLM
tokens, progress events) costs one queue hand-off per item instead of one
blocking cross-thread call. Errors raised by the async iterator are
re-raised in the consumer's thread; closing the sync iterator early
(``break``, ``close()``, ``KeyboardInterrupt``) cancels the pump and waits
until the async iterator is closed, which closes its HTTP response or stops
its work. The loop thread is a daemon: a holder
that is never closed does not keep the interpreter from exiting.

This lives in ``llm`` because ``llm`` imports nothing of ours and needs it;
``pipeline`` uses the same two names from here (``llm.PortalHolder``,
``llm.iterate_in_portal``).
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future
from typing import Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

T = TypeVar("T")

_ITEM, _END, _ERROR = 0, 1, 2
DEFAULT_AHEAD = 64  # items the pump may run ahead of a slow consumer


class PortalHolder:
    """A lazily started blocking portal (event loop in a daemon thread).

    Thread-safe. :meth:`close` stops the loop (cancelling tasks still
    running in it) and joins the thread; the next use of :attr:`portal`
    starts a fresh one.
    """

    def __init__(self, *, name: str = "speakstream-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None

    @property
    def portal(self) -> BlockingPortal:
        """The portal, started on first use."""
        with self._lock:
            if self._portal is None:
                self._portal, self._thread = _start_portal(self._name)
            return self._portal

    @property
    def started(self) -> bool:
        """``True`` while a portal is running."""
        return self._portal is not None

    def close(self) -> None:
        """Stop the portal's loop and join its thread. Idempotent.

        Raises:
            RuntimeError: called from the portal's own loop thread (it would
                wait for itself).
        """
        with self._lock:
            portal, thread = self._portal, self._thread
            if thread is not None and threading.current_thread() is thread:
                raise RuntimeError("PortalHolder.close() called from its own event loop thread")
            self._portal = self._thread = None
        if portal is None or thread is None:
            return
        try:
            portal.call(portal.stop, True)
        except RuntimeError:  # the loop already stopped
            pass
        thread.join()


def _start_portal(name: str) -> tuple[BlockingPortal, threading.Thread]:
    # Like anyio.from_thread.start_blocking_portal, but not a context manager:
    # a holder lives as long as its owner, and nothing runs at interpreter exit
    # (a generator-based context manager finalized then waits forever).
    ready: Future[BlockingPortal] = Future()

    async def serve() -> None:
        async with BlockingPortal() as portal:
            ready.set_result(portal)
            await portal.sleep_until_stopped()

    def run() -> None:
        try:
            anyio.run(serve)
        except BaseException as exc:  # reported to the starting thread
            if not ready.done():
                ready.set_exception(exc)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return ready.result(), thread


class _Pump(Generic[T]):
    """Moves items of an async iterator into a queue, ``ahead`` at most unread.

    Created in the consumer's thread; :meth:`run` and :meth:`stop` run in the
    loop (asyncio primitives bind to the loop on first use). :meth:`stop`
    cancels the pump task once, the asyncio way (edge-triggered), so the
    source's own cleanup (closing an HTTP response, ending a run and writing
    its summary) still runs to its end.
    """

    def __init__(self, source: AsyncIterator[T], ahead: int) -> None:
        self.items: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._source = source
        self._loop: asyncio.AbstractEventLoop | None = None
        self._credits = asyncio.Semaphore(ahead)
        self._finished = asyncio.Event()
        self._task: asyncio.Task[Any] | None = None
        self._stopped = False

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        terminal: tuple[int, Any] = (_ERROR, RuntimeError("the event loop stopped"))
        try:
            if self._stopped:  # stop() ran before the pump started
                return
            try:
                async for item in self._source:
                    if self._stopped:  # the source swallowed our cancellation
                        break
                    self.items.put((_ITEM, item))
                    await self._credits.acquire()
            except asyncio.CancelledError:
                if not self._stopped:
                    raise  # the loop is shutting down: not ours to swallow
                if self._task is not None:
                    self._task.uncancel()
            except Exception as exc:  # re-raised in the consumer's thread
                terminal = (_ERROR, exc)
            else:
                terminal = (_END, None)
        finally:
            try:
                aclose = getattr(self._source, "aclose", None)
                if aclose is not None:
                    await aclose()  # at a yield: its cleanup runs like a normal close
            finally:
                self.items.put(terminal)
                self._finished.set()

    def give_back(self, n: int) -> None:
        """Consumer thread: ``n`` items were taken; the pump may fetch ``n`` more."""
        loop = self._loop
        if n and loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(_release, self._credits, n)

    async def stop(self) -> None:
        """In the loop: cancel the pump and wait until the source is closed."""
        if not self._stopped:
            self._stopped = True
            if self._task is not None and not self._task.done():
                self._task.cancel()
        await self._finished.wait()


def _release(credits: asyncio.Semaphore, n: int) -> None:
    for _ in range(n):
        credits.release()


def iterate_in_portal(
    portal: BlockingPortal,
    make: Callable[[], AsyncIterator[T]],
    *,
    ahead: int = DEFAULT_AHEAD,
) -> Iterator[T]:
    """Iterate the async iterator ``make()`` from sync code.

    ``make`` is called in the caller's thread (argument errors surface
    there); the iterator runs in ``portal``'s loop, at most ``ahead`` items
    ahead of the consumer. An exception it raises is re-raised here, after
    the items before it. Closing the returned generator early closes the
    async iterator in the loop and waits for that.
    """
    if ahead < 1:
        raise ValueError(f"ahead={ahead!r} is invalid: expected an int >= 1")
    pump: _Pump[T] = _Pump(make(), ahead)
    portal.start_task_soon(pump.run)
    taken = 0  # items taken whose credit was not given back yet
    finished = False
    try:
        while True:
            try:
                kind, value = pump.items.get_nowait()
            except queue.Empty:
                pump.give_back(taken)  # never wait while holding credits back
                taken = 0
                kind, value = pump.items.get()
            if kind == _END:
                finished = True
                return
            if kind == _ERROR:
                finished = True
                raise value
            taken += 1
            if taken >= ahead // 2:
                pump.give_back(taken)
                taken = 0
            yield value
    finally:
        if not finished:
            try:
                portal.call(pump.stop)
            except RuntimeError:  # the portal was stopped meanwhile: nothing runs
                pass
