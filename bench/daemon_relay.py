"""The daemon's relay alone: CPU per token from pipeline events to SSE bytes.

The daemon load scenario (``bench/daemon_load.py``) measures everything a run
costs (LLM client, segmentation, synthesis, files); on a shared 2-core machine
its relay share drowns in noise. This isolates the part issue 13 changed:
``CLIENTS`` runs at once, each with one SSE reader (as in the load
scenario): a run's events (one ``started``, ``TOKENS`` text deltas arriving
in bursts of ``BURST`` every ``PACE_S``, one ``done``) go through the
daemon's run driver to its reader, which encodes every message as the route
does (``coalesce_ms`` 20). Reported: CPU
microseconds per token (``time.process_time``), the same for draining the
events alone, their difference (the relay's own cost), and the number of
SSE writes (``yield``s of the route's body) per client.

Runs against the code on ``sys.path``: ``python bench/daemon_relay.py`` here,
and with ``PYTHONPATH=<a checkout of main>`` for the old driver (``ActiveRun.events``
plus sse-starlette's ``ServerSentEvent``, one write per event), side by side.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

TOKENS = 2000
BURST = 4
PACE_S = 0.004  # 1,000 tokens/s per run
CLIENTS = 20


async def _events(run_id: str) -> AsyncIterator[Any]:
    from pipeline import RunCompleted, RunStarted, TextDelta

    yield RunStarted(run_id=run_id, t=0.0, audio_files_generated=0, llm_provider="x",
                     model="m", tts="fake", output_dir="/tmp")
    for i in range(TOKENS):
        yield TextDelta(run_id=run_id, t=i / 100, audio_files_generated=0, text=" word")
        if i % BURST == BURST - 1:
            await asyncio.sleep(PACE_S)  # the next network read
    yield RunCompleted(run_id=run_id, t=1.0, audio_files_generated=0, audio_files=[],
                       audio_indices=[], failed_indices=[], complete_text="", ttft_s=None,
                       ttfa_s=None, first_file_s=None, total_s=1.0, audio_s=0.0, rtf=None,
                       output_dir="/tmp", manifest_path="", merged_path=None,
                       subtitles_path=None, error=None, finish_reason="stop")


async def _new(clients: int) -> tuple[int, int]:
    from pipeline._daemon._metrics import DaemonMetrics
    from pipeline._daemon._runs import ActiveRun, RunRecord

    async def reader(n: int) -> tuple[int, int]:
        run = ActiveRun(RunRecord(f"r{n}", "speak"), _events(f"r{n}"),
                        stop_event=asyncio.Event(), metrics=DaemonMetrics(), coalesce_s=0.02)
        writes = size = 0
        with run.follow(0, "sse") as sub:
            while True:
                batch = run.batch_read(sub)
                if batch:
                    data = b"".join([entry.sse() for entry in batch])
                    writes += 1
                    size += len(data)
                    continue
                if run.log.closed:
                    return writes, size
                await run.log.wait(sub.cursor)

    results = await asyncio.gather(*(reader(n) for n in range(clients)))
    return results[0]


async def _old(clients: int) -> tuple[int, int]:
    from sse_starlette import ServerSentEvent

    from pipeline._daemon._messages import client_message
    from pipeline._daemon._metrics import DaemonMetrics
    from pipeline._daemon._runs import ActiveRun, RunRecord

    async def reader(n: int) -> tuple[int, int]:
        run = ActiveRun(RunRecord(f"r{n}", "speak"), _events(f"r{n}"),
                        stop_event=asyncio.Event(), metrics=DaemonMetrics(), queue_size=8)
        writes = size = 0
        async for event in run.events(coalesce_s=0.02):
            kind, data = client_message(event)
            encoded = ServerSentEvent(data=json.dumps(data, ensure_ascii=False),
                                      event=kind).encode()
            writes += 1
            size += len(encoded)
        return writes, size

    results = await asyncio.gather(*(reader(n) for n in range(clients)))
    return results[0]


async def _floor(clients: int) -> tuple[int, int]:
    """The events alone, drained: the cost both drivers share."""

    async def drain(n: int) -> None:
        async for _ in _events(f"r{n}"):
            pass

    await asyncio.gather(*(drain(n) for n in range(clients)))
    return 0, 0


def run(clients: int = CLIENTS) -> dict[str, Any]:
    from pipeline._daemon import _runs

    asyncio.run(_floor(1))  # imports and first-use costs out of the way
    started = time.process_time()
    asyncio.run(_floor(clients))
    floor = time.process_time() - started

    new = hasattr(_runs.ActiveRun, "follow")
    started = time.process_time()
    writes, size = asyncio.run((_new if new else _old)(clients))
    cpu = time.process_time() - started
    return {
        "driver": "event log" if new else "queue per run",
        "code": str(Path(_runs.__file__).resolve().parents[2]),
        "tokens_per_run": TOKENS, "runs_with_one_client": clients,
        "cpu_us_per_token": 1e6 * cpu / (TOKENS * clients),
        "events_alone_cpu_us_per_token": 1e6 * floor / (TOKENS * clients),
        "relay_cpu_us_per_token": 1e6 * (cpu - floor) / (TOKENS * clients),
        "sse_writes_per_client": writes, "sse_bytes_per_client": size,
    }  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if sys.argv[1:] else CLIENTS), indent=1))
