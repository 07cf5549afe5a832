"""The orchestration, fed by given text (no LLM) and the FakeEngine.

No timed assertions: ordering and causality are proven with gates
(asyncio.Event) and recorded sequences; a generous ``asyncio.timeout`` only
turns a would-be deadlock into a failure.
"""

from __future__ import annotations

import asyncio
import json
import time
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from llm import LLMStreamError
from output import probe_duration, read_manifest
from pipeline import (
    AudioReady,
    ProgressEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    SegmentQueued,
    StreamingPipeline,
    TextDelta,
    create_streaming_pipeline,
)
from tests.fakes.engine import FakeEngine
from tts import SynthesisError, SynthesizedAudio

GUARD = 60  # seconds: a deadlock guard, never a measurement

TEXT = (
    "The quick brown fox jumps over the lazy dog near the river bank. "
    "It was a sunny day. Birds were singing in the trees. "
    "Nobody expected what happened next. The fox stopped and looked around. "
    "Then it ran into the forest and disappeared."
)


def is_file(path: str | Path) -> bool:
    return Path(path).is_file()


def read_text(path: str | Path) -> str:
    return Path(path).read_text(encoding="utf-8")


def words(text: str) -> list[str]:
    parts = text.split(" ")
    return [p + " " for p in parts[:-1]] + [parts[-1]]


async def deltas_of(chunks: list[str]) -> AsyncIterator[str]:
    for chunk in chunks:
        await asyncio.sleep(0)
        yield chunk


def make(tmp_path: Path, engine: Any = None, **config: Any) -> StreamingPipeline:
    options = {"output_dir": str(tmp_path), "sentence_buffer_size": 1, **config}
    return create_streaming_pipeline(
        None, streaming_config=options, tts_engine=engine or FakeEngine()
    )


async def collect(agen: AsyncIterator[ProgressEvent]) -> list[ProgressEvent]:
    async with asyncio.timeout(GUARD):
        return [event async for event in agen]


def of(events: list[ProgressEvent], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


async def test_events_in_order_files_in_index_order_with_manifest(tmp_path: Path) -> None:
    async with make(tmp_path, subtitles="srt") as pipe:
        events = await collect(pipe.astream_text_to_audio(deltas_of(words(TEXT)), run_id="r1"))

    assert isinstance(events[0], RunStarted) and isinstance(events[-1], RunCompleted)
    assert not of(events, RunFailed) and not of(events, RunCancelled)
    assert {e.run_id for e in events} == {"r1"}
    assert [e.t for e in events] == sorted(e.t for e in events)
    counts = [e.audio_files_generated for e in events]
    assert counts == sorted(counts)

    text = "".join(e.text for e in of(events, TextDelta))
    assert text == TEXT
    segments = of(events, SegmentQueued)
    assert [s.index for s in segments] == list(range(len(segments))) and len(segments) >= 3
    assert "".join(s.text for s in segments) == TEXT
    audio = of(events, AudioReady)
    assert [a.index for a in audio] == [s.index for s in segments]
    # every segment is queued before its audio is reported
    position = {id(e): n for n, e in enumerate(events)}
    for seg, aud in zip(segments, audio, strict=True):
        assert position[id(seg)] < position[id(aud)]
        assert aud.text == seg.spoken_text

    done = events[-1]
    assert done.complete_text == TEXT and done.error is None
    assert done.audio_files == [a.path for a in audio]
    assert [Path(p).name for p in done.audio_files] == [
        f"segment_{i:04d}.wav" for i in range(len(audio))
    ]
    for path in done.audio_files:
        with wave.open(path) as w:
            assert w.getnframes() > 0
    assert done.audio_s == pytest.approx(sum(a.duration_s for a in audio))
    assert done.ttft_s is not None and done.ttfa_s is not None and done.ttft_s <= done.ttfa_s
    assert done.rtf is not None and done.rtf > 0
    assert Path(done.output_dir) == tmp_path / "r1"

    records = read_manifest(done.manifest_path)
    seg_records = [r for r in records if r["type"] == "segment"]
    assert [r["index"] for r in seg_records] == [a.index for a in audio]
    assert [r["text"] for r in seg_records] == [a.text for a in audio]
    assert records[-1]["type"] == "summary" and records[-1]["status"] == "completed"
    assert records[-1]["complete_text"] == TEXT
    assert done.merged_path is None
    assert done.subtitles_path is not None
    assert read_text(done.subtitles_path).startswith("1\n00:00:00,000 --> ")


async def test_merge_writes_one_file_of_the_whole_run(tmp_path: Path) -> None:
    async with make(tmp_path, merge=True, merge_silence_ms=100, format="mp3") as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT))
    done = events[-1]
    assert done.error is None and done.merged_path is not None
    assert Path(done.merged_path).name == "merged.mp3"
    silence = 0.1 * (len(done.audio_files) - 1)
    assert probe_duration(done.merged_path) == pytest.approx(done.audio_s + silence, abs=0.1)
    assert read_manifest(done.manifest_path)[-1]["merged_path"] == "merged.mp3"


