"""Scenario 11: narration jobs: throughput 1 vs 2 workers in-process and on Ray, and memory.

* Throughput: a job of equal text items cut from the corpus (``ITEM_CHARS``
  each; 12 for espeak-ng, 2 for piper, which is slower) narrated to WAV:
  - in-process (:func:`pipeline._job.anarrate_job`): items one after the
    other, ``workers=1`` vs ``workers=2`` segments synthesized in parallel;
  - on Ray (``ray.init(num_cpus=2)``, :func:`pipeline._ray.run_job_on_ray`):
    1 vs 2 warm actors (``workers=1`` each), items as tasks. Actors are
    started and warmed (piper's model loaded) before the clock starts.
  ``speedup`` = wall(1) / wall(2). One run each (the machine is shared:
  the 1-minute load average is recorded next to the figures).
* Memory: peak RSS (``VmHWM``) of a fresh process narrating a document
  of 1 MB and of 10 MB (the corpus repeated, its ``CHAPTER`` headings
  included) through ``anarrate_job`` with a zero-latency fake engine and the
  real writer; ``rss_growth`` = peak(10 MB) / peak(1 MB). Flat is ~1.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import proc_status_mb

ITEM_CHARS = 3000


def _items(count: int) -> list[Any]:
    from bench.segmenter import corpus
    from pipeline.jobs import JobItem

    text = corpus(ITEM_CHARS * count + 10_000)[10_000:]  # past the title page
    return [JobItem(id=f"item_{n + 1:04d}", text=text[n * ITEM_CHARS:(n + 1) * ITEM_CHARS])
            for n in range(count)]  # fmt: skip


def _settings(tts: str, workers: int, out: str) -> Any:
    from pipeline.jobs import resolve_settings

    return resolve_settings({"tts": tts, "format": "wav", "workers": workers, "output_dir": out,
                             "play": False}, files=[], env={})  # fmt: skip


async def _in_process(tts: str, workers: int, items: list[Any]) -> float:
    from pipeline import create_streaming_pipeline
    from pipeline.jobs import ItemDone, JobPipelines, anarrate_job

    with tempfile.TemporaryDirectory() as out:
        settings = _settings(tts, workers, out)
        pipe = create_streaming_pipeline(None, tts, settings.streaming_config())
        async with pipe, JobPipelines(pipe, settings) as pipelines:
            warm = _settings(tts, workers, out + "/warm")
            async for _ in anarrate_job(items[:1], pipeline_for=pipelines.get,
                                        output_dir=warm.values["output_dir"]):
                pass  # warm-up: engine start, model load
            start = time.monotonic()
            async for event in anarrate_job(items, pipeline_for=pipelines.get, output_dir=out):
                if isinstance(event, ItemDone):
                    assert event.result.status == "completed", event.result.errors
            return time.monotonic() - start


def _on_ray(tts: str, actors: int, items: list[Any]) -> float:
    import ray

    from pipeline.cluster import run_job_on_ray, start_workers

    with tempfile.TemporaryDirectory() as out:
        settings = _settings(tts, 1, out)
        pool = start_workers(tts, settings.streaming_config(), actors_per_node=actors)
        try:
            run_job_on_ray(items[:actors], settings=settings, output_dir=out + "/warm",
                           workers=pool)  # every actor warm before the clock starts
            start = time.monotonic()
            done = run_job_on_ray(items, settings=settings, output_dir=out, workers=pool)
            wall = time.monotonic() - start
        finally:
            for actor in pool:
                ray.kill(actor)
    assert all(r.status == "completed" for r in done)
    return wall


def _throughput(quick: bool) -> dict[str, Any]:
    import ray

    rows: dict[str, Any] = {}
    engines = {"espeak": 4 if quick else 12, "piper": 2}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        for tts, count in engines.items():
            items = _items(count)
            try:
                local = {w: asyncio.run(_in_process(tts, w, items)) for w in (1, 2)}
                remote = {a: _on_ray(tts, a, items) for a in (1, 2)}
            except Exception as exc:  # reported, not swallowed: the engine may be missing
                rows[tts] = {"error": f"{type(exc).__name__}: {exc}"}
                continue
            rows[tts] = {
                "items": count, "item_chars": ITEM_CHARS,
                "wall_s_in_process": local, "wall_s_ray": remote,
                "speedup_in_process": local[1] / local[2], "speedup_ray": remote[1] / remote[2],
                "load_avg_1m": os.getloadavg()[0],
            }  # fmt: skip
    finally:
        ray.shutdown()
    return rows


async def _narrate_file(path: str) -> dict[str, Any]:
    from pipeline import create_streaming_pipeline
    from pipeline.jobs import ItemDone, JobPipelines, anarrate_job, iter_job_items, resolve_settings
    from tests.fakes.engine import FakeEngine

    class ForgetfulEngine(FakeEngine):
        """FakeEngine without its own per-call records (they grow with the text)."""

        async def _synthesize(self, text: str, **kwargs: Any) -> Any:
            try:
                return await super()._synthesize(text, **kwargs)
            finally:
                self.calls.clear()
                self.started.clear()

    before = proc_status_mb("VmHWM")
    engine = ForgetfulEngine(seconds_per_char=0.0, min_duration_s=0.01)
    files = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as out:
        settings = resolve_settings({"workers": 2, "format": "wav", "output_dir": out},
                                    files=[], env={})  # fmt: skip
        pipe = create_streaming_pipeline(None, tts_engine=engine,
                                         streaming_config=settings.streaming_config())
        async with pipe, JobPipelines(pipe, settings) as pipelines, contextlib.aclosing(
            anarrate_job(iter_job_items([path]), pipeline_for=pipelines.get, output_dir=out)
        ) as events:
            async for event in events:
                if isinstance(event, ItemDone):
                    assert event.result.status == "completed", event.result.errors
                    files = len(event.result.audio_files)
    peak = proc_status_mb("VmHWM")
    return {"peak_rss_mb": peak, "rss_before_mb": before, "files": files,
            "seconds": time.monotonic() - start}  # fmt: skip


def _memory(quick: bool) -> dict[str, Any]:
    from bench.segmenter import corpus

    rows = []
    for size in (100_000, 1_000_000) if quick else (1_000_000, 10_000_000):
        with tempfile.TemporaryDirectory() as tmp:
            doc = Path(tmp) / "doc.txt"
            doc.write_text(corpus(size), encoding="utf-8")
            proc = subprocess.run([sys.executable, "-m", "bench.narrate", str(doc)],
                                  capture_output=True, text=True, check=True)  # fmt: skip
            rows.append({"size": size, **json.loads(proc.stdout.strip().splitlines()[-1])})
    return {"rows": rows, "rss_growth": rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"]}


def run(quick: bool = False) -> dict[str, Any]:
    return {"throughput": _throughput(quick), "memory": _memory(quick)}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(_narrate_file(sys.argv[1]))))
