"""tests.fakes.engine.FakeEngine keeps its documented promises (others rely on them)."""

from __future__ import annotations

import asyncio

import pytest

from tests.fakes.engine import FakeEngine
from tts import SynthesisError
from tts._audio import normalize_wav, speech_bounds


async def test_audio_is_a_real_wav_of_the_promised_length(probe) -> None:  # type: ignore[no-untyped-def]
    engine = FakeEngine(seconds_per_char=0.02)
    audio = await engine.synthesize("Twenty characters!!!")
    judged = probe(audio.data, ".wav")
    assert audio.duration_s == pytest.approx(0.4) == pytest.approx(judged["duration_s"], abs=1e-3)
    assert (judged["sample_rate"], judged["channels"], judged["codec"]) == (22050, 1, "pcm_s16le")
    start, end = speech_bounds(normalize_wav(audio.data))
    assert start < 0.01 and end > 0.39  # a tone, not silence
    assert [w.text for w in audio.words] == ["Twenty", "characters!!!"]


async def test_min_duration_applies_to_short_text() -> None:
    audio = await FakeEngine(seconds_per_char=0.001, min_duration_s=0.1).synthesize("Hi")
    assert audio.duration_s == pytest.approx(0.1)


async def test_gate_holds_a_call_and_records_order() -> None:
    gate = asyncio.Event()
    engine = FakeEngine(gates={0: gate})
    first = asyncio.create_task(engine.synthesize("first"))
    await engine.started.setdefault(0, asyncio.Event()).wait()
    second = await engine.synthesize("second")  # not gated: finishes while first waits
    assert engine.calls[0].outcome == "running" and second.text == "second"
    gate.set()
    assert (await first).text == "first"
    assert [c.outcome for c in engine.calls] == ["ok", "ok"]
    assert engine.calls[1].end is not None and engine.calls[0].end is not None
    assert engine.calls[1].end <= engine.calls[0].end


async def test_failure_injection_by_index_and_predicate() -> None:
    engine = FakeEngine(
        fail_on={1: SynthesisError("index", engine="fake"),
                 (lambda text: "bad" in text): SynthesisError("predicate", engine="fake")}
    )
    await engine.synthesize("one")
    with pytest.raises(SynthesisError, match="index"):
        await engine.synthesize("two")
    with pytest.raises(SynthesisError, match="predicate"):
        await engine.synthesize("a bad one")
    assert [c.outcome for c in engine.calls] == ["ok", "error", "error"]


async def test_latency_is_awaited_not_blocking() -> None:
    engine = FakeEngine(latency=lambda text: 0.05)
    other_ran = asyncio.Event()

    async def other() -> None:
        other_ran.set()

    task = asyncio.create_task(engine.synthesize("x"))
    await asyncio.sleep(0)  # let the call start and reach its sleep
    await other()
    assert other_ran.is_set() and not task.done()
    await task


async def test_cancellation_is_recorded() -> None:
    gate = asyncio.Event()
    engine = FakeEngine(gates={0: gate})
    task = asyncio.create_task(engine.synthesize("x"))
    await engine.started.setdefault(0, asyncio.Event()).wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert engine.calls[0].outcome == "cancelled"
