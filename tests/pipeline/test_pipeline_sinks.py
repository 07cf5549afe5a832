"""A run's sinks: the documented call order, audio streamed to them in memory,
failures isolated per segment and per sink (engine bugs, a full disk, a failing
sink), control characters sanitised before the engine.

No timed assertions: causality is proven with gates (asyncio.Event); a generous
``asyncio.timeout`` only turns a would-be deadlock into a failure.
"""

from __future__ import annotations

import asyncio
import errno
import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

import output._atomic as atomic_mod
from output import AudioSink, OutputError, RunSummary, SegmentInfo, read_manifest
from pipeline import (
    AudioReady,
    ProgressEvent,
    RunCompleted,
    RunFailed,
    SegmentQueued,
    StreamingPipeline,
    create_streaming_pipeline,
    event_to_dict,
)
from tests.fakes.engine import FakeEngine, StreamingFakeEngine
from tests.faults.invariants import check_files, check_text
from tests.output.conftest import fail_syncs_of
from tts import AudioChunk, EspeakEngine, SynthesisError, SynthesizedAudio
from tts._audio import normalize_wav

GUARD = 60  # seconds: a deadlock guard, never a measurement

TEXT = (
    "The quick brown fox jumps over the lazy dog near the river bank. "
    "It was a sunny day. Birds were singing in the trees. "
    "Nobody expected what happened next. The fox stopped and looked around. "
    "Then it ran into the forest and disappeared."
)


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


def file_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def file_pcm(path: str) -> bytes:
    return normalize_wav(file_bytes(path)).pcm


class RecordingSink(AudioSink):
    """Records every call it gets, in order."""

    name = "recorder"
    wants_chunks = True

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any]] = []
        self.chunks: dict[int, list[AudioChunk]] = {}
        self.on_chunk: Any = None

    async def chunk(self, segment: SegmentInfo, chunk: AudioChunk) -> None:
        self.calls.append(("chunk", segment.index, len(chunk.data)))
        self.chunks.setdefault(segment.index, []).append(chunk)
        if self.on_chunk is not None:
            await self.on_chunk(segment, chunk)

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        self.calls.append(("accept", segment.index, audio))

    async def skip(self, segment: SegmentInfo, error: BaseException | None) -> None:
        self.calls.append(("skip", segment.index, error))

    async def end_of_input(self, segments_total: int) -> None:
        self.calls.append(("end_of_input", segments_total, None))

    async def finish(self, summary: RunSummary) -> Mapping[str, str]:
        self.calls.append(("finish", summary.status, summary))
        return {}

    def kinds(self) -> list[tuple[str, Any]]:
        return [(kind, key) for kind, key, _ in self.calls]


def assert_documented_order(sink: RecordingSink, total: int) -> None:
    """chunk* then accept|skip per index, indices increasing; end_of_input once; finish last."""
    kinds = sink.kinds()
    assert kinds[-1][0] == "finish" and [k for k, _ in kinds].count("finish") == 1
    assert [k for k, _ in kinds].count("end_of_input") == 1
    assert ("end_of_input", total) in kinds
    told = kinds.index(("end_of_input", total))
    assert told == 0 or kinds[told - 1][0] in ("accept", "skip")  # at a segment boundary
    ends = [key for kind, key in kinds if kind in ("accept", "skip")]
    assert ends == list(range(total))
    current = 0
    for kind, key in kinds:
        if kind == "chunk":
            assert key == current
        elif kind in ("accept", "skip"):
            assert key == current
            current += 1


