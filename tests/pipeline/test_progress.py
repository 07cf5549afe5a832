"""NarrationProgress: characters done, phases and an ETA from measured speed, on a fake clock."""

from __future__ import annotations

from typing import Any

import pytest

from pipeline import AudioReady, RunCompleted, RunFailed, SegmentQueued
from pipeline._narrate import Chapter
from pipeline._progress import NarrationProgress, eta_text


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _common(t: float = 0.0) -> dict[str, Any]:
    return {"run_id": "r", "t": t, "audio_files_generated": 0}


def queued(index: int, start: int, end: int, spoken: str = "x") -> SegmentQueued:
    return SegmentQueued(**_common(), index=index, text="x" * (end - start), spoken_text=spoken,
                         start=start, end=end, reason="sentence")


def ready(index: int, synth_s: float = 0.5) -> AudioReady:
    return AudioReady(**_common(), index=index, path=f"segment_{index}.wav", format="wav",
                      duration_s=1.0, engine="fake", voice=None, synth_s=synth_s, text="x")


def completed() -> RunCompleted:
    return RunCompleted(**_common(), complete_text="", ttft_s=None, ttfa_s=None, total_s=1.0,
                        audio_s=1.0, rtf=None, output_dir="o", manifest_path="m")


ONE = Chapter(1, "One", "a" * 1000)
TWO = Chapter(2, "Two", "b" * 1000)


def test_eta_says_measuring_until_enough_segments_over_enough_time() -> None:
    clock = Clock()
    progress = NarrationProgress([ONE, TWO], merge=False, clock=clock, min_segments=3,
                                 min_span_s=2.0)
    for i in range(10):
        progress.observe(ONE, queued(i, i * 100, (i + 1) * 100))
    snap = progress.snapshot()
    assert (snap.chars_done, snap.chars_total, snap.eta_s) == (0, 2000, None)
    assert "ETA measuring…" in snap.parts()
    for i in range(2):
        clock.now += 1.0
        progress.observe(ONE, ready(i))
    assert progress.snapshot().eta_s is None  # two segments: still measuring
    clock.now += 1.0
    progress.observe(ONE, ready(2))
    snap = progress.snapshot()
    # 300 characters in 3 s: 100 chars/s, 1700 left.
    assert snap.rate_cps == pytest.approx(100.0)
    assert snap.eta_s == pytest.approx(17.0)
    # Waiting less than the usual gap between two landings changes nothing (no sawtooth).
    clock.now += 0.9
    assert progress.snapshot().eta_s == pytest.approx(17.0)
    assert snap.percent == pytest.approx(15.0)
    assert eta_text(snap.eta_s) == "ETA 0:17"


def test_speed_is_characters_not_segments_and_follows_a_recent_window() -> None:
    clock = Clock()
    progress = NarrationProgress([ONE], merge=False, clock=clock, window_s=10.0,
                                 min_segments=1, min_span_s=0.0)
    # Short segments fast, then long segments slowly: per-segment speed would lie.
    sizes = [10] * 5 + [190] * 5
    start = 0
    for i, size in enumerate(sizes):
        progress.observe(ONE, queued(i, start, start + size))
        start += size
    for i in range(5):
        clock.now += 1.0
        progress.observe(ONE, ready(i))
    assert progress.snapshot().rate_cps == pytest.approx(10.0)
    for i in range(5, 10):
        clock.now += 10.0
        progress.observe(ONE, ready(i))
        if i == 5:
            # 190 chars in the last 10 s, since the previous sample.
            assert progress.snapshot().rate_cps == pytest.approx(19.0)
    assert progress.snapshot().eta_s == 0.0  # all done


def test_a_stall_lowers_the_speed_and_raises_the_eta() -> None:
    clock = Clock()
    progress = NarrationProgress([ONE], merge=False, clock=clock, min_segments=1,
                                 min_span_s=0.0)
    progress.observe(ONE, queued(0, 0, 100))
    progress.observe(ONE, queued(1, 100, 1000))
    clock.now += 1.0
    progress.observe(ONE, ready(0))
    early = progress.snapshot().eta_s
    clock.now += 9.0
    late = progress.snapshot().eta_s
    assert early is not None and late is not None and late > early


def test_resumed_segments_count_as_done_but_not_as_speed() -> None:
    clock = Clock()
    progress = NarrationProgress([ONE], merge=False, clock=clock, min_segments=1,
                                 min_span_s=0.0)
    for i in range(10):
        progress.observe(ONE, queued(i, i * 100, (i + 1) * 100))
    clock.now += 50.0  # an old start must not count against the kept segments
    for i in range(5):
        progress.observe(ONE, ready(i, synth_s=0.0))  # kept from the earlier run
    snap = progress.snapshot()
    assert (snap.chars_done, snap.eta_s) == (500, None)
    clock.now += 2.0
    progress.observe(ONE, ready(5))
    snap = progress.snapshot()
    assert snap.rate_cps == pytest.approx(50.0)  # 100 chars in 2 s, not 600
    assert snap.eta_s == pytest.approx(8.0)


def test_skipped_and_failed_segments_are_done() -> None:
    progress = NarrationProgress([ONE], merge=False, clock=Clock())
    progress.observe(ONE, queued(0, 0, 400, spoken=""))
    progress.observe(ONE, queued(1, 400, 1000))
    progress.observe(ONE, RunFailed(**_common(), error_type="TTSError", message="m",
                                    retryable=False, partial_text="", segment_index=1))
    snap = progress.snapshot()
    assert (snap.chars_done, snap.segments_done) == (1000, 2)


def test_merging_is_a_phase_between_the_last_file_and_the_chapter_end() -> None:
    progress = NarrationProgress([ONE, TWO], merge=True, clock=Clock())
    phases = []
    for chapter in (ONE, TWO):
        for i, (start, end) in enumerate([(0, 600), (600, 1000)]):
            phases.append(progress.observe(chapter, queued(i, start, end)))
        phases.append(progress.observe(chapter, ready(0)))
        assert progress.snapshot().phase == "narrating"
        phases.append(progress.observe(chapter, ready(1)))
        snap = progress.snapshot()
        assert (snap.phase, snap.files_merging) == ("merging", 2)
        assert snap.parts()[0] == f"{chapter.title}: merging 2 files…"
        phases.append(progress.observe(chapter, completed()))
    assert [p for p in phases if p] == ["merging", "narrating", "merging", "done"]
    snap = progress.snapshot()
    assert (snap.phase, snap.percent, snap.eta_s) == ("done", 100.0, 0.0)
    assert snap.to_dict()["chars_done"] == 2000


def test_without_merge_the_last_phase_is_finishing() -> None:
    progress = NarrationProgress([ONE], merge=False, clock=Clock())
    progress.observe(ONE, queued(0, 0, 1000))
    assert progress.observe(ONE, ready(0)) == "finishing"


def test_eta_text_formats() -> None:
    assert eta_text(None) == "ETA measuring…"
    assert eta_text(65.4) == "ETA 1:05"
    assert eta_text(3725) == "ETA 1:02:05"