class OutOfOrderEngine(FakeEngine):
    """Call 0 may only finish after call 1 has finished: segment 1 is ready first."""

    def __init__(self) -> None:
        self.release0 = asyncio.Event()
        super().__init__(gates={0: self.release0})

    async def _synthesize(self, text: str, **kw: Any) -> SynthesizedAudio:
        index = len(self.calls)
        audio = await super()._synthesize(text, **kw)
        if index == 1:
            self.release0.set()
        return audio


async def test_parallel_workers_finish_out_of_order_but_land_in_order(tmp_path: Path) -> None:
    engine = OutOfOrderEngine()
    async with make(tmp_path, engine, workers=2) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT))
    assert engine.calls[1].end is not None and engine.calls[0].end is not None
    assert engine.calls[1].end <= engine.calls[0].end  # really finished out of order
    assert [a.index for a in of(events, AudioReady)] == list(range(len(engine.calls)))
    names = [Path(p).name for p in events[-1].audio_files]
    assert names == sorted(names)


async def test_first_audio_is_written_while_the_source_is_still_talking(tmp_path: Path) -> None:
    first_audio = asyncio.Event()
    last_delta_at: list[float] = []

    async def source() -> AsyncIterator[str]:
        yield "The first sentence is long enough to be spoken right away. "
        yield "The second one is here too. "
        await first_audio.wait()  # the rest is held until the first file exists
        for chunk in words("And then the source goes on for a while. Until the end."):
            yield chunk
        last_delta_at.append(time.monotonic())

    engine = FakeEngine()
    seen: list[ProgressEvent] = []
    async with make(tmp_path, engine) as pipe:
        async with asyncio.timeout(GUARD):
            async for event in pipe.astream_text_to_audio(source()):
                seen.append(event)
                if isinstance(event, AudioReady):
                    first_audio.set()
    first = of(seen, AudioReady)[0]
    deltas = of(seen, TextDelta)
    assert first.index == 0 and is_file(first.path)
    # causality: the first AudioReady came before the held-back deltas
    assert seen.index(first) < seen.index(deltas[2])
    # overlap by timestamps: synthesis of segment 0 began before the source ended
    assert engine.calls[0].start < last_delta_at[0]
    assert seen[-1].complete_text.endswith("Until the end.")


