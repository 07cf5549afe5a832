"""Pausing a run at segment boundaries: :class:`PauseControl`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class PauseControl:
    """Pause and resume one streaming run.

    While paused, synthesis takes no new segment and no further segment is
    handed to the sinks (files, player, clients): both stop at a segment
    boundary (a segment being synthesized is finished, then held). The LLM
    stream is not cancelled: the run stops reading it (TCP backpressure holds
    the server) for at most ``hold_s`` seconds; after that the stream is closed
    and the text received so far is kept and spoken on resume (the run's
    ``finish_reason`` is then ``"paused"``). ``resume()`` goes on where the run
    stopped: nothing is lost or repeated.

    Args:
        hold_s: longest time (seconds, > 0) the LLM stream is held while paused.

    Attributes:
        holds: how many times the LLM stream was held (backpressure events).
    """

    def __init__(self, *, hold_s: float = 60.0) -> None:
        if isinstance(hold_s, bool) or not isinstance(hold_s, (int, float)) or not hold_s > 0:
            raise ValueError(f"hold_s must be a number of seconds > 0, got {hold_s!r}")
        self.hold_s = float(hold_s)
        self.holds = 0
        self._running = asyncio.Event()
        self._running.set()
        self._listeners: list[Callable[[bool], None]] = []

    def subscribe(self, listener: Callable[[bool], None]) -> None:
        """Call ``listener(paused)`` on every pause and resume."""
        self._listeners.append(listener)

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def pause(self) -> None:
        """Pause at the next segment boundary (no-op when paused)."""
        self._running.clear()
        for listener in self._listeners:
            listener(True)

    def resume(self) -> None:
        """Go on (no-op when not paused)."""
        self._running.set()
        for listener in self._listeners:
            listener(False)

    async def wait(self) -> None:
        """Return when the run is not paused."""
        await self._running.wait()

    async def hold(self) -> bool:
        """Called by the LLM reader: wait while paused, at most ``hold_s``.

        Returns:
            ``False`` when the hold limit passed while still paused (the caller
            closes the stream), else ``True``.
        """
        if self._running.is_set():
            return True
        self.holds += 1
        try:
            async with asyncio.timeout(self.hold_s):
                await self._running.wait()
        except TimeoutError:
            return False
        return True
