"""Scenario 2: overlap efficiency of LLM streaming and synthesis, vs the seed baseline.

The :class:`~bench.common.TimedLLMServer` streams :data:`~bench.common.LONG_ANSWER`
(41 sentences, ~2,700 characters, ~660 tokens) with TTFT 200 ms at 40 tokens/s
(``--quick``: everything 8x faster). A FakeEngine's latency is
``a + b * characters``: ``slow`` (slower than the LLM with one worker) and
``fast`` (faster). For speakstream with 1 and 2 workers, and the baseline
(:mod:`bench.baseline`, one worker), on the same stream::

    efficiency = wall / ideal
    wall  = request start -> run finished (every file written)
    ideal = max(LLM stream time, sum(synthesis) / workers) + last segment's synthesis

``LLM stream time`` is request start -> last token sent by the server;
synthesis times are the engine's set latencies for each segment's text (the
WAV-making cost of the fake is not counted, so the ideal is strict). 1.00 is
perfect overlap. ``ratio_vs_baseline`` = baseline wall / speakstream wall.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import llm
from bench.baseline import run_baseline
from bench.common import LONG_ANSWER, TimedLLMServer, llm_reply
from pipeline import RunCompleted, SegmentQueued, create_streaming_pipeline
from tests.fakes.engine import FakeEngine

TTFT_S = 0.2
ENGINES = {  # name: (a seconds, b seconds per character)
    "slow": (0.020, 0.012),  # ~80 chars/s: slower than the LLM (~165 chars/s)
    "fast": (0.010, 0.002),  # ~500 chars/s
}


def _latency(a: float, b: float) -> Callable[[str], float]:
    return lambda text: a + b * len(text)


def _engine(latency: Callable[[str], float]) -> FakeEngine:
    return FakeEngine(latency=latency, seconds_per_char=0.001, min_duration_s=0.05)


def _ideal(llm_s: float, synth: list[float], workers: int) -> float:
    return max(llm_s, sum(synth) / workers) + synth[-1]


async def _speakstream(server: TimedLLMServer, latency: Callable[[str], float], workers: int,
                       out: str, tokens_per_s: float) -> dict[str, Any]:  # fmt: skip
    server.push(llm_reply(LONG_ANSWER, ttft_s=TTFT_S, tokens_per_s=tokens_per_s))
    engine = _engine(latency)
    pipe = create_streaming_pipeline(
        "ollama", llm_config={"model": "fake", "base_url": server.url}, tts_engine=engine,
        streaming_config={"output_dir": out, "workers": workers},
    )  # fmt: skip
    spoken: list[str] = []
    done = start = 0.0
    async with pipe, contextlib.aclosing(pipe.astream_chat_to_audio("Why do bikes stay up?")) as ev:
        start = time.monotonic()
        async for event in ev:
            if isinstance(event, SegmentQueued) and event.spoken_text:
                spoken.append(event.spoken_text)
            if isinstance(event, RunCompleted):
                assert event.error is None, event.error
                done = time.monotonic()
    times = server.token_times(server.requests[-1])
    llm_s = times[-1][0] - start
    synth = [latency(text) for text in spoken]
    ideal = _ideal(llm_s, synth, workers)
    wall = done - start
    return {"wall_s": wall, "ideal_s": ideal, "efficiency": wall / ideal, "llm_s": llm_s,
            "synth_sum_s": sum(synth), "segments": len(spoken)}  # fmt: skip


async def _baseline(server: TimedLLMServer, latency: Callable[[str], float], out: str,
                    tokens_per_s: float) -> dict[str, Any]:  # fmt: skip
    server.push(llm_reply(LONG_ANSWER, ttft_s=TTFT_S, tokens_per_s=tokens_per_s))
    engine = _engine(latency)
    client = llm.create_client("ollama", model="fake", base_url=server.url)
    async with client:
        deltas = client.astream_chat([{"role": "user", "content": "Why do bikes stay up?"}])
        run = await run_baseline(deltas, engine, Path(out) / "baseline")
    assert run.finished is not None
    times = server.token_times(server.requests[-1])
    llm_s = times[-1][0] - run.started
    synth = [latency(s.strip()) for s in run.segments]
    ideal = _ideal(llm_s, synth, 1)
    wall = run.finished - run.started
    return {"wall_s": wall, "ideal_s": ideal, "efficiency": wall / ideal, "llm_s": llm_s,
            "synth_sum_s": sum(synth), "segments": len(run.segments)}  # fmt: skip


async def run_async(quick: bool = False) -> dict[str, Any]:
    speed = 8.0 if quick else 1.0
    tokens_per_s = 40.0 * speed
    variants: list[dict[str, Any]] = []
    with TimedLLMServer() as server, tempfile.TemporaryDirectory() as out:
        for name, (a, b) in ENGINES.items():
            latency = _latency(a / speed, b / speed)
            for workers in (1, 2):
                row = await _speakstream(server, latency, workers, out, tokens_per_s)
                variants.append({"system": "speakstream", "engine": name, "workers": workers,
                                 **row})  # fmt: skip
            row = await _baseline(server, latency, out, tokens_per_s)
            variants.append({"system": "baseline", "engine": name, "workers": 1, **row})
    ours = [v for v in variants if v["system"] == "speakstream"]
    base = [v for v in variants if v["system"] == "baseline"]
    ratios = {}
    for b_row in base:
        for o_row in ours:
            if o_row["engine"] == b_row["engine"]:
                key = f"{b_row['engine']}_workers{o_row['workers']}"
                ratios[key] = b_row["wall_s"] / o_row["wall_s"]
    return {
        "tokens_per_s": tokens_per_s, "ttft_s": TTFT_S, "answer_chars": len(LONG_ANSWER),
        "engines": {k: f"{a / speed:.4f} s + {b / speed:.4f} s/char" for k, (a, b)
                    in ENGINES.items()},
        "variants": variants,
        "worst_efficiency": max(v["efficiency"] for v in ours),
        "baseline_worst_efficiency": max(v["efficiency"] for v in base),
        "ratio_vs_baseline": ratios,
    }  # fmt: skip


def run(quick: bool = False) -> dict[str, Any]:
    return asyncio.run(run_async(quick=quick))


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