async def test_the_deadline_releases_text_while_the_source_stalls_again_and_again(
    tmp_path: Path,
) -> None:
    """``max_buffer_time`` cuts while no delta arrives: the cutter's timer fires,
    and is armed again for the next stall (each stall ends only once the text
    before it was released, so a timer that never fires ends in the guard)."""
    released = [asyncio.Event(), asyncio.Event()]

    async def source() -> AsyncIterator[str]:
        yield "no sentence end in these words "
        await released[0].wait()
        yield "and none in these either "
        await released[1].wait()
        yield "then the end."

    seen: list[ProgressEvent] = []
    async with make(tmp_path, max_buffer_time=0.05, min_chunk_length=0) as pipe:
        async with asyncio.timeout(GUARD):
            async for event in pipe.astream_text_to_audio(source()):
                seen.append(event)
                if isinstance(event, SegmentQueued) and event.index < 2:
                    released[event.index].set()
    segments = of(seen, SegmentQueued)
    assert [s.reason for s in segments[:2]] == ["max_buffer_time", "max_buffer_time"]
    assert segments[0].text == "no sentence end in these words "
    assert segments[1].text == "and none in these either "
    assert "".join(s.text for s in segments) == (
        "no sentence end in these words and none in these either then the end."
    )


async def test_source_failure_mid_stream_keeps_partial_audio(tmp_path: Path) -> None:
    async def source() -> AsyncIterator[str]:
        for chunk in words("First sentence is complete here. Second one is half"):
            yield chunk
        raise LLMStreamError("connection dropped", provider="ollama", partial_text="...")

    async with make(tmp_path) as pipe:
        events = await collect(pipe.astream_text_to_audio(source(), run_id="failing"))
    failed = of(events, RunFailed)
    assert len(failed) == 1 and failed[0].error_type == "LLMStreamError"
    assert failed[0].partial_text == "First sentence is complete here. Second one is half"
    assert failed[0].segment_index is None
    # the audio for everything received is saved BEFORE the error event
    audio = of(events, AudioReady)
    assert "".join(a.text + " " for a in audio).strip().endswith("Second one is half")
    assert max(events.index(a) for a in audio) < events.index(failed[0])
    done = events[-1]
    assert isinstance(done, RunCompleted) and done.error == "LLMStreamError: connection dropped"
    assert all(is_file(p) for p in done.audio_files) and len(done.audio_files) == 2
    summary = read_manifest(done.manifest_path)[-1]
    assert summary["status"] == "failed" and summary["error"].startswith("LLMStreamError")


async def test_tts_failure_on_one_segment_is_reported_and_the_rest_goes_on(tmp_path: Path) -> None:
    engine = FakeEngine(fail_on={lambda text: "sunny" in text: SynthesisError("boom", engine="f")})
    async with make(tmp_path, engine, workers=1) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT))
    failed = of(events, RunFailed)
    segments = of(events, SegmentQueued)
    bad = next(s.index for s in segments if "sunny" in s.text)
    assert [(f.error_type, f.segment_index) for f in failed] == [("SynthesisError", bad)]
    audio_indices = [a.index for a in of(events, AudioReady)]
    assert audio_indices == [s.index for s in segments if s.index != bad]
    done = events[-1]
    assert done.error == "SynthesisError: boom"
    summary = read_manifest(done.manifest_path)[-1]
    assert summary["failed_indices"] == [bad]


async def test_segment_that_cleans_to_nothing_keeps_its_index(tmp_path: Path) -> None:
    # A code block dropped by clean_code="drop". (A line of emoji alone is not
    # cut off as its own segment any more: the segmenter never makes a segment
    # with nothing to say.)
    text = "The first sentence is here. \n\n```\nx = 1\n```\n\n**The** last sentence is here."
    options = {"min_chunk_length": 0, "first_segment_min_length": None, "clean_code": "drop"}
    async with make(tmp_path, **options) as pipe:
        events = await collect(pipe.astream_text_to_audio(text))
    segments = of(events, SegmentQueued)
    empty = [s.index for s in segments if s.spoken_text == ""]
    assert empty, [s.text for s in segments]
    audio = of(events, AudioReady)
    assert [a.index for a in audio] == [s.index for s in segments if s.spoken_text]
    assert {Path(a.path).name for a in audio} == {f"segment_{a.index:04d}.wav" for a in audio}
    summary = read_manifest(events[-1].manifest_path)[-1]
    assert summary["skipped_indices"] == empty
    assert events[-1].error is None


