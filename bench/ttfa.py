"""Scenario 1: the pipeline's own overhead on time to first audio (TTFA).

A :class:`~bench.common.TimedLLMServer` (Ollama NDJSON over real HTTP on
127.0.0.1) replays :func:`~bench.common.short_answer` with TTFT 200 ms and 40
tokens/s; :class:`tests.fakes.engine.FakeEngine` answers after
``engine_latency(text)`` seconds. For each run::

    overhead = first audio chunk handed to a sink (the run's TTFA, issue 12)
               - (instant the server sent the last character of segment 0
                  + engine_latency(segment 0's spoken text))

so the overhead is everything the pipeline adds before a player could start:
HTTP parsing in the LLM client, the sentence buffer, cleanup, queues, the fake
engine's own work (making the WAV bytes) and the hand-off to the sinks. The
sink is the bench's own :class:`output.AudioSink` that takes chunks, as the
player sink does. It is split into ``to_engine`` (text complete -> engine call
starts), ``engine_extra`` (engine call time beyond its set latency) and
``to_sink`` (engine done -> first chunk at the sink). ``first_file_overhead``
is the same for the first ``AudioReady`` the caller sees: the segment's file
complete under its name (its syncs and manifest line follow; until
2026-12-04 they came first), its own figure, as the issue asks. The run is
closed after its first file.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench.common import TimedLLMServer, complete_at, llm_reply, short_answer, summary
from output import AudioSink, SegmentInfo
from pipeline import AudioReady, SegmentQueued, create_streaming_pipeline
from tests.fakes.engine import FakeEngine
from tts import AudioChunk, SynthesizedAudio

TTFT_S = 0.2
TOKENS_PER_S = 40.0


def engine_latency(text: str) -> float:
    """Seconds: 30 ms + 1 ms per character (a fast neural engine)."""
    return 0.030 + 0.001 * len(text)


def fast_engine(latency: Callable[[str], float] = engine_latency) -> FakeEngine:
    # Short tones: the WAV bytes cost little, the latency function dominates.
    return FakeEngine(latency=latency, seconds_per_char=0.001, min_duration_s=0.05)


class FirstChunk(AudioSink):
    """Notes when segment 0's first audio chunk reaches the sinks (``time.monotonic``)."""

    name = "bench-first-chunk"
    wants_chunks = True

    def __init__(self) -> None:
        self.at: float | None = None

    async def chunk(self, segment: SegmentInfo, chunk: AudioChunk) -> None:
        if segment.index == 0 and self.at is None:
            self.at = time.monotonic()

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        pass  # the whole segment: nothing to note


async def _one_run(server: TimedLLMServer, pipe: Any, engine: FakeEngine, i: int) -> dict:
    server.push(llm_reply(short_answer(), ttft_s=TTFT_S, tokens_per_s=TOKENS_PER_S))
    calls_before = len(engine.calls)
    first: SegmentQueued | None = None
    audio_at: float | None = None
    sink = FirstChunk()
    start = time.monotonic()
    async with contextlib.aclosing(pipe.astream_chat_to_audio(
        "How does a bike stay up?", run_id=f"ttfa-{i}", sinks=[sink]
    )) as events:
        async for event in events:
            if isinstance(event, SegmentQueued) and event.index == 0:
                first = event
            if isinstance(event, AudioReady):
                audio_at = time.monotonic()
                break
    assert first is not None and audio_at is not None and sink.at is not None, "no first audio"
    rec = server.requests[-1]
    text_done = complete_at(server.token_times(rec), first.end)
    latency = engine_latency(first.spoken_text)
    call = engine.calls[calls_before]
    assert call.text == first.spoken_text and call.end is not None
    return {
        "overhead_ms": 1000 * (sink.at - (text_done + latency)),
        "to_engine_ms": 1000 * (call.start - text_done),
        "engine_extra_ms": 1000 * (call.end - call.start - latency),
        "to_sink_ms": 1000 * (sink.at - call.end),
        "first_file_overhead_ms": 1000 * (audio_at - (text_done + latency)),
        "ttfa_s": sink.at - start,
        "first_file_s": audio_at - start,
        "segment0_chars": len(first.text),
        "segment0_reason": first.reason,
    }


async def run_async(runs: int = 20) -> dict[str, Any]:
    engine = fast_engine()
    rows = []
    with TimedLLMServer() as server, tempfile.TemporaryDirectory() as out:
        pipe = create_streaming_pipeline(
            "ollama", llm_config={"model": "fake", "base_url": server.url},
            tts_engine=engine, streaming_config={"output_dir": out},
        )  # fmt: skip
        async with pipe:
            await _one_run(server, pipe, engine, -1)  # warm-up (imports, first connection)
            for i in range(runs):
                rows.append(await _one_run(server, pipe, engine, i))
    result: dict[str, Any] = {
        "runs": runs, "ttft_s": TTFT_S, "tokens_per_s": TOKENS_PER_S,
        "engine_latency": "0.030 s + 0.001 s/char",
        "segment0_chars": rows[0]["segment0_chars"], "segment0_reason": rows[0]["segment0_reason"],
    }  # fmt: skip
    for key in ("overhead_ms", "to_engine_ms", "engine_extra_ms", "to_sink_ms",
                "first_file_overhead_ms", "ttfa_s", "first_file_s"):
        result[key] = summary([r[key] for r in rows])
    result["samples_overhead_ms"] = [r["overhead_ms"] for r in rows]
    return result


def run(quick: bool = False) -> dict[str, Any]:
    return asyncio.run(run_async(runs=20))


if __name__ == "__main__":
    import json

    print(json.dumps({k: v for k, v in run().items() if not k.startswith("samples")}, indent=1))
