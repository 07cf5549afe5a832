"""Batch narration of a text or markdown document (no LLM), chapter by chapter.

Each chapter is one run of :meth:`StreamingPipeline.astream_text_to_audio`
into ``<output_dir>/chapter_NN/`` (segment files, ``manifest.jsonl`` and,
with ``merge``, the chapter's merged file): the same machinery as a chat
answer, so segmentation, cleanup, parallel synthesis and ordering are shared.

Resuming (``resume=True``) skips the chapters an earlier job finished and
re-runs the others with ``resume``: segments a
previous, interrupted job already wrote (per its manifest) are kept, never
synthesized again nor duplicated, and only the missing ones are made. The
given text is cut the same way every time (one chunk, then flush), so the
segment indices match between the runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import re
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from output import MANIFEST_NAME, read_manifest

from ._ahead import in_order
from ._errors import ConfigError
from ._events import ProgressEvent, RunCompleted
from ._pipeline import StreamingPipeline

# A markdown ATX heading, or a short "CHAPTER ..." line (Project Gutenberg
# style: "CHAPTER I", "Chapter 12. The End"), alone on its line.
_HEADING = re.compile(
    r"""
    ^[ \t]*(?:
        \#{1,6}[ \t]+(?P<md>\S[^\n]*?)[ \t\#]*
      | (?P<ch>(?:CHAPTER|Chapter)[ \t]+(?:[0-9]+|[IVXLCDM]+|[A-Z][a-z]+)\b[^\n]{0,80}?)[ \t]*
    )$
    """,
    re.M | re.X,
)


@dataclass(frozen=True)
class Chapter:
    """One chapter of a document.

    Attributes:
        number: 1, 2, 3... in document order (0 for text before the first heading).
        title: the heading text (``"CHAPTER I"``, ``"Introduction"``), or
            ``"Preamble"`` for text before the first heading, or ``"Text"`` when
            the document has no headings.
        text: the chapter's text, its heading line included (it is spoken).
    """

    number: int
    title: str
    text: str

    @property
    def run_id(self) -> str:
        """The chapter's run id and directory name: ``chapter_NN``."""
        return f"chapter_{self.number:02d}"


def iter_chapters(lines: Iterable[str]) -> Iterator[Chapter]:
    """Cut a document, given as lines (each with its ``\\n``), into chapters lazily.

    Holds one chapter at a time (an open text file is an iterable of lines),
    so a document of any length is read in memory a chapter at a time. Same
    chapters as :func:`split_chapters`.
    """
    number = 0
    title = ""
    parts: list[str] = []
    for line in lines:
        match = _HEADING.match(line.rstrip("\n"))
        if match is None:
            parts.append(line)
            continue
        text = "".join(parts)
        if number > 0:
            yield Chapter(number, title, text)
        elif text.strip():
            yield Chapter(0, "Preamble", text)
        number += 1
        title = (match.group("md") or match.group("ch") or "").strip()
        parts = [line]
    text = "".join(parts)
    if number > 0:
        yield Chapter(number, title, text)
    elif text.strip():
        yield Chapter(1, "Text", text)


def split_chapters(text: str) -> list[Chapter]:
    """Cut ``text`` into chapters at markdown headings and ``CHAPTER ...`` lines.

    Text before the first heading becomes chapter 0 ("Preamble") when it holds
    more than whitespace; a document without headings is one chapter 1
    ("Text"). Concatenating the chapters' ``text`` gives back ``text`` minus
    leading whitespace-only preamble.
    """
    return list(iter_chapters(io.StringIO(text)))


