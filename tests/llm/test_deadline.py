"""StepTimer: one armed timer for a stream's steps, asyncio.timeout's semantics."""

from __future__ import annotations

import asyncio

import pytest

from llm._deadline import StepTimer


async def test_a_step_past_its_limit_raises_timeout_and_cancels_the_awaitable() -> None:
    timer = StepTimer()
    never = asyncio.Event()
    waiter = asyncio.ensure_future(never.wait())
    with pytest.raises(TimeoutError):
        await timer.step(waiter, 0.05)
    assert waiter.cancelled()
    assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
    timer.close()


async def test_steps_renew_the_deadline_so_only_a_silent_step_times_out() -> None:
    timer = StepTimer()
    # Eight steps of 0.1 s under a 0.5 s limit: 0.8 s in all, no step over the limit.
    for _ in range(8):
        assert await timer.step(asyncio.sleep(0.1, result="item"), 0.5) == "item"
    with pytest.raises(TimeoutError):
        await timer.step(asyncio.sleep(5), 0.2)
    timer.close()


async def test_an_outside_cancellation_stays_a_cancellation() -> None:
    started = asyncio.Event()

    async def consumer() -> None:
        timer = StepTimer()

        async def wait() -> None:
            started.set()
            await asyncio.sleep(5)

        try:
            await timer.step(wait(), 2.0)
        finally:
            timer.close()

    task = asyncio.create_task(consumer())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_no_limit_is_a_plain_await_and_values_and_errors_pass_through() -> None:
    timer = StepTimer()
    assert await timer.step(asyncio.sleep(0, result=3), None) == 3

    async def boom() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await timer.step(boom(), 1.0)
    timer.close()
