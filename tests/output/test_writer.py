"""SegmentWriter: names, run directories, atomic writes, manifest lines."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import output._atomic as atomic_mod
from output import (
    FormatError,
    OutputExistsError,
    SegmentWriter,
    WrittenSegment,
    probe_duration,
    read_manifest,
    sniff_format,
)
from tests.output.conftest import decode_file, espeak_audio, tone_audio
from tts import WordBoundary


def test_writes_named_files_with_manifest(tmp_path: Path) -> None:
    speech = espeak_audio("Hello there.")
    words = (WordBoundary("Hello", 0.0, 0.3), WordBoundary("there.", 0.3, 0.4))
    with SegmentWriter(tmp_path, format="mp3") as writer:
        a = writer.write(0, speech, text="Hello there.", extra={"ttfa_ms": 12.5})
        b = writer.write(1, tone_audio(440, 0.5, words=words), text="tone")
    assert writer.directory.parent == tmp_path and writer.directory.name.startswith("run-")
    assert a.path == writer.directory / "segment_0000.mp3"
    assert b.path.name == "segment_0001.mp3"
    for seg in (a, b):
        data = seg.path.read_bytes()
        assert sniff_format(data) == "mp3" and seg.bytes == len(data)
        # ffprobe counts whole MP3 frames incl. encoder delay/padding (< 2 frames).
        assert probe_duration(seg.path) == pytest.approx(seg.duration_s, abs=2 * 1152 / 22050)
        decoded = decode_file(seg.path)
        assert decoded.frame_count() / decoded.frame_rate == pytest.approx(seg.duration_s, abs=1e-3)
    records = read_manifest(writer.directory)
    assert [r["type"] for r in records] == ["segment", "segment", "summary"]
    first, second, summary = records
    assert first["index"] == 0 and first["text"] == "Hello there."
    assert first["path"] == "segment_0000.mp3" and first["format"] == "mp3"
    assert first["engine"] == "espeak" and first["voice"] == "en" and first["ttfa_ms"] == 12.5
    assert second["words"] == [
        {"text": "Hello", "offset_s": 0.0, "duration_s": 0.3},
        {"text": "there.", "offset_s": 0.3, "duration_s": 0.4},
    ]
    assert summary["segments"] == 2 and summary["complete"] is True
    assert summary["duration_s"] == pytest.approx(a.duration_s + b.duration_s, abs=1e-5)
    assert writer.segments == (a, b)


def test_manifest_line_lands_with_each_file(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path)
    writer.write(0, tone_audio(440, 0.1), text="one")
    # Before close: the line is already on disk (flushed), no summary yet.
    assert [r["index"] for r in read_manifest(writer.manifest_path)] == [0]
    writer.write(1, tone_audio(440, 0.1), text="two")
    assert [r["index"] for r in read_manifest(writer.manifest_path)] == [0, 1]
    writer.close({"reason": "done"})
    writer.close()  # idempotent
    assert read_manifest(writer.manifest_path)[-1]["reason"] == "done"
    with pytest.raises(RuntimeError, match="closed"):
        writer.write(2, tone_audio(440, 0.1), text="late")


def test_each_run_gets_its_own_directory(tmp_path: Path) -> None:
    first = SegmentWriter(tmp_path)
    second = SegmentWriter(tmp_path)
    first.write(0, tone_audio(440, 0.1), text="a")
    second.write(0, tone_audio(880, 0.1), text="b")
    first.close()
    second.close()
    assert first.directory != second.directory
    assert first.path_for(0).read_bytes() != second.path_for(0).read_bytes()


def test_flat_directory_never_overwrites_unless_asked(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, run_subdir=False) as writer:
        writer.write(0, tone_audio(440, 0.1), text="old")
    old = (tmp_path / "segment_0000.wav").read_bytes()
    with pytest.raises(OutputExistsError, match="already holds a run"):
        SegmentWriter(tmp_path, run_subdir=False)
    assert (tmp_path / "segment_0000.wav").read_bytes() == old
    # One manifest per directory: another prefix does not make room for a second run.
    with pytest.raises(OutputExistsError, match=r"\(manifest.jsonl\)"):
        SegmentWriter(tmp_path, run_subdir=False, prefix="take2")
    # overwrite=True replaces files and starts a fresh manifest.
    with SegmentWriter(tmp_path, run_subdir=False, overwrite=True) as again:
        again.write(0, tone_audio(880, 0.1), text="new")
    assert (tmp_path / "segment_0000.wav").read_bytes() != old
    texts = [r.get("text") for r in read_manifest(tmp_path) if r["type"] == "segment"]
    assert texts == ["new"]


def test_same_index_twice_is_refused(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path) as writer:
        first = writer.write(3, tone_audio(440, 0.1), text="a")
        with pytest.raises(OutputExistsError):
            writer.write(3, tone_audio(880, 0.1), text="b")
        assert [s.text for s in writer.segments] == ["a"]
        assert first.path.read_bytes() == tone_audio(440, 0.1).data


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"format": "aac"}, "format must be one of wav, mp3, ogg, opus, flac, got 'aac'"),
        ({"prefix": "../x"}, "prefix must be 1-64 characters"),
        ({"prefix": ""}, "prefix must be"),
    ],
)
def test_options_validated(tmp_path: Path, kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        SegmentWriter(tmp_path, **kwargs)  # type: ignore[arg-type]


def test_bad_write_arguments(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path) as writer:
        for index in (-1, 1.0, True):
            with pytest.raises(ValueError, match="index must be an int >= 0"):
                writer.write(index, tone_audio(440, 0.1), text="x")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match=r"extra may not replace manifest keys \['path'\]"):
            writer.write(0, tone_audio(440, 0.1), text="x", extra={"path": "/etc/passwd"})
    assert list(writer.directory.iterdir()) == [writer.manifest_path]


def test_failed_conversion_writes_nothing(tmp_path: Path) -> None:
    liar = tone_audio(440, 0.1)
    liar = type(liar)(**{**liar.__dict__, "format": "mp3"})  # WAV bytes labelled MP3
    with SegmentWriter(tmp_path, format="ogg") as writer:
        with pytest.raises(FormatError):
            writer.write(0, liar, text="x")
        ok = writer.write(1, tone_audio(440, 0.1), text="y")
    assert sorted(p.name for p in writer.directory.iterdir()) == ["manifest.jsonl", ok.path.name]
    # ...but the failed segment's text is not lost: the manifest says what failed.
    records = read_manifest(writer.directory)
    assert [(r["type"], r.get("index"), r.get("text")) for r in records[:2]] == [
        ("failed", 0, "x"), ("segment", 1, "y")
    ]
    assert "FormatError" in records[0]["error"]


def test_crash_mid_write_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure after half the bytes were written: the final name keeps the old file."""
    writer = SegmentWriter(tmp_path, run_subdir=False, overwrite=True)
    good = writer.write(0, tone_audio(440, 1.0), text="good")
    before = good.path.read_bytes()
    real_write_all = atomic_mod.write_all

    def half_then_full(fd: int, data: bytes) -> None:
        real_write_all(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic_mod, "write_all", half_then_full)
    with pytest.raises(OSError, match="No space left"):
        writer.write(0, tone_audio(880, 1.0), text="doomed")
    monkeypatch.undo()
    assert good.path.read_bytes() == before  # never a partial file under the final name
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]  # temp cleaned
    writer.close()
    records = read_manifest(tmp_path)
    assert [r.get("text") for r in records if r["type"] == "segment"] == ["good"]


