"""Progress of a narration job: characters done, phase and an ETA from measured speed.

Pure bookkeeping, synchronous, no I/O: :class:`NarrationProgress` is fed the
``(chapter, event)`` pairs of :func:`pipeline._narrate.anarrate` and reads an
injected clock. ``speakstream narrate`` (its bar and its plain lines) and the
daemon's narration jobs (``GET /v1/narrations``) both read it, so the figures
are computed in one place.

* **Done** counts characters of the text: a segment's characters
  (``SegmentQueued.end - start``; segments cover a chapter's text without gaps)
  are done when its file is written, when it cleans to nothing (skipped) or
  when it failed. A chapter whose run ended counts whole.
* **Speed** is characters synthesised per second over a recent window
  (``window_s``), taken between the moments segments land (audio comes in
  bursts), falling only while a wait is longer than the usual gap. Only
  segments that were synthesised in this run count, not segments an
  interrupted job already wrote (``synth_s == 0`` on resume), nor
  skipped or failed ones. Until ``min_segments`` were synthesised over at
  least ``min_span_s`` seconds there is no speed and no ETA (*measuring*).
* **Phase**: ``"narrating"``; ``"merging"`` once every character of the
  current chapter is done and only its merged file is left to write (with
  ``merge``), ``"finishing"`` in the same place without merge, then
  ``"narrating"`` again for the next chapter; ``"done"`` after the last
  chapter's run ended.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

from ._events import AudioReady, ProgressEvent, RunCompleted, RunFailed, SegmentQueued
from ._narrate import Chapter

#: Seconds of recent progress the speed is measured over.
WINDOW_S = 30.0
#: Synthesised segments needed before there is a speed (and an ETA).
MIN_SEGMENTS = 3
#: Seconds the measurement must span before there is a speed.
MIN_SPAN_S = 2.0


@dataclass(frozen=True)
class ProgressSnapshot:
    """What a narration has done, at one moment.

    Attributes:
        phase: ``"narrating"``, ``"merging"``, ``"finishing"`` or ``"done"``.
        chapter: title of the chapter being narrated (the last one when done).
        chars_done: characters of the text done (see the module docstring).
        chars_total: characters of the whole text.
        segments_done: segments done (written, skipped or failed), all chapters.
        files_merging: audio files of the chapter being merged (0 unless merging).
        rate_cps: measured synthesis speed in characters per second, or
            ``None`` while measuring.
        eta_s: seconds left at that speed, or ``None`` while measuring
            (``0.0`` when nothing is left).
    """

    phase: str
    chapter: str
    chars_done: int
    chars_total: int
    segments_done: int
    files_merging: int
    rate_cps: float | None
    eta_s: float | None

    @property
    def percent(self) -> float:
        """``chars_done`` as a percentage of ``chars_total`` (0.0-100.0)."""
        if self.chars_total <= 0:  # nothing countable (only LLM answers)
            return 100.0 if self.phase == "done" else 0.0
        return 100.0 * self.chars_done / self.chars_total

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the attributes, ``percent`` (1 decimal) and seconds rounded."""
        return {
            "phase": self.phase,
            "chapter": self.chapter,
            "chars_done": self.chars_done,
            "chars_total": self.chars_total,
            "segments_done": self.segments_done,
            "files_merging": self.files_merging,
            "percent": round(self.percent, 1),
            "rate_cps": None if self.rate_cps is None else round(self.rate_cps, 1),
            "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
        }

    @property
    def phase_text(self) -> str:
        """The phase in words: ``"narrating"``, ``"merging 12 files…"``, ``"finishing…"``,
        ``"done"``."""
        if self.phase == "merging":
            return f"merging {self.files_merging} files…"
        return "finishing…" if self.phase == "finishing" else self.phase

    def parts(self) -> list[str]:
        """Human-readable pieces (``"CHAPTER I: narrating"``, ``"42%"``,
        ``"1,200/3,000 chars"``, ``"ETA 1:05"``); a value never stands apart from
        its unit within one piece."""
        return [
            f"{self.chapter}: {self.phase_text}",
            f"{self.percent:.0f}%",
            f"{self.chars_done:,}/{self.chars_total:,} chars",
            eta_text(self.eta_s),
        ]


def eta_text(eta_s: float | None) -> str:
    """``"ETA measuring…"`` for ``None``, else ``"ETA m:ss"`` (``"ETA h:mm:ss"``)."""
    if eta_s is None:
        return "ETA measuring…"
    total = int(eta_s + 0.5)
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"ETA {hours}:{minutes:02d}:{seconds:02d}" if hours else f"ETA {minutes}:{seconds:02d}"