async def test_an_extra_sink_gets_every_segment_in_order_with_its_pcm(tmp_path: Path) -> None:
    sink = RecordingSink()
    engine = StreamingFakeEngine(pieces=3)
    async with make(tmp_path, engine, workers=2) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, run_id="r", sinks=[sink]))
    done = events[-1]
    assert isinstance(done, RunCompleted) and done.error is None
    total = len(of(events, SegmentQueued))
    assert_documented_order(sink, total)
    accepted = [audio for kind, _, audio in sink.calls if kind == "accept"]
    for index, path in zip(done.audio_indices, done.audio_files, strict=True):
        # the chunks, joined, are the file's samples; accept got the file's bytes
        assert b"".join(c.data for c in sink.chunks[index]) == file_pcm(path)
        assert accepted[index].data == file_bytes(path)
        assert len(sink.chunks[index]) == 3
    assert done.audio_indices == list(range(total))
    assert done.ttfa_s is not None and done.first_file_s is not None
    assert done.ttfa_s <= done.first_file_s
    summary = read_manifest(done.manifest_path)[-1]
    assert summary["first_file_s"] == pytest.approx(done.first_file_s, abs=0.01)


async def test_a_one_segment_text_is_known_as_such_before_its_audio(tmp_path: Path) -> None:
    sink = RecordingSink()
    async with make(tmp_path, StreamingFakeEngine()) as pipe:
        await collect(pipe.astream_text_to_audio("Just one sentence here.", sinks=[sink]))
    assert sink.kinds()[0] == ("end_of_input", 1)
    assert_documented_order(sink, 1)


async def test_the_first_chunk_reaches_the_sinks_before_the_engine_finishes(
    tmp_path: Path,
) -> None:
    """TTFA is the first chunk: the player or a route starts while segment 0 is
    still being synthesized, long before its file exists."""
    hold = asyncio.Event()
    engine = StreamingFakeEngine(pieces=3, hold={0: hold})
    sink = RecordingSink()
    seen_before_file: list[bool] = []
    run_dir = tmp_path / "early"

    async def on_chunk(segment: SegmentInfo, chunk: AudioChunk) -> None:
        if segment.index == 0 and not hold.is_set():
            seen_before_file.append(not (run_dir / "segment_0000.wav").exists())
            hold.set()  # only now may the engine finish segment 0

    sink.on_chunk = on_chunk
    async with make(tmp_path, engine) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, run_id="early", sinks=[sink]))
    assert seen_before_file == [True]
    assert of(events, AudioReady)[0].index == 0


class FailingSink(RecordingSink):
    """Raises ``error`` from its accept of segment ``at``."""

    name = "failing"

    def __init__(self, error: BaseException, at: int) -> None:
        super().__init__()
        self.error, self.at = error, at

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        await super().accept(segment, audio)
        if segment.index == self.at:
            raise self.error


async def test_a_failing_sink_costs_no_other_sink_its_audio(tmp_path: Path) -> None:
    failing = FailingSink(OutputError("the network share went away"), at=1)
    witness = RecordingSink()
    async with make(tmp_path) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, sinks=[failing, witness]))
    total = len(of(events, SegmentQueued))
    failed = of(events, RunFailed)
    assert [(f.error_type, f.segment_index) for f in failed] == [("OutputError", None)]
    done = events[-1]
    assert done.audio_indices == list(range(total)) and done.failed_indices == []
    assert done.error == "OutputError: the network share went away"
    assert_documented_order(witness, total)
    assert_documented_order(failing, total)  # it keeps getting the next segments


async def test_a_buggy_sink_is_dropped_the_others_finish_and_the_bug_is_raised(
    tmp_path: Path,
) -> None:
    buggy = FailingSink(KeyError("a bug"), at=0)
    witness = RecordingSink()
    seen: list[ProgressEvent] = []
    async with make(tmp_path) as pipe:
        with pytest.raises(KeyError, match="a bug"):
            async with asyncio.timeout(GUARD):
                async for event in pipe.astream_text_to_audio(
                    TEXT, run_id="bug", sinks=[buggy, witness]
                ):
                    seen.append(event)
    total = len(of(seen, SegmentQueued))
    assert buggy.kinds()[-1] == ("accept", 0)  # no call after the bug, not even finish
    assert_documented_order(witness, total)
    assert len(of(seen, AudioReady)) == total  # every file was still written
    summary = read_manifest(tmp_path / "bug")[-1]
    assert summary["type"] == "summary" and summary["status"] == "failed"
    assert "KeyError" in summary["error"]


