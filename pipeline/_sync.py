"""The one bridge from the async API to the sync one: an anyio blocking portal.

The event loop runs in a portal thread owned by the object that needs it
(a :class:`~pipeline.StreamingPipeline`), so clients and engines created in
that loop stay usable across calls. Sync twins are thin: they call their
async original through :func:`iterate_in_portal` and never duplicate logic.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from anyio.from_thread import BlockingPortal, start_blocking_portal

T = TypeVar("T")


class PortalHolder:
    """A lazily started blocking portal (event loop in a thread), closed by :meth:`close`."""

    def __init__(self) -> None:
        self._stack: contextlib.ExitStack | None = None
        self._portal: BlockingPortal | None = None

    @property
    def portal(self) -> BlockingPortal:
        """The portal, started on first use."""
        if self._portal is None:
            stack = contextlib.ExitStack()
            self._portal = stack.enter_context(start_blocking_portal())
            self._stack = stack
        return self._portal

    @property
    def started(self) -> bool:
        return self._portal is not None

    def close(self) -> None:
        """Stop the portal's loop and join its thread. Idempotent."""
        stack, self._stack, self._portal = self._stack, None, None
        if stack is not None:
            stack.close()


def iterate_in_portal(
    portal: BlockingPortal, make: Callable[[], AsyncIterator[T]]
) -> Iterator[T]:
    """Iterate the async iterator ``make()`` from sync code, one item per call.

    Closing the returned generator early (``break``, ``close()``, an exception
    such as ``KeyboardInterrupt`` in the caller) closes the async iterator in
    the portal's loop, which cancels its work.
    """
    agen = make()

    async def step() -> tuple[bool, Any]:
        try:
            return True, await anext(agen)
        except StopAsyncIteration:
            return False, None

    async def close() -> None:
        aclose = getattr(agen, "aclose", None)
        if aclose is not None:
            await aclose()

    try:
        while True:
            more, item = portal.call(step)
            if not more:
                return
            yield item
    finally:
        portal.call(close)