class NarrationProgress:
    """Progress of one narration (see the module docstring).

    Args:
        chapters: the job's chapters (:func:`pipeline._narrate.split_chapters`),
            or ``()`` for a job whose chapters are read as it goes (then give
            ``total_chars`` and call :meth:`finish` at the end).
        total_chars: characters of the whole job; default: the chapters' sum.
        merge: whether each chapter ends by merging its files.
        clock: seconds, monotonic (``time.monotonic`` by default; tests pass a fake).
        window_s: seconds of recent progress the speed is measured over.
        min_segments: synthesised segments needed before there is a speed.
        min_span_s: seconds the measurement must span before there is a speed.
    """

    def __init__(self, chapters: Sequence[Chapter] = (), *, total_chars: int | None = None,
                 merge: bool, clock: Callable[[], float] = time.monotonic,
                 window_s: float = WINDOW_S, min_segments: int = MIN_SEGMENTS,
                 min_span_s: float = MIN_SPAN_S) -> None:
        self._lengths: dict[Hashable, int] = {c.number: len(c.text) for c in chapters}
        self._total = sum(self._lengths.values()) if total_chars is None else total_chars
        self._merge = merge
        self._clock = clock
        self._window_s = window_s
        self._min_segments = min_segments
        self._min_span_s = min_span_s
        self._chapter = chapters[0].title if chapters else "narration"  # until one starts
        self._key: Hashable = chapters[0].number if chapters else None
        self._last_key: Hashable = chapters[-1].number if chapters else None
        self._pending: dict[int, int] = {}  # index -> chars, current chapter
        self._queued_to = 0  # offset one past the last queued character, current chapter
        self._chapter_done = 0  # characters done in the current chapter
        self._done_before = 0  # characters of the chapters before it (and skipped items)
        self._files = 0  # files written in the current chapter
        self._segments_done = 0
        self._ended = False  # the current chapter's run ended
        self._finished = False
        self._measured = 0  # characters synthesised in this run
        self._synthesised = 0  # segments synthesised in this run
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def observe(self, chapter: Chapter, event: ProgressEvent, *,
                key: Hashable = None) -> str | None:
        """Take one event of ``chapter``'s run; returns the new phase when it changed.

        ``key`` tells chapters apart (default: ``chapter.number``; a job of
        several items passes ``(item id, number)``).
        """
        before = self._phase()
        key = chapter.number if key is None else key
        if key != self._key:
            self._next_chapter(chapter, key)
        if isinstance(event, SegmentQueued):
            self._queued_to = max(self._queued_to, event.end)
            self._pending[event.index] = event.end - event.start
            if not event.spoken_text:
                self._settle(event.index, measured=False)
        elif isinstance(event, AudioReady):
            self._files += 1
            self._settle(event.index, measured=event.synth_s > 0)
        elif isinstance(event, RunFailed) and event.segment_index is not None:
            self._settle(event.segment_index, measured=False)
        elif isinstance(event, RunCompleted):
            self._chapter_done = self._lengths.get(key) or self._chapter_done
            self._pending.clear()
            self._ended = True
            self._finished = key == self._last_key
        after = self._phase()
        return after if after != before else None

    def skip(self, chars: int) -> None:
        """Count ``chars`` characters as done without work (an item finished earlier)."""
        self._done_before += chars

    def finish(self) -> None:
        """The job ended (for a job built without its chapters list)."""
        self._finished = True

    def snapshot(self) -> ProgressSnapshot:
        """The figures now (reads the clock for the speed)."""
        done = min(self._done_before + self._chapter_done, self._total)
        phase = self._phase()
        rate = self._rate()
        if phase == "done" or done >= self._total:
            eta: float | None = 0.0
        else:
            eta = None if rate is None else (self._total - done) / rate
        return ProgressSnapshot(
            phase=phase,
            chapter=self._chapter,
            chars_done=done,
            chars_total=self._total,
            segments_done=self._segments_done,
            files_merging=self._files if phase == "merging" else 0,
            rate_cps=rate,
            eta_s=eta,
        )

    # -- internals ---------------------------------------------------------------

    def _next_chapter(self, chapter: Chapter, key: Hashable) -> None:
        if self._key is not None:
            self._done_before += self._lengths.get(self._key, 0)
        self._lengths.setdefault(key, len(chapter.text))
        self._chapter, self._key = chapter.title, key
        self._pending.clear()
        self._queued_to = self._chapter_done = self._files = 0
        self._ended = False

    def _settle(self, index: int, *, measured: bool) -> None:
        chars = self._pending.pop(index, None)
        if chars is None:
            return
        if self._lengths.get(self._key):  # an LLM answer's length is not in the total
            self._chapter_done += chars
        self._segments_done += 1
        now = self._clock()
        if measured:
            self._measured += chars
            self._synthesised += 1
            self._samples.append((now, self._measured))
        elif self._synthesised == 0:
            # Nothing measured yet (a resumed job's kept segments come at once):
            # the measurement starts from here.
            self._samples = deque([(now, 0)])

    def _rate(self) -> float | None:
        now = self._clock()
        samples = self._samples
        while len(samples) > 2 and samples[1][0] <= now - self._window_s:
            samples.popleft()
        t0, c0 = samples[0]
        t_last, c_last = samples[-1]
        if self._synthesised < self._min_segments or now - t0 < self._min_span_s:
            return None
        # Audio lands in bursts (in index order, segments of any length), so the
        # speed is taken between measured points; it only falls while waiting
        # longer than the usual gap between two points (a stall).
        gap = (t_last - t0) / max(len(samples) - 1, 1)
        span = max(t_last - t0, now - t0 - gap)
        chars = c_last - c0
        return chars / span if chars > 0 and span > 0 else None

    def _phase(self) -> str:
        if self._finished:
            return "done"
        if self._ended:  # until the next chapter starts
            return "merging" if self._merge else "finishing"
        length = self._lengths.get(self._key, 0)
        if length and self._queued_to >= length and not self._pending \
                and self._chapter_done >= length:
            return "merging" if self._merge else "finishing"
        return "narrating"