@pytest.mark.parametrize(
    "error",
    [RuntimeError("onnxruntime exploded"), OSError(5, "Input/output error"), KeyError("phoneme")],
)
async def test_an_engine_bug_costs_one_segment_not_the_run(
    tmp_path: Path, error: BaseException
) -> None:
    engine = FakeEngine(fail_on={lambda text: "sunny" in text: error})
    sink = RecordingSink()
    async with make(tmp_path, engine, workers=2) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, sinks=[sink]))
    segments = of(events, SegmentQueued)
    bad = next(s.index for s in segments if "sunny" in s.text)
    failed = of(events, RunFailed)
    assert [(f.error_type, f.segment_index) for f in failed] == [(type(error).__name__, bad)]
    assert "ExceptionGroup" not in failed[0].message and failed[0].message == str(error)
    done = events[-1]
    assert isinstance(done, RunCompleted)
    assert done.audio_indices == [s.index for s in segments if s.index != bad]
    assert done.failed_indices == [bad]
    records = read_manifest(done.manifest_path)
    assert [r["index"] for r in records if r["type"] == "failed"] == [bad]
    assert records[-1]["failed_indices"] == [bad]
    assert ("skip", bad) in sink.kinds()


async def test_a_failure_after_the_first_chunk_fails_that_segment_only(tmp_path: Path) -> None:
    engine = StreamingFakeEngine(pieces=3, fail_mid={1: SynthesisError("cut off", engine="f")})
    sink = RecordingSink()
    async with make(tmp_path, engine, workers=1) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, sinks=[sink]))
    assert [(f.segment_index, f.message) for f in of(events, RunFailed)] == [(1, "cut off")]
    assert len(sink.chunks[1]) == 1  # the part handed out before the failure...
    assert ("skip", 1) in sink.kinds()  # ...then the segment is reported missing
    assert 1 not in events[-1].audio_indices


async def test_control_characters_never_reach_the_engine_and_the_manifest_says_what_was_spoken(
    tmp_path: Path,
) -> None:
    engine = FakeEngine()
    text = "The first sentence\x00 is here and long enough to go. \x07\x01\x02 Then the end."
    async with make(tmp_path, engine, min_chunk_length=0, first_segment_min_length=None) as pipe:
        events = await collect(pipe.astream_text_to_audio(text))
    spoken = [c.text for c in engine.calls]
    assert spoken and not any(ch in "".join(spoken) for ch in "\x00\x01\x02\x07")
    assert "The first sentence  is here" in spoken[0]  # nothing after the NUL was cut
    queued = of(events, SegmentQueued)
    assert [s.spoken_text for s in queued if s.spoken_text] == spoken
    records = [r for r in read_manifest(events[-1].manifest_path) if r["type"] == "segment"]
    assert [r["text"] for r in records] == spoken
    assert [a.text for a in of(events, AudioReady)] == spoken


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")
async def test_a_nul_in_the_answer_is_spoken_through_with_espeak(tmp_path: Path) -> None:
    text = "This answer has a NUL\x00right in the middle of its only sentence, and goes on."
    async with make(tmp_path, EspeakEngine(), min_chunk_length=0) as pipe:
        with_nul = await collect(pipe.astream_text_to_audio(text, run_id="nul"))
        clean = await collect(pipe.astream_text_to_audio(text.replace("\x00", " "), run_id="ok"))
    assert with_nul[-1].audio_s == pytest.approx(clean[-1].audio_s, rel=0.05)
    assert with_nul[-1].audio_s > 3.0  # the half after the NUL is there


