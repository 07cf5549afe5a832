"""merge: durations (ffprobe) add up, silences between, chapters, atomic output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from output import OutputExistsError, SegmentWriter, merge, probe_duration, sniff_format
from output._merge import ffmetadata_chapters
from tests.fakes.tones import dominant_freq, samples
from tests.output.conftest import decode_file, espeak_audio, tone_audio


@pytest.fixture
def run(tmp_path: Path) -> SegmentWriter:
    with SegmentWriter(tmp_path / "out", format="wav") as writer:
        writer.write(0, espeak_audio("Hello there."), text="Hello there.")
        writer.write(1, tone_audio(440, 0.5), text="tone")
        writer.write(2, espeak_audio("This is speakstream."), text="This is speakstream.")
    return writer


@pytest.mark.parametrize(("fmt", "silence_ms"), [("wav", 0), ("wav", 250), ("mp3", 400)])
def test_merged_duration_is_sum_plus_silences(
    run: SegmentWriter, tmp_path: Path, fmt: str, silence_ms: int
) -> None:
    paths = [s.path for s in run.segments]
    out = merge(paths, tmp_path / f"all.{fmt}", silence_ms=silence_ms)
    assert sniff_format(out.read_bytes()) == fmt
    expected = sum(probe_duration(p) for p in paths) + 2 * silence_ms / 1000
    tolerance = 0.002 if fmt == "wav" else 2 * 1152 / 22050  # MP3 frame padding
    assert probe_duration(out) == pytest.approx(expected, abs=tolerance)


def test_silence_sits_between_segments(tmp_path: Path) -> None:
    a, b = tmp_path / "a.wav", tmp_path / "b.wav"
    a.write_bytes(tone_audio(440, 0.3).data)
    b.write_bytes(tone_audio(1500, 0.3).data)
    out = decode_file(merge([a, b], tmp_path / "ab.wav", silence_ms=200))
    rate = out.frame_rate
    pcm = samples(out.raw_data)
    assert dominant_freq(pcm[: int(0.3 * rate)], rate) == pytest.approx(440, rel=0.03)
    assert max(abs(v) for v in pcm[int(0.31 * rate) : int(0.49 * rate)]) == 0
    assert dominant_freq(pcm[int(0.5 * rate) :], rate) == pytest.approx(1500, rel=0.03)


def test_chapters_are_written_to_mp3(run: SegmentWriter, tmp_path: Path) -> None:
    starts, t = [], 0.0
    for seg in run.segments:
        starts.append(t)
        t += seg.duration_s
    chapters = [(f"Part {i}; #{i}", s) for i, s in enumerate(starts)]
    out = merge([s.path for s in run.segments], tmp_path / "book.mp3", chapters=chapters)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_chapters", "-of", "json", str(out)],
        capture_output=True,
        text=True,
        check=True,
    )
    found = json.loads(probe.stdout)["chapters"]
    assert [c["tags"]["title"] for c in found] == [title for title, _ in chapters]
    assert [float(c["start_time"]) for c in found] == pytest.approx(starts, abs=0.001)
    assert float(found[-1]["end_time"]) == pytest.approx(t, abs=0.002)
    assert not list(tmp_path.glob("*.ffmeta*")) and not list(tmp_path.glob(".*.tmp"))


def test_chapters_refused_where_the_container_cannot_hold_them(
    run: SegmentWriter, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match=r"chapters need a format that stores them \(mp3, opus\)"):
        merge([run.segments[0].path], tmp_path / "x.wav", chapters=[("a", 0.0)])
    assert not (tmp_path / "x.wav").exists()


@pytest.mark.parametrize(
    "chapters",
    [[("a", 1.0), ("b", 0.5)], [("a", -1.0)], [("a", 0.0), ("b", 999.0)], [("", 0.0)]],
)
def test_bad_chapters(chapters: list[tuple[str, float]]) -> None:
    with pytest.raises(ValueError, match="chapters"):
        ffmetadata_chapters(chapters, 10.0)


def test_ffmetadata_escapes_specials() -> None:
    text = ffmetadata_chapters([("a=b;c#d\\e", 0.0)], 2.0)
    assert text.splitlines() == [
        ";FFMETADATA1",
        "[CHAPTER]",
        "TIMEBASE=1/1000",
        "START=0",
        "END=2000",
        "title=a\\=b\\;c\\#d\\\\e",
    ]


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one"):
        merge([], tmp_path / "x.wav")
    with pytest.raises(ValueError, match="silence_ms must be an int >= 0"):
        merge([tmp_path / "a.wav"], tmp_path / "x.wav", silence_ms=-5)
    with pytest.raises(ValueError, match="format must be one of"):
        merge([tmp_path / "a.wav"], tmp_path / "x.aac")
    with pytest.raises(FileNotFoundError):
        merge([tmp_path / "missing.wav"], tmp_path / "x.wav")


def test_existing_output_kept_without_overwrite(run: SegmentWriter, tmp_path: Path) -> None:
    target = tmp_path / "keep.wav"
    target.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        merge([run.segments[0].path], target, overwrite=False)
    assert target.read_bytes() == b"precious"
    assert not list(tmp_path.glob(".keep.wav.*.tmp"))
