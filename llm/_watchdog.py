"""The first-token and idle timeouts of a stream: one timer per lapse, not per token.

``asyncio.timeout`` around each read allocates a timeout and a timer handle
per token and cancels it again, at a few thousand tokens a second when a
daemon relays a hundred streams (4-13 % of the event loop's samples in py-spy
profiles of ``bench/daemon_load.py``, a sampler whose attribution is rough). A
:class:`Watchdog` keeps the deadline as a number, moved by each :meth:`arm`,
and its one timer, when it fires early, re-arms for the rest. Only the time a
read waits counts: between :meth:`disarm` and the next :meth:`arm` (the
consumer holds the stream) nothing can expire.

On expiry the task that armed it is cancelled, as ``asyncio.timeout`` does,
and :meth:`expired` tells the ``CancelledError`` it caused from any other
(the ``uncancel`` bookkeeping of ``asyncio.timeout``, Python 3.11+).
"""

from __future__ import annotations

import asyncio

#: A timer may fire this early (the loop's clock resolution); it counts as due.
_EARLY_S = 0.001


class Watchdog:
    """Expire a read that waits longer than its limit (seconds); see the module docstring."""

    __slots__ = ("_cancelling", "_due", "_fired", "_handle", "_loop", "_task", "_timer_at")

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._handle: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # loop time the handle fires at
        self._due: float | None = None  # loop time the current read expires; None: no read
        self._task: asyncio.Task[object] | None = None
        self._cancelling = 0
        self._fired = False

    def arm(self, limit: float | None) -> None:
        """A read starts in the current task: it expires after ``limit`` seconds
        (``None``: never) unless :meth:`disarm` comes first."""
        if limit is None:
            self._due = None
            return
        task = asyncio.current_task()
        assert task is not None, "Watchdog.arm() outside a task"
        self._task = task
        self._cancelling = task.cancelling()
        due = self._loop.time() + limit
        self._due = due
        if self._handle is None or self._timer_at > due:
            if self._handle is not None:
                self._handle.cancel()
            self._timer_at = due
            self._handle = self._loop.call_at(due, self._check)

    def disarm(self) -> None:
        """The read ended (an item, an error or a cancel): nothing waits now. If
        the watchdog fired but the read ended without its ``CancelledError``
        (something swallowed it), its cancel request is taken back, as
        ``asyncio.timeout`` does on exit."""
        self._due = None
        if self._fired:
            self._fired = False
            assert self._task is not None
            self._task.uncancel()

    def expired(self) -> bool:
        """After the read raised ``CancelledError``: ``True`` if this watchdog caused
        it and nothing else cancelled the task (then raise the timeout error)."""
        if not self._fired:
            return False
        self._fired = False
        assert self._task is not None
        return self._task.uncancel() <= self._cancelling

    def close(self) -> None:
        """Stop the timer (the stream ended)."""
        self._due = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _check(self) -> None:
        self._handle = None
        due = self._due
        if due is None:
            return  # no read waits; the next arm() starts a timer
        if self._loop.time() + _EARLY_S < due:  # items came meanwhile: wait out the rest
            self._timer_at = due
            self._handle = self._loop.call_at(due, self._check)
            return
        self._due = None
        self._fired = True
        assert self._task is not None
        self._task.cancel()
