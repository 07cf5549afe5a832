"""The sinks of ``output`` and what they stand on: Player.feed, FFmpegPipe, MergeSink,
SubtitleSink, and writing on a full disk (a real small tmpfs when root, an
injected failing write otherwise)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import output._manifest as manifest_mod
from output import (
    FFmpegPipe,
    FileSink,
    FormatError,
    MergeSink,
    Player,
    RunSummary,
    SegmentInfo,
    SegmentWriter,
    SubtitleSink,
    WriteError,
    encoder_args,
    pcm_input_args,
    probe_duration,
    read_manifest,
)
from output._manifest import ManifestWriter
from tests.fakes.pulse import PulseServer
from tests.fakes.tones import dominant_freq, loud_runs, samples, tone_pcm
from tests.output.conftest import decode_file, tone_audio
from tts import AudioChunk, WordBoundary

RATE = 48000  # recorder rate
needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def read_text(path: str) -> str:
    return Path(path).read_text(encoding="utf-8")


def decoded_seconds(data: bytes, rate: int = 22050) -> float:
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ac", "1",
                          "-ar", str(rate), "-"], input=data, capture_output=True,
                         check=True).stdout
    return len(pcm) / 2 / rate


def pcm_chunk(freq: float, seconds: float, *, rate: int = 22050) -> AudioChunk:
    return AudioChunk(tone_pcm(freq, seconds, sample_rate=rate), "pcm", rate, 1, engine="tone")


# -- Player.feed ------------------------------------------------------------------


async def test_fed_pcm_plays_in_order_and_gapless(pulse_env: PulseServer) -> None:
    with pulse_env.record(sample_rate=RATE) as rec:
        async with Player.detect(device=pulse_env.sink) as player:
            for piece in (tone_pcm(440, 0.3), tone_pcm(440, 0.3), tone_pcm(1500, 0.6)):
                player.feed(piece, sample_rate=22050, channels=1)
            await player.drain()
        assert rec.wait_for_seconds(1.15), "the recording never held the whole sound"
        pcm = samples(rec.pcm)
    runs = loud_runs(pcm, RATE)
    assert len(runs) == 1, runs  # one continuous sound: no gap between the pieces
    start, end = runs[0]
    assert end - start == pytest.approx(1.2, abs=0.05)
    first = pcm[int((start + 0.1) * RATE) : int((start + 0.5) * RATE)]
    second = pcm[int((start + 0.7) * RATE) : int((start + 1.1) * RATE)]
    assert dominant_freq(first, RATE) == pytest.approx(440, rel=0.05)
    assert dominant_freq(second, RATE) == pytest.approx(1500, rel=0.05)


async def test_a_change_of_sample_rate_still_plays_everything_in_order(
    pulse_env: PulseServer,
) -> None:
    with pulse_env.record(sample_rate=RATE) as rec:
        async with Player.detect(device=pulse_env.sink) as player:
            player.feed(tone_pcm(440, 0.5, sample_rate=22050), sample_rate=22050, channels=1)
            player.feed(tone_pcm(1500, 0.5, sample_rate=16000), sample_rate=16000, channels=1)
            await player.drain()
        assert rec.wait_for_seconds(0.95)
        pcm = samples(rec.pcm)
    (start, _end), *_ = loud_runs(pcm, RATE)
    assert dominant_freq(pcm[int((start + 0.1) * RATE) : int((start + 0.4) * RATE)], RATE) == \
        pytest.approx(440, rel=0.05)
    assert any(abs(dominant_freq(pcm[int(s * RATE) : int((s + 0.3) * RATE)], RATE) - 1500) < 75
               for s, _ in loud_runs(pcm, RATE))


def test_feed_checks_its_input() -> None:
    from output import AudioOutput

    player = Player(AudioOutput("pulse"))
    with pytest.raises(ValueError, match="sample_rate"):
        player.feed(b"\x00\x00", sample_rate=100, channels=1)
    with pytest.raises(ValueError, match="whole"):
        player.feed(b"\x00\x00\x00", sample_rate=22050, channels=1)


# -- FFmpegPipe ---------------------------------------------------------------------


@needs_ffmpeg
async def test_ffmpeg_pipe_encodes_a_stream_while_it_is_fed() -> None:
    pipe = FFmpegPipe(pcm_input_args(22050, 1), encoder_args("mp3", streaming=True))
    await pipe.start()
    out = bytearray()

    async def read() -> None:
        while data := await pipe.read():
            out.extend(data)

    reader = asyncio.create_task(read())
    for _ in range(4):
        await pipe.write(tone_pcm(440, 0.5))
    await pipe.close_input()
    await reader
    await pipe.wait()
    await pipe.aclose()
    assert out[:3] == b"ID3" or out[0] == 0xFF
    assert decoded_seconds(bytes(out)) == pytest.approx(2.0, abs=0.1)


@needs_ffmpeg
async def test_ffmpeg_pipe_failure_is_a_format_error() -> None:
    pipe = FFmpegPipe(["-f", "s16le", "-ar", "0", "-i", "pipe:0"], ["-f", "mp3"])
    await pipe.start()
    with contextlib.suppress(FormatError):
        await pipe.write(b"\x00" * 4096)
    with contextlib.suppress(FormatError):
        await pipe.close_input()
    with pytest.raises(FormatError, match="ffmpeg exited"):
        await pipe.wait()
    await pipe.aclose()
    with pytest.raises(ValueError, match="format must be one of"):
        encoder_args("pcm")


# -- MergeSink / SubtitleSink ---------------------------------------------------------


def seg(index: int, text: str = "x") -> SegmentInfo:
    return SegmentInfo(index=index, text=text)


@needs_ffmpeg
@pytest.mark.parametrize("fmt", ["wav", "mp3", "flac"])
async def test_merge_sink_merges_accepted_segments_with_silence(tmp_path: Path, fmt: str) -> None:
    sink = MergeSink(tmp_path / f"merged.{fmt}", silence_ms=200)
    await sink.chunk(seg(0), pcm_chunk(440, 0.4))
    await sink.chunk(seg(0), pcm_chunk(440, 0.6))
    await sink.accept(seg(0), tone_audio(440, 1.0))
    await sink.chunk(seg(1), pcm_chunk(880, 0.5))  # fails mid-way: never merged
    await sink.skip(seg(1), RuntimeError("engine died"))
    await sink.chunk(seg(2), pcm_chunk(1320, 0.5, rate=16000))  # another rate: resampled
    await sink.accept(seg(2), tone_audio(1320, 0.5))
    result = await sink.finish(RunSummary("completed", None))
    merged = tmp_path / f"merged.{fmt}"
    assert result == {"merged_path": str(merged)}
    assert probe_duration(merged) == pytest.approx(1.0 + 0.2 + 0.5, abs=0.1)  # + MP3 padding
    audio = decode_file(merged)
    assert audio.frame_rate == 22050 and audio.channels == 1
    assert names(tmp_path) == [f"merged.{fmt}"]  # no temp file left


@needs_ffmpeg
async def test_merge_sink_makes_nothing_for_a_cancelled_run(tmp_path: Path) -> None:
    sink = MergeSink(tmp_path / "merged.mp3")
    await sink.chunk(seg(0), pcm_chunk(440, 0.4))
    await sink.accept(seg(0), tone_audio(440, 0.4))
    assert await sink.finish(RunSummary("cancelled", "cancelled: stopped")) == {}
    assert names(tmp_path) == []


async def test_merge_sink_failure_is_raised_once_by_finish(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no ffmpeg
    sink = MergeSink(tmp_path / "merged.wav")
    await sink.chunk(seg(0), pcm_chunk(440, 0.2))
    await sink.accept(seg(0), tone_audio(440, 0.2))  # the failure is kept, not raised here
    await sink.chunk(seg(1), pcm_chunk(440, 0.2))
    await sink.accept(seg(1), tone_audio(440, 0.2))
    with pytest.raises(FormatError, match="cannot start ffmpeg"):
        await sink.finish(RunSummary("completed", None))
    assert names(tmp_path) == []


async def test_subtitle_sink_lays_segments_out_like_the_merge(tmp_path: Path) -> None:
    sink = SubtitleSink(tmp_path / "merged.vtt", silence_ms=500)
    await sink.accept(seg(0, "One."), tone_audio(440, 1.0, words=(WordBoundary("One.", 0, 1),)))
    await sink.skip(seg(1), None)
    await sink.accept(seg(2, "Two."), tone_audio(440, 1.0))
    result = await sink.finish(RunSummary("failed", "LLMStreamError: dropped"))
    text = read_text(result["subtitles_path"])
    assert text.startswith("WEBVTT")
    assert "00:00:01.500 --> 00:00:02.500" in text  # the second cue after 1 s + 0.5 s


# -- writing on a full disk -----------------------------------------------------------


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


def test_a_full_disk_loses_no_line_and_leaves_no_partial_file(small_disk: Path) -> None:
    writer = SegmentWriter(small_disk, run_subdir=False)
    written, failures = [], []
    for index in range(12):  # ~44 KB each: the 200 KiB disk fills up on the way
        try:
            written.append(writer.write(index, tone_audio(440, 1.0), text=f"segment {index}"))
        except WriteError as exc:
            failures.append((index, exc))
    assert written and failures, "the disk never filled up"
    index, first = failures[0]
    assert first.errno == errno.ENOSPC and isinstance(first, OSError)
    assert first.path.name == f"segment_{index:04d}.wav"
    # the summary line may not fit: close says so, and the manifest is closed anyway
    with contextlib.suppress(WriteError):
        writer.close({"status": "completed"})
    records = read_manifest(small_disk)  # every line whole: it parses
    listed = [r["index"] for r in records if r["type"] == "segment"]
    assert listed == [w.index for w in written]
    files = sorted(p.name for p in small_disk.glob("segment_*"))
    assert files == [w.path.name for w in written]  # the manifest agrees with the files
    assert not list(small_disk.glob(".*.tmp"))


def test_a_manifest_line_that_does_not_fit_is_cut_off_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = ManifestWriter(tmp_path / "manifest.jsonl")
    manifest.append({"type": "segment", "index": 0})
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        if len(data) > 8:
            return real_write(fd, bytes(data[:8]))  # a partial write ...
        raise OSError(errno.ENOSPC, "No space left on device")  # ... then the disk is full

    monkeypatch.setattr(manifest_mod.os, "write", half_then_full)
    with pytest.raises(WriteError, match="No space left") as info:
        manifest.append({"type": "segment", "index": 1, "text": "lost"})
    assert info.value.errno == errno.ENOSPC
    monkeypatch.undo()
    manifest.append({"type": "summary"})
    manifest.close()
    manifest.close()  # idempotent, and nothing was left buffered to fail on
    assert [r["type"] for r in read_manifest(tmp_path)] == ["segment", "summary"]


def test_a_segment_whose_line_cannot_be_written_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = SegmentWriter(tmp_path, run_subdir=False)
    writer.write(0, tone_audio(440, 0.2), text="kept")

    def full(fd: int, pieces: object) -> None:  # the disk takes no line any more
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manifest_mod, "_write_blocks", full)
    with pytest.raises(WriteError, match="No space left"):
        writer.write(1, tone_audio(440, 0.2), text="lost")
    with pytest.raises(WriteError):
        writer.close({"status": "completed"})
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.glob("segment_*")) == ["segment_0000.wav"]


async def test_file_sink_records_failed_segments_and_its_summary(tmp_path: Path) -> None:
    sink = FileSink(SegmentWriter(tmp_path, run_subdir=False))
    written = await sink.write(SegmentInfo(0, "Hello.", raw_text="**Hello.**"),
                               tone_audio(440, 0.2))
    await sink.skip(SegmentInfo(1, "Broken."), RuntimeError("engine bug"))
    await sink.skip(SegmentInfo(2, ""), None)  # cleaned to nothing: no line
    await sink.finish(RunSummary("failed", "RuntimeError: engine bug", {"status": "failed"},
                                 {"merged_path": str(tmp_path / "merged.wav")}))
    records = read_manifest(tmp_path)
    assert [r["type"] for r in records] == ["segment", "failed", "summary"]
    assert records[0]["raw_text"] == "**Hello.**" and records[0]["text"] == "440 Hz"
    assert written.path.name == "segment_0000.wav"
    assert records[1] == {**records[1], "index": 1, "text": "Broken.",
                          "error": "RuntimeError: engine bug"}
    assert records[2]["merged_path"] == "merged.wav" and records[2]["status"] == "failed"
