"""Scenario 13: narration jobs: throughput 1 vs 2 workers in-process and on Ray, and memory.

* Throughput, **1 worker on 1 CPU vs 2 workers on 2 CPUs** (the CPU-share
  definition Ray uses: a worker is given CPUs and its native thread pools are
  sized to them, see :func:`pipeline._job_pipelines.engine_options`). Each
  measurement runs in a fresh process pinned with ``os.sched_setaffinity`` to
  ``N`` cores (1 or 2) before anything starts, so every thread and child
  process it makes (espeak-ng, onnxruntime's threads, the Ray cluster's GCS,
  raylet and actors) runs on those cores. A job of equal text items cut from
  the corpus (``ITEM_CHARS`` each; ``JOBS``: 12 for espeak-ng, 2 for piper,
  which is slower) narrated to WAV:
  - in-process (:func:`pipeline._job.anarrate_job`): items one after the
    other, ``workers=N`` segments synthesized at once, piper with
    ``N // N = 1`` intra-op thread per segment;
  - on Ray (``ray.init(address="local", num_cpus=N)``,
    :func:`pipeline._ray.run_job_on_ray`): ``N`` warm actors of one CPU each
    (``workers=1`` inside), items as tasks. Actors are started and warmed
    (piper's model loaded) before the clock starts.
  ``speedup`` = wall(1 CPU) / wall(2 CPUs). The machine is shared (a VM
  whose CPU time is at times stolen), so the runs alternate (1, 2, 1, 2;
  ``JOBS`` rounds: 5 for espeak-ng's job of seconds, 2 for piper's) and the
  shortest wall of each side is kept; ``speedup_per_round`` gives each
  round's own ratio too; the
  1-minute load average is recorded next to the figures, and so is
  ``cpu_ceiling``: the CPU seconds two busy processes pinned to 2 cores get
  over those one process pinned to 1 core gets in the same wall time (2.0 on
  an idle machine; the most any 1 → 2 speedup can be while others load it).
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
#: Per engine: items in the job, and rounds (1, 2 alternating) per place. espeak-ng's
#: job takes seconds, so a stolen slice of CPU moves it by 10-15 %: more rounds.
JOBS = {"espeak": (12, 5), "piper": (2, 2)}


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


async def _in_process(tts: str, cpus: int, items: list[Any]) -> float:
    from pipeline import create_streaming_pipeline
    from pipeline.jobs import ItemDone, JobPipelines, anarrate_job, engine_options

    with tempfile.TemporaryDirectory() as out:
        settings = _settings(tts, cpus, out)
        sized = engine_options(tts, cpus=cpus, workers=cpus)
        pipe = create_streaming_pipeline(None, tts, settings.streaming_config(), tts_config=sized)
        async with pipe, JobPipelines(pipe, settings) as pipelines:
            async for _ in anarrate_job(items[:1], pipeline_for=pipelines.get,
                                        output_dir=out + "/warm"):
                pass  # warm-up: engine start, model load
            start = time.monotonic()
            async for event in anarrate_job(items, pipeline_for=pipelines.get, output_dir=out,
                                            ahead=1):  # as `speakstream narrate` runs it
                if isinstance(event, ItemDone):
                    assert event.result.status == "completed", event.result.errors
            return time.monotonic() - start


def _on_ray(tts: str, cpus: int, items: list[Any]) -> float:
    import ray

    from pipeline.cluster import run_job_on_ray, start_workers

    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        with tempfile.TemporaryDirectory() as out:
            settings = _settings(tts, 1, out)
            pool = start_workers(tts, settings.streaming_config(), actors_per_node=cpus)
            run_job_on_ray(items[:cpus], settings=settings, output_dir=out + "/warm",
                           workers=pool)  # every actor warm before the clock starts
            start = time.monotonic()
            done = run_job_on_ray(items, settings=settings, output_dir=out, workers=pool)
            wall = time.monotonic() - start
    finally:
        ray.shutdown()
    assert all(r.status == "completed" for r in done)
    return wall


def _measure(where: str, tts: str, cpus: int, count: int) -> float:
    """Wall seconds of one job in a fresh process pinned to ``cpus`` cores."""
    proc = subprocess.run([sys.executable, "-m", "bench.narrate", "--throughput", where, tts,
                           str(cpus), str(count)], capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return float(json.loads(proc.stdout.strip().splitlines()[-1])["wall_s"])


def _busy(seconds: float) -> float:
    """CPU seconds a busy loop gets in ``seconds`` of wall time."""
    start, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - start < seconds:
        pass
    return time.process_time() - cpu


def _cpu_ceiling(seconds: float = 3.0) -> float:
    """CPU got by 2 busy processes on 2 cores over 1 on 1 core (see the module docstring)."""
    import multiprocessing

    cores = sorted(os.sched_getaffinity(0))
    got = {}
    for n in (1, 2):
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(n, initializer=os.sched_setaffinity, initargs=(0, cores[:n])) as pool:
            got[n] = sum(pool.map(_busy, [seconds] * n))
    return got[2] / got[1]


def _throughput(quick: bool) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for tts, (count, rounds) in JOBS.items():
        count = min(count, 4) if quick else count
        walls: dict[str, dict[int, list[float]]] = {"in_process": {1: [], 2: []},
                                                    "ray": {1: [], 2: []}}  # fmt: skip
        loads = []
        ceilings = [_cpu_ceiling()]
        try:
            for where in walls:
                for _ in range(1 if quick else rounds):
                    for cpus in (1, 2):
                        walls[where][cpus].append(_measure(where, tts, cpus, count))
                        loads.append(os.getloadavg()[0])
        except (RuntimeError, ValueError) as exc:  # reported: the engine may be missing
            rows[tts] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        best = {w: {c: min(v) for c, v in per.items()} for w, per in walls.items()}
        rows[tts] = {
            "items": count, "item_chars": ITEM_CHARS, "walls_s": walls,
            "wall_s_in_process": best["in_process"], "wall_s_ray": best["ray"],
            "speedup_in_process": best["in_process"][1] / best["in_process"][2],
            "speedup_ray": best["ray"][1] / best["ray"][2],
            "speedup_per_round": {w: [one / two for one, two in zip(per[1], per[2], strict=True)]
                                  for w, per in walls.items()},
            "load_avg_1m": [min(loads), max(loads)],
            "cpu_ceiling": [*ceilings, _cpu_ceiling()],  # before and after the runs
        }  # fmt: skip
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


def _child(argv: list[str]) -> dict[str, Any]:
    if argv[0] != "--throughput":
        return asyncio.run(_narrate_file(argv[0]))
    where, tts, cpus, count = argv[1], argv[2], int(argv[3]), int(argv[4])
    # Before any thread or child process exists: all of them inherit the mask.
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cpus])
    items = _items(count)
    wall = asyncio.run(_in_process(tts, cpus, items)) if where == "in_process" else _on_ray(
        tts, cpus, items)
    return {"wall_s": wall}


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1:])))
