"""A fresh daemon prepares at start-up what its first requests would otherwise
do on the event loop (see ``pipeline/_daemon/_warm.py``): its I/O threads run,
anyio's asyncio backend (Starlette's streaming responses) and the sentence
model are imported. Checked in a child process: a fresh interpreter, the
app's lifespan driven with plain ASGI messages (no test client, which would
import anyio's backend itself)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline._daemon import _warm
from pipeline._daemon._state import IO_THREADS

_CHILD = """
import asyncio, json, sys, threading
from pipeline.daemon import DaemonSettings, create_app
from tests.fakes.engine import FakeEngine

WATCHED = ("anyio._backends._asyncio", "punkt")

async def main():
    app = create_app(DaemonSettings(output_dir=sys.argv[1]), tts_engine=FakeEngine())
    before = {name: name in sys.modules for name in WATCHED}
    inbox, outbox = asyncio.Queue(), asyncio.Queue()
    await inbox.put({"type": "lifespan.startup"})
    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                                   inbox.get, outbox.put))
    started = await outbox.get()
    after = {name: name in sys.modules for name in WATCHED}
    threads = sum(t.name.startswith("speakstream-io") for t in threading.enumerate())
    await inbox.put({"type": "lifespan.shutdown"})
    await outbox.get()
    await task
    print(json.dumps({"started": started["type"], "before": before, "after": after,
                      "io_threads": threads}))

asyncio.run(main())
"""


def test_a_fresh_daemon_starts_its_io_threads_and_imports_before_the_first_request(
    tmp_path: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "out")],
        capture_output=True, text=True, timeout=120, check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["started"] == "lifespan.startup.complete"
    assert report["before"] == {"anyio._backends._asyncio": False, "punkt": False}
    assert report["after"] == {"anyio._backends._asyncio": True, "punkt": True}
    assert report["io_threads"] == IO_THREADS


async def test_a_cancelled_start_releases_the_threads_it_started(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cancelled while its threads wait for each other (here for a party that
    never comes), the start breaks their barrier: they end now, not after the
    barrier's 30 s timeout, and the daemon's shutdown does not wait for them."""
    loop, all_started, arrived = asyncio.get_running_loop(), asyncio.Event(), [0]

    def one_arrived() -> None:  # on the loop: no race between the threads
        arrived[0] += 1
        if arrived[0] == 3:
            all_started.set()

    class NeverFull(threading.Barrier):
        def __init__(self, parties: int, timeout: float) -> None:
            super().__init__(parties + 1, timeout=timeout)

        def wait(self, timeout: float | None = None) -> int:
            loop.call_soon_threadsafe(one_arrived)
            return super().wait(timeout)

    monkeypatch.setattr(_warm, "threading", SimpleNamespace(Barrier=NeverFull))
    start = asyncio.create_task(_warm.started_pool(3, "warm-test"))
    await asyncio.wait_for(all_started.wait(), 30)
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    for thread in [t for t in threading.enumerate() if t.name.startswith("warm-test")]:
        thread.join(10)  # a bound, far below the barrier's 30 s
        assert not thread.is_alive()
