"""Runs the daemon is streaming or has streamed: one driver per run, a registry by id.

Each run has one *producer task* that pulls the pipeline's events, updates the
run's record, metrics and health, and appends the client messages to the
run's :class:`~._eventlog.EventLog`; clients *subscribe* to the log::

    pipeline events ──producer task──▶ EventLog (numbered) ──▶ SSE / WebSocket clients
                       (record, metrics,                     (each at its own cursor;
                        health)                               reconnect = read from N)

The run does not depend on its clients: one that drops does not lose the
answer (it reconnects and reads on from its last id), a slow one only delays
itself. A run nobody follows any more is stopped after
``reconnect_grace_s`` (settings): long enough to reconnect, bounded so an
abandoned run does not go on forever. ``stop()`` (``DELETE /v1/runs/{id}``,
WebSocket ``stop``) sets the run's stop event so the pipeline cancels the LLM
request and pending synthesis and still reports ``RunCancelled`` and
``RunCompleted``; ``pause()``/``resume()`` drive its
:class:`~pipeline.PauseControl`.

Who sets a run's status: the event that ends it (``RunCompleted``: completed,
failed or cancelled), or else the producer's end (cancelled: the daemon shut
down, a speech client hung up) or :meth:`ActiveRun.abandon` (a run never
started).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
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
from .._pause import PauseControl
from ._eventlog import EventLog
from ._messages import client_message
from ._metrics import DaemonMetrics

logger = logging.getLogger("speakstream.daemon")

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
        log: the run's numbered client messages (``None`` for a run read
            back from disk); kept exactly as long as this record.
        health: the run's stream health (``None`` for a run read from disk).
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
    log: EventLog | None = None
    health: RunHealth | None = None

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
            "last_event_id": self.log.last_seq if self.log is not None else None,
            "health": self.health.to_json(self.log) if self.health is not None else None,
        }


@dataclass
class RunHealth:
    """How one run's stream is doing (``health`` of ``GET /v1/runs/{id}``).

    Attributes:
        started: ``time.monotonic()`` at the run's start.
        tokens: LLM text deltas received (the LLM's chunks; about one token each).
        chars: characters received.
        chunk_min / chunk_max: smallest and largest delta (characters).
        first_token / last_token: ``time.monotonic()`` of the first and last delta.
        slow_reader_events: times a client fell :data:`SLOW_LAG` or more
            messages behind the live edge (it is then reading from the log).
        errors: ``RunFailed`` counts by error type.
        pause: the run's pause control (its ``holds``: LLM stream held).
        subscribers: cursors (last id read) of the clients following the run.
    """

    started: float = field(default_factory=time.monotonic)
    tokens: int = 0
    chars: int = 0
    chunk_min: int | None = None
    chunk_max: int = 0
    first_token: float | None = None
    last_token: float | None = None
    slow_reader_events: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    pause: PauseControl | None = None
    subscribers: list[Subscription] = field(default_factory=list)
    ended: float | None = None

    def token(self, text: str) -> None:
        now = time.monotonic()
        n = len(text)
        self.tokens += 1
        self.chars += n
        self.chunk_min = n if self.chunk_min is None else min(self.chunk_min, n)
        self.chunk_max = max(self.chunk_max, n)
        if self.first_token is None:
            self.first_token = now
        self.last_token = now

    def to_json(self, log: EventLog | None) -> dict[str, Any]:
        """JSON of the health: rates per second, sizes in characters, ages in seconds."""
        now = self.ended if self.ended is not None else time.monotonic()
        streaming_s = (self.last_token - self.first_token
                       if self.first_token is not None and self.last_token is not None else 0.0)
        last_id = log.last_seq if log is not None else 0
        return {
            "tokens": self.tokens,
            "tokens_per_s": round((self.tokens - 1) / streaming_s, 3)
            if streaming_s > 0 else None,
            "chunk_chars": {
                "min": self.chunk_min, "max": self.chunk_max,
                "mean": round(self.chars / self.tokens, 3) if self.tokens else None,
            },
            "since_last_token_s": round(now - self.last_token, 6)
            if self.last_token is not None else None,
            "paused": bool(self.pause is not None and self.pause.paused),
            "backpressure_events": {
                "llm_holds": self.pause.holds if self.pause is not None else 0,
                "slow_readers": self.slow_reader_events,
            },
            "queue_depths": {
                "log_events": len(log) if log is not None else 0,
                "log_bytes": log.bytes if log is not None else 0,
                "clients": [last_id - s.cursor for s in self.subscribers],
            },
            "errors": dict(self.errors),
        }


#: A client this many messages behind the newest counts as a slow reader.
SLOW_LAG = 64


class Subscription:
    """One client following a run's log (see :meth:`ActiveRun.follow`).

    Attributes:
        cursor: id of the last message it was handed.
        transport: ``"sse"`` or ``"websocket"``.
    """

    def __init__(self, cursor: int, transport: str) -> None:
        self.cursor = cursor
        self.transport = transport
        self.lagging = False


class ActiveRun:
    """One run being driven; clients follow its event log.

    Args:
        record: the registry's record of this run (updated as events pass).
        events: the pipeline's event iterator (closed when the run stops).
        stop_event: the event the pipeline watches to stop gracefully.
        metrics: where events are counted.
        log_bytes: bound of the run's event log (bytes).
        coalesce_s: text deltas within this window become one ``token`` message.
        grace_s: a run nobody follows is stopped after this many seconds
            (0: at once).
        pause: the run's pause control (``None``: it cannot be paused).
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
        log_bytes: int = 1 << 20,
        coalesce_s: float = 0.0,
        grace_s: float = 30.0,
        pause: PauseControl | None = None,
        on_end: Callable[[], None] | None = None,
    ) -> None:
        self.record = record
        self.log = record.log = EventLog(max_bytes=log_bytes, coalesce_s=coalesce_s)
        self.health = record.health = RunHealth(pause=pause)
        self._on_end = on_end
        self._events = events
        self._stop_event = stop_event
        self._metrics = metrics
        self._grace_s = grace_s
        self._grace: asyncio.TimerHandle | None = None
        self._pause = pause
        self._producer: asyncio.Task[None] | None = None
        self._cancelled_seen = False
        self._failed_seen = False
        self.failure: BaseException | None = None  # a bug inside the run
        self._tokens_counted = self._chars_counted = 0  # already given to Prometheus
        #: Bytes of a segment by index while held in memory (the WebSocket's sink).
        self.audio_source: Callable[[int], bytes | None] | None = None

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def running(self) -> bool:
        return self.record.status == "running"

    def start(self) -> None:
        """Start pulling the pipeline's events (no-op once started)."""
        if self._producer is None:
            self._metrics.active_streams.labels(self.record.endpoint).inc()
            self._producer = asyncio.create_task(self._produce(),
                                                 name=f"daemon-run-{self.run_id}")

    def stop(self) -> None:
        """Ask the run to stop: the LLM request and pending synthesis are cancelled,
        ``cancelled`` and ``done`` are still logged."""
        self._stop_event.set()
        if self._pause is not None and self._pause.paused:
            self._pause.resume()  # a paused run must reach its end to stop
            self._metrics.paused_runs.dec()

    def pause(self) -> bool:
        """Pause at the next segment boundary; ``False`` if it cannot be paused."""
        if self._pause is None or not self.running:
            return False
        if not self._pause.paused:
            self._pause.pause()
            self._metrics.paused_runs.inc()
            self.log.append("paused", {"run_id": self.run_id})
        return True

    def resume(self) -> bool:
        """Go on after :meth:`pause`; ``False`` if the run cannot be paused."""
        if self._pause is None or not self.running:
            return False
        if self._pause.paused:
            self._pause.resume()
            self._metrics.paused_runs.dec()
            self.log.append("resumed", {"run_id": self.run_id})
        return True

    @contextlib.contextmanager
    def follow(self, after: int, transport: str) -> Iterator[Subscription]:
        """Register a client reading the log after id ``after`` (starts the run).

        While nobody follows a running run, it is stopped after ``grace_s``.
        """
        sub = Subscription(after, transport)
        self.health.subscribers.append(sub)
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        self.start()
        try:
            yield sub
        finally:
            # No await here: a client that hung up is a cancelled scope.
            self.health.subscribers.remove(sub)
            if not self.health.subscribers and self.running:
                if self._grace_s <= 0:
                    self.stop()
                else:
                    self._grace = asyncio.get_running_loop().call_later(
                        self._grace_s, self._unfollowed)

    def batch_read(self, sub: Subscription) -> list[Any]:
        """The next messages for ``sub`` (moves its cursor; counts slow readers).

        Raises:
            EventsExpired: its next messages were dropped from the log.
        """
        batch = self.log.read(sub.cursor)
        if batch:
            sub.cursor = batch[-1].seq
            lagging = self.log.last_seq - sub.cursor >= SLOW_LAG
            if lagging and not sub.lagging:
                self.health.slow_reader_events += 1
                self._metrics.slow_readers.labels(self.record.endpoint).inc()
            sub.lagging = lagging
        return batch

    def _unfollowed(self) -> None:
        self._grace = None
        if not self.health.subscribers and self.running:
            logger.info("run %s: no client for %ss, stopping it", self.run_id, self._grace_s)
            self.stop()

    async def wait(self) -> None:
        """Drive the run to its end (for routes that read no events, e.g. speech).
        Cancelling the caller cancels the run.

        Raises:
            Exception: a bug inside the run.
        """
        self.start()
        producer = self._producer
        assert producer is not None
        try:
            await asyncio.shield(producer)
        except asyncio.CancelledError:
            await self.aclose()
            raise
        if self.failure is not None:
            raise self.failure

    async def aclose(self) -> None:
        """Cancel the run now (no ``done`` message) and wait for it to end."""
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        producer = self._producer
        if producer is None:
            self.abandon()
            return
        while not producer.done():
            producer.cancel()
            await asyncio.wait({producer}, timeout=5)

    def abandon(self) -> None:
        """End a run nobody will follow (never started, e.g. a WebSocket closed
        right after ``speak``): status ``cancelled``, resources released. No-op
        for a run that started."""
        if self._producer is None:
            # The pipeline's generator never ran: it holds no LLM request, no
            # task, no file; it is simply dropped.
            self._conclude(None)

    async def _produce(self) -> None:
        endpoint = self.record.endpoint
        try:
            log, health = self.log, self.health
            async for event in self._events:
                if isinstance(event, TextDelta):  # the per-token path: kept lean
                    health.token(event.text)
                    if log.extend_token(event.text, event.t):
                        continue
                else:
                    self._count_tokens()  # Prometheus gets token counts in batches
                    self._note(event)
                kind, data = client_message(event)
                log.append(kind, data,
                           index=event.index if isinstance(event, AudioReady) else None)
        except Exception as exc:  # a bug in the run: logged, clients see the stream end
            logger.error("run %s failed unexpectedly", self.run_id, exc_info=exc)
            self.failure = exc
        finally:
            self._count_tokens()
            self._metrics.active_streams.labels(endpoint).dec()
            if self._pause is not None and self._pause.paused:
                self._metrics.paused_runs.dec()
            self.health.ended = time.monotonic()
            if self.running:
                self._conclude(None)  # ended without its summary: cancelled
            self.log.close()
            aclose = getattr(self._events, "aclose", None)
            # ag_running: the generator is mid-step (being closed already); any
            # other error raised while closing is the run's own and propagates.
            if aclose is not None and not getattr(self._events, "ag_running", False):
                await aclose()

    def _count_tokens(self) -> None:
        health, endpoint = self.health, self.record.endpoint
        if health.tokens > self._tokens_counted:
            self._metrics.tokens.labels(endpoint).inc(health.tokens - self._tokens_counted)
            self._metrics.chars.labels(endpoint).inc(health.chars - self._chars_counted)
            self._tokens_counted, self._chars_counted = health.tokens, health.chars

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
            if event.segment_index is not None:  # an announced file taken back goes too
                record.files.pop(event.segment_index, None)
            self._failed_seen = True
            errors = self.health.errors
            errors[event.error_type] = errors.get(event.error_type, 0) + 1
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


