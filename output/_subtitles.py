"""Subtitles (SubRip ``.srt`` and WebVTT ``.vtt``) for a run's merged timeline.

Cues come from word timings where the engine reported them (grouped into
readable lines) or, when a segment has none, one cue for the whole segment.
Segment ``i`` starts at the sum of the previous durations plus ``i`` gaps of
``silence_ms`` — exactly the timeline :func:`merge` produces.

Formats: SRT as described in the SubRip/Matroska docs
(``HH:MM:SS,mmm --> HH:MM:SS,mmm``, 1-based counters, blank line between
cues); WebVTT per the W3C spec (https://www.w3.org/TR/webvtt1/): ``WEBVTT``
header, ``HH:MM:SS.mmm`` times, ``&``, ``<``, ``>`` escaped.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tts import WordBoundary

from ._atomic import atomic_write_text

_SENTENCE_END = (".", "!", "?", "…", ":", ";")


@dataclass(frozen=True)
class Cue:
    """One subtitle cue.

    Attributes:
        start_s: when it appears, seconds from the start of the merged audio.
        end_s: when it disappears (> ``start_s``), seconds.
        text: what it shows (one line, whitespace collapsed).
    """

    start_s: float
    end_s: float
    text: str

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start_s) and math.isfinite(self.end_s)):
            raise ValueError(f"cue times must be finite, got {self.start_s!r}, {self.end_s!r}")
        if self.start_s < 0 or self.end_s <= self.start_s:
            raise ValueError(
                f"cue needs 0 <= start_s < end_s, got {self.start_s!r} -> {self.end_s!r}"
            )


class _HasTimings(Protocol):
    @property
    def text(self) -> str: ...
    @property
    def duration_s(self) -> float: ...
    @property
    def words(self) -> tuple[WordBoundary, ...]: ...


SegmentTimings = tuple[str, float, Sequence[WordBoundary]]


def cues_from_segments(
    segments: Iterable[_HasTimings | SegmentTimings],
    *,
    silence_ms: int = 0,
    max_chars: int = 42,
    max_cue_s: float = 5.0,
) -> list[Cue]:
    """Build cues for segments played one after another.

    ``segments`` are :class:`WrittenSegment` objects or ``(text, duration_s,
    words)`` tuples, in play order; ``silence_ms`` is the gap between
    consecutive segments (as passed to :func:`merge`).

    With word timings, words are grouped into lines of at most ``max_chars``
    characters and ``max_cue_s`` seconds, breaking after sentence punctuation;
    a cue runs from its first word's start to its last word's end, clipped to
    the segment. Without, the segment is one cue spanning its duration. Empty
    texts and zero-length segments produce no cue; times are monotonic.

    Raises:
        ValueError: bad option, or a negative/non-finite duration.
    """
    if isinstance(silence_ms, bool) or not isinstance(silence_ms, int) or silence_ms < 0:
        raise ValueError(f"silence_ms must be an int >= 0, got {silence_ms!r}")
    if not isinstance(max_chars, int) or max_chars < 8:
        raise ValueError(f"max_chars must be an int >= 8, got {max_chars!r}")
    if not math.isfinite(max_cue_s) or max_cue_s <= 0:
        raise ValueError(f"max_cue_s must be a finite number > 0, got {max_cue_s!r}")
    cues: list[Cue] = []
    start = 0.0
    for n, segment in enumerate(segments):
        if isinstance(segment, tuple):
            text, duration, words = segment
        else:
            text, duration, words = segment.text, segment.duration_s, segment.words
        if not math.isfinite(duration) or duration < 0:
            raise ValueError(f"segment {n}: duration_s must be finite and >= 0, got {duration!r}")
        if n:
            start += silence_ms / 1000
        end = start + duration
        if words:
            cues += _word_cues(words, start, end, max_chars, max_cue_s)
        elif " ".join(text.split()) and end > start:
            cues.append(Cue(start, end, " ".join(text.split())))
        start = end
    return _monotonic(cues)


def _word_cues(
    words: Sequence[WordBoundary], seg_start: float, seg_end: float, max_chars: int, max_s: float
) -> list[Cue]:
    cues: list[Cue] = []
    line: list[WordBoundary] = []

    def flush() -> None:
        if not line:
            return
        first = seg_start + max(line[0].offset_s, 0.0)
        last = seg_start + line[-1].offset_s + max(line[-1].duration_s, 0.0)
        first, last = min(first, seg_end), min(last, seg_end)
        text = " ".join(" ".join(w.text.split()) for w in line if w.text.strip())
        if text and last > first:
            cues.append(Cue(first, last, text))
        line.clear()

    for word in words:
        if line:
            length = len(" ".join(w.text for w in line)) + 1 + len(word.text)
            span = word.offset_s + word.duration_s - line[0].offset_s
            if length > max_chars or span > max_s:
                flush()
        line.append(word)
        if word.text.rstrip().endswith(_SENTENCE_END):
            flush()
    flush()
    return cues


def _monotonic(cues: list[Cue]) -> list[Cue]:
    # Engines' word timings may overlap slightly; never let a cue start before
    # the previous one ends.
    out: list[Cue] = []
    for cue in cues:
        if out and cue.start_s < out[-1].end_s:
            if cue.end_s <= out[-1].end_s:
                out[-1] = Cue(out[-1].start_s, out[-1].end_s, f"{out[-1].text} {cue.text}")
                continue
            cue = Cue(out[-1].end_s, cue.end_s, cue.text)
        out.append(cue)
    return out


def _timestamp(seconds: float, separator: str) -> str:
    ms = round(seconds * 1000)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def format_srt(cues: Iterable[Cue]) -> str:
    """The SubRip document for ``cues`` (``""`` when there are none)."""
    blocks = [
        f"{n}\n{_timestamp(c.start_s, ',')} --> {_timestamp(c.end_s, ',')}\n{_one_line(c.text)}\n"
        for n, c in enumerate(cues, start=1)
    ]
    return "\n".join(blocks)


def format_vtt(cues: Iterable[Cue]) -> str:
    """The WebVTT document for ``cues`` (just the header when there are none)."""
    blocks = ["WEBVTT\n"]
    for c in cues:
        text = _one_line(c.text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        blocks.append(f"{_timestamp(c.start_s, '.')} --> {_timestamp(c.end_s, '.')}\n{text}\n")
    return "\n".join(blocks)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def write_srt(cues: Iterable[Cue], path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write ``cues`` as SubRip (UTF-8) to ``path`` atomically; return the path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    out = Path(path)
    atomic_write_text(out, format_srt(cues), overwrite=overwrite)
    return out


def write_vtt(cues: Iterable[Cue], path: str | os.PathLike[str], *, overwrite: bool = True) -> Path:
    """Write ``cues`` as WebVTT (UTF-8) to ``path`` atomically; return the path.

    Raises:
        OutputExistsError: ``path`` exists and ``overwrite`` is false.
    """
    out = Path(path)
    atomic_write_text(out, format_vtt(cues), overwrite=overwrite)
    return out