CRASH_CHILD = """
import os, sys
import output._atomic as atomic
from output import SegmentWriter
from tests.output.conftest import tone_audio
writer = SegmentWriter(sys.argv[1], run_subdir=False)
writer.write(0, tone_audio(440, 0.2), text="done")
def die(src, dst):
    os._exit(9)  # hard crash: no cleanup, no exception handlers
atomic.os.link = die
writer.write(1, tone_audio(880, 2.0), text="crashes")
"""


def test_hard_crash_never_leaves_final_name(tmp_path: Path) -> None:
    """A real process killed between writing the temp file and renaming it."""
    proc = subprocess.run(
        [sys.executable, "-c", CRASH_CHILD, str(tmp_path)],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 9, proc.stderr
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "segment_0000.wav" in names and "segment_0001.wav" not in names
    leftovers = [n for n in names if n.startswith(".segment_0001.wav.") and n.endswith(".tmp")]
    assert len(leftovers) == 1  # the complete temp file, never under the final name
    records = read_manifest(tmp_path)
    assert [r["index"] for r in records] == [0]  # resume would redo index 1


async def test_awrite_from_many_tasks(tmp_path: Path) -> None:
    async with SegmentWriter(tmp_path, format="flac") as writer:
        results = await asyncio.gather(
            *(writer.awrite(i, tone_audio(300 + 100 * i, 0.2), text=f"s{i}") for i in range(6))
        )
    assert [r.index for r in results] == list(range(6))
    assert all(isinstance(r, WrittenSegment) and r.path.is_file() for r in results)
    records = read_manifest(writer.manifest_path)
    assert sorted(r["index"] for r in records if r["type"] == "segment") == list(range(6))
    assert records[-1] == {
        "type": "summary",
        "segments": 6,
        "duration_s": pytest.approx(1.2, abs=1e-3),
        "complete": True,
    }
    for line in writer.manifest_path.read_text().splitlines():
        json.loads(line)


def test_exception_in_with_block_marks_summary_incomplete(tmp_path: Path) -> None:
    with pytest.raises(KeyError), SegmentWriter(tmp_path) as writer:
        writer.write(0, tone_audio(440, 0.1), text="kept")
        raise KeyError("boom")
    summary = read_manifest(writer.directory)[-1]
    assert summary["complete"] is False and "KeyError" in summary["error"]
    assert writer.path_for(0).is_file()  # what was written before the failure stays
    assert os.path.getsize(writer.path_for(0)) > 44


def test_keep_records_false_keeps_nothing_in_memory_but_the_summary_is_whole(
    tmp_path: Path,
) -> None:
    writer = SegmentWriter(tmp_path, keep_records=False)
    for index in range(3):
        writer.write(index, tone_audio(440, 0.1), text=f"s{index}")
    assert writer.segments == ()
    writer.close({"note": "done"})
    records = read_manifest(writer.directory)
    assert [r["index"] for r in records if r["type"] == "segment"] == [0, 1, 2]
    summary = records[-1]
    assert summary["type"] == "summary" and summary["segments"] == 3
    assert summary["duration_s"] == pytest.approx(0.3, abs=0.01)


def test_resume_keeps_finished_lines_and_rewrites_the_manifest_atomically(
    tmp_path: Path,
) -> None:
    with SegmentWriter(tmp_path, run_subdir=False) as first:
        for i in range(3):
            first.write(i, tone_audio(440, 0.1), text=f"text {i}")
        first.write_failed(3, text="text 3", error="SynthesisError: boom")
    before = read_manifest(tmp_path)
    assert [r["type"] for r in before] == ["segment"] * 3 + ["failed", "summary"]

    again = SegmentWriter(tmp_path, resume=True)
    # The first thing a resume does is an atomic rewrite: were it killed right
    # now, the manifest would still list every finished segment, once.
    assert read_manifest(tmp_path) == before[:3]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    for i in (0, 2):  # finished, same text: file and line kept, nothing appended
        again.write(i, tone_audio(440, 0.1), text=f"text {i}")
    again.write(1, tone_audio(660, 0.2), text="text 1, changed")  # replaced
    again.write(3, tone_audio(440, 0.1), text="text 3")
    assert len(read_manifest(tmp_path)) == 5  # old line 1 still there until close
    again.close({"status": "completed"})
    records = read_manifest(tmp_path)
    assert [(r["type"], r.get("index")) for r in records] == [
        ("segment", 0), ("segment", 1), ("segment", 2), ("segment", 3), ("summary", None)]
    assert records[0] == before[0] and records[2] == before[2]
    assert records[1]["text"] == "text 1, changed"
    assert records[-1]["segments"] == 4 and records[-1]["status"] == "completed"


def test_resume_onto_a_shorter_input_drops_the_stale_lines_and_files(tmp_path: Path) -> None:
    first = SegmentWriter(tmp_path, run_subdir=False)
    for i in range(5):  # an older, longer text, interrupted
        first.write(i, tone_audio(440, 0.1), text=f"old {i}")
    first.close({"status": "cancelled"})
    again = SegmentWriter(tmp_path, resume=True)
    again.write(0, tone_audio(440, 0.1), text="old 0")  # same text: kept
    again.write(1, tone_audio(660, 0.1), text="new 1")  # changed: replaced
    again.end_of_input(2)  # the new text has two segments
    again.close({"status": "completed"})
    records = read_manifest(tmp_path)
    assert [(r["type"], r.get("index")) for r in records] == [
        ("segment", 0), ("segment", 1), ("summary", None)]
    assert sorted(p.name for p in tmp_path.glob("segment_*")) == [
        "segment_0000.wav", "segment_0001.wav"]

    # Interrupted before its end (no end_of_input): later lines stay for the next resume.
    third = SegmentWriter(tmp_path, resume=True)
    third.write(0, tone_audio(440, 0.1), text="old 0")
    third.close({"status": "cancelled"})
    assert [r.get("index") for r in read_manifest(tmp_path)] == [0, 1, None]


@pytest.mark.parametrize("label", ["wav", "mp3"])  # no conversion (a header check); conversion
async def test_awrite_of_mislabelled_audio_keeps_its_text_in_the_manifest(
    tmp_path: Path, label: str
) -> None:
    liar = tone_audio(440, 0.1)
    liar = type(liar)(**{**liar.__dict__, "data": b"not audio at all" * 8, "format": label})
    writer = SegmentWriter(tmp_path, run_subdir=False)
    with pytest.raises(FormatError):
        await writer.awrite(0, liar, text="said, not saved")
    with pytest.raises(ValueError, match="index must be an int >= 0"):
        await writer.awrite(-1, tone_audio(440, 0.1), text="x")
    await writer.aclose()
    records = read_manifest(tmp_path)
    assert [(r["type"], r.get("text")) for r in records] == [
        ("failed", "said, not saved"), ("summary", None)]
    assert "FormatError" in records[0]["error"]
