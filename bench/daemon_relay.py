"""The daemon's relay: CPU per token from an LLM stream to SSE bytes, minus the pipeline.

The daemon load scenario (``bench/daemon_load.py``) measures everything a run
costs under a burst; on a shared 2-core machine its relay share drowns in
noise. This measures, in one process and with public names only:

- *pipeline*: ``CLIENTS`` runs at once of ``StreamingPipeline.astream_chat_to_audio``
  over an in-process LLM client giving ``TOKENS`` one-word deltas in bursts of
  ``BURST`` every ``PACE_S`` (no sentence end until the last token, so one
  segment: synthesis costs almost nothing; fake engine), events drained;
- *daemon*: the same runs through ``create_app`` and ``POST /v1/speak`` over
  ``httpx.ASGITransport``, each SSE body read to its end.

Reported: CPU microseconds per token (``time.process_time``) of each, and
their difference, the daemon's relay cost (run driver, messages, SSE
encoding and writes). Run it here, and with ``PYTHONPATH=<a checkout of
main>`` for the code before, side by side.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

TOKENS = 2000
BURST = 4
PACE_S = 0.004  # 1,000 tokens/s per run
CLIENTS = 20


class _LLM:
    """A duck-typed LLM client: TOKENS words, then a full stop."""

    provider = "bench"
    model = "relay"

    def astream_chat(self, messages: Any, **_: Any) -> AsyncIterator[str]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[str]:
        for i in range(TOKENS):
            yield " word"
            if i % BURST == BURST - 1:
                await asyncio.sleep(PACE_S)  # the next network read
        yield "."

    async def aclose(self) -> None:
        pass


def _engine() -> Any:
    from tests.fakes.engine import FakeEngine

    return FakeEngine(seconds_per_char=0.0001, min_duration_s=0.05)


async def _pipeline(clients: int, out: Path) -> None:
    from pipeline import StreamingConfig, create_streaming_pipeline

    config = StreamingConfig(output_dir=out / "pipeline", max_buffer_time=None)
    async with create_streaming_pipeline(streaming_config=config, llm_client=_LLM(),  # type: ignore[arg-type]
                                         tts_engine=_engine()) as pipe:

        async def one(n: int) -> None:
            async for _ in pipe.astream_chat_to_audio("go", run_id=f"p{n}"):
                pass

        await asyncio.gather(*(one(n) for n in range(clients)))


async def _daemon(clients: int, out: Path) -> int:
    from pipeline import StreamingConfig
    from pipeline.daemon import DaemonSettings, create_app

    settings = DaemonSettings(output_dir=out / "daemon", streaming_config=StreamingConfig(
        output_dir=out / "daemon", max_buffer_time=None))
    app = create_app(settings, llm_client=_LLM(), tts_engine=_engine())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench",
                                     timeout=600) as http:

            async def one(n: int) -> int:
                size = 0
                async with http.stream("POST", "/v1/speak", json={"message": "go"}) as r:
                    async for chunk in r.aiter_raw():
                        size += len(chunk)
                return size

            sizes = await asyncio.gather(*(one(n) for n in range(clients)))
    return sizes[0]


def _timed(coro: Any) -> tuple[float, Any]:
    started = time.process_time()
    result = asyncio.run(coro)
    return time.process_time() - started, result


def run(clients: int = CLIENTS) -> dict[str, Any]:
    import pipeline

    with tempfile.TemporaryDirectory(prefix="speakstream-relay-") as tmp:
        out = Path(tmp)
        asyncio.run(_pipeline(1, out / "warm"))  # imports and first use out of the way
        asyncio.run(_daemon(1, out / "warm"))
        pipe_cpu, _ = _timed(_pipeline(clients, out / "a"))
        daemon_cpu, sse_bytes = _timed(_daemon(clients, out / "b"))
    tokens = TOKENS * clients
    return {
        "code": str(Path(pipeline.__file__).resolve().parents[1]),
        "tokens_per_run": TOKENS, "runs": clients,
        "pipeline_cpu_us_per_token": 1e6 * pipe_cpu / tokens,
        "daemon_cpu_us_per_token": 1e6 * daemon_cpu / tokens,
        "relay_cpu_us_per_token": 1e6 * (daemon_cpu - pipe_cpu) / tokens,
        "sse_bytes_per_client": sse_bytes,
    }  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if sys.argv[1:] else CLIENTS), indent=1))
