"""What a fresh daemon prepares at start-up, so its first burst of requests does not.

Measured in ``bench/daemon_load.py`` (a fresh daemon, 100 clients at once,
py-spy at 1 kHz): before this, the first burst's event loop spent about 215 ms
blocked in ``Thread.start`` (the I/O pool starting its threads one by one as
the first segment files were written: each start waits for the new thread to
take the GIL) and about 320 ms importing: anyio's asyncio backend (Starlette's
first streaming response) about 175 ms, the sentence model about 90 ms, the
rest other modules; all on the loop, while the first segments waited to be
cut and written.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import anyio.lowlevel

from .._sentence_buffer import split_sentences

#: Seconds a pool thread waits for its siblings to start (a bound, never met
#: on a working machine: it keeps a broken start from hanging the daemon).
_START_TIMEOUT_S = 30.0


async def started_pool(count: int, name: str) -> ThreadPoolExecutor:
    """A ``ThreadPoolExecutor`` of ``count`` threads (named ``name_<n>``), all
    started before it is returned (``ThreadPoolExecutor`` starts one thread
    per submit while none is idle, so each of ``count`` tasks waits at a
    barrier for the others: no thread is idle before all ``count`` run).

    If the start fails or is cancelled, the barrier is broken (every started
    thread returns at once) and the pool is shut down before the error
    propagates.

    Raises:
        threading.BrokenBarrierError: the threads did not all start within 30 s.
    """
    pool = ThreadPoolExecutor(max_workers=count, thread_name_prefix=name)
    barrier = threading.Barrier(count, timeout=_START_TIMEOUT_S)
    try:
        await asyncio.gather(*(asyncio.wrap_future(pool.submit(barrier.wait))
                               for _ in range(count)))  # fmt: skip
    except BaseException:
        barrier.abort()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    return pool


async def warm_up() -> None:
    """Import what the first request would import on the loop: anyio's asyncio
    backend (Starlette streams responses through it) and the sentence model."""
    await anyio.lowlevel.checkpoint()
    split_sentences("Warm up. Done.")
