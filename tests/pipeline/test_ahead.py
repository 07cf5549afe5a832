"""in_order: streams yielded one after the other while the next ones already run."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import pytest

from pipeline._ahead import in_order


class Log:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.started: dict[str, asyncio.Event] = {}

    def event(self, name: str) -> asyncio.Event:
        return self.started.setdefault(name, asyncio.Event())


def stream(log: Log, name: str, count: int, *, wait_for: str | None = None,
           fail: bool = False) -> AsyncGenerator[str, None]:
    async def gen() -> AsyncGenerator[str, None]:
        log.event(name).set()
        log.lines.append(f"{name} started")
        try:
            for n in range(count):
                yield f"{name}{n}"
                if n == 0 and wait_for is not None:
                    await log.event(wait_for).wait()  # only ends if `wait_for` runs meanwhile
            if fail:
                raise ValueError(f"{name} failed")
        finally:
            log.lines.append(f"{name} closed")

    return gen()


async def streams(log: Log, *made: AsyncGenerator[str, None]) -> AsyncIterator[Any]:
    try:
        for n, s in enumerate(made):
            log.lines.append(f"made {n}")
            yield s
    finally:
        log.lines.append("streams closed")


async def collect(gen: AsyncGenerator[str, None]) -> list[str]:
    return [e async for e in gen]


def test_the_next_stream_runs_while_the_current_one_is_consumed() -> None:
    async def main() -> tuple[list[str], Log]:
        log = Log()
        # a waits, after its first event, until b has started: only overlap lets it end.
        got = await asyncio.wait_for(collect(in_order(streams(
            log, stream(log, "a", 2, wait_for="b"), stream(log, "b", 2),
            stream(log, "c", 1)), ahead=1)), 60)
        return got, log

    got, log = asyncio.run(main())
    assert got == ["a0", "a1", "b0", "b1", "c0"]  # the order of the sequential loop
    assert log.lines.index("b started") < log.lines.index("a closed")
    assert log.lines.index("a started") < log.lines.index("b started")  # the current one first


def test_ahead_zero_is_the_sequential_loop() -> None:
    async def main() -> Log:
        log = Log()
        got = await collect(in_order(streams(log, stream(log, "a", 2), stream(log, "b", 1)),
                                     ahead=0))
        assert got == ["a0", "a1", "b0"]
        return log

    log = asyncio.run(main())
    assert log.lines.index("a closed") < log.lines.index("made 1")


def test_an_error_is_raised_at_its_streams_turn_after_its_events() -> None:
    async def main() -> tuple[list[str], Log]:
        log, got = Log(), []
        with pytest.raises(ValueError, match="b failed"):
            async for e in in_order(streams(log, stream(log, "a", 3),
                                            stream(log, "b", 1, fail=True),
                                            stream(log, "c", 1)), ahead=2):
                got.append(e)
        return got, log

    got, log = asyncio.run(main())
    assert got == ["a0", "a1", "a2", "b0"]
    assert "c closed" in log.lines and "streams closed" in log.lines


def test_an_error_making_the_next_stream_is_raised_after_the_current_ones_events() -> None:
    async def main() -> tuple[list[str], Log]:
        log, got = Log(), []

        async def made() -> AsyncIterator[Any]:  # a bad job line after the first item
            yield stream(log, "a", 3)
            raise ValueError("bad line")

        with pytest.raises(ValueError, match="bad line"):
            async for e in in_order(made(), ahead=1):
                got.append(e)
        return got, log

    got, log = asyncio.run(main())
    assert got == ["a0", "a1", "a2"] and "a closed" in log.lines


def test_closing_early_closes_the_streams_running_ahead() -> None:
    async def main() -> Log:
        log = Log()
        events = in_order(streams(log, stream(log, "a", 3, wait_for="b"), stream(log, "b", 5)),
                          ahead=1)
        assert [await anext(events), await anext(events)] == ["a0", "a1"]
        await events.aclose()
        return log

    log = asyncio.run(main())
    assert {"a closed", "b started", "b closed", "streams closed"} <= set(log.lines)


def test_a_jobs_next_item_runs_while_the_current_one_ends(tmp_path: Any) -> None:
    """Item 1's only segment is held until item 2's synthesis has begun: the job
    ends only because items overlap; its events and results equal a job run one
    item at a time."""
    from pipeline import create_streaming_pipeline
    from pipeline._job import ItemDone, JobProgress, anarrate_job
    from pipeline._job_pipelines import JobPipelines
    from pipeline._jobfile import JobItem
    from pipeline._settings import resolve_settings
    from tests.fakes.engine import FakeEngine

    items = [JobItem(id="item_0001", text="The first item has one sentence."),
             JobItem(id="item_0002", text="# One\n\nThe second item.\n\n# Two\n\nIts end.\n")]

    async def job(out: str, ahead: int, gate: asyncio.Event | None) -> list[Any]:
        engine = FakeEngine(gates={0: gate} if gate else {})
        settings = resolve_settings({"workers": 1, "format": "wav", "output_dir": out,
                                     "play": False},
                                    files=[], env={})
        pipe = create_streaming_pipeline(None, tts_engine=engine,
                                         streaming_config=settings.streaming_config())

        async def open_gate() -> None:
            await engine.started.setdefault(1, asyncio.Event()).wait()
            assert gate is not None
            gate.set()

        seen: list[Any] = []
        async with pipe, JobPipelines(pipe, settings) as pipelines, asyncio.TaskGroup() as tg:
            if gate is not None:
                tg.create_task(open_gate())
            async for e in anarrate_job(items, pipeline_for=pipelines.get, output_dir=out,
                                        ahead=ahead):
                if isinstance(e, ItemDone):
                    seen.append(("done", e.item.id, e.result.to_record()))
                else:
                    assert isinstance(e, JobProgress)
                    seen.append((e.item.id, e.chapter and e.chapter.number, e.event.status,
                                 getattr(e.event, "index", None)))
        if gate is not None:  # item 2's synthesis began while item 1's was held
            assert "first item" not in engine.calls[1].text
        return seen

    async def main() -> tuple[list[Any], list[Any]]:
        overlapped = await asyncio.wait_for(job(str(tmp_path / "a"), 1, asyncio.Event()), 120)
        one_by_one = await job(str(tmp_path / "b"), 0, None)
        return overlapped, one_by_one

    overlapped, one_by_one = asyncio.run(main())

    assert overlapped == one_by_one
    assert [e[1] for e in overlapped if e[0] == "done"] == ["item_0001", "item_0002"]


def test_a_second_cancellation_while_closing_leaves_no_stream_running() -> None:
    async def main() -> Log:
        log = Log()
        ready = asyncio.Event()

        async def consume() -> None:
            # b and c would run forever after their first event unless stopped.
            made = streams(log, stream(log, "a", 3, wait_for="c"),
                           stream(log, "b", 2, wait_for="never"),
                           stream(log, "c", 2, wait_for="never"))
            async for e in in_order(made, ahead=2):
                if e == "a1":  # a gives a1 only once c runs ahead (b does too)
                    ready.set()
                    await asyncio.Event().wait()  # until cancelled

        consumer = asyncio.create_task(consume())
        await ready.wait()
        consumer.cancel()
        await asyncio.sleep(0)  # it is closing: waiting for the streams ahead to stop
        consumer.cancel()  # a second cancellation (another Ctrl-C) meanwhile
        await asyncio.wait({consumer})
        running = [t for t in asyncio.all_tasks() if "_pump" in repr(t.get_coro())]
        # Each stream ahead was told to stop, though the caller no longer waits for it.
        assert all(t.cancelling() for t in running), running
        if running:
            await asyncio.wait(running)
        return log

    log = asyncio.run(main())
    assert {"a closed", "b closed", "c closed", "streams closed"} <= set(log.lines)