async def test_closing_the_stream_cancels_source_and_pending_synthesis(tmp_path: Path) -> None:
    never = asyncio.Event()
    source_closed = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        try:
            yield "The first sentence is long enough to go out now. The second is short. And then "
            await never.wait()
            yield "never"
        finally:
            source_closed.set()

    engine = FakeEngine(gates={1: never})
    async with make(tmp_path, engine, workers=2) as pipe:
        agen = pipe.astream_text_to_audio(source(), run_id="closed")
        async with asyncio.timeout(GUARD):
            async for event in agen:
                if isinstance(event, AudioReady):
                    break
            await agen.aclose()
    assert source_closed.is_set()
    assert [c.outcome for c in engine.calls] == ["ok", "cancelled"]
    run_dir = tmp_path / "closed"
    assert sorted(p.name for p in run_dir.glob("segment_*")) == ["segment_0000.wav"]
    summary = read_manifest(run_dir)[-1]
    assert summary["status"] == "cancelled"
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []


async def test_task_cancellation_cancels_the_run(tmp_path: Path) -> None:
    never = asyncio.Event()
    started = asyncio.Event()
    source_closed = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        try:
            yield "Something to say."
            started.set()
            await never.wait()
            yield "never"
        finally:
            source_closed.set()

    async with make(tmp_path) as pipe:

        async def consume() -> None:
            async for _ in pipe.astream_text_to_audio(source(), run_id="task"):
                pass

        task = asyncio.create_task(consume())
        async with asyncio.timeout(GUARD):
            await started.wait()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
    assert source_closed.is_set()
    assert read_manifest(tmp_path / "task")[-1]["status"] == "cancelled"


async def test_stop_event_ends_with_cancelled_then_completed(tmp_path: Path) -> None:
    stop = asyncio.Event()
    never = asyncio.Event()

    async def source() -> AsyncIterator[str]:
        yield "A first sentence that is long enough to be released early. Then more. "
        await never.wait()
        yield "never"

    seen: list[ProgressEvent] = []
    async with make(tmp_path) as pipe:
        async with asyncio.timeout(GUARD):
            async for event in pipe.astream_text_to_audio(source(), stop_event=stop):
                seen.append(event)
                if isinstance(event, AudioReady):
                    stop.set()
    kinds = [e.status for e in seen]
    assert kinds[-2:] == ["cancelled", "completed"]
    assert seen[-2].reason == "stopped"
    assert seen[-1].error == "cancelled: stopped"
    assert len(seen[-1].audio_files) >= 1


def test_sync_twin_yields_dicts_and_break_cancels(tmp_path: Path) -> None:
    with make(tmp_path) as pipe:
        dicts = list(pipe.stream_text_to_audio(TEXT, run_id="sync"))
        assert dicts[0]["status"] == "started" and dicts[-1]["status"] == "completed"
        json.dumps(dicts)
        assert dicts[-1]["complete_text"] == TEXT
        for d in pipe.stream_text_to_audio(TEXT, run_id="sync2"):
            if d["status"] == "audio":
                break
    assert read_manifest(tmp_path / "sync2")[-1]["status"] == "cancelled"


