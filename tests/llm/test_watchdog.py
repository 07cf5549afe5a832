"""The stream timeouts' watchdog: its cancel is its own, and taken back when unused."""

from __future__ import annotations

import asyncio

from llm._watchdog import Watchdog


async def test_a_cancel_the_read_swallowed_is_taken_back() -> None:
    """The watchdog fires while a read ignores the cancel and returns anyway: the
    task's cancel request is taken back, so a later outside cancel stays a cancel."""
    rearmed = asyncio.Event()

    async def read() -> None:
        watchdog = Watchdog()
        watchdog.arm(0.01)
        try:
            await asyncio.sleep(30)  # the watchdog cancels this...
        except asyncio.CancelledError:
            pass  # ...and something swallows it
        watchdog.disarm()
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0
        watchdog.arm(30)
        rearmed.set()
        try:
            await asyncio.sleep(30)  # now cancelled from outside
        except asyncio.CancelledError:
            assert not watchdog.expired()
            raise
        finally:
            watchdog.close()

    task = asyncio.create_task(read())
    await rearmed.wait()  # the watchdog's own cancel came and went, however slow the host
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    assert task.cancelled()


async def test_the_watchdog_expires_a_read_that_waits_too_long() -> None:
    async def read() -> str:
        watchdog = Watchdog()
        watchdog.arm(0.05)
        try:
            await asyncio.sleep(5)
        except asyncio.CancelledError:
            return "expired" if watchdog.expired() else "cancelled"
        finally:
            watchdog.close()
        return "read"

    assert await read() == "expired"
