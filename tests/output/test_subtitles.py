"""Subtitles: cue building on the merged timeline, SRT/VTT format validated."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from output import Cue, cues_from_segments, format_srt, format_vtt, write_srt, write_vtt
from tts import WordBoundary

SRT_TIME = r"(\d\d):(\d\d):(\d\d),(\d\d\d)"
VTT_TIME = r"(\d\d):(\d\d):(\d\d)\.(\d\d\d)"


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def parse_srt(text: str) -> list[tuple[float, float, str]]:
    """A strict SubRip reader: counter, times, one text line, blank line."""
    cues = []
    blocks = text.split("\n\n") if text else []
    for n, block in enumerate(blocks, start=1):
        lines = block.strip("\n").split("\n")
        assert lines[0] == str(n), block
        m = re.fullmatch(SRT_TIME + " --> " + SRT_TIME, lines[1])
        assert m, lines[1]
        assert len(lines) == 3 and lines[2].strip(), block
        cues.append((_seconds(*m.groups()[:4]), _seconds(*m.groups()[4:]), lines[2]))
    return cues


def parse_vtt(text: str) -> list[tuple[float, float, str]]:
    assert text.startswith("WEBVTT\n\n") or text == "WEBVTT\n"
    cues = []
    for block in text[len("WEBVTT\n\n") :].split("\n\n"):
        if not block.strip():
            continue
        lines = block.strip("\n").split("\n")
        m = re.fullmatch(VTT_TIME + " --> " + VTT_TIME, lines[0])
        assert m, lines[0]
        assert len(lines) == 2 and "-->" not in lines[1] and "<" not in lines[1]
        cues.append((_seconds(*m.groups()[:4]), _seconds(*m.groups()[4:]), lines[1]))
    return cues


WORDS = (
    WordBoundary("Hello", 0.05, 0.30),
    WordBoundary("there.", 0.40, 0.35),
    WordBoundary("This", 0.90, 0.20),
    WordBoundary("is", 1.12, 0.10),
    WordBoundary("speakstream.", 1.25, 0.70),
)


def test_word_cues_break_at_sentences_and_offset_by_segment_start() -> None:
    segments = [
        ("Hello there. This is speakstream.", 2.1, WORDS),
        ("No timings here.", 1.5, ()),
        ("Again.", 1.0, (WordBoundary("Again.", 0.1, 0.5),)),
    ]
    cues = cues_from_segments(segments, silence_ms=300)
    assert [c.text for c in cues] == [
        "Hello there.",
        "This is speakstream.",
        "No timings here.",
        "Again.",
    ]
    assert cues[0].start_s == pytest.approx(0.05) and cues[0].end_s == pytest.approx(0.75)
    assert cues[1].start_s == pytest.approx(0.90) and cues[1].end_s == pytest.approx(1.95)
    # Segment 2 starts after 2.1 s + 0.3 s of silence and spans its duration.
    assert (cues[2].start_s, cues[2].end_s) == pytest.approx((2.4, 3.9))
    # Segment 3 starts after 2.1 + 0.3 + 1.5 + 0.3 = 4.2 s.
    assert (cues[3].start_s, cues[3].end_s) == pytest.approx((4.3, 4.8))


def test_long_lines_are_split_by_characters() -> None:
    words = tuple(WordBoundary(f"word{i}", i * 0.3, 0.25) for i in range(20))
    cues = cues_from_segments([("x", 6.0, words)], max_chars=20)
    assert all(len(c.text) <= 20 for c in cues)
    assert " ".join(c.text for c in cues) == " ".join(w.text for w in words)


def test_srt_and_vtt_format(tmp_path: Path) -> None:
    cues = [Cue(0.0, 1.5, "Hello <b> & co"), Cue(3661.0, 3662.25, "Late\nline")]
    srt = write_srt(cues, tmp_path / "a.srt").read_text(encoding="utf-8")
    assert srt == (
        "1\n00:00:00,000 --> 00:00:01,500\nHello <b> & co\n\n"
        "2\n01:01:01,000 --> 01:01:02,250\nLate line\n"
    )
    vtt = write_vtt(cues, tmp_path / "a.vtt").read_text(encoding="utf-8")
    assert vtt == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nHello &lt;b&gt; &amp; co\n\n"
        "01:01:01.000 --> 01:01:02.250\nLate line\n"
    )
    assert [c[:2] for c in parse_srt(srt)] == [(0.0, 1.5), (3661.0, 3662.25)]
    assert [c[:2] for c in parse_vtt(vtt)] == [(0.0, 1.5), (3661.0, 3662.25)]


def test_no_cues() -> None:
    assert format_srt([]) == ""
    assert format_vtt([]) == "WEBVTT\n"
    assert cues_from_segments([("", 1.0, ()), ("x", 0.0, ())]) == []


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="start_s < end_s"):
        Cue(2.0, 1.0, "x")
    with pytest.raises(ValueError, match="silence_ms must be an int >= 0"):
        cues_from_segments([], silence_ms=-1)
    with pytest.raises(ValueError, match="segment 0: duration_s"):
        cues_from_segments([("x", float("nan"), ())])


word_st = st.builds(
    WordBoundary,
    text=st.text(alphabet="abc .,!?<>&-", min_size=1, max_size=12),
    offset_s=st.floats(0, 5, allow_nan=False),
    duration_s=st.floats(0, 1, allow_nan=False),
)
segment_st = st.tuples(
    st.text(alphabet="ab .\n", max_size=30),
    st.floats(0, 6, allow_nan=False),
    st.lists(word_st, max_size=8).map(lambda ws: tuple(sorted(ws, key=lambda w: w.offset_s))),
)


@given(st.lists(segment_st, max_size=6), st.integers(0, 800))
def test_any_segments_give_valid_monotonic_subtitles(
    segments: list[tuple[str, float, tuple[WordBoundary, ...]]], silence_ms: int
) -> None:
    cues = cues_from_segments(segments, silence_ms=silence_ms)
    total = sum(d for _, d, _ in segments) + max(len(segments) - 1, 0) * silence_ms / 1000
    assert all(0 <= c.start_s < c.end_s <= total + 1e-9 for c in cues)
    srt, vtt = parse_srt(format_srt(cues)), parse_vtt(format_vtt(cues))
    assert len(srt) == len(vtt) == len(cues)
    for parsed in (srt, vtt):
        for (s1, e1, _), (s2, _, _) in itertools.pairwise(parsed):
            assert s1 <= e1 <= s2


def test_cues_from_written_segments(tmp_path: Path) -> None:
    from output import SegmentWriter
    from tests.output.conftest import tone_audio

    words = (WordBoundary("One.", 0.1, 0.3),)
    with SegmentWriter(tmp_path) as writer:
        writer.write(0, tone_audio(440, 0.5, words=words), text="One.")
        writer.write(1, tone_audio(440, 0.7), text="Two.")
    cues = cues_from_segments(writer.segments, silence_ms=100)
    assert [(c.start_s, c.end_s, c.text) for c in cues] == [
        (pytest.approx(0.1), pytest.approx(0.4), "One."),
        (pytest.approx(0.6), pytest.approx(1.3), "Two."),
    ]
