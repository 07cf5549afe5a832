"""Batch narration of a text or markdown document (no LLM), chapter by chapter.

Each chapter is one run of :meth:`StreamingPipeline.astream_text_to_audio`
into ``<output_dir>/chapter_NN/`` (segment files, ``manifest.jsonl`` and,
with ``merge``, the chapter's merged file): the same machinery as a chat
answer, so segmentation, cleanup, parallel synthesis and ordering are shared.

Resuming (``resume=True``) re-runs every chapter with ``resume``: segments a
previous, interrupted job already wrote (per its manifest) are kept, never
synthesized again nor duplicated, and only the missing ones are made. The
given text is cut the same way every time (one chunk, then flush), so the
segment indices match between the runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from pathlib import Path

from ._events import ProgressEvent
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


def split_chapters(text: str) -> list[Chapter]:
    """Cut ``text`` into chapters at markdown headings and ``CHAPTER ...`` lines.

    Text before the first heading becomes chapter 0 ("Preamble") when it holds
    more than whitespace; a document without headings is one chapter 1
    ("Text"). Concatenating the chapters' ``text`` gives back ``text`` minus
    leading whitespace-only preamble.
    """
    matches = list(_HEADING.finditer(text))
    if not matches:
        return [Chapter(1, "Text", text)] if text.strip() else []
    chapters: list[Chapter] = []
    preamble = text[: matches[0].start()]
    if preamble.strip():
        chapters.append(Chapter(0, "Preamble", preamble))
    for n, match in enumerate(matches):
        end = matches[n + 1].start() if n + 1 < len(matches) else len(text)
        title = (match.group("md") or match.group("ch") or "").strip()
        chapters.append(Chapter(n + 1, title, text[match.start() : end]))
    return chapters


async def anarrate(
    pipeline: StreamingPipeline,
    text: str,
    *,
    output_dir: str | Path | None = None,
    voice: str | None = None,
    resume: bool = False,
) -> AsyncGenerator[tuple[Chapter, ProgressEvent], None]:
    """Narrate ``text`` chapter by chapter; yields ``(chapter, event)`` pairs.

    Chapter ``c`` is written to ``<output_dir>/<c.run_id>/``; each chapter's
    event stream is a complete run (``RunStarted`` ... ``RunCompleted``).
    Closing this iterator stops the current chapter (files written so far
    stay, which is what ``resume`` continues from).

    Raises:
        ValueError: ``text`` holds nothing to say.
        OutputExistsError: a chapter directory holds an earlier job and
            ``resume`` is false.
    """
    chapters = split_chapters(text)
    if not chapters:
        raise ValueError("nothing to narrate: the text is empty")
    for chapter in chapters:
        events = pipeline.astream_text_to_audio(
            chapter.text,
            voice=voice,
            run_id=chapter.run_id,
            output_dir=output_dir,
            resume=resume,
        )
        try:
            async for event in events:
                yield chapter, event
        finally:
            await events.aclose()
