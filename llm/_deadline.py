"""``StepTimer``: a time limit on one awaited step at a time, without a timer per step.

A stream waits for its next item under a limit (first token, then idle). One
``asyncio.timeout`` per item makes, schedules and cancels a timer handle for
every token; with a hundred streams at 40 tokens/s that is 4,000 timer
handles a second on the event loop. A :class:`StepTimer` keeps at most one
handle armed: each step only moves the deadline (a float); when the handle
fires before the current deadline (later steps moved it), it re-arms for that
deadline; when it fires at or after it, the waiting task is cancelled and the
step raises ``TimeoutError``, as ``asyncio.timeout`` would (an outside
cancellation of the same task stays a ``CancelledError``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")

#: A handle that fires this close to the deadline (seconds) counts as on time.
_SLACK_S = 1e-3


class StepTimer:
    """Times one awaited step at a time (see the module docstring). Use from one
    event loop; :meth:`close` cancels the armed handle."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._deadline = math.inf
        self._task: asyncio.Task[object] | None = None
        self._fired = False

    async def step(self, awaitable: Awaitable[T], limit: float | None) -> T:
        """``await awaitable``, limited to ``limit`` seconds (``None``: no limit).

        Raises:
            TimeoutError: the limit passed first (the awaitable was cancelled).
        """
        if limit is None:
            return await awaitable
        task = asyncio.current_task()
        assert task is not None, "StepTimer.step runs in a task"
        loop = self._loop
        self._task = task
        self._fired = False
        self._deadline = deadline = loop.time() + limit
        handle = self._handle
        if handle is None or handle.when() > deadline:  # none armed, or too late
            if handle is not None:
                handle.cancel()
            self._handle = loop.call_at(deadline, self._check)
        cancelling = task.cancelling()
        try:
            return await awaitable
        except asyncio.CancelledError:
            if self._fired and task.uncancel() <= cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._task = None
            self._deadline = math.inf
            self._fired = False

    def close(self) -> None:
        """Cancel the armed handle (idempotent)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()

    def _check(self) -> None:
        self._handle = None
        task = self._task
        if task is None:
            return  # between steps: the next step arms a handle again
        if self._deadline - self._loop.time() <= _SLACK_S:
            self._fired = True
            task.cancel()
        else:  # later steps moved the deadline
            self._handle = self._loop.call_at(self._deadline, self._check)
