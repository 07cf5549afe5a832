"""At most N syntheses of one engine at once (an engine's ``parallel`` option)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any


class Slots:
    """``parallel`` slots, one semaphore per running event loop (an engine may
    serve one loop after another, e.g. the sync API's ``asyncio.run`` calls);
    ``None``: no limit.

    Raises:
        ValueError: ``parallel`` is not ``None`` or an integer in [1, 64].
    """

    def __init__(self, parallel: int | None) -> None:
        if parallel is not None and (
            isinstance(parallel, bool) or not isinstance(parallel, int) or not 1 <= parallel <= 64
        ):
            raise ValueError(f"parallel must be an integer in [1, 64], got {parallel!r}")
        self.parallel = parallel
        self._by_loop: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None

    def __call__(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """An ``async with`` that holds one slot (call inside the running loop)."""
        if self.parallel is None:
            return contextlib.nullcontext()
        loop = asyncio.get_running_loop()
        if self._by_loop is None or self._by_loop[0] is not loop:
            self._by_loop = (loop, asyncio.Semaphore(self.parallel))
        return self._by_loop[1]