def finished_chapter(run_dir: Path, chapter: Chapter) -> RunCompleted | None:
    """The chapter's summary when an earlier job finished it in ``run_dir``, else ``None``.

    Finished means: the manifest's last line is a summary with status
    ``"completed"``, no failed segment, and the same text. Returned as the
    ``RunCompleted`` event of that run (times zero: nothing ran now).
    """
    manifest = run_dir / MANIFEST_NAME
    if not manifest.is_file():
        return None
    records = read_manifest(manifest)
    summary = records[-1] if records else {}
    if (
        summary.get("type") != "summary"
        or summary.get("status") != "completed"
        or summary.get("failed_indices")
        or summary.get("complete_text") != chapter.text
    ):
        return None
    segments = sorted(
        (r for r in records if r.get("type") == "segment"), key=lambda r: int(r["index"])
    )
    return RunCompleted(
        run_id=chapter.run_id,
        t=0.0,
        audio_files_generated=len(segments),
        audio_files=[str(run_dir / str(r["path"])) for r in segments],
        audio_indices=[int(r["index"]) for r in segments],
        complete_text=chapter.text,
        ttft_s=None,
        ttfa_s=None,
        total_s=0.0,
        audio_s=float(summary.get("duration_s") or 0.0),
        rtf=None,
        output_dir=str(run_dir),
        manifest_path=str(manifest),
        merged_path=_artifact(run_dir, summary.get("merged_path")),
        subtitles_path=_artifact(run_dir, summary.get("subtitles_path")),
    )


def _artifact(run_dir: Path, name: Any) -> str | None:
    return str(run_dir / str(name)) if name else None


async def anarrate(
    pipeline: StreamingPipeline,
    text: str | Iterable[Chapter],
    *,
    output_dir: str | Path | None = None,
    voice: str | None = None,
    resume: bool = False,
    stop_event: asyncio.Event | None = None,
    ahead: int = 0,
) -> AsyncGenerator[tuple[Chapter, ProgressEvent], None]:
    """Narrate ``text`` chapter by chapter; yields ``(chapter, event)`` pairs,
    chapter after chapter.

    Chapter ``c`` is written to ``<output_dir>/<c.run_id>/``; each chapter's
    event stream is a complete run (``RunStarted`` ... ``RunCompleted``).
    ``ahead``: chapters started before their turn (their events held until
    then, see :func:`pipeline._ahead.in_order`); ``0`` (the default) runs
    one at a time, and a pipeline that plays aloud always does. Closing this
    iterator stops the chapters running (files written so far stay, which is
    what ``resume`` continues from). With ``resume``, a chapter an earlier
    job finished (see :func:`finished_chapter`) is not run again: its one
    event is the earlier run's ``RunCompleted``. ``text`` may also be
    chapters (from :func:`iter_chapters`), read as they are started.

    Raises:
        ConfigError: ``text`` holds nothing to say (also a ``ValueError``).
        OutputExistsError: a chapter directory holds an earlier job and
            ``resume`` is false.
    """
    chapters = iter(split_chapters(text) if isinstance(text, str) else text)
    first = next(chapters, None)
    if first is None:
        raise ConfigError("nothing to narrate: the text is empty")
    base = Path(output_dir if output_dir is not None else pipeline.config.output_dir)

    async def runs() -> AsyncIterator[AsyncGenerator[tuple[Chapter, ProgressEvent], None]]:
        for chapter in itertools.chain([first], chapters):
            if stop_event is not None and stop_event.is_set():
                return  # stopped: the chapters left are for a resume
            yield _chapter_run(pipeline, chapter, base, output_dir=output_dir, voice=voice,
                               resume=resume, stop_event=stop_event)

    # Played aloud, chapters never overlap.
    async with contextlib.aclosing(
        in_order(runs(), ahead=0 if pipeline.config.play else ahead)
    ) as events:
        async for pair in events:
            yield pair


async def _chapter_run(
    pipeline: StreamingPipeline, chapter: Chapter, base: Path, *,
    output_dir: str | Path | None, voice: str | None, resume: bool,
    stop_event: asyncio.Event | None,
) -> AsyncGenerator[tuple[Chapter, ProgressEvent], None]:
    """One chapter's ``(chapter, event)`` pairs: its run, or with ``resume`` the
    earlier run's ``RunCompleted`` when that one finished it."""
    if resume:
        done = await asyncio.to_thread(finished_chapter, base / chapter.run_id, chapter)
        if done is not None:
            yield chapter, done
            return
    events = pipeline.astream_text_to_audio(
        chapter.text,
        voice=voice,
        run_id=chapter.run_id,
        output_dir=output_dir,
        resume=resume,
        stop_event=stop_event,
    )
    async with contextlib.aclosing(events):
        async for event in events:
            yield chapter, event
