"""One streaming run: text deltas in, ordered audio files and progress events out.

The stages are asyncio tasks in one ``TaskGroup``, linked by queues, so every
stage overlaps with the others::

    reader ──text_q──▶ cutter ──jobs_q (bounded)──▶ N synthesis workers
    (LLM deltas,        (SentenceBuffer: push,        (segment i may finish
     TextDelta)          poll at next_deadline,        before i-1)
                         flush at the end)                  │ done_q
                                                            ▼
                       Player.enqueue ◀── in-order stage: reorder buffer keyed by
                       (gapless, its own      index; writes the file + manifest
                        worker)               line, emits AudioReady, strictly in order

Backpressure: the event stream holds at most :data:`EVENT_BACKLOG` events
the consumer has not taken yet. When it is full the reader stops taking
deltas from the source, so a slow consumer (a slow SSE or WebSocket client)
slows the LLM stream itself (the HTTP response is no longer read, and TCP
pushes back to the server) instead of growing memory. Only the reader waits:
later stages emit a bounded number of events per segment, and the final
events never wait, so cancellation cannot hang on a full queue.

Nothing polls on a fixed tick: the cutter waits for the next delta *or* the
buffer's ``next_deadline()``, whichever comes first; stages end on sentinels
and joins. Completion waits for every queued segment, its file and (when
playing) its playback.

Failures: an LLM error ends the reader like the end of the stream (the
buffer is flushed, the text received so far is synthesized and saved), then
``RunFailed`` and ``RunCompleted(error=...)`` are emitted. A segment whose
engine (after its own fallback chain) fails gives a ``RunFailed`` with
``segment_index`` and the run goes on. Cancellation (the consumer closes the
event stream, the task is cancelled, or ``stop_event`` is set) cancels the
LLM request (its async iterator is closed, which closes the HTTP response),
pending synthesis and playback; files already written stay, and the manifest
gets its summary line in every case.

A segment that ``clean_for_speech`` turns into nothing (pure markdown, emoji)
keeps its index: it is reported by ``SegmentQueued`` with ``spoken_text=""``,
gets no file and no ``AudioReady``, and is listed in the manifest summary's
``skipped_indices``. Indices are never renumbered, so a segment's index is the
same in events, file names and the manifest.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm import LLMError
from output import OutputError, Player, SegmentWriter
from tts import SynthesizedAudio, TTSEngine, TTSError, WordBoundary

from ._cleanup import clean_for_speech
from ._config import StreamingConfig
from ._events import (
    AudioReady,
    ProgressEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    SegmentQueued,
    TextDelta,
)
from ._finish import finish_outputs
from ._resume import ReusableSegment
from ._segment import Segment
from ._sentence_buffer import SentenceBuffer

logger = logging.getLogger("speakstream.pipeline")

_EOF: Any = object()  # end-of-stream sentinel on every queue

#: Events not yet taken by the consumer before the reader stops taking deltas.
EVENT_BACKLOG = 256


@dataclass(frozen=True)
class RunSpec:
    """What a run reports about itself in ``RunStarted``."""

    llm_provider: str
    model: str
    tts: str


@dataclass(frozen=True)
class _Job:
    segment: Segment
    spoken: str


@dataclass(frozen=True)
class _Outcome:
    job: _Job
    audio: SynthesizedAudio | None = None
    synth_s: float = 0.0
    error: TTSError | None = None
    reused: bool = False

    @property
    def index(self) -> int:
        return self.job.segment.index


class StreamRun:
    """A single-use run. Iterate :meth:`events` once.

    Args:
        run_id: the run's identifier (in every event).
        deltas: the text source (LLM deltas or given text); closed with
            ``aclose()`` when the run stops early if it has one.
        engine: the TTS engine (its own fallback chain included).
        writer: where segment files and the manifest go.
        config: the run's options.
        spec: provider/model/engine names for ``RunStarted``.
        player: plays files in order, or ``None``.
        stop_event: when set, the run stops gracefully and still yields
            ``RunCancelled`` then ``RunCompleted``.
        reuse: segments already done by an earlier, interrupted run (index ->
            :class:`ReusableSegment`, from the manifest): written again from
            their files' bytes instead of being synthesized (``--resume``).
        chapters: ``(title, start_s)`` markers for the merged file.
    """

    def __init__(
        self,
        *,
        run_id: str,
        deltas: AsyncIterable[str],
        engine: TTSEngine,
        writer: SegmentWriter,
        config: StreamingConfig,
        spec: RunSpec,
        voice: str | None = None,
        player: Player | None = None,
        stop_event: asyncio.Event | None = None,
        reuse: Mapping[int, ReusableSegment] | None = None,
    ) -> None:
        self.run_id = run_id
        self._deltas = deltas
        self._engine = engine
        self._writer = writer
        self._config = config
        self._spec = spec
        self._voice = voice if voice is not None else config.voice
        self._player = player
        self._stop_event = stop_event
        self._reuse = dict(reuse or {})
        self._used = False

        self._start = time.monotonic()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._room = asyncio.Event()  # set while the backlog is below EVENT_BACKLOG
        self._room.set()
        self._text_q: asyncio.Queue[Any] = asyncio.Queue()
        self._jobs_q: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * config.workers)
        self._done_q: asyncio.Queue[Any] = asyncio.Queue()
        # Segments between "taken by a worker" and "landed in order": bounded, so
        # a fast engine and a slower writer cannot pile up audio in memory.
        # A worker takes a slot *before* taking a job, and jobs come out in
        # index order, so the lowest unfinished index always holds a slot
        # and the reorder buffer can always make progress (no deadlock).
        self._in_flight = asyncio.Semaphore(2 * config.workers)

        self._text = io.StringIO()  # one growing buffer, not a list of tiny deltas
        self._ttft: float | None = None
        self._ttfa: float | None = None
        self._files: list[str] = []
        self._words: list[tuple[str, float, tuple[WordBoundary, ...]]] = []
        self._audio_s = 0.0
        self._synth_s = 0.0
        self._skipped: list[int] = []
        self._failed: list[int] = []
        self._first_error: str | None = None
        self._source_error: LLMError | None = None
        self._finish_reason: str | None = None  # the LLM stream's, set by _read
        self._segments = 0
        self._playback_off = False

    # -- the consumer side -------------------------------------------------

    async def events(self) -> AsyncGenerator[ProgressEvent, None]:
        """The run's events, in order. Closing this iterator cancels the run.

        Raises:
            RuntimeError: called a second time (runs are single-use).
        """
        if self._used:
            raise RuntimeError(f"run {self.run_id} was already started; runs are single-use")
        self._used = True
        self._start = time.monotonic()
        runner = asyncio.create_task(self._main(), name=f"speakstream-run-{self.run_id}")
        try:
            while True:
                event = await self._events.get()
                if self._events.qsize() < EVENT_BACKLOG:
                    self._room.set()
                if event is _EOF:
                    break
                yield event
        finally:
            if not runner.done():
                runner.cancel()
            await asyncio.wait({runner})
            if not runner.cancelled() and runner.exception() is not None:
                raise runner.exception()  # type: ignore[misc]

    # -- bookkeeping ---------------------------------------------------------

    def _now(self) -> float:
        return time.monotonic() - self._start

    def _emit(self, cls: type[Any], **fields: Any) -> None:
        self._events.put_nowait(
            cls(
                run_id=self.run_id,
                t=self._now(),
                audio_files_generated=len(self._files),
                **fields,
            )
        )
        if self._events.qsize() >= EVENT_BACKLOG:
            self._room.clear()

    def _fail(self, exc: BaseException, *, segment_index: int | None = None) -> None:
        if self._first_error is None:
            self._first_error = f"{type(exc).__name__}: {exc}"
        self._emit(
            RunFailed,
            error_type=type(exc).__name__,
            message=str(exc),
            retryable=bool(getattr(exc, "retryable", False)),
            partial_text=self._text.getvalue(),
            segment_index=segment_index,
        )

    # -- the run -------------------------------------------------------------

    async def _main(self) -> None:
        self._emit(
            RunStarted,
            llm_provider=self._spec.llm_provider,
            model=self._spec.model,
            tts=self._spec.tts,
            output_dir=str(self._writer.directory),
        )
        work = asyncio.create_task(self._work())
        stopper = asyncio.create_task(self._stop_event.wait()) if self._stop_event else None
        cancel_reason: str | None = None
        failure: BaseException | None = None
        try:
            await asyncio.wait({work} | ({stopper} if stopper else set()),
                               return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                cancel_reason = "stopped"
        except asyncio.CancelledError:
            cancel_reason = "closed"
            raise
        finally:
            if stopper is not None:
                stopper.cancel()
            if not work.done():
                work.cancel()
            await asyncio.wait({work})
            if not work.cancelled():
                failure = work.exception()
            try:
                if self._player is not None and (cancel_reason is not None or failure is not None):
                    await self._player.stop()
            finally:
                try:
                    await self._finish(cancel_reason, failure)
                finally:
                    try:
                        # A no-op when _finish closed it; after an unexpected error
                        # the manifest still gets its summary line.
                        await asyncio.shield(self._writer.aclose(
                            {"status": "failed", "error": "the run ended by an unexpected error"}
                        ))
                    finally:
                        # Always end the event stream: an unexpected error then
                        # reaches the consumer (events() re-raises it) instead of
                        # leaving it waiting forever.
                        self._events.put_nowait(_EOF)

    async def _finish(self, cancel_reason: str | None, failure: BaseException | None) -> None:
        if failure is not None:
            # An unexpected failure inside a stage (not an LLM or per-segment
            # TTS error, which are handled where they happen).
            if isinstance(failure, BaseExceptionGroup) and len(failure.exceptions) == 1:
                failure = failure.exceptions[0]
            logger.error("run %s failed", self.run_id, exc_info=failure)
        if self._source_error is not None:
            self._fail(self._source_error)
        if failure is not None:
            self._fail(failure)
        merged: str | None = None
        subtitles: str | None = None
        if cancel_reason is None and self._files:
            try:
                merged, subtitles = await finish_outputs(
                    self._writer.directory, self._files, self._words, self._config
                )
            except (OutputError, OSError, ValueError) as exc:  # segment files stay
                self._fail(exc)
        error = self._first_error
        if cancel_reason is not None:
            self._emit(RunCancelled, reason=cancel_reason)
            error = error or f"cancelled: {cancel_reason}"
        total = self._now()
        rtf = self._synth_s / self._audio_s if self._audio_s > 0 else None
        status = "cancelled" if cancel_reason else ("failed" if self._first_error else "completed")
        summary = {
            "run_id": self.run_id,
            "status": status,
            "complete_text": self._text.getvalue(),
            "segments_total": self._segments,
            "skipped_indices": self._skipped,
            "failed_indices": self._failed,
            "error": error,
            "ttft_s": self._ttft,
            "ttfa_s": self._ttfa,
            "total_s": round(total, 6),
            "rtf": rtf,
            "merged_path": Path(merged).name if merged else None,
            "subtitles_path": Path(subtitles).name if subtitles else None,
            "finish_reason": self._finish_reason,
        }
        try:
            await asyncio.shield(self._writer.aclose(summary))
        except OutputError as exc:
            self._fail(exc)
        self._emit(
            RunCompleted,
            audio_files=list(self._files),
            complete_text=self._text.getvalue(),
            ttft_s=self._ttft,
            ttfa_s=self._ttfa,
            total_s=total,
            audio_s=self._audio_s,
            rtf=rtf,
            output_dir=str(self._writer.directory),
            manifest_path=str(self._writer.manifest_path),
            merged_path=merged,
            subtitles_path=subtitles,
            error=error,
            finish_reason=self._finish_reason,
        )

    async def _work(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._warm_up(), name="speakstream-warm-up")
            tg.create_task(self._read(), name="speakstream-reader")
            tg.create_task(self._cut(), name="speakstream-cutter")
            tg.create_task(self._synthesize(), name="speakstream-synthesis")
            tg.create_task(self._deliver(), name="speakstream-in-order")

    # -- stages --------------------------------------------------------------

    async def _warm_up(self) -> None:
        """Load the engine's model while the LLM works on its first token."""
        try:
            await self._engine.warm_up()
        except TTSError as exc:
            # Not lost: the first synthesis meets the same error and reports it
            # per segment (with the engine's fallback applied).
            logger.info("engine warm-up failed (%s); synthesis will report it", exc)

    async def _read(self) -> None:
        """Deltas -> TextDelta events + text_q. An LLM error ends the stream."""
        source = aiter(self._deltas)
        try:
            async for delta in source:
                if not delta:
                    continue
                await self._room.wait()  # backpressure: see the module docstring
                if self._ttft is None:
                    self._ttft = self._now()
                self._text.write(delta)
                self._emit(TextDelta, text=delta)
                self._text_q.put_nowait(delta)
            # An llm.LLMStream says why the model stopped ("length": cut off).
            self._finish_reason = getattr(source, "finish_reason", None)
        except LLMError as exc:
            self._source_error = exc
        finally:
            aclose = getattr(source, "aclose", None)
            if aclose is not None:
                await aclose()
            self._text_q.put_nowait(_EOF)

    async def _cut(self) -> None:
        """text_q -> SentenceBuffer -> jobs_q; wakes on new text or the buffer deadline."""
        cfg = self._config
        buffer = SentenceBuffer(
            sentence_buffer_size=cfg.sentence_buffer_size,
            min_chunk_length=cfg.min_chunk_length,
            max_buffer_time=cfg.max_buffer_time,
            first_segment_min_length=cfg.first_segment_min_length,
            max_segment_length=cfg.max_segment_length,
            clock=time.monotonic,
        )
        while True:
            deadline = buffer.next_deadline()
            wait = None if deadline is None else deadline - time.monotonic()
            if wait is not None and wait <= 0:
                await self._dispatch(buffer.poll())
                continue
            if not self._text_q.empty():
                # Already queued: no timer armed (the deadline has not passed,
                # so it is the item the timed wait below would return).
                item = self._text_q.get_nowait()
            elif wait is None:
                item = await self._text_q.get()
            else:
                try:
                    async with asyncio.timeout(wait):
                        item = await self._text_q.get()
                except TimeoutError:
                    await self._dispatch(buffer.poll())
                    continue
            # A burst of deltas already queued (one network read often holds
            # several tokens) is pushed as one text: one scan instead of one per
            # delta, and the same segments (the buffer is chunk-invariant).
            texts: list[str] = []
            while item is not _EOF:
                texts.append(item)
                if self._text_q.empty():
                    break
                item = self._text_q.get_nowait()
            if texts:
                await self._dispatch(buffer.push("".join(texts)))
            if item is _EOF:
                await self._dispatch(buffer.flush())
                break
        for _ in range(cfg.workers):
            await self._jobs_q.put(_EOF)

    async def _dispatch(self, segments: list[Segment]) -> None:
        for segment in segments:
            spoken = clean_for_speech(
                segment.text,
                code=self._config.clean_code,
                urls=self._config.clean_urls,
                starts_in_code=segment.starts_in_code,
            ).strip()
            self._segments += 1
            self._emit(
                SegmentQueued,
                index=segment.index,
                text=segment.text,
                spoken_text=spoken,
                start=segment.start,
                end=segment.end,
                reason=segment.reason,
            )
            await self._jobs_q.put(_Job(segment, spoken))

    async def _synthesize(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for n in range(self._config.workers):
                tg.create_task(self._worker(), name=f"speakstream-worker-{n}")
        self._done_q.put_nowait(_EOF)

    async def _worker(self) -> None:
        cfg = self._config
        while True:
            await self._in_flight.acquire()  # released by _deliver once landed
            job = await self._jobs_q.get()
            if job is _EOF:
                self._in_flight.release()
                return
            index = job.segment.index
            if not job.spoken:
                self._done_q.put_nowait(_Outcome(job))
                continue
            reused = self._reuse.get(index)
            if reused is not None and reused.text == job.spoken:
                try:
                    audio = await asyncio.to_thread(reused.load)
                except OSError:
                    logger.info("segment %d: earlier file unreadable, synthesizing anew", index)
                else:
                    self._done_q.put_nowait(_Outcome(job, audio=audio, reused=True))
                    continue
            began = time.monotonic()
            try:
                audio = await self._engine.synthesize(
                    job.spoken, voice=self._voice, rate=cfg.rate, volume=cfg.volume, pitch=cfg.pitch
                )
            except TTSError as exc:
                self._done_q.put_nowait(_Outcome(job, error=exc))
                continue
            self._done_q.put_nowait(_Outcome(job, audio=audio, synth_s=time.monotonic() - began))

    async def _deliver(self) -> None:
        """Reorder buffer: lands outcomes strictly in index order."""
        pending: dict[int, _Outcome] = {}
        next_index = 0
        while True:
            outcome = await self._done_q.get()
            if outcome is _EOF:
                break
            pending[outcome.index] = outcome
            while next_index in pending:
                await self._land(pending.pop(next_index))
                self._in_flight.release()
                next_index += 1
        for index in sorted(pending):  # only if the buffer ever skipped an index
            await self._land(pending.pop(index))
            self._in_flight.release()
        if self._player is not None and not self._playback_off:
            await self._drain_player()

    async def _land(self, outcome: _Outcome) -> None:
        index = outcome.index
        if outcome.error is not None:
            self._failed.append(index)
            self._fail(outcome.error, segment_index=index)
            return
        if outcome.audio is None:
            self._skipped.append(index)
            return
        segment = outcome.job.segment
        extra = {
            "raw_text": segment.text,
            "start": segment.start,
            "end": segment.end,
            "reason": segment.reason,
            "synth_s": round(outcome.synth_s, 6),
            "reused": outcome.reused,
        }
        try:
            written = await self._writer.awrite(
                index, outcome.audio, text=outcome.job.spoken, extra=extra
            )
        except OutputError as exc:
            self._failed.append(index)
            self._fail(exc, segment_index=index)
            return
        if self._ttfa is None:
            self._ttfa = self._now()
        self._files.append(str(written.path))
        if self._config.subtitles:  # word timings are kept only when they are used
            self._words.append((written.text, written.duration_s, written.words))
        self._audio_s += written.duration_s
        self._synth_s += outcome.synth_s
        self._emit(
            AudioReady,
            index=index,
            path=str(written.path),
            format=written.format,
            duration_s=written.duration_s,
            engine=written.engine,
            voice=written.voice,
            synth_s=outcome.synth_s,
            text=written.text,
        )
        if self._player is not None and not self._playback_off:
            try:
                self._player.enqueue(written.path)
            except (OutputError, OSError) as exc:
                self._playback_off = True
                self._fail(exc)

    async def _drain_player(self) -> None:
        """Wait until everything enqueued was heard; a playback failure is said once."""
        assert self._player is not None
        try:
            await self._player.drain()
        except OutputError as exc:
            self._playback_off = True
            self._fail(exc)
