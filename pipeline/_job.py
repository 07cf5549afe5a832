"""Running a narration job: its items in order, one results line each, resumable.

A job (see :mod:`pipeline._jobfile`) writes into one output directory, which
it locks for its whole length (one writer per directory, see
:func:`output.lock_directory`):

* ``<dir>/<item id>/chapter_NN/`` for a document or text item (the chapters
  straight in ``<dir>`` for a job of one document), each chapter a run;
* ``<dir>/<item id>/`` for a prompt item: one run of the LLM's answer;
* ``<dir>/results.jsonl``: one :class:`ItemResult` line per finished item,
  appended and fsynced as each item ends, in item order.

``resume=True`` continues an interrupted job: items whose results line says
``completed`` are not run again (their line is kept), finished chapters are
skipped (see :func:`pipeline._narrate.finished_chapter`) and unfinished ones
keep their finished segments. A prompt item that did not complete is asked
again (an LLM does not answer the same twice); its earlier partial run is
kept beside, renamed ``<item id>.partial`` (``-2``, ``-3``...).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import sys
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from output import (
    DirectoryLock,
    ManifestWriter,
    OutputExistsError,
    lock_directory,
    read_manifest,
    rewrite_manifest,
)

from ._events import ProgressEvent, RunCompleted, RunFailed, RunStarted, TextDelta
from ._jobfile import JobItem
from ._narrate import Chapter, anarrate, iter_chapters
from ._pipeline import StreamingPipeline
from ._spill import SpilledStrings, iter_json_list

#: The results file of a job, inside its output directory.
RESULTS_NAME = "results.jsonl"


@dataclass(frozen=True, kw_only=True)
class ItemResult:
    """What one job item produced: its ``results.jsonl`` line.

    The LLM fields are those a streaming ``llm_chat`` step reports.

    Attributes:
        item: the item's id (``"item_0001"``; ``""`` for a one-document job).
        kind: ``"narrate"`` or ``"prompt"``.
        status: ``"completed"`` (every part ran with no error), ``"failed"``
            or ``"cancelled"``.
        response: the LLM's complete answer (prompt items), ``None`` for
            narrate items (their text is in each chapter's manifest).
        streamed: whether the answer arrived as a stream of deltas.
        chunks: number of text deltas received (0 for narrate items).
        provider: the LLM provider (``"text"`` for narrate items).
        model: the LLM model (``""`` for narrate items).
        audio_files: the written segment files, relative to the job's
            directory, in order (a :class:`~pipeline._spill.SpilledStrings`
            on disk for an item that ran now: it grows with the text).
        duration_s: seconds of audio written for the item.
        chapters: number of runs (chapters; 1 for a prompt).
        errors: ``"ErrorType: message"`` of each failure, in order.
        source: the job line it came from (``{"path": ...}`` etc.).
    """

    item: str
    kind: str
    status: str
    response: str | None = None
    streamed: bool = False
    chunks: int = 0
    provider: str = ""
    model: str = ""
    audio_files: Sequence[str] = field(default_factory=list)
    duration_s: float = 0.0
    chapters: int = 0
    errors: list[str] = field(default_factory=list)
    source: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        """The JSON object of its ``results.jsonl`` line (``audio_files`` read into a list)."""
        return {**self._fields(), "audio_files": list(self.audio_files)}

    def iter_json(self) -> Iterator[str]:
        """Its ``results.jsonl`` line (no newline) in pieces, the same text as
        ``json.dumps(self.to_record(), ensure_ascii=False)``, ``audio_files``
        streamed from disk (never the whole line in memory)."""
        record = self._fields()
        names = list(record)
        cut = names.index("audio_files")
        dump = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode
        yield dump({n: record[n] for n in names[:cut]})[:-1] + ', "audio_files": '
        yield from iter_json_list(self.audio_files)
        yield ", " + dump({n: record[n] for n in names[cut + 1:]})[1:]

    def _fields(self) -> dict[str, Any]:
        """Every field by name, copied as ``dataclasses.asdict`` would (``audio_files`` as is)."""
        return {f.name: getattr(self, f.name) if f.name == "audio_files"
                else copy.deepcopy(getattr(self, f.name)) for f in fields(self)}


@dataclass(frozen=True)
class JobProgress:
    """One run event of a job: ``event`` of ``item`` (``chapter`` is ``None`` for a prompt)."""

    item: JobItem
    chapter: Chapter | None
    event: ProgressEvent


@dataclass(frozen=True)
class ItemDone:
    """An item ended (``skipped``: an earlier job had finished it; nothing ran now)."""

    item: JobItem
    result: ItemResult
    skipped: bool = False


JobEvent = JobProgress | ItemDone

#: Makes (or returns a cached) pipeline for an item: the text pipeline for
#: narrate items, one with the item's LLM for prompt items.
PipelineFor = Callable[[JobItem], Awaitable[StreamingPipeline]]


class ItemTally:
    """Builds an :class:`ItemResult` from an item's events (no audio kept)."""

    def __init__(self, item: JobItem, job_dir: Path) -> None:
        self.item = item
        self.job_dir = job_dir
        self.provider = "text"
        self.model = ""
        self.chunks = 0
        self.runs = 0
        self.response: str | None = None
        self.files = SpilledStrings()  # on disk: an item's file list grows with its text
        self.duration_s = 0.0
        self.errors: list[str] = []
        self.cancelled = False

    def see(self, event: ProgressEvent) -> None:
        if isinstance(event, RunStarted):
            self.provider, self.model = event.llm_provider, event.model
        elif isinstance(event, TextDelta) and self.item.kind == "prompt":
            self.chunks += 1  # an LLM's deltas (a given text arrives as one chunk)
        elif isinstance(event, RunFailed):
            self.errors.append(f"{event.error_type}: {event.message}")
        elif isinstance(event, RunCompleted):
            self.runs += 1
            if self.item.kind == "prompt":
                self.response = event.complete_text
            self.files.extend(_relative(p, self.job_dir) for p in event.audio_files)
            self.duration_s += event.audio_s
            if event.error is not None and event.error.startswith("cancelled"):
                self.cancelled = True
            elif event.error is not None and not self.errors:
                self.errors.append(event.error)

    def result(self) -> ItemResult:
        status = "cancelled" if self.cancelled else ("failed" if self.errors else "completed")
        return ItemResult(
            item=self.item.id, kind=self.item.kind, status=status, response=self.response,
            streamed=self.chunks > 0, chunks=self.chunks, provider=self.provider,
            model=self.model, audio_files=self.files, duration_s=round(self.duration_s, 6),
            chapters=self.runs, errors=self.errors,
            source={k: v for k, v in self.item.to_dict().items() if k != "id"},
        )


def _relative(path: str, base: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(base))
    except ValueError:
        return path


def read_results(job_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The last results line of each item in ``job_dir`` (``{}`` without a results file)."""
    path = Path(job_dir) / RESULTS_NAME
    if not path.is_file():
        return {}
    return {str(r["item"]): r for r in read_manifest(path)}


async def anarrate_job(
    items: Iterable[JobItem],
    *,
    pipeline_for: PipelineFor,
    output_dir: str | Path,
    voice: str | None = None,
    resume: bool = False,
    stop_event: asyncio.Event | None = None,
    lock: DirectoryLock | None = None,
) -> AsyncGenerator[JobEvent, None]:
    """Run a job's items one after the other; yield their events and results.

    Yields :class:`JobProgress` for each run event and :class:`ItemDone` when
    an item ends (its line is in ``results.jsonl`` by then). Setting
    ``stop_event`` stops the current run gracefully (``RunCancelled``, files
    kept) and ends the job after that item. ``lock``: the output directory's
    lock, when the caller took it already (it is released at the end).

    Raises:
        OutputLockedError: another writer holds ``output_dir``.
        OutputExistsError: ``output_dir`` holds an earlier job and ``resume``
            is false.
        ConfigError: a bad job line (when it is reached).
        OSError: a document cannot be read (when it is reached).
    """
    job_dir = await asyncio.to_thread(Path(output_dir).resolve)
    if lock is None:
        lock = await asyncio.to_thread(lock_directory, job_dir)
    with lock:
        results_path = job_dir / RESULTS_NAME
        done: dict[str, dict[str, Any]] = {}
        if resume:
            done = {k: r for k, r in read_results(job_dir).items() if r["status"] == "completed"}
            await asyncio.to_thread(rewrite_manifest, results_path, list(done.values()))
        elif results_path.exists():
            raise OutputExistsError(f"{job_dir} already holds a job", path=results_path)
        results = ManifestWriter(results_path)
        try:
            for item in items:
                earlier = done.get(item.id)
                if earlier is not None:
                    yield ItemDone(item, ItemResult(**earlier), skipped=True)
                    continue
                tally = ItemTally(item, job_dir)
                pipe = await pipeline_for(item)
                async with contextlib.aclosing(
                    _item_events(pipe, item, job_dir, voice, resume, stop_event)
                ) as events:
                    async for chapter, event in events:
                        tally.see(event)
                        yield JobProgress(item, chapter, event)
                result = tally.result()
                await asyncio.to_thread(results.append_pieces, result.iter_json())
                yield ItemDone(item, result)
                if stop_event is not None and stop_event.is_set():
                    break
        finally:
            results.close()


async def _item_events(
    pipe: StreamingPipeline, item: JobItem, job_dir: Path, voice: str | None, resume: bool,
    stop_event: asyncio.Event | None,
) -> AsyncGenerator[tuple[Chapter | None, ProgressEvent], None]:
    if item.prompt is not None:
        run_dir = job_dir / item.id
        if resume and run_dir.exists():
            await asyncio.to_thread(set_aside, run_dir)
        async with contextlib.aclosing(pipe.astream_chat_to_audio(
            item.prompt, system=item.system, voice=voice, run_id=item.id, output_dir=job_dir,
            stop_event=stop_event,
        )) as runs:
            async for event in runs:
                yield None, event
        return
    base = job_dir / item.id if item.id else job_dir
    if item.text is not None:
        source: Any = item.text
        opened: Any = contextlib.nullcontext()
    elif item.path == "-":
        opened = contextlib.nullcontext()
        source = iter_chapters(sys.stdin)
    else:
        assert item.path is not None
        opened = await asyncio.to_thread(open, item.path, encoding="utf-8")
        source = iter_chapters(opened)
    with opened:
        async with contextlib.aclosing(
            anarrate(pipe, source, output_dir=base, voice=voice, resume=resume,
                     stop_event=stop_event)
        ) as runs:
            async for chapter, event in runs:
                yield chapter, event


def set_aside(run_dir: Path) -> None:
    """Rename an unfinished prompt run out of the way (kept, never deleted)."""
    for n in range(1, 1000):
        target = run_dir.with_name(f"{run_dir.name}.partial" + ("" if n == 1 else f"-{n}"))
        if not target.exists():
            run_dir.rename(target)
            return
    raise OutputExistsError(f"no free name to set {run_dir} aside", path=run_dir)
