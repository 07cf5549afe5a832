"""Narration: chapters, per-chapter merged files, and resume after an interruption."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from output import probe_duration, read_manifest
from pipeline import AudioReady, RunCompleted, RunFailed, create_streaming_pipeline
from pipeline._narrate import anarrate, split_chapters
from tests.fakes.engine import FakeEngine

ALICE = Path(__file__).resolve().parents[1] / "data" / "alice_in_wonderland.txt"


def alice_chapter_one() -> str:
    chapters = split_chapters(ALICE.read_text(encoding="utf-8"))
    assert [c.title for c in chapters[:3]] == ["CHAPTER I", "CHAPTER II", "CHAPTER III"]
    assert len(chapters) == 12
    return chapters[0].text


def test_split_chapters_markdown_and_chapter_lines() -> None:
    text = (
        "Some intro.\n\n# The Start\n\nHello there.\n\n## Part *two* ##\nBye. "
        "Chapter 5 is mentioned mid-sentence.\n\nCHAPTER XII\n\nThe end.\n"
    )
    chapters = split_chapters(text)
    assert [(c.number, c.title) for c in chapters] == [
        (0, "Preamble"),
        (1, "The Start"),
        (2, "Part *two*"),
        (3, "CHAPTER XII"),
    ]
    assert "".join(c.text for c in chapters) == text
    assert [c.run_id for c in chapters] == ["chapter_00", "chapter_01", "chapter_02", "chapter_03"]
    assert split_chapters("No headings at all. Just text.")[0].title == "Text"
    assert split_chapters("  \n ") == []


FAST = {"format": "wav", "workers": 2}  # WAV: no encoder process per segment


async def narrate_all(
    engine: FakeEngine, text: str, out: Path, config: dict[str, Any] = FAST, **kw: Any
) -> list[Any]:
    pipe = create_streaming_pipeline(None, streaming_config=config, tts_engine=engine)
    async with pipe:
        async with asyncio.timeout(120):
            return [pair async for pair in anarrate(pipe, text, output_dir=out, **kw)]


async def test_chapters_become_separate_merged_files(tmp_path: Path) -> None:
    text = "# One\n\nThe first chapter speaks. It has two sentences.\n\n# Two\n\nThe second one.\n"
    pairs = await narrate_all(FakeEngine(), text, tmp_path, {"merge": True, "format": "mp3"})
    done = [e for _, e in pairs if isinstance(e, RunCompleted)]
    assert [d.error for d in done] == [None, None]
    assert [Path(d.output_dir).name for d in done] == ["chapter_01", "chapter_02"]
    for d in done:
        assert d.merged_path is not None
        assert probe_duration(d.merged_path) == pytest.approx(d.audio_s, abs=0.1)


def snapshot(out: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("segment_*"))
    }


async def test_resume_after_interruption_gives_the_same_files(tmp_path: Path) -> None:
    text = alice_chapter_one()

    reference = await narrate_all(FakeEngine(), text, tmp_path / "ref")
    ref_files = snapshot(tmp_path / "ref")
    assert len(ref_files) > 20

    # Interrupt: the 13th synthesis never finishes; stop after 10 files landed.
    engine = FakeEngine(gates={12: asyncio.Event()})
    out = tmp_path / "job"
    pipe = create_streaming_pipeline(None, streaming_config=FAST, tts_engine=engine)
    async with pipe:
        events = anarrate(pipe, text, output_dir=out)
        async with asyncio.timeout(120):
            async for _, event in events:
                if isinstance(event, AudioReady) and event.index == 9:
                    break
        await events.aclose()
    partial = snapshot(out)
    assert 10 <= len(partial) < len(ref_files)
    assert read_manifest(out / "chapter_01")[-1]["status"] == "cancelled"

    again = FakeEngine()
    resumed = await narrate_all(again, text, out, resume=True)
    assert not [e for _, e in resumed if isinstance(e, RunFailed)]
    # nothing finished is redone, nothing is duplicated
    assert len(again.calls) == len(ref_files) - len(partial)
    assert snapshot(out) == ref_files
    records = [r for r in read_manifest(out / "chapter_01") if r["type"] == "segment"]
    assert [r["index"] for r in records] == list(range(len(ref_files)))
    ref_done = next(e for _, e in reference if isinstance(e, RunCompleted))
    res_done = next(e for _, e in resumed if isinstance(e, RunCompleted))
    assert res_done.complete_text == ref_done.complete_text == text
    assert res_done.audio_s == pytest.approx(ref_done.audio_s)
    assert read_manifest(out / "chapter_01")[-1]["status"] == "completed"


async def test_resume_onto_an_older_longer_text_keeps_no_stale_segment(tmp_path: Path) -> None:
    config = {**FAST, "sentence_buffer_size": 1, "min_chunk_length": 1,
              "first_segment_min_length": None}
    long = "One is here. Two is here. Three is here. Four is here. Five is here.\n"
    await narrate_all(FakeEngine(), long, tmp_path, config)
    run_dir = tmp_path / "chapter_01"
    older = [r["index"] for r in read_manifest(run_dir) if r["type"] == "segment"]
    assert len(older) >= 3
    # A shorter text resumed onto the longer one (e.g. an item edited after a crash).
    short = "One is here. Two is here.\n"
    await narrate_all(FakeEngine(), short, tmp_path, config, resume=True)
    records = read_manifest(run_dir)
    segments = [r for r in records if r["type"] == "segment"]
    assert [r["index"] for r in segments] == [0, 1]
    assert "".join(r["text"] for r in segments).replace(" ", "") == short.strip().replace(" ", "")
    assert sorted(p.name for p in run_dir.glob("segment_*")) == [r["path"] for r in segments]
    assert records[-1]["type"] == "summary" and records[-1]["status"] == "completed"
