"""Running a narration job: its items in order, one results line each, resumable.

A job (see :mod:`pipeline._jobfile`) writes into one output directory, which
it locks for its whole length (one writer per directory, see
:func:`output.lock_directory`):

* ``<dir>/<item id>/chapter_NN/`` for a document or text item (the chapters
  straight in ``<dir>`` for a job of one document), each chapter a run;
* ``<dir>/<item id>/`` for a prompt item: one run of the LLM's answer;
* ``<dir>/results.jsonl``: one :class:`ItemResult` line per finished item,
  appended and fsynced as each item ends, in item order.

A bad item fails only itself: a missing or unreadable document, a file that
is not UTF-8, an empty text, an unknown LLM provider or bad setting of one
prompt, an LLM error. Its results line has ``status: "failed"`` and the
error in ``errors`` (with whatever it narrated before the failure); the job
goes on with the next item. :func:`arun_item` is the one implementation of
an item's run (the CLI's jobs and the daemon's narration jobs use it).

``resume=True`` continues an interrupted job: an item whose results line
says ``completed`` *and* whose ``digest`` (see :func:`item_digest`: its
text, prompt or document bytes, and the settings that shape its audio) is
unchanged is not run again (its line is kept); a changed item is run again.
Finished chapters are skipped (see
:func:`pipeline._narrate.finished_chapter`) and unfinished ones keep their
finished segments. A prompt item that did not complete is asked again (an
LLM does not answer the same twice); its earlier partial run is kept
beside, renamed ``<item id>.partial`` (``-2``, ``-3``...).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hashlib
import json
import re
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
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

from ._ahead import in_order
from ._config import StreamingConfig
from ._errors import SpeakStreamError
from ._events import ProgressEvent, RunCompleted, RunFailed, RunStarted, TextDelta
from ._jobfile import PROMPT_SETTINGS, JobItem
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
        digest: :func:`item_digest` of the item when it ran (``""`` when it
            could not be made, e.g. a missing document); resume skips a
            completed item only when its digest is unchanged.
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
    digest: str = ""

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

    def __init__(self, item: JobItem, job_dir: Path, digest: str = "") -> None:
        self.item = item
        self.job_dir = job_dir
        self.digest = digest
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

    def fail(self, exc: BaseException) -> None:
        """Record an error that ended the item before its runs did."""
        self.errors.append(f"{type(exc).__name__}: {exc}")

    def result(self) -> ItemResult:
        status = "cancelled" if self.cancelled else ("failed" if self.errors else "completed")
        return ItemResult(
            item=self.item.id, kind=self.item.kind, status=status, response=self.response,
            streamed=self.chunks > 0, chunks=self.chunks, provider=self.provider,
            model=self.model, audio_files=self.files, duration_s=round(self.duration_s, 6),
            chapters=self.runs, errors=self.errors,
            source={k: v for k, v in self.item.to_dict().items() if k != "id"},
            digest=self.digest,
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


#: Errors that fail one item (recorded in its results line), not the job.
ITEM_ERRORS: tuple[type[BaseException], ...] = (*SpeakStreamError, OSError, UnicodeDecodeError)


def job_fingerprint(config: StreamingConfig, *, tts: str | None,
                    llm: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The job settings that shape an item's output, for :func:`item_digest`.

    ``config``'s keys except where files go and how fast they are made
    (``output_dir``, ``play``, ``workers``), the TTS engine name, and the
    LLM settings (``llm``, ``model``, ``base_url``) prompt items fall back to.
    """
    shaping = {k: getattr(config, k) for k in StreamingConfig.keys()
               if k not in ("output_dir", "play", "workers")}
    return {**shaping, "tts": tts, **{k: (llm or {}).get(k) for k in PROMPT_SETTINGS}}