async def test_resume_reuses_finished_segments(tmp_path: Path) -> None:
    full = FakeEngine()
    async with make(tmp_path / "a", full) as pipe:
        reference = await collect(pipe.astream_text_to_audio(TEXT, run_id="job"))
    total = len(of(reference, AudioReady))

    engine = FakeEngine(gates={2: asyncio.Event()})  # the third segment never finishes
    async with make(tmp_path / "b", engine, workers=1) as pipe:
        agen = pipe.astream_text_to_audio(TEXT, run_id="job")
        async for event in agen:
            if isinstance(event, AudioReady) and event.index == 1:
                break
        await agen.aclose()
    interrupted = sorted(p.name for p in (tmp_path / "b" / "job").glob("segment_*"))
    assert interrupted == ["segment_0000.wav", "segment_0001.wav"]
    earlier = [r for r in read_manifest(tmp_path / "b" / "job") if r["type"] == "segment"]

    again = FakeEngine()
    async with make(tmp_path / "b", again, workers=1) as pipe:
        resumed = await collect(pipe.astream_text_to_audio(TEXT, run_id="job", resume=True))
    # only the missing segments were synthesized
    assert len(again.calls) == total - 2
    ref_dir, res_dir = tmp_path / "a" / "job", tmp_path / "b" / "job"
    names = sorted(p.name for p in ref_dir.iterdir())
    assert sorted(p.name for p in res_dir.iterdir()) == names
    for name in names:
        if name.startswith("segment_"):
            assert (res_dir / name).read_bytes() == (ref_dir / name).read_bytes()
    records = [r for r in read_manifest(res_dir) if r["type"] == "segment"]
    assert [r["index"] for r in records] == list(range(total))
    assert records[:2] == earlier  # the finished lines are kept as they were, not rewritten
    assert resumed[-1].audio_files == [str(res_dir / f"segment_{i:04d}.wav") for i in range(total)]


async def test_run_dir_is_never_reused_without_resume(tmp_path: Path) -> None:
    from output import OutputExistsError

    async with make(tmp_path) as pipe:
        await collect(pipe.astream_text_to_audio("Hello there.", run_id="same"))
        with pytest.raises(OutputExistsError):
            await collect(pipe.astream_text_to_audio("Hello again.", run_id="same"))
        with pytest.raises(ValueError, match="run_id"):
            await collect(pipe.astream_text_to_audio("x", run_id="../evil"))


async def test_closed_pipeline_refuses_runs_and_leaves_injected_engine_open(
    tmp_path: Path,
) -> None:
    engine = FakeEngine()
    pipe = make(tmp_path, engine)
    await pipe.aclose()
    assert engine.closed_count == 0
    with pytest.raises(RuntimeError, match="closed"):
        await collect(pipe.astream_text_to_audio("Hello."))


async def test_slow_consumer_holds_the_source_back_and_loses_nothing(tmp_path: Path) -> None:
    """Backpressure: while the consumer takes no events, the reader stops taking
    deltas once EVENT_BACKLOG events are waiting; everything arrives later."""
    from pipeline._run import EVENT_BACKLOG

    total = EVENT_BACKLOG * 4
    pulled = 0

    async def source() -> AsyncIterator[str]:
        nonlocal pulled
        for _ in range(total):
            pulled += 1
            await asyncio.sleep(0)
            yield "word "

    pipe = make(tmp_path, max_buffer_time=None, workers=1)
    agen = pipe.astream_text_to_audio(source())
    async with asyncio.timeout(GUARD):
        first = await anext(agen)
        assert isinstance(first, RunStarted)
        # Give the stages many turns of the event loop (the unbounded version
        # drains the whole source within a few thousand) while taking nothing.
        for _ in range(total * 10):
            await asyncio.sleep(0)
        assert pulled <= EVENT_BACKLOG + 2, f"reader took {pulled} of {total} deltas"
        rest = [event async for event in agen]
    done = of(rest, RunCompleted)[0]
    assert pulled == total
    assert done.complete_text == "word " * total
    assert len(of(rest, TextDelta)) == total
    await pipe.aclose()


