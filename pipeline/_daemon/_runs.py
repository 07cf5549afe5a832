"""Runs the daemon is streaming or has streamed: one driver per run, a registry by id.

Each run's pipeline events are pulled by a *producer task* into a bounded
queue the client-facing side (SSE, WebSocket, speech body) drains::

    pipeline events ──producer task──▶ bounded queue ──▶ SSE / WebSocket / HTTP body
                       (metrics, record)   (maxsize)       (one consumer)

The queue is the backpressure: when the client is slow the queue fills, the
producer stops pulling events, and the pipeline waits on it instead of the
daemon buffering without bound. ``stop()`` (``DELETE /v1/runs/{id}``,
WebSocket ``stop``) sets the run's stop event so the pipeline cancels the LLM
request and pending synthesis and still reports ``RunCancelled`` and
``RunCompleted``; a consumer that goes away cancels the producer, which closes
the pipeline's iterator (same cancellation, no events left to send).

Who sets a run's status: the event that ends it (``RunCompleted``: completed,
failed or cancelled), or else the code that ends it early: the consumer's exit
(a client that hung up) or :meth:`ActiveRun.abandon` (a run never consumed).
That code sets the status, drops the active-stream gauge and releases the
run's resources *before* its first ``await``: a client that hung up is seen as
a cancelled scope (anyio, under sse-starlette), where every later ``await``
raises at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from output import MANIFEST_NAME, read_manifest

from .._events import (
    AudioReady,
    ProgressEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    TextDelta,
    event_to_dict,
)
from ._metrics import DaemonMetrics

logger = logging.getLogger("speakstream.daemon")

_EOF: Any = object()


@dataclass
class AudioFile:
    """One segment file of a run (what ``GET /v1/runs/{id}/audio/{index}`` serves)."""

    index: int
    path: Path
    format: str
    duration_s: float


@dataclass
class RunRecord:
    """What the daemon knows about a run.

    Attributes:
        run_id: the run id.
        endpoint: ``"speak"``, ``"stream"``, ``"speech"`` or ``"narration"``.
        status: ``"running"``, ``"completed"``, ``"failed"`` or ``"cancelled"``.
        directory: where the run's files and manifest are (from ``RunStarted``).
        files: the segment files by index.
        merged_path: the merged file, when one was written.
        subtitles_path: the subtitle file (SRT or VTT), when one was written.
        summary: ``event_to_dict(RunCompleted)`` once the run ended.
        error: ``"ErrorType: message"`` of the first failure.
    """

    run_id: str
    endpoint: str
    status: str = "running"
    directory: Path | None = None
    files: dict[int, AudioFile] = field(default_factory=dict)
    merged_path: Path | None = None
    subtitles_path: Path | None = None
    summary: dict[str, Any] | None = None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The record as ``GET /v1/runs/{id}`` returns it (without the manifest)."""
        return {
            "run_id": self.run_id,
            "endpoint": self.endpoint,
            "status": self.status,
            "audio": [
                {"index": f.index, "format": f.format, "duration_s": f.duration_s}
                for f in sorted(self.files.values(), key=lambda f: f.index)
            ],
            "merged": self.merged_path is not None,
            "summary": self.summary,
            "error": self.error,
        }


