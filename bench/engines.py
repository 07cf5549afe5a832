"""Scenario 6: real engines: real-time factor per segment and 1 vs 2 worker narration.

Chapter I of Alice in Wonderland (the repository's copy, ``tests/data``) is narrated through
``StreamingPipeline.astream_text_to_audio`` (default segmentation, WAV files)
with ``tts.EspeakEngine`` (an espeak-ng subprocess per segment) and
``tts.Pyttsx3Engine`` (pyttsx3 in its worker process) when importable.

* RTF per segment = ``AudioReady.synth_s / AudioReady.duration_s`` (below 1 is
  faster than real time): median and p95 over the chapter's segments.
* Narration throughput: audio seconds produced per wall second, with
  ``workers=1`` and ``workers=2`` run alternately (``reps`` times each, median);
  ``speedup_2_workers`` = wall(1 worker) / wall(2 workers).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.common import alice_chapter_1, median, percentile
from pipeline import AudioReady, RunCompleted, create_streaming_pipeline
from tts import TTSEngine


def _factories() -> dict[str, Callable[[], TTSEngine]]:
    import tts

    found: dict[str, Callable[[], TTSEngine]] = {"espeak": tts.EspeakEngine}
    pyttsx3 = getattr(tts, "Pyttsx3Engine", None)
    if pyttsx3 is not None:
        found["pyttsx3"] = pyttsx3
    return found


async def _narrate(engine: TTSEngine, text: str, workers: int, out: str) -> dict[str, Any]:
    pipe = create_streaming_pipeline(None, tts_engine=engine,
                                     streaming_config={"output_dir": out, "workers": workers})
    rtf: list[float] = []
    audio_s = 0.0
    start = time.monotonic()
    async with pipe, contextlib.aclosing(pipe.astream_text_to_audio(text)) as events:
        async for event in events:
            if isinstance(event, AudioReady):
                rtf.append(event.synth_s / event.duration_s)
                audio_s += event.duration_s
            elif isinstance(event, RunCompleted):
                assert event.error is None, event.error
    return {"wall_s": time.monotonic() - start, "audio_s": audio_s, "rtf": rtf}


async def _engine_rows(name: str, make: Callable[[], TTSEngine], text: str,
                       reps: int) -> dict[str, Any]:  # fmt: skip
    engine = make()
    walls: dict[int, list[float]] = {1: [], 2: []}
    rtf: list[float] = []
    audio_s = 0.0
    async with engine:
        with tempfile.TemporaryDirectory() as out:
            await _narrate(engine, text[:400], 1, out)  # warm-up (worker start, caches)
            for _ in range(reps):
                for workers in (1, 2):
                    row = await _narrate(engine, text, workers, out)
                    walls[workers].append(row["wall_s"])
                    if workers == 1:
                        rtf.extend(row["rtf"])
                        audio_s = row["audio_s"]
    wall1, wall2 = median(walls[1]), median(walls[2])
    return {"segments": len(rtf) // reps, "audio_s": audio_s,
            "rtf_median": median(rtf), "rtf_p95": percentile(rtf, 95),
            "wall_s_1_worker": wall1, "wall_s_2_workers": wall2,
            "audio_s_per_s_1_worker": audio_s / wall1, "audio_s_per_s_2_workers": audio_s / wall2,
            "speedup_2_workers": wall1 / wall2}  # fmt: skip


async def run_async(quick: bool = False) -> dict[str, Any]:
    text = alice_chapter_1()
    if quick:
        text = text[:3000]
    results: dict[str, Any] = {"text_chars": len(text), "engines": {}, "skipped": {}}
    for name, make in _factories().items():
        try:
            results["engines"][name] = await _engine_rows(name, make, text, 1 if quick else 2)
        except Exception as exc:  # reported in the results and the table, not swallowed
            results["skipped"][name] = f"{type(exc).__name__}: {exc}"
    return results


def run(quick: bool = False) -> dict[str, Any]:
    return asyncio.run(run_async(quick=quick))


if __name__ == "__main__":
    import json
    import sys

    result = run(quick="--quick" in sys.argv)
    for row in result["engines"].values():
        row.pop("rtf", None)
    print(json.dumps(result, indent=1))