async def test_fast_engine_cannot_run_ahead_of_a_stalled_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Audio waiting to be written is bounded (2 x workers), so a fast engine and
    a slow disk cannot pile synthesized audio up in memory."""
    from output import SegmentWriter

    gate = asyncio.Event()
    real_awrite = SegmentWriter.awrite

    async def gated_awrite(self: SegmentWriter, *args: Any, **kwargs: Any) -> Any:
        await gate.wait()
        return await real_awrite(self, *args, **kwargs)

    monkeypatch.setattr(SegmentWriter, "awrite", gated_awrite)
    engine = FakeEngine()
    sentences = [f"Sentence number {n} is right here." for n in range(40)]
    pipe = make(tmp_path, engine, workers=2, min_chunk_length=0, max_buffer_time=None)
    async with asyncio.timeout(GUARD):
        agen = pipe.astream_text_to_audio(" ".join(sentences))
        run = asyncio.ensure_future(collect(agen))
        for _ in range(5000):  # many loop turns: unbounded, all 40 would be synthesized
            await asyncio.sleep(0)
        assert len(engine.calls) <= 2 * 2, f"{len(engine.calls)} segments synthesized ahead"
        gate.set()
        events = await run
    assert len(of(events, AudioReady)) == 40
    assert [e.index for e in of(events, AudioReady)] == list(range(40))
    await pipe.aclose()


async def test_a_burst_of_queued_deltas_cuts_like_deltas_one_by_one(tmp_path: Path) -> None:
    # A source that never yields to the loop queues every delta before the
    # cutter runs (it then takes them as one burst); the trickle hands it one
    # delta per wake-up. Same segments, same text events, nothing lost.
    async def burst(chunks: list[str]) -> AsyncIterator[str]:
        for chunk in chunks:
            yield chunk

    chunks = [TEXT[i : i + 3] for i in range(0, len(TEXT), 3)]
    runs = []
    for name, source in (("trickle", deltas_of(chunks)), ("burst", burst(chunks))):
        async with make(tmp_path / name, max_buffer_time=None) as pipe:
            runs.append(await collect(pipe.astream_text_to_audio(source)))
    trickle, bursty = runs
    cut = [(s.index, s.text, s.start, s.end, s.reason) for s in of(trickle, SegmentQueued)]
    assert len(cut) > 3
    assert [(s.index, s.text, s.start, s.end, s.reason) for s in of(bursty, SegmentQueued)] == cut
    assert [d.text for d in of(bursty, TextDelta)] == chunks
    assert "".join(s.text for s in of(bursty, SegmentQueued)) == TEXT
    assert len(of(bursty, AudioReady)) == len(cut)


async def test_merge_failing_with_oserror_is_reported_and_the_run_still_ends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from output import MergeSink

    async def broken_finish(*args: Any, **kwargs: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(MergeSink, "finish", broken_finish)
    pipe = make(tmp_path, merge=True)
    events = await collect(pipe.astream_text_to_audio(TEXT))
    done = of(events, RunCompleted)[0]
    assert done.error is not None and "No space left" in done.error
    assert [f.error_type for f in of(events, RunFailed)] == ["OSError"]
    assert done.audio_files and all(is_file(p) for p in done.audio_files)  # nothing lost
    summary = read_manifest(Path(done.manifest_path))[-1]
    assert summary["type"] == "summary" and "No space left" in summary["error"]
    await pipe.aclose()


async def test_unexpected_error_while_finishing_reaches_the_consumer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Never a hang: the consumer gets the error (the guard turns a hang into a failure)."""
    from output import AudioSink

    class BuggySink(AudioSink):
        async def accept(self, segment: Any, audio: Any) -> None:
            pass

        async def finish(self, summary: Any) -> Any:
            raise RuntimeError("a bug in finishing")

    pipe = make(tmp_path, merge=True)
    with pytest.raises(RuntimeError, match="a bug in finishing"):
        await collect(pipe.astream_text_to_audio(TEXT, sinks=[BuggySink()]))
    await pipe.aclose()
    (manifest,) = list(await asyncio.to_thread(tmp_path.glob, "*/manifest.jsonl"))
    summary = read_manifest(manifest)[-1]
    assert summary["type"] == "summary" and summary["status"] == "failed"