#: Bytes of event logs the registry keeps in all (finished runs beyond it are
#: forgotten oldest first; their records are still read back from disk).
LOG_BUDGET_BYTES = 64 << 20


class RunRegistry:
    """Runs by id: the active ones and, bounded, the finished ones.

    A finished run is kept in memory (record and event log, so clients can
    still replay it) until more than ``keep`` runs are kept or their logs hold
    more than :data:`LOG_BUDGET_BYTES`; the oldest finished run goes first.
    Finished runs are also found on disk after that (and after a restart):
    ``<runs_dir>/<id>/`` with its manifest, without an event log.
    """

    def __init__(self, runs_dir: Path, *, keep: int = 1000,
                 log_budget: int = LOG_BUDGET_BYTES) -> None:
        self.runs_dir = runs_dir
        self._keep = keep
        self._log_budget = log_budget
        self._runs: dict[str, ActiveRun] = {}

    def add(self, run: ActiveRun) -> None:
        """Register a new run (and forget the oldest finished ones past the bounds).

        Raises:
            ValueError: the id is already known.
        """
        if run.run_id in self._runs or (self.runs_dir / run.run_id).exists():
            raise ValueError(f"run id {run.run_id!r} is already taken")
        self._runs[run.run_id] = run
        while len(self._runs) > self._keep or (
            len(self._runs) > 1 and sum(r.log.bytes for r in self._runs.values())
            > self._log_budget
        ):
            oldest = next((i for i, r in self._runs.items() if not r.running), None)
            if oldest is None:
                break
            del self._runs[oldest]

    def active(self, run_id: str) -> ActiveRun | None:
        """The run ``run_id`` while it is kept in memory (running or finished)."""
        return self._runs.get(run_id)

    async def aclose(self) -> None:
        """Cancel every run still going (the daemon is shutting down)."""
        for run in list(self._runs.values()):
            await run.aclose()

    def get(self, run_id: str) -> RunRecord | None:
        """The record of ``run_id`` (from memory, else rebuilt from its manifest on disk)."""
        run = self._runs.get(run_id)
        if run is not None:
            return run.record
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
