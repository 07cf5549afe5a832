"""Narration jobs: a SQLite store (stdlib ``sqlite3``) and the runner that resumes them.

A job narrates a text chapter by chapter with :func:`pipeline._narrate.anarrate`
(the same narrator as ``speakstream narrate``) into
``<output_dir>/narrations/<job_id>/chapter_NN/``. Every written segment is
recorded in the database as it lands, and the job's status is updated as it
runs, so after a crash or restart the daemon finds the jobs that were
``queued`` or ``running`` and starts them again with ``resume=True``: the
segments already on disk are kept (per each chapter's manifest), only the
missing ones are synthesized.

Schema::

    jobs(id PK, status, text, voice, tts, format, options JSON, created, updated,
         chapters, segments, audio_s, error, attempts)
    files(job_id, chapter, idx, name, format, duration_s, PK(job_id, chapter, idx))

``status``: ``queued`` → ``running`` → ``completed`` | ``failed``
(``cancelled`` on ``DELETE``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .._events import AudioReady, RunCompleted, RunStarted
from .._narrate import anarrate, split_chapters
from .._progress import NarrationProgress, ProgressSnapshot
from ._metrics import DaemonMetrics
from ._source import PipelineSource

logger = logging.getLogger("speakstream.daemon")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, text TEXT NOT NULL, voice TEXT, tts TEXT,
    format TEXT, options TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    chapters INTEGER NOT NULL DEFAULT 0, segments INTEGER NOT NULL DEFAULT 0,
    audio_s REAL NOT NULL DEFAULT 0, error TEXT, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS files (
    job_id TEXT NOT NULL, chapter INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,
    format TEXT NOT NULL, duration_s REAL NOT NULL, PRIMARY KEY (job_id, chapter, idx)
);
"""

UNFINISHED = ("queued", "running")


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


class JobStore:
    """The SQLite database of narration jobs. Thread-safe; call from worker threads
    (``asyncio.to_thread``) so commits never block the event loop."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock, self._db:
            return self._db.execute(sql, args).fetchall()

    def create(self, job_id: str, *, text: str, voice: str | None, tts: str | None,
               format: str | None, options: Mapping[str, Any]) -> None:
        now = time.time()
        self._exec(
            "INSERT INTO jobs (id, status, text, voice, tts, format, options, created, updated)"
            " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
            (job_id, text, voice, tts, format, json.dumps(dict(options)), now, now),
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
                 duration_s: float) -> None:
        self._exec(
            "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
            (job_id, chapter, index, name, format, duration_s),
        )
        self._exec(
            "UPDATE jobs SET segments = (SELECT COUNT(*) FROM files WHERE job_id = ?),"
            " audio_s = (SELECT COALESCE(SUM(duration_s), 0) FROM files WHERE job_id = ?),"
            " updated = ? WHERE id = ?",
            (job_id, job_id, time.time(), job_id),
        )

    def page(self, *, limit: int, offset: int) -> tuple[list[Job], int]:
        """Jobs newest first: ``(up to limit jobs from offset, number of jobs)``."""
        rows = self._exec("SELECT * FROM jobs ORDER BY created DESC, id LIMIT ? OFFSET ?",
                          (limit, offset))
        total = self._exec("SELECT COUNT(*) AS n FROM jobs")[0]["n"]
        return [_job(r) for r in rows], int(total)

    def files(self, job_id: str) -> list[dict[str, Any]]:
        rows = self._exec("SELECT chapter, idx, name, format, duration_s FROM files"
                          " WHERE job_id = ? ORDER BY chapter, idx", (job_id,))
        return [dict(r) for r in rows]


def _job(row: sqlite3.Row) -> Job:
    data = dict(row)
    data["options"] = json.loads(data["options"])
    return Job(**data)


class NarrationJobs:
    """Runs narration jobs as asyncio tasks, recording progress in the store."""

    def __init__(self, store: JobStore, source: PipelineSource, base: Path,
                 metrics: DaemonMetrics) -> None:
        self.store = store
        self.source = source
        self.base = base
        self.metrics = metrics
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._progress: dict[str, NarrationProgress] = {}  # job id -> progress, while running
        self._last: dict[str, ProgressSnapshot] = {}  # job id -> progress when its run ended

    def progress(self, job: Job) -> dict[str, Any]:
        """``job``'s progress (:meth:`ProgressSnapshot.to_dict`); call in the event loop.

        ``phase`` is the running job's phase (``"narrating"``, ``"merging"``,
        ``"finishing"``), else ``"queued"``, ``"done"`` (completed),
        ``"failed"`` or ``"cancelled"``; ``eta_s`` is ``None`` unless running
        and measured (``0.0`` when completed).
        """
        tracker = self._progress.get(job.id)
        snap = tracker.snapshot() if tracker is not None else self._last.get(job.id)
        if snap is None:  # not started in this process (queued, or ended before a restart)
            total = sum(len(c.text) for c in split_chapters(job.text))
            snap = ProgressSnapshot("narrating", "", 0, total, 0, 0, None, None)
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
        directory = self.directory(job.id)
        await asyncio.to_thread(store.update, job.id, status="running",
                                attempts=job.attempts + 1)
        self._gauge()
        errors: list[str] = []
        chapters = 0
        try:
            config = self.source.config(job.options, output_dir=directory, format=job.format)
            pipe = self.source.pipeline(config, tts_name=job.tts, with_llm=False)
            progress = self._progress[job.id] = NarrationProgress(
                split_chapters(job.text), merge=config.merge)
            async for chapter, event in anarrate(pipe, job.text, output_dir=directory,
                                                 voice=job.voice, resume=resume):
                self.metrics.observe(event, endpoint="narration")
                progress.observe(chapter, event)
                if isinstance(event, RunStarted):
                    chapters += 1
                    await asyncio.to_thread(store.update, job.id, chapters=chapters)
                elif isinstance(event, AudioReady):
                    await asyncio.to_thread(
                        store.add_file, job.id, chapter.number, event.index,
                        f"{chapter.run_id}/{Path(event.path).name}", event.format,
                        event.duration_s,
                    )
                elif isinstance(event, RunCompleted) and event.error:
                    errors.append(f"{chapter.run_id}: {event.error}")
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

    def _ended(self, job_id: str) -> None:
        progress = self._progress.pop(job_id, None)
        if progress is not None:
            self._last[job_id] = progress.snapshot()

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
        await asyncio.to_thread(self.store.close)