def item_digest(item: JobItem, fingerprint: Mapping[str, Any]) -> str:
    """A SHA-256 (hex) of what ``item`` produces: its text or prompt keys, the bytes
    of its document, and ``fingerprint`` (:func:`job_fingerprint`; the LLM keys
    count for prompt items only). Blocking (reads a document): call off the loop.

    Raises:
        OSError: the document cannot be read.
    """
    content = {k: v for k, v in item.to_dict().items() if k != "id"}
    if item.path is not None and item.path != "-":
        hashed = hashlib.sha256()
        with open(item.path, "rb") as stream:
            for piece in iter(lambda: stream.read(1 << 20), b""):
                hashed.update(piece)
        content["path_sha256"] = hashed.hexdigest()
    settings = {k: v for k, v in fingerprint.items()
                if item.kind == "prompt" or k not in PROMPT_SETTINGS}
    blob = json.dumps([content, settings], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


async def arun_item(
    item: JobItem,
    *,
    pipeline_for: PipelineFor,
    job_dir: Path,
    voice: str | None = None,
    resume: bool = False,
    stop_event: asyncio.Event | None = None,
    digest: str = "",
    ahead: int = 0,
) -> AsyncGenerator[JobEvent, None]:
    """Run one item: yields a :class:`JobProgress` per run event, then one :class:`ItemDone`.

    Never raises for a bad item (:data:`ITEM_ERRORS`: a missing document,
    not UTF-8, an unknown LLM, an LLM error...): the error goes into the
    result (``status: "failed"``, ``errors``) with whatever ran before it.
    ``job_dir`` is absolute; see :func:`anarrate_job` for the layout and
    ``ahead`` (here: chapters of the item started before their turn).
    """
    tally = ItemTally(item, job_dir, digest)
    try:
        pipe = await pipeline_for(item)
        async with contextlib.aclosing(
            _item_events(pipe, item, job_dir, voice, resume, stop_event, ahead)
        ) as events:
            async for chapter, event in events:
                tally.see(event)
                yield JobProgress(item, chapter, event)
    except ITEM_ERRORS as exc:
        tally.fail(exc)
    yield ItemDone(item, tally.result())


async def anarrate_job(
    items: Iterable[JobItem],
    *,
    pipeline_for: PipelineFor,
    output_dir: str | Path,
    voice: str | None = None,
    resume: bool = False,
    stop_event: asyncio.Event | None = None,
    lock: DirectoryLock | None = None,
    fingerprint: Mapping[str, Any] | None = None,
    ahead: int = 0,
) -> AsyncGenerator[JobEvent, None]:
    """Run a job's items; yield their events and results, item after item.

    Yields :class:`JobProgress` for each run event and :class:`ItemDone` when
    an item ends (its line is in ``results.jsonl`` by then). A bad item
    fails alone (see :func:`arun_item`): its line says ``failed`` and the
    job goes on. Setting ``stop_event`` stops the current run gracefully
    (``RunCancelled``, files kept) and ends the job after that item.
    ``lock``: the output directory's lock, when the caller took it already
    (it is released at the end). ``fingerprint``: the job's settings
    (:func:`job_fingerprint`), part of each item's digest. ``ahead``: items
    (and chapters within an item) started before their turn, their events
    held until then, so that the cores do not idle between runs (see
    :func:`pipeline._ahead.in_order`); bound the engine's ``parallel`` to keep
    ``workers`` segments at once (:func:`engine_options`). ``0`` (the default)
    runs them strictly one after the other, as a job played aloud must.
    Setting ``stop_event`` also stops the runs started early.

    Raises:
        OutputLockedError: another writer holds ``output_dir``.
        OutputExistsError: ``output_dir`` holds an earlier job and ``resume``
            is false.
        ConfigError: a bad job line (when it is reached).
        OSError: a job file cannot be read (when it is reached).
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
        redone = False

        async def streams() -> AsyncIterator[AsyncGenerator[JobEvent, None]]:
            nonlocal redone
            for item in items:  # a bad job line raises at its turn (in_order)
                if stop_event is not None and stop_event.is_set():
                    return  # the items left are for a resume
                try:
                    digest = await asyncio.to_thread(item_digest, item, fingerprint or {})
                except OSError:
                    digest = ""  # the run meets the same error and records it
                earlier = done.get(item.id)
                if is_unchanged(earlier, digest):
                    assert earlier is not None
                    yield _skipped(item, earlier)
                    continue
                redone = redone or earlier is not None
                changed = is_changed(earlier, digest)
                if changed:  # its text or settings changed: its old audio must not stand
                    await asyncio.to_thread(set_aside_item, job_dir, item)
                yield arun_item(
                    item, pipeline_for=pipeline_for, job_dir=job_dir, voice=voice,
                    resume=resume and not changed, stop_event=stop_event, digest=digest,
                    ahead=ahead,
                )

        try:
            # After a stop no item starts; those started end (stopped too) with their lines.
            async with contextlib.aclosing(in_order(streams(), ahead=ahead)) as events:
                async for event in events:
                    if isinstance(event, ItemDone) and not event.skipped:
                        await asyncio.to_thread(results.append_pieces, event.result.iter_json())
                    yield event
        finally:
            results.close()
            if redone:  # one line per item again (a changed item's old line goes)
                await asyncio.to_thread(compact_results, job_dir)


async def _skipped(item: JobItem, earlier: dict[str, Any]) -> AsyncGenerator[JobEvent, None]:
    """An item an earlier job completed, as it is now: one skipped ItemDone."""
    yield ItemDone(item, ItemResult(**earlier), skipped=True)


def is_unchanged(earlier: Mapping[str, Any] | None, digest: str) -> bool:
    """Whether an earlier ``completed`` results line stands for the item now:
    same digest (a line without one, from an older version, does not)."""
    return earlier is not None and bool(digest) and earlier.get("digest") == digest


def is_changed(earlier: Mapping[str, Any] | None, digest: str) -> bool:
    """Whether an earlier ``completed`` line is of another version of the item
    (text, document or settings changed): both digests known and different.
    Its files are then set aside (:func:`set_aside_item`) and the item made
    anew, never resumed from audio of another text, voice or format."""
    old = (earlier or {}).get("digest")
    return bool(old) and bool(digest) and old != digest


def set_aside_item(job_dir: Path, item: JobItem) -> None:
    """Rename an item's earlier output out of the way (kept, never deleted): its
    ``<id>/`` directory, or for a job of one document (id ``""``) its
    ``chapter_NN/`` directories."""
    if item.id:
        if (job_dir / item.id).exists():
            set_aside(job_dir / item.id)
        return
    for path in sorted(job_dir.iterdir()):
        if path.is_dir() and re.fullmatch(r"chapter_\d+", path.name):
            set_aside(path)


def compact_results(job_dir: Path) -> None:
    """Rewrite ``results.jsonl`` atomically to the last line of each item, in item order."""
    rewrite_manifest(job_dir / RESULTS_NAME, list(read_results(job_dir).values()))


async def _item_events(
    pipe: StreamingPipeline, item: JobItem, job_dir: Path, voice: str | None, resume: bool,
    stop_event: asyncio.Event | None, ahead: int,
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
                     stop_event=stop_event, ahead=ahead)
        ) as runs:
            async for chapter, event in runs:
                yield chapter, event


def set_aside(run_dir: Path) -> None:
    """Rename an earlier run's directory to ``<name>.partial[-N]`` (kept, never deleted)."""
    for n in range(1, 1000):
        target = run_dir.with_name(f"{run_dir.name}.partial" + ("" if n == 1 else f"-{n}"))
        if not target.exists():
            run_dir.rename(target)
            return
    raise OutputExistsError(f"no free name to set {run_dir} aside", path=run_dir)
