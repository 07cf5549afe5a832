"""The one sync bridge (llm.PortalHolder + llm.iterate_in_portal) and the client's use of it."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

import llm
import pipeline._sync
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.llm.conftest import MakeClient


@pytest.fixture
def holder() -> Iterator[llm.PortalHolder]:
    held = llm.PortalHolder()
    yield held
    held.close()


class Source:
    """An async iterator that records how far it got and whether it was closed."""

    def __init__(self, n: int, fail_at: int | None = None) -> None:
        self.n, self.fail_at = n, fail_at
        self.produced = 0
        self.closed = threading.Event()

    async def items(self) -> AsyncIterator[int]:
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise llm.LLMStreamError(f"broke at {i}")
                self.produced += 1
                yield i
        finally:
            self.closed.set()


def test_pipeline_uses_the_same_bridge() -> None:
    assert pipeline._sync.PortalHolder is llm.PortalHolder
    assert pipeline._sync.iterate_in_portal is llm.iterate_in_portal


def test_items_in_order_then_the_end(holder: llm.PortalHolder) -> None:
    source = Source(1000)
    assert list(llm.iterate_in_portal(holder.portal, source.items)) == list(range(1000))
    assert source.closed.is_set()


def test_error_comes_after_the_items_before_it(holder: llm.PortalHolder) -> None:
    source = Source(10, fail_at=7)
    got: list[int] = []
    with pytest.raises(llm.LLMStreamError, match="broke at 7"):
        for item in llm.iterate_in_portal(holder.portal, source.items):
            got.append(item)
    assert got == list(range(7)) and source.closed.is_set()


def test_the_pump_runs_at_most_ahead_items_ahead(holder: llm.PortalHolder) -> None:
    source = Source(10_000)
    iterator = llm.iterate_in_portal(holder.portal, source.items, ahead=8)
    assert next(iterator) == 0
    # Let the loop run: however long we wait, the pump stops at its credit.
    holder.portal.call(_settle)
    assert 1 <= source.produced <= 1 + 8
    iterator.close()  # type: ignore[attr-defined]
    assert source.closed.is_set()  # closed, and waited for, before close() returned
    assert source.produced <= 1 + 8


async def _settle() -> None:
    import asyncio

    for _ in range(50):
        await asyncio.sleep(0)


def test_closing_early_closes_the_source(holder: llm.PortalHolder) -> None:
    source = Source(100)
    for item in llm.iterate_in_portal(holder.portal, source.items):
        if item == 3:
            break
    assert source.closed.is_set()


def test_closing_while_the_source_waits_lets_its_cleanup_finish(
    holder: llm.PortalHolder,
) -> None:
    """The pump is cancelled once (asyncio, edge-triggered): a source blocked in an
    await still runs a cleanup that awaits (closing a response, writing a summary)."""
    import asyncio

    cleaned = threading.Event()

    async def items() -> AsyncIterator[int]:
        try:
            yield 0
            await asyncio.Event().wait()  # the model is still thinking
            yield 1
        finally:
            for _ in range(3):
                await asyncio.sleep(0)
            cleaned.set()

    iterator = llm.iterate_in_portal(holder.portal, items)
    assert next(iterator) == 0
    holder.portal.call(_settle)  # the pump is now inside the source's await
    iterator.close()  # type: ignore[attr-defined]
    assert cleaned.is_set()


def test_argument_errors_surface_in_the_callers_thread(holder: llm.PortalHolder) -> None:
    def make() -> AsyncIterator[int]:
        raise ValueError("bad argument")

    with pytest.raises(ValueError, match="bad argument"):
        next(llm.iterate_in_portal(holder.portal, make))
    with pytest.raises(ValueError, match="ahead=0"):
        next(llm.iterate_in_portal(holder.portal, Source(1).items, ahead=0))


def test_holder_restarts_after_close_and_close_is_idempotent() -> None:
    held = llm.PortalHolder()
    assert not held.started
    first = held.portal
    held.close()
    held.close()
    assert not held.started
    assert held.portal is not first
    held.close()


def test_an_unclosed_holder_does_not_block_interpreter_exit() -> None:
    code = (
        "import llm\n"
        "holder = llm.PortalHolder()\n"
        "async def one(): return 1\n"
        "assert holder.portal.call(one) == 1\n"
        "it = llm.iterate_in_portal(holder.portal, lambda: agen())\n"
        "async def agen():\n"
        "    for i in range(100): yield i\n"
        "assert next(it) == 0\n"
        "print('exiting')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "exiting"


def test_sync_calls_reuse_one_loop_and_one_http_client(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=["a"]), Reply(tokens=["b"]))
    with make_client("openai") as client:
        assert client.generate("x").text == "a"
        first = client._http  # type: ignore[attr-defined]
        assert client.generate("y").text == "b"
        assert client._http is first is not None  # type: ignore[attr-defined]
        assert client._sync.started
    assert not client._sync.started  # close() stopped the loop thread
    assert client._http is None  # type: ignore[attr-defined]


async def test_a_client_used_from_a_new_loop_gets_a_new_http_client(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    """The async API in the test's loop after the sync API in the client's own loop."""
    server.push(Reply(tokens=["sync"]), Reply(tokens=["async"]))
    client = make_client("ollama")
    assert client.generate("x").text == "sync"
    sync_http = client._http  # type: ignore[attr-defined]
    assert "".join([d async for d in client.astream_generate("y")]) == "async"
    assert client._http is not sync_http  # type: ignore[attr-defined]
    await client.aclose()
    client.close()
