"""Narration jobs: a SQLite store (stdlib ``sqlite3``) and the runner that resumes them.

A job is a text (``POST /v1/narrations {"text": ...}``) or a list of job
items (``{"items": [...]}``, the same items as a ``speakstream narrate`` job
file, see :mod:`pipeline._jobfile`). It runs through the CLI's job code
(:func:`pipeline._job.anarrate_job`: one implementation of an item's run,
``results.jsonl``, resume by item digest) into
``<output_dir>/narrations/<job_id>/``: a text's chapters straight in there
(``chapter_NN/``), items in ``item_NNNN/`` (see :mod:`pipeline._job`).
Every written segment is recorded in the database as it lands, every item's
result as it ends, and the job's status as it runs, so after a crash or
restart the daemon finds the jobs that were ``queued`` or ``running`` and
starts them again with ``resume=True``: finished items and segments are
kept, only the missing ones are made. With the ``ray_address`` setting the
job runs on a Ray cluster instead (:func:`pipeline._ray.run_job_on_ray`).

Schema (version 1, ``PRAGMA user_version``; a version-0 database, from
before items, is migrated when opened)::

    jobs(id PK, status, text, voice, tts, format, options JSON, created, updated,
         chapters, segments, audio_s, error, attempts, chars_total, items)
    files(job_id, item, chapter, idx, name, format, duration_s,
          PK(job_id, item, chapter, idx))
    items(job_id, idx, item, source JSON, status, result JSON, PK(job_id, idx))

``text`` is ``""`` for a job of items; ``items`` counts them (0 for a
text, whose one item has the id ``""``). ``chars_total`` is the characters
the progress counts (the chapters' text; prompts' answers are not known
before), stored once. ``status``: ``queued`` → ``running`` → ``completed``
| ``failed`` (``cancelled`` on ``DELETE``); a job of items is ``failed``
when any item failed (the others ran; each item's own ``status`` says which).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from output import MANIFEST_NAME, read_manifest

from .._config import StreamingConfig
from .._events import AudioReady, RunFailed, RunStarted
from .._job import ItemDone, ItemResult, JobProgress, anarrate_job, job_fingerprint
from .._job_pipelines import JobPipelines
from .._jobfile import JobItem
from .._narrate import Chapter, iter_chapters
from .._progress import NarrationProgress, ProgressSnapshot
from .._settings import DEFAULTS, Settings, resolve_settings
from ._metrics import DaemonMetrics
from ._source import PipelineSource

logger = logging.getLogger("speakstream.daemon")

SCHEMA_VERSION = 1

_TABLES = {
    "jobs": """CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, text TEXT NOT NULL, voice TEXT, tts TEXT,
    format TEXT, options TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    chapters INTEGER NOT NULL DEFAULT 0, segments INTEGER NOT NULL DEFAULT 0,
    audio_s REAL NOT NULL DEFAULT 0, error TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    chars_total INTEGER, items INTEGER NOT NULL DEFAULT 0)""",
    "files": """CREATE TABLE IF NOT EXISTS files (
    job_id TEXT NOT NULL, item TEXT NOT NULL DEFAULT '', chapter INTEGER NOT NULL,
    idx INTEGER NOT NULL, name TEXT NOT NULL, format TEXT NOT NULL, duration_s REAL NOT NULL,
    PRIMARY KEY (job_id, item, chapter, idx))""",
    "items": """CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL, idx INTEGER NOT NULL, item TEXT NOT NULL, source TEXT NOT NULL,
    status TEXT NOT NULL, result TEXT, PRIMARY KEY (job_id, idx))""",
}

UNFINISHED = ("queued", "running")


def text_chars(text: str) -> int:
    """Characters of ``text`` that narrating it counts (its chapters' text)."""
    return sum(len(c.text) for c in iter_chapters(io.StringIO(text)))


def items_chars(items: Sequence[JobItem]) -> int:
    """Characters of the texts of ``items`` (prompts' answers are not known before)."""
    return sum(text_chars(i.text) for i in items if i.text is not None)


@dataclass(frozen=True)
class Job:
    """One row of ``jobs`` (see the module docstring)."""

    id: str
    status: str
    text: str
    voice: str | None
    tts: str | None
    format: str | None
    options: dict[str, Any]
    created: float
    updated: float
    chapters: int
    segments: int
    audio_s: float
    error: str | None
    attempts: int
    chars_total: int
    items: int


class JobStore:
    """The SQLite database of narration jobs. Thread-safe; call from worker threads
    (``asyncio.to_thread``) so commits never block the event loop.

    Raises (constructor):
        sqlite3.Error: the file is not a database, or its schema is newer.
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._migrate()

    def _migrate(self) -> None:
        """Bring the schema to :data:`SCHEMA_VERSION` in one transaction."""
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise sqlite3.DatabaseError(f"narration database schema {version} is newer than "
                                        f"this daemon's ({SCHEMA_VERSION})")
        if version == SCHEMA_VERSION:
            return
        db.execute("BEGIN IMMEDIATE")
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "jobs" in tables:  # version 0: no item columns, no stored character count
                columns = {r[1] for r in db.execute("PRAGMA table_info(jobs)")}
                if "chars_total" not in columns:
                    db.execute("ALTER TABLE jobs ADD COLUMN chars_total INTEGER")
                if "items" not in columns:
                    db.execute("ALTER TABLE jobs ADD COLUMN items INTEGER NOT NULL DEFAULT 0")
                for row in db.execute("SELECT id, text FROM jobs WHERE chars_total IS NULL")\
                        .fetchall():
                    db.execute("UPDATE jobs SET chars_total = ? WHERE id = ?",
                               (text_chars(row[1]), row[0]))
            if "files" in tables and "item" not in {
                r[1] for r in db.execute("PRAGMA table_info(files)")
            }:
                db.execute("ALTER TABLE files RENAME TO files_v0")
                db.execute(_TABLES["files"])
                db.execute("INSERT INTO files (job_id, item, chapter, idx, name, format, "
                           "duration_s) SELECT job_id, '', chapter, idx, name, format, "
                           "duration_s FROM files_v0")
                db.execute("DROP TABLE files_v0")
            for create in _TABLES.values():
                db.execute(create)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, self._db:
            return self._db.execute(sql, args).fetchall()

    def create(self, job_id: str, *, text: str, voice: str | None, tts: str | None,
               format: str | None, options: Mapping[str, Any],
               items: Sequence[JobItem] = ()) -> None:
        """Add a queued job: ``text``, or ``items`` (then ``text`` is ``""``)."""
        now = time.time()
        chars = items_chars(items) if items else text_chars(text)
        with self._lock, self._db:
            self._db.execute(
                "INSERT INTO jobs (id, status, text, voice, tts, format, options, created,"
                " updated, chars_total, items) VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (job_id, text, voice, tts, format, json.dumps(dict(options)), now, now, chars,
                 len(items)),
            )
            self._db.executemany(
                "INSERT INTO items VALUES (?, ?, ?, ?, 'queued', NULL)",
                [(job_id, n, item.id, json.dumps(item.to_dict())) for n, item in enumerate(items)],
            )

    def get(self, job_id: str) -> Job | None:
        rows = self._exec("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job(rows[0]) if rows else None

    def unfinished(self) -> list[Job]:
        rows = self._exec("SELECT * FROM jobs WHERE status IN ('queued', 'running')"
                          " ORDER BY created")
        return [_job(r) for r in rows]

    def counts(self) -> dict[str, int]:
        rows = self._exec("SELECT status, COUNT(*) AS n FROM jobs GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def update(self, job_id: str, **fields: Any) -> None:
        names = sorted(fields)
        sets = ", ".join(f"{n} = ?" for n in names)
        self._exec(f"UPDATE jobs SET {sets}, updated = ? WHERE id = ?",
                   (*[fields[n] for n in names], time.time(), job_id))

    def add_file(self, job_id: str, chapter: int, index: int, name: str, format: str,
                 duration_s: float, *, item: str = "") -> None:
        """Record one written segment file (``name`` relative to the job's directory)."""
        self._exec(
            "INSERT OR REPLACE INTO files (job_id, item, chapter, idx, name, format, duration_s)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (job_id, item, chapter, index, name, format, duration_s),
        )
        self._count_files(job_id)

    def _count_files(self, job_id: str) -> None:
        self._exec(
            "UPDATE jobs SET segments = (SELECT COUNT(*) FROM files WHERE job_id = ?),"
            " audio_s = (SELECT COALESCE(SUM(duration_s), 0) FROM files WHERE job_id = ?),"
            " updated = ? WHERE id = ?",
            (job_id, job_id, time.time(), job_id),
        )

    def remove_file(self, job_id: str, chapter: int, index: int, *, item: str = "") -> None:
        """Forget one segment file (removed again: its sync failed); no-op if unknown."""
        self._exec("DELETE FROM files WHERE job_id = ? AND item = ? AND chapter = ? AND idx = ?",
                   (job_id, item, chapter, index))
        self._count_files(job_id)

    def job_items(self, job_id: str) -> list[JobItem]:
        """The items of a job of items, in order (``[]`` for a text job)."""
        rows = self._exec("SELECT source FROM items WHERE job_id = ? ORDER BY idx", (job_id,))
        items = []
        for row in rows:
            data = json.loads(row["source"])
            items.append(JobItem.from_dict(data, id=data.pop("id")))
        return items

    def set_item(self, job_id: str, result: ItemResult) -> None:
        """Record an item's result (its ``results.jsonl`` line)."""
        self._exec("UPDATE items SET status = ?, result = ? WHERE job_id = ? AND item = ?",
                   (result.status, json.dumps(result.to_record()), job_id, result.item))

    def item_results(self, job_id: str) -> list[dict[str, Any]]:
        """Each item of the job, in order: its result record once it ended, else
        ``{"item", "kind", "status", "source"}`` (status ``"queued"``)."""
        rows = self._exec("SELECT item, source, status, result FROM items WHERE job_id = ?"
                          " ORDER BY idx", (job_id,))
        out = []
        for row in rows:
            if row["result"] is not None:
                out.append(json.loads(row["result"]))
                continue
            source = {k: v for k, v in json.loads(row["source"]).items() if k != "id"}
            out.append({"item": row["item"], "kind": "prompt" if "prompt" in source else
                        "narrate", "status": row["status"], "source": source})
        return out

    def page(self, *, limit: int, offset: int) -> tuple[list[Job], int]:
        """Jobs newest first: ``(up to limit jobs from offset, number of jobs)``."""
        rows = self._exec("SELECT * FROM jobs ORDER BY created DESC, id LIMIT ? OFFSET ?",
                          (limit, offset))
        total = self._exec("SELECT COUNT(*) AS n FROM jobs")[0]["n"]
        return [_job(r) for r in rows], int(total)

    def files(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._exec("SELECT item, chapter, idx, name, format, duration_s FROM files"
                          " WHERE job_id = ? ORDER BY item, chapter, idx", (job_id,))
        return [dict(r) for r in rows]


def _job(row: sqlite3.Row) -> Job:
    data = dict(row)
    data["options"] = json.loads(data["options"])
    return Job(**data)


def job_settings(source: PipelineSource, config: StreamingConfig, tts: str | None) -> Settings:
    """The settings of a job, as the one resolver makes them: the daemon's LLM
    settings, the job's engine and options (its items' own keys go over these,
    see :func:`pipeline._job_pipelines.prompt_settings`).

    Raises:
        ConfigError: a value that does not apply (e.g. ``base_url`` with ``local``).
    """
    daemon = source.settings
    flags: dict[str, Any] = {"llm": daemon.llm_provider, **dict(daemon.llm_config or {}),
                             "tts": tts or daemon.tts_provider,
                             "ray_address": daemon.ray_address}
    flags.update({key: getattr(config, key) for key in StreamingConfig.keys()})
    # None is "unset" to the resolver; "none" switches off a key whose default is a value.
    flags = {k: "none" if v is None and DEFAULTS[k] is not None else v for k, v in flags.items()}
    return resolve_settings(flags, env={}, files=[])


class NarrationJobs:
    """Runs narration jobs as asyncio tasks, recording progress in the store.

    Args:
        last_kept: how many ended jobs' final progress snapshots are kept in
            memory (oldest dropped first; an older job's progress is rebuilt
            from its row).
    """

    def __init__(self, store: JobStore, source: PipelineSource, base: Path,
                 metrics: DaemonMetrics, *, last_kept: int = 1000) -> None:
        self.store = store
        self.source = source
        self.base = base
        self.metrics = metrics
        self.last_kept = last_kept
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._progress: dict[str, NarrationProgress] = {}  # job id -> progress, while running
        # job id -> progress when its run ended, at most last_kept, oldest first
        self._last: OrderedDict[str, ProgressSnapshot] = OrderedDict()
        self._on_ray = False  # connected to the Ray cluster (disconnected by aclose)

    @property
    def snapshots_kept(self) -> int:
        """Ended jobs whose final progress is held in memory (at most ``last_kept``)."""
        return len(self._last)

    def progress(self, job: Job) -> dict[str, Any]:
        """``job``'s progress (:meth:`ProgressSnapshot.to_dict`); call in the event loop.

        ``phase`` is the running job's phase (``"narrating"``, ``"merging"``,
        ``"finishing"``), else ``"queued"``, ``"done"`` (completed),
        ``"failed"`` or ``"cancelled"``; ``eta_s`` is ``None`` unless running
        and measured (``0.0`` when completed). Reads no text: the character
        count is stored with the job.
        """
        tracker = self._progress.get(job.id)
        snap = tracker.snapshot() if tracker is not None else self._last.get(job.id)
        if snap is None:  # not started in this process (queued, or ended before a restart)
            snap = ProgressSnapshot("narrating", "", 0, job.chars_total, job.segments, 0, None,
                                    None)
        if job.status == "completed":
            snap = replace(snap, phase="done", chars_done=snap.chars_total, files_merging=0,
                           eta_s=0.0)
        elif job.status != "running":
            snap = replace(snap, phase=job.status, files_merging=0, eta_s=None)
        return snap.to_dict()

    def directory(self, job_id: str) -> Path:
        return self.base / job_id

    async def resume_unfinished(self) -> list[str]:
        """Start again every job left ``queued`` or ``running`` (after a restart)."""
        jobs = await asyncio.to_thread(self.store.unfinished)
        for job in jobs:
            self.start(job, resume=True)
        return [job.id for job in jobs]

    def start(self, job: Job, *, resume: bool = False) -> None:
        self._tasks[job.id] = asyncio.create_task(self._run(job, resume=resume),
                                                  name=f"narration-{job.id}")

    def cancel(self, job_id: str) -> bool:
        task = self._tasks.get(job_id)
        if task is None or task.done():
            return False
        task.cancel()
        return True

    async def _run(self, job: Job, *, resume: bool) -> None:
        store = self.store
        await asyncio.to_thread(store.update, job.id, status="running",
                                attempts=job.attempts + 1)
        self._gauge()
        errors: list[str] = []
        try:
            items = await asyncio.to_thread(store.job_items, job.id) if job.items else [
                JobItem(id="", text=job.text)]
            config = self.source.config(job.options, output_dir=self.directory(job.id),
                                        format=job.format)
            progress = self._progress[job.id] = NarrationProgress(
                total_chars=job.chars_total, merge=config.merge)
            run = self._run_on_ray if self.source.settings.ray_address else self._run_here
            errors = await run(job, items, config, progress, resume=resume)
            progress.finish()
        except asyncio.CancelledError:
            self._ended(job.id)
            self._gauge()
            raise  # shutdown (stays "running": resumed at the next start) or DELETE
        except Exception as exc:  # recorded in the job, visible via GET, and logged
            logger.exception("narration %s failed", job.id)
            errors.append(f"{type(exc).__name__}: {exc}")
        self._ended(job.id)
        status = "failed" if errors else "completed"
        await asyncio.to_thread(store.update, job.id, status=status,
                                error="; ".join(errors) or None)
        self.metrics.run_finished(endpoint="narration", outcome=status)
        self._gauge()

    async def _run_here(self, job: Job, items: list[JobItem], config: StreamingConfig,
                        progress: NarrationProgress, *, resume: bool) -> list[str]:
        """Run ``items`` in this process; the errors of the failed items."""
        store, directory = self.store, self.directory(job.id).resolve()
        settings = job_settings(self.source, config, job.tts)
        text_pipe = self.source.pipeline(config, tts_name=job.tts)
        failed: list[ItemResult] = []
        chapters = 0
        async with JobPipelines(text_pipe, settings,
                                llm_client=self.source.injected_llm) as pipelines:
            events = anarrate_job(  # closed on cancel: no run goes on alone
                items, pipeline_for=pipelines.get, output_dir=directory, voice=job.voice,
                resume=resume, fingerprint=job_fingerprint(
                    config, tts=settings.values["tts"], llm=settings.values),
            )
            async with contextlib.aclosing(events):
                async for job_event in events:
                    if isinstance(job_event, ItemDone):
                        if job.items:
                            await asyncio.to_thread(store.set_item, job.id, job_event.result)
                        if job_event.skipped and job_event.item.text is not None:
                            progress.skip(text_chars(job_event.item.text))
                        if job_event.result.status == "failed":
                            failed.append(job_event.result)
                        continue
                    assert isinstance(job_event, JobProgress)
                    item, event = job_event.item, job_event.event
                    chapter = job_event.chapter or Chapter(0, item.id, "")
                    self.metrics.observe(event, endpoint="narration")
                    progress.observe(chapter, event, key=(item.id, chapter.number))
                    if isinstance(event, RunStarted):
                        chapters += 1
                        await asyncio.to_thread(store.update, job.id, chapters=chapters)
                    elif isinstance(event, AudioReady):
                        name = Path(event.path).relative_to(directory).as_posix()
                        await asyncio.to_thread(store.add_file, job.id, chapter.number, event.index,
                                                name, event.format, event.duration_s, item=item.id)
                    elif isinstance(event, RunFailed) and event.segment_index is not None:
                        # an announced file that could not be made durable was removed
                        await asyncio.to_thread(store.remove_file, job.id, chapter.number,
                                                event.segment_index, item=item.id)
        return _errors(failed, len(items) if job.items else 0)

    async def _run_on_ray(self, job: Job, items: list[JobItem], config: StreamingConfig,
                          progress: NarrationProgress, *, resume: bool) -> list[str]:
        """Run ``items`` on the Ray cluster at ``ray_address`` (the driver in a worker
        thread); the errors of the failed items."""
        from .. import _ray  # only with the `ray` extra

        store, directory = self.store, self.directory(job.id).resolve()
        settings = job_settings(self.source, config, job.tts)
        loop = asyncio.get_running_loop()
        chapters = 0

        def on_part(item: JobItem, chapter: Chapter | None, record: dict[str, Any]) -> None:
            nonlocal chapters  # in the driver thread
            chapters += record["chapters"]
            store.update(job.id, chapters=chapters)
            run_dir = directory / item.id if item.id else directory
            run_dir = run_dir / chapter.run_id if chapter is not None else run_dir
            manifest = run_dir / MANIFEST_NAME
            for line in read_manifest(manifest) if manifest.is_file() else ():
                if line.get("type") == "segment":
                    name = (run_dir / str(line["path"])).relative_to(directory).as_posix()
                    store.add_file(job.id, chapter.number if chapter else 0, int(line["index"]),
                                   name, str(line["format"]), float(line["duration_s"]),
                                   item=item.id)
            size = len(chapter.text) if chapter is not None else 0
            loop.call_soon_threadsafe(progress.skip, size)

        stop = threading.Event()

        def drive() -> list[ItemResult]:
            if not self._on_ray:
                _ray.connect(str(settings.values["ray_address"]))
                self._on_ray = True
            return _ray.run_job_on_ray(items, settings=settings, output_dir=directory,
                                       resume=resume, on_part=on_part, stop=stop)

        driver = asyncio.ensure_future(asyncio.to_thread(drive))
        try:
            results = await asyncio.shield(driver)
        except asyncio.CancelledError:  # DELETE or shutdown: start nothing more, let the
            stop.set()  # running chapters end, and leave the directory unlocked
            await asyncio.wait([driver])
            if not driver.cancelled() and driver.exception() is not None:
                logger.warning("narration %s: the Ray driver failed while stopping", job.id,
                               exc_info=driver.exception())
            raise
        if job.items:
            for result in results:
                await asyncio.to_thread(store.set_item, job.id, result)
        failed = [r for r in results if r.status == "failed"]
        return _errors(failed, len(items) if job.items else 0)

    def _ended(self, job_id: str) -> None:
        progress = self._progress.pop(job_id, None)
        if progress is not None:
            self._last[job_id] = progress.snapshot()
            self._last.move_to_end(job_id)
            while len(self._last) > self.last_kept:
                self._last.popitem(last=False)

    def _gauge(self) -> None:
        running = sum(1 for t in self._tasks.values() if not t.done())
        self.metrics.narrations.labels("running").set(running)

    async def aclose(self) -> None:
        """Cancel running jobs (they stay ``running`` in the store and resume next start)."""
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks)
        if self._on_ray:  # a "local" cluster stops with its driver; others stay up
            from .. import _ray

            await asyncio.to_thread(_ray.disconnect)
        await asyncio.to_thread(self.store.close)


def _errors(failed: list[ItemResult], items: int) -> list[str]:
    """The job's error parts: each failed item's errors (named by item in a job of items)."""
    if not items:
        return [e for r in failed for e in r.errors]
    head = [f"{len(failed)} of {items} items failed"] if failed else []
    return head + [f"{r.item}: {e}" for r in failed for e in r.errors or [r.status]]
