"""The hard cap on segment length through a whole run (issue 11, item 1).

A long text with no sentence punctuation must still give audio: many
segments of bounded length, every character in exactly one segment, in
order, one audio file per segment; a code block cut by the cap is never read
aloud. Runs use the FakeEngine (no timing assertions).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from pipeline import (
    AudioReady,
    SegmentQueued,
    SentenceBuffer,
    StreamingConfig,
    create_streaming_pipeline,
)
from pipeline._cleanup import CODE_PLACEHOLDER
from tests.fakes.engine import FakeEngine

GUARD = 120  # seconds: a deadlock guard, never a measurement


async def _run(tmp_path: Path, text: str, chunk: int, **config: Any) -> list[Any]:
    async def deltas() -> AsyncIterator[str]:
        for i in range(0, len(text), chunk):
            yield text[i : i + chunk]
            if i % (chunk * 64) == 0:
                await asyncio.sleep(0)

    options = {"output_dir": str(tmp_path), "max_buffer_time": None, **config}
    engine = FakeEngine(seconds_per_char=0.0001, min_duration_s=0.01)
    pipe = create_streaming_pipeline(None, streaming_config=options, tts_engine=engine)
    async with asyncio.timeout(GUARD), pipe:
        return [event async for event in pipe.astream_text_to_audio(deltas())]


def _check(text: str, events: list[Any], cap: int) -> list[SegmentQueued]:
    segments = [e for e in events if isinstance(e, SegmentQueued)]
    assert "".join(s.text for s in segments) == text
    assert [s.index for s in segments] == list(range(len(segments)))
    assert all(len(s.text) <= cap for s in segments)
    audio = [e for e in events if isinstance(e, AudioReady)]
    assert sorted(a.index for a in audio) == [s.index for s in segments if s.spoken_text]
    assert all(Path(a.path).is_file() for a in audio)
    assert events[-1].error is None
    return segments


async def test_200_kb_without_punctuation_gives_many_segments(tmp_path: Path) -> None:
    vocabulary = "the quick brown fox jumps over a lazy dog while birds sing softly".split()
    text = " ".join(vocabulary[i % len(vocabulary)] for i in range(40_000))
    segments = _check(text, await _run(tmp_path, text, 5), 600)
    assert len(segments) >= len(text) // 600
    assert all(s.reason == "max_segment_length" for s in segments[:-1])
    assert all(s.text.endswith(" ") for s in segments[:-1])  # never inside a word


async def test_poem_with_line_breaks_and_no_periods(tmp_path: Path) -> None:
    stanza = "I wandered lonely as a cloud\nthat floats on high over vales and hills\n"
    text = stanza * 800  # ~55 KB, no sentence punctuation at all
    segments = _check(text, await _run(tmp_path, text, 7, max_segment_length=300), 300)
    assert len(segments) >= len(text) // 300
    assert all(s.text.endswith("\n") for s in segments[:-1])  # cut at line ends


async def test_a_long_code_block_is_spoken_once_as_a_placeholder(tmp_path: Path) -> None:
    code = "".join(f"    total_{i} = add({i}, {i * 2})\n" for i in range(80))
    text = "Run this:\n```python\n" + code + "```\nThat is all."
    segments = _check(
        text, await _run(tmp_path, text, 4, max_segment_length=200, sentence_buffer_size=1), 200
    )
    spoken = [s.spoken_text for s in segments if s.spoken_text]
    assert spoken == ["Run this:", CODE_PLACEHOLDER, "That is all."]


def test_the_cap_is_a_validated_streaming_config_key() -> None:
    assert StreamingConfig().max_segment_length == SentenceBuffer().config.max_segment_length
    assert StreamingConfig.from_mapping({"max_segment_length": 80}).max_segment_length == 80
    for bad in (79, 100_001, 600.0, True, "600"):
        with pytest.raises(ValueError, match="max_segment_length"):
            StreamingConfig(max_segment_length=bad)  # type: ignore[arg-type]