# -- disk full -------------------------------------------------------------------------


def _fill_disk_from(monkeypatch: pytest.MonkeyPatch, first: int) -> list[str]:
    """Make the atomic file write fail with ENOSPC from the ``first``-th segment
    file on (an injected failing writer); returns the names it refused."""
    refused: list[str] = []

    def failing(real: Callable[..., Generator[int, None, None]]) -> Callable[..., Any]:
        def write(final: Path, data: bytes, *, overwrite: bool) -> Generator[int, None, None]:
            if final.name.startswith("segment_") and int(final.stem.split("_")[1]) >= first:
                refused.append(final.name)
                raise OSError(errno.ENOSPC, "No space left on device")
            return (yield from real(final, data, overwrite=overwrite))
        return write

    import output._writer as writer_mod

    for name in ("atomic_write_steps", "placed_write_steps"):  # durable first, placed first
        monkeypatch.setattr(writer_mod, name, failing(getattr(atomic_mod, name)))
    return refused


async def test_disk_full_fails_the_segments_it_cannot_write_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = _fill_disk_from(monkeypatch, first=2)
    player_like = RecordingSink()
    async with make(tmp_path, StreamingFakeEngine(), workers=2) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, run_id="full",
                                                          sinks=[player_like]))
    total = len(of(events, SegmentQueued))
    failed = of(events, RunFailed)
    assert [f.segment_index for f in failed] == list(range(2, total))
    assert {f.error_type for f in failed} == {"WriteError"}
    assert "segment_0002.wav" in failed[0].message and "No space left" in failed[0].message
    done = events[-1]
    assert isinstance(done, RunCompleted)  # a completed event still comes
    assert done.audio_indices == [0, 1] and done.failed_indices == list(range(2, total))
    assert refused == [f"segment_{i:04d}.wav" for i in range(2, total)]
    # the other sinks kept going: every segment was streamed and accepted
    assert [k for k in player_like.kinds() if k[0] == "accept"] == [
        ("accept", i) for i in range(total)
    ]
    records = read_manifest(tmp_path / "full")
    assert [r["index"] for r in records if r["type"] == "segment"] == [0, 1]
    assert [r["index"] for r in records if r["type"] == "failed"] == list(range(2, total))
    assert records[-1]["failed_indices"] == list(range(2, total))
    assert sorted(p.name for p in (tmp_path / "full").glob("segment_*")) == [
        "segment_0000.wav", "segment_0001.wav"
    ]