class ActiveRun:
    """One run being driven: iterate it (once) to get its events in order.

    Args:
        record: the registry's record of this run (updated as events pass).
        events: the pipeline's event iterator (closed when the run stops).
        stop_event: the event the pipeline watches to stop gracefully.
        metrics: where events are counted.
        queue_size: the backpressure bound (events buffered for the consumer).
        on_end: called once when the run's status is set (releases what the
            run holds, e.g. its LLM client lease).
    """

    def __init__(
        self,
        record: RunRecord,
        events: AsyncIterator[ProgressEvent],
        *,
        stop_event: asyncio.Event,
        metrics: DaemonMetrics,
        queue_size: int,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.record = record
        self._on_end = on_end
        self._events = events
        self._stop_event = stop_event
        self._metrics = metrics
        self._queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=queue_size)
        self._producer: asyncio.Task[None] | None = None
        self._cancelled_seen = False
        self._failed_seen = False

    @property
    def run_id(self) -> str:
        return self.record.run_id

    def stop(self) -> None:
        """Ask the run to stop: the LLM request and pending synthesis are cancelled,
        ``RunCancelled`` and ``RunCompleted`` still come through the iterator."""
        self._stop_event.set()

    async def events(self, *, coalesce_s: float = 0.0) -> AsyncGenerator[ProgressEvent, None]:
        """The run's events in order; iterate once. Closing this iterator
        (client gone) cancels the run.

        With ``coalesce_s > 0`` consecutive :class:`TextDelta` events arriving
        within ``coalesce_s`` seconds of the first are merged into one
        ``TextDelta`` (texts concatenated, ``t`` of the last), so a fast LLM
        never costs one client write per token. A non-text event flushes the
        pending text first, so order is kept.

        Raises:
            RuntimeError: iterated a second time.
        """
        if self._producer is not None:
            raise RuntimeError(f"run {self.run_id} is already being consumed")
        endpoint = self.record.endpoint
        self._metrics.active_streams.labels(endpoint).inc()
        self._producer = asyncio.create_task(self._produce(), name=f"daemon-run-{self.run_id}")
        loop = asyncio.get_running_loop()
        pending: list[TextDelta] = []
        deadline = 0.0
        try:
            while True:
                if not self._queue.empty():
                    # Already queued: no timer per event (a timed get of a
                    # non-empty queue returns at once, so this is the same item).
                    item = self._queue.get_nowait()
                elif pending:
                    try:
                        async with asyncio.timeout_at(deadline):
                            item = await self._queue.get()
                    except TimeoutError:
                        yield _merge(pending)
                        pending = []
                        continue
                else:
                    item = await self._queue.get()
                if isinstance(item, TextDelta) and coalesce_s > 0:
                    if not pending:
                        deadline = loop.time() + coalesce_s
                    pending.append(item)
                    continue
                if pending:
                    yield _merge(pending)
                    pending = []
                if item is _EOF:
                    break
                yield item
        finally:
            # No await before the status is set (see the module docstring).
            self._metrics.active_streams.labels(endpoint).dec()
            producer = self._producer
            producer.cancel()  # no-op when it has finished
            if self.record.status == "running":
                self._conclude(None)
            while not producer.done():
                producer.cancel()
                await asyncio.wait({producer}, timeout=5)
            if not producer.cancelled() and producer.exception() is not None:
                raise producer.exception()  # type: ignore[misc]

    def abandon(self) -> None:
        """End a run nobody will consume (its consumer never started, e.g. a
        WebSocket closed right after ``speak``): status ``cancelled``, resources
        released. No-op for a run that is being or was consumed."""
        if self._producer is None:
            # The pipeline's generator never ran: it holds no LLM request, no
            # task, no file; it is simply dropped.
            self._conclude(None)

    async def _produce(self) -> None:
        cancelled = False
        try:
            async for event in self._events:
                self._note(event)
                await self._queue.put(event)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            aclose = getattr(self._events, "aclose", None)
            # ag_running: the generator is mid-step (being closed already); any
            # other error raised while closing is the run's own and propagates.
            if aclose is not None and not getattr(self._events, "ag_running", False):
                await aclose()
            if cancelled:
                # Nobody reads the queue any more: never block on a full one.
                with contextlib.suppress(asyncio.QueueFull):
                    self._queue.put_nowait(_EOF)
            else:
                await self._queue.put(_EOF)

    def _note(self, event: ProgressEvent) -> None:
        record = self.record
        self._metrics.observe(event, endpoint=record.endpoint)
        if isinstance(event, RunStarted):
            record.directory = Path(event.output_dir)
        elif isinstance(event, AudioReady):
            record.files[event.index] = AudioFile(
                event.index, Path(event.path), event.format, event.duration_s
            )
        elif isinstance(event, RunFailed):
            self._failed_seen = True
            if record.error is None:
                record.error = f"{event.error_type}: {event.message}"
        elif isinstance(event, RunCancelled):
            self._cancelled_seen = True
        elif isinstance(event, RunCompleted):
            record.directory = Path(event.output_dir)
            if event.merged_path:
                record.merged_path = Path(event.merged_path)
            if event.subtitles_path:
                record.subtitles_path = Path(event.subtitles_path)
            self._conclude(event)

    def _conclude(self, completed: RunCompleted | None) -> None:
        record = self.record
        if record.status != "running":
            return  # already ended: the status is set once
        if completed is None:
            status = "cancelled"  # the consumer went away before the summary
        elif self._cancelled_seen:
            status = "cancelled"
        elif completed.error is not None or self._failed_seen:
            status = "failed"
        else:
            status = "completed"
        record.status = status
        if completed is not None:
            record.summary = event_to_dict(completed)
            record.error = record.error or completed.error
        self._metrics.run_finished(endpoint=record.endpoint, outcome=status)
        on_end, self._on_end = self._on_end, None
        if on_end is not None:
            on_end()


