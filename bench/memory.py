"""Scenario 5: peak RSS narrating a large text (fast fake engine, the real writer).

Each size runs in a fresh child process (``python -m bench.memory SIZE``) so
its peak RSS (``ru_maxrss``, the kernel's high-water mark) is its own. The
child streams the corpus, repeated to SIZE characters, in 4 KB chunks through
``StreamingPipeline.astream_text_to_audio`` with a zero-latency
:class:`tests.fakes.engine.FakeEngine` (10 ms tones) and the real
:class:`output.SegmentWriter` (atomic files, fsynced manifest), into a
temporary directory. The fake's own per-call records are dropped as it goes
(they would grow with the text). Reported: peak RSS, RSS after imports (before the run),
segments, files, seconds. Flat means peak(10 MB) ~ peak(1 MB).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

from bench.common import proc_status_mb

CHUNK = 4096


async def _narrate(size: int) -> dict[str, Any]:
    from bench.segmenter import corpus
    from pipeline import AudioReady, RunCompleted, create_streaming_pipeline
    from tests.fakes.engine import FakeEngine

    text = corpus(size)
    before = proc_status_mb("VmRSS")

    async def chunks() -> AsyncIterator[str]:
        for i in range(0, len(text), CHUNK):
            yield text[i : i + CHUNK]

    class ForgetfulEngine(FakeEngine):
        """FakeEngine without its per-call records (``calls``, ``started``),
        which grow with the text and are the fake's, not the pipeline's."""

        async def _synthesize(self, text: str, **kwargs: Any) -> Any:
            try:
                return await super()._synthesize(text, **kwargs)
            finally:
                self.calls.clear()
                self.started.clear()

    engine = ForgetfulEngine(seconds_per_char=0.0, min_duration_s=0.01)
    files = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        pipe = create_streaming_pipeline(None, tts_engine=engine,
                                         streaming_config={"output_dir": out, "workers": 2})
        async with pipe, contextlib.aclosing(pipe.astream_text_to_audio(chunks())) as events:
            async for event in events:
                if isinstance(event, AudioReady):
                    files += 1
                elif isinstance(event, RunCompleted):
                    assert event.error is None, event.error
        seconds = time.monotonic() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"size": size, "rss_before_mb": before, "peak_rss_mb": peak, "files": files,
            "seconds": seconds}  # fmt: skip


def measure(size: int) -> dict[str, Any]:
    """Run one size in a child process; its JSON result."""
    proc = subprocess.run([sys.executable, "-m", "bench.memory", str(size)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False) -> dict[str, Any]:
    sizes = (100_000, 1_000_000) if quick else (1_000_000, 10_000_000)
    rows = [measure(size) for size in sizes]
    return {"chunk_chars": CHUNK, "rows": rows,
            "growth": rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_narrate(int(sys.argv[1])))))