async def test_a_segment_announced_then_not_made_durable_is_taken_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The `audio` event goes out when the file is complete under its name; when
    its sync then fails (EIO), the file goes, an error for that segment follows,
    and the completed event counts it failed, not written."""
    fail_syncs_of(monkeypatch, "segment_0001")
    async with make(tmp_path, FakeEngine()) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, run_id="eio"))
    total = len(of(events, SegmentQueued))
    kinds = [(type(e).__name__, getattr(e, "index", getattr(e, "segment_index", None)))
             for e in events if isinstance(e, AudioReady | RunFailed)]
    assert kinds[:3] == [("AudioReady", 0), ("AudioReady", 1), ("RunFailed", 1)]
    failed = of(events, RunFailed)
    assert failed[0].error_type == "WriteError" and "Input/output error" in failed[0].message
    done = events[-1]
    assert isinstance(done, RunCompleted)
    assert done.failed_indices == [1]
    assert done.audio_indices == [i for i in range(total) if i != 1]
    assert len(done.audio_files) == total - 1 and "segment_0001" not in str(done.audio_files)
    assert done.audio_s == pytest.approx(sum(a.duration_s for a in of(events, AudioReady)
                                             if a.index != 1))
    run_dir = tmp_path / "eio"
    assert not (run_dir / "segment_0001.wav").exists()
    records = read_manifest(run_dir)
    assert [r["index"] for r in records if r["type"] == "segment"] == done.audio_indices
    assert [(r["index"], r["text"]) for r in records if r["type"] == "failed"] == [
        (1, of(events, AudioReady)[1].text)]
    as_dicts = [event_to_dict(e) for e in events]
    check_text(as_dicts, TEXT)  # the shared invariants hold with a segment taken back
    check_files(run_dir, as_dicts)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 200 KiB tmpfs (root only), or skip."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=200k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


async def test_a_really_full_disk_ends_with_a_completed_event_and_no_traceback(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = FakeEngine(seconds_per_char=0.03)  # ~2-3 s of audio per segment: ~100 KB each
    async with make(small_disk, engine, workers=1) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, run_id="tiny"))
    done = events[-1]
    assert isinstance(done, RunCompleted)
    total = len(of(events, SegmentQueued))
    failed = [f for f in of(events, RunFailed) if f.segment_index is not None]
    assert failed and failed[0].error_type == "WriteError"
    assert sorted(done.failed_indices) == [f.segment_index for f in failed]
    assert sorted(done.audio_indices + done.failed_indices) == list(range(total))
    records = read_manifest(small_disk / "tiny")  # every line whole, even with the disk full
    written = [r["index"] for r in records if r["type"] == "segment"]
    assert written == done.audio_indices
    assert sorted(p.name for p in (small_disk / "tiny").glob("segment_*")) == [
        f"segment_{i:04d}.wav" for i in written
    ]
    assert not [r for r in caplog.records if r.exc_info]  # no traceback logged


def _fill(directory: Path) -> None:
    with open(directory / "filler", "wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC


async def test_a_disk_already_full_still_ends_with_a_completed_event(
    small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await asyncio.to_thread(_fill, small_disk)
    async with make(small_disk, FakeEngine(), workers=2) as pipe:
        events = await collect(pipe.astream_text_to_audio(TEXT, run_id="full"))
    done = events[-1]
    assert isinstance(done, RunCompleted)
    total = len(of(events, SegmentQueued))
    assert done.audio_files == [] and done.failed_indices == list(range(total))
    per_segment = [f for f in of(events, RunFailed) if f.segment_index is not None]
    assert sorted({f.segment_index for f in per_segment}) == list(range(total))
    last = [f for f in of(events, RunFailed) if f.segment_index is None]
    assert [f.error_type for f in last] == ["WriteError"]  # the summary line did not fit
    assert "manifest.jsonl" in last[0].message
    assert done.error is not None and done.error.startswith("WriteError")
    assert read_manifest(small_disk / "full") == []  # empty, never torn
    assert not [r for r in caplog.records if r.exc_info]  # no traceback


async def test_an_mp3_engine_stream_reaches_the_sinks_as_pcm_while_it_arrives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """edge-tts streams MP3 frames; sinks get 16-bit PCM, decoded as they come."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("needs ffmpeg")
    import edge_tts.communicate

    from tests.fakes.edge_server import FakeEdgeServer
    from tts import EdgeEngine

    sink = RecordingSink()
    async with FakeEdgeServer() as server:
        monkeypatch.setattr(edge_tts.communicate, "WSS_URL", server.wss_url)
        async with make(tmp_path, EdgeEngine(), workers=1) as pipe:
            events = await collect(pipe.astream_text_to_audio(TEXT, sinks=[sink]))
    done = events[-1]
    assert done.error is None and done.audio_indices
    for index in done.audio_indices:
        chunks = sink.chunks[index]
        assert {(c.format, c.sample_rate, c.channels) for c in chunks} == {("pcm", 24000, 1)}
        seconds = sum(len(c.data) for c in chunks) / 2 / 24000
        assert seconds == pytest.approx(of(events, AudioReady)[index].duration_s, abs=0.06)
    # decoded piece by piece as the frames came, not once at the end of each segment
    assert max(len(sink.chunks[i]) for i in done.audio_indices) > 1