class RunRegistry:
    """Runs by id: the active ones and, bounded, the finished ones.

    Finished runs are also found on disk after a restart: ``<runs_dir>/<id>/``
    with its manifest.
    """

    def __init__(self, runs_dir: Path, *, keep: int = 1000) -> None:
        self.runs_dir = runs_dir
        self._keep = keep
        self._records: dict[str, RunRecord] = {}
        self._active: dict[str, ActiveRun] = {}

    def add(self, run: ActiveRun) -> None:
        """Register a new run.

        Raises:
            ValueError: the id is already known.
        """
        if run.run_id in self._records or (self.runs_dir / run.run_id).exists():
            raise ValueError(f"run id {run.run_id!r} is already taken")
        self._records[run.run_id] = run.record
        self._active[run.run_id] = run
        while len(self._records) > self._keep:
            oldest = next(iter(self._records))
            if oldest in self._active:
                break
            del self._records[oldest]

    def finished(self, run_id: str) -> None:
        """The run's consumer is done with it."""
        self._active.pop(run_id, None)

    def active(self, run_id: str) -> ActiveRun | None:
        return self._active.get(run_id)

    def get(self, run_id: str) -> RunRecord | None:
        """The record of ``run_id`` (from memory, else rebuilt from its manifest on disk)."""
        record = self._records.get(run_id)
        if record is not None:
            return record
        return self._from_disk(run_id)

    def _from_disk(self, run_id: str) -> RunRecord | None:
        base = self.runs_dir / run_id
        manifests = sorted(base.glob(MANIFEST_NAME)) + sorted(base.glob(f"*/{MANIFEST_NAME}"))
        if not manifests:
            return None
        directory = manifests[0].parent
        record = RunRecord(run_id=run_id, endpoint="unknown", directory=directory)
        for entry in read_manifest(manifests[0]):
            if entry.get("type") == "segment":
                record.files[int(entry["index"])] = AudioFile(
                    int(entry["index"]), directory / str(entry["path"]),
                    str(entry["format"]), float(entry["duration_s"]),
                )
            elif entry.get("type") == "summary":
                record.status = str(entry.get("status", "completed"))
                record.error = entry.get("error")
                merged = entry.get("merged_path")
                if merged:
                    record.merged_path = directory / str(merged)
                subtitles = entry.get("subtitles_path")
                if subtitles:
                    record.subtitles_path = directory / str(subtitles)
                record.summary = entry
        if record.summary is None:
            record.status = "interrupted"
        return record

    def manifest(self, record: RunRecord) -> list[dict[str, Any]]:
        """The manifest records of a run (``[]`` while none is written)."""
        if record.directory is None or not (record.directory / MANIFEST_NAME).exists():
            return []
        return read_manifest(record.directory)


def _merge(deltas: list[TextDelta]) -> TextDelta:
    if len(deltas) == 1:
        return deltas[0]
    last = deltas[-1]
    return TextDelta(
        run_id=last.run_id, t=last.t, audio_files_generated=last.audio_files_generated,
        text="".join(d.text for d in deltas),
    )
