"""One streaming run: text deltas in, audio to sinks and progress events out.

A run is reader → cutter → synthesis workers → reorder → sinks, each an
asyncio task of one ``TaskGroup``, linked by queues, so every stage overlaps
with the others::

    reader ──text_q──▶ cutter ──jobs_q (bounded)──▶ N synthesis workers
    (LLM deltas,        (SentenceBuffer: push,        (engine.stream: chunks as the
     TextDelta)          poll at next_deadline,        engine makes them, or, when no
                         flush at the end)             sink takes chunks, synthesize;
                                                       segment i may finish before i-1)
                                                            │ flows_q: one flow per segment
                                                            ▼
        sinks ◀── in-order stage: reorder buffer keyed by index. The lowest
        (files +      unfinished segment's chunks go to the sinks *as they come*
         manifest,    (the player and streaming routes start on the first chunk);
         player,      later segments wait their turn. Then the segment's file is
         merge,       written (AudioReady, strictly in order), the other sinks
         subtitles,   take the whole segment, and the next index streams.
         routes...)

The sinks (:mod:`output._sink` documents the seam, its order and error
policy; :mod:`pipeline._fanout` applies it) get everything in index order;
the file sink is the run's record. What a run counts lives in
:class:`~pipeline._tally.RunTally`.

Backpressure: the event stream holds at most :data:`EVENT_BACKLOG` events
the consumer has not taken yet. When it is full the reader stops taking
deltas from the source, so a slow consumer (a slow SSE or WebSocket client)
slows the LLM stream itself (the HTTP response is no longer read, and TCP
pushes back to the server) instead of growing memory. Only the reader waits:
later stages emit a bounded number of events per segment, and the final
events never wait, so cancellation cannot hang on a full queue. Audio in
flight is bounded too: at most ``2 x workers`` segments are between "taken by
a worker" and "handed to the sinks"; a slow sink (a slow HTTP client of the
speech route) holds synthesis back.

Nothing polls on a fixed tick: the cutter waits for the next delta *or* the
buffer's ``next_deadline()``, whichever comes first; stages end on sentinels
and joins. Completion waits for every queued segment, its file and (when
playing) its playback.

Failures: an LLM error ends the reader like the end of the stream (the
buffer is flushed, the text received so far is synthesized and saved), then
``RunFailed`` and ``RunCompleted(error=...)`` are emitted. A segment that
fails — its engine (after its own retries and fallback chain) raises anything,
a TTS error or a bug alike, its conversion fails, or its file cannot be
written (disk full) — gives a ``RunFailed`` with ``segment_index``, is listed
in ``failed_indices`` (event and manifest summary), and the run goes on with
the other segments. Cancellation (the consumer closes the event stream, the
task is cancelled, or ``stop_event`` is set) cancels the LLM request (its
async iterator is closed, which closes the HTTP response), pending synthesis
and playback; files already written stay, and the manifest gets its summary
line in every case (a full disk included).

A segment that ``clean_for_speech`` (then :func:`tts.sanitize_text`) turns
into nothing (pure markdown, emoji, control characters) keeps its index: it is
reported by ``SegmentQueued`` with ``spoken_text=""``, gets no file and no
``AudioReady``, and is listed in the manifest summary's ``skipped_indices``.
Indices are never renumbered, so a segment's index is the same in events, file
names and the manifest.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Mapping,
    Sequence,
)
from dataclasses import dataclass, replace
from typing import Any

from llm import LLMError
from output import (
    AudioSink,
    FileSink,
    OutputError,
    PcmDecoder,
    RunSummary,
    SegmentInfo,
    WrittenSegment,
    convert,
)
from tts import AudioChunk, SynthesizedAudio, TTSEngine, TTSError, sanitize_text

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
from ._fanout import SinkFanout
from ._pacing import Pacer
from ._pause import PauseControl
from ._resume import ReusableSegment
from ._segment import Segment
from ._sentence_buffer import SentenceBuffer
from ._tally import RunTally

logger = logging.getLogger("speakstream.pipeline")

_EOF: Any = object()  # end-of-stream sentinel on every queue
_TICK: Any = object()  # on text_q: the sentence buffer's deadline has come

#: Events not yet taken by the consumer before the reader stops taking deltas.
EVENT_BACKLOG = 256


@dataclass(frozen=True)
class RunSpec:
    """What a run reports about itself in ``RunStarted``."""

    llm_provider: str
    model: str
    tts: str


@dataclass(frozen=True)
class _Outcome:
    """How a segment's synthesis ended: audio (in the run's format), an error, or nothing."""

    audio: SynthesizedAudio | None = None
    error: BaseException | None = None
    synth_s: float = 0.0
    reused: bool = False


class _Flow:
    """One segment on its way: its chunks as they come, then its outcome."""

    def __init__(self, segment: SegmentInfo) -> None:
        self.segment = segment
        self._items: asyncio.Queue[AudioChunk | _Outcome] = asyncio.Queue()
        self.outcome: _Outcome | None = None

    def put(self, chunk: AudioChunk) -> None:
        self._items.put_nowait(chunk)

    def end(self, outcome: _Outcome) -> None:
        if self.outcome is None:
            self.outcome = outcome
            self._items.put_nowait(outcome)

    async def chunks(self) -> AsyncIterator[AudioChunk]:
        """The chunks until the outcome arrives (then in :attr:`outcome`)."""
        while True:
            item = await self._items.get()
            if isinstance(item, _Outcome):
                return
            yield item


def _decoder_for(chunk: AudioChunk, put: Callable[[AudioChunk], None]) -> PcmDecoder:
    """A decoder turning ``chunk``'s encoded stream into PCM chunks handed to ``put``."""

    def on_pcm(pcm: bytes) -> None:
        put(AudioChunk(pcm, "pcm", chunk.sample_rate, chunk.channels, engine=chunk.engine,
                       voice=chunk.voice))

    return PcmDecoder(chunk.format, sample_rate=chunk.sample_rate, channels=chunk.channels,
                      on_pcm=on_pcm)


class StreamRun:
    """A single-use run. Iterate :meth:`events` once.

    Args:
        run_id: the run's identifier (in every event).
        deltas: the text source (LLM deltas or given text); closed with
            ``aclose()`` when the run stops early if it has one.
        engine: the TTS engine (its own fallback chain included).
        config: the run's options (``format`` is the audio format sinks get).
        spec: provider/model/engine names for ``RunStarted``.
        files: the file sink (segment files + manifest), the run's record; or
            ``None`` for a run that writes no files (then ``AudioReady`` is
            never emitted: sinks get the audio).
        sinks: the other sinks (player, merge, subtitles, streaming routes,
            ...), called in this order; the run calls ``finish`` on each.
        voice: engine voice id (default: ``config.voice``).
        stop_event: when set, the run stops gracefully and still yields
            ``RunCancelled`` then ``RunCompleted``.
        reuse: segments already done by an earlier, interrupted run (index ->
            :class:`ReusableSegment`, from the manifest): written again from
            their files' bytes instead of being synthesized (``--resume``).
        output_dir: reported in ``RunStarted``/``RunCompleted`` when there is
            no file sink (default ``""``).
        pacer: told about text, segments and the first audio, when the text
            comes from an in-process LLM it paces (:mod:`pipeline._pacing`).
        pause: pauses and resumes the run at segment boundaries (see
            :class:`~pipeline._pause.PauseControl`); ``None``: never paused.
    """

    def __init__(
        self,
        *,
        run_id: str,
        deltas: AsyncIterable[str],
        engine: TTSEngine,
        config: StreamingConfig,
        spec: RunSpec,
        files: FileSink | None,
        sinks: Sequence[AudioSink] = (),
        voice: str | None = None,
        stop_event: asyncio.Event | None = None,
        reuse: Mapping[int, ReusableSegment] | None = None,
        output_dir: str = "",
        pacer: Pacer | None = None,
        pause: PauseControl | None = None,
    ) -> None:
        self.run_id = run_id
        self._pacer = pacer if pacer is not None else Pacer()
        self._pause = pause
        if pause is not None:  # paused: the pause holds the LLM (with its limit), not the pacer
            pause.subscribe(self._pacer.set_paused)
        self._deltas = deltas
        self._engine = engine
        self._config = config
        self._spec = spec
        self._voice = voice if voice is not None else config.voice
        self._stop_event = stop_event
        self._reuse = dict(reuse or {})
        self._used = False
        self._fanout = SinkFanout(files, sinks, self._sink_failed)
        self._output_dir = str(files.writer.directory) if files is not None else output_dir
        self._manifest_path = str(files.writer.manifest_path) if files is not None else ""

        self._start = time.monotonic()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._room = asyncio.Event()  # set while the backlog is below EVENT_BACKLOG
        self._room.set()
        self._text_q: asyncio.Queue[Any] = asyncio.Queue()
        self._jobs_q: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * config.workers)
        self._flows_q: asyncio.Queue[Any] = asyncio.Queue()
        # Segments between "taken by a worker" and "handed to the sinks": bounded,
        # so a fast engine and slower sinks cannot pile up audio in memory.
        # A worker takes a slot *before* taking a job, and jobs come out in
        # index order, so the lowest unfinished index always holds a slot
        # and the reorder buffer can always make progress (no deadlock).
        self._in_flight = asyncio.Semaphore(2 * config.workers)

        self._text = io.StringIO()  # one growing buffer, not a list of tiny deltas
        self._tally = RunTally()
        self._source_error: LLMError | None = None
        self._finish_reason: str | None = None  # the LLM stream's, set by _read
        self._total: int | None = None  # segments in all, once the cutter is done
        self._total_told = False

    # -- the consumer side -------------------------------------------------

    async def events(self) -> AsyncGenerator[ProgressEvent, None]:
        """The run's events, in order. Closing this iterator cancels the run.

        Raises:
            RuntimeError: called a second time (runs are single-use).
            Exception: a bug inside the run or one of its sinks, after the
                manifest got its summary line (status ``"failed"``).
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
                audio_files_generated=len(self._tally.files),
                **fields,
            )
        )
        if self._events.qsize() >= EVENT_BACKLOG:
            self._room.clear()

    def _fail(self, exc: BaseException, *, segment_index: int | None = None) -> None:
        """Report ``exc`` as a ``RunFailed`` event (and remember the first failure)."""
        error_type, message = type(exc).__name__, str(exc)
        self._tally.error(error_type, message)
        self._emit(
            RunFailed,
            error_type=error_type,
            message=message,
            retryable=bool(getattr(exc, "retryable", False)),
            partial_text=self._text.getvalue(),
            segment_index=segment_index,
        )

    def _sink_failed(self, exc: BaseException, segment_index: int | None) -> None:
        if segment_index is not None and segment_index not in self._tally.failed:
            self._tally.failed.append(segment_index)
        self._fail(exc, segment_index=segment_index)

    # -- the run -------------------------------------------------------------

    async def _main(self) -> None:
        self._emit(
            RunStarted,
            llm_provider=self._spec.llm_provider,
            model=self._spec.model,
            tts=self._spec.tts,
            output_dir=self._output_dir,
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
                await self._finish(cancel_reason, failure)
            finally:
                try:
                    await self._close_record()
                finally:
                    self._pacer.close()
                    # Always end the event stream: an unexpected error then
                    # reaches the consumer (events() re-raises it) instead of
                    # leaving it waiting forever.
                    self._events.put_nowait(_EOF)

    async def _close_record(self) -> None:
        """After an unexpected error in finishing: the manifest still gets a summary
        line (a no-op when the file sink finished normally)."""
        files = self._fanout.files
        if files is None:
            return
        try:
            await asyncio.shield(files.writer.aclose(
                {"status": "failed", "error": "the run ended by an unexpected error"}
            ))
        except OutputError as exc:  # a full disk: the error being raised matters more
            logger.warning("run %s: the manifest's summary line was not written: %s",
                           self.run_id, exc)

    def _summary(self, cancel_reason: str | None, artifacts: Mapping[str, str]) -> RunSummary:
        tally = self._tally
        error = tally.first_error
        if cancel_reason is not None:
            error = error or f"cancelled: {cancel_reason}"
        status = "cancelled" if cancel_reason else ("failed" if tally.first_error else "completed")
        fields = {
            "run_id": self.run_id,
            "status": status,
            "complete_text": self._text.getvalue(),
            "segments_total": tally.segments_total,
            "skipped_indices": list(tally.skipped),
            "failed_indices": sorted(tally.failed),
            "error": error,
            "ttft_s": tally.ttft_s,
            "ttfa_s": tally.ttfa_s,
            "first_file_s": tally.first_file_s,
            "total_s": round(self._now(), 6),
            "rtf": tally.rtf,
            "merged_path": None,
            "subtitles_path": None,
            "finish_reason": self._finish_reason,
        }
        return RunSummary(status=status, error=error, fields=fields, artifacts=dict(artifacts))

    async def _finish(self, cancel_reason: str | None, failure: BaseException | None) -> None:
        if failure is not None:
            # An unexpected failure inside a stage (not an LLM or per-segment
            # error, which are handled where they happen).
            if isinstance(failure, BaseExceptionGroup) and len(failure.exceptions) == 1:
                failure = failure.exceptions[0]
            logger.error("run %s failed", self.run_id, exc_info=failure)
        if self._source_error is not None:
            self._fail(self._source_error)
        if failure is not None:
            self._fail(failure)
        if cancel_reason is None:
            await self._tell_total()
        artifacts = await self._fanout.finish_sinks(self._summary(cancel_reason, {}))
        if cancel_reason is not None:
            self._emit(RunCancelled, reason=cancel_reason)
        if self._fanout.bug is not None:
            self._fail(self._fanout.bug)
        summary = self._summary(cancel_reason, artifacts)
        await self._fanout.finish_files(summary)
        if self._fanout.bug is not None:
            raise self._fanout.bug
        tally = self._tally
        self._emit(
            RunCompleted,
            audio_files=list(tally.files),
            audio_indices=list(tally.file_indices),
            failed_indices=sorted(tally.failed),
            complete_text=self._text.getvalue(),
            ttft_s=tally.ttft_s,
            ttfa_s=tally.ttfa_s,
            first_file_s=tally.first_file_s,
            total_s=self._now(),
            audio_s=tally.audio_s,
            rtf=tally.rtf,
            output_dir=self._output_dir,
            manifest_path=self._manifest_path,
            merged_path=artifacts.get("merged_path"),
            subtitles_path=artifacts.get("subtitles_path"),
            error=summary.error,
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
                self._tally.text_arrived(self._now())
                self._text.write(delta)
                self._pacer.text_received(len(delta))
                self._emit(TextDelta, text=delta)
                self._text_q.put_nowait(delta)
                if self._pause is not None and not await self._pause.hold():
                    self._finish_reason = "paused"  # held too long: closed, text kept
                    break
            else:
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
        """text_q -> SentenceBuffer -> jobs_q; wakes on new text or the buffer deadline.

        The deadline wakes the cutter through the queue: one timer handle is
        armed per deadline (a ``_TICK`` put on text_q when it fires), not one
        timeout per delta, and it is re-armed only when the deadline moves.
        """
        cfg = self._config
        buffer = SentenceBuffer(
            sentence_buffer_size=cfg.sentence_buffer_size,
            min_chunk_length=cfg.min_chunk_length,
            max_buffer_time=cfg.max_buffer_time,
            first_segment_min_length=cfg.first_segment_min_length,
            max_segment_length=cfg.max_segment_length,
            clock=time.monotonic,
        )
        loop = asyncio.get_running_loop()
        timer: asyncio.TimerHandle | None = None
        armed_for: float | None = None  # the deadline the timer is armed for
        try:
            while True:
                deadline = buffer.next_deadline()
                if deadline is not None and deadline <= time.monotonic():
                    await self._dispatch(buffer.poll())
                    continue
                if deadline != armed_for:
                    if timer is not None:
                        timer.cancel()
                    timer = None if deadline is None else loop.call_later(
                        deadline - time.monotonic(), self._text_q.put_nowait, _TICK)
                    armed_for = deadline
                item = await self._text_q.get()
                # A burst of deltas already queued (one network read often holds
                # several tokens) is pushed as one text: one scan instead of one per
                # delta, and the same segments (the buffer is chunk-invariant).
                texts: list[str] = []
                while item is not _EOF:
                    if item is _TICK:  # spent: arm again (the loop may fire it a bit early)
                        armed_for = None
                    else:
                        texts.append(item)
                    if self._text_q.empty():
                        break
                    item = self._text_q.get_nowait()
                if texts:
                    await self._dispatch(buffer.push("".join(texts)))
                if item is _EOF:
                    await self._dispatch(buffer.flush())
                    break
        finally:
            if timer is not None:
                timer.cancel()
        self._total = self._tally.segments_total
        for _ in range(cfg.workers):
            await self._jobs_q.put(_EOF)

    async def _dispatch(self, segments: list[Segment]) -> None:
        for segment in segments:
            # What the engine will speak: cleaned for speech, then the engines'
            # own sanitising step (idempotent), so the event shows it exactly.
            spoken = sanitize_text(clean_for_speech(
                segment.text,
                code=self._config.clean_code,
                urls=self._config.clean_urls,
                starts_in_code=segment.starts_in_code,
            )).strip()
            self._tally.segments_total += 1
            self._pacer.segment_queued()
            self._emit(
                SegmentQueued,
                index=segment.index,
                text=segment.text,
                spoken_text=spoken,
                start=segment.start,
                end=segment.end,
                reason=segment.reason,
            )
            await self._jobs_q.put(SegmentInfo(
                index=segment.index, text=spoken, raw_text=segment.text, start=segment.start,
                end=segment.end, reason=segment.reason,
            ))

    async def _synthesize(self) -> None:
        async with asyncio.TaskGroup() as tg:
            for n in range(self._config.workers):
                tg.create_task(self._worker(), name=f"speakstream-worker-{n}")
        self._flows_q.put_nowait(_EOF)

    async def _worker(self) -> None:
        while True:
            await self._in_flight.acquire()  # released by _deliver once handed out
            job = await self._jobs_q.get()
            if job is _EOF:
                self._in_flight.release()
                return
            flow = _Flow(job)
            self._flows_q.put_nowait(flow)  # the in-order stage streams it when its turn comes
            if self._pause is not None:
                await self._pause.wait()  # paused: no new synthesis (a segment boundary)
            try:
                flow.end(await self._produce(flow))
            finally:
                flow.end(_Outcome(error=RuntimeError("synthesis was interrupted")))
                self._pacer.segment_ended(job.end - job.start)

    async def _produce(self, flow: _Flow) -> _Outcome:
        """Synthesize one segment into ``flow``; never raises but CancelledError."""
        segment = flow.segment
        if not segment.text:
            return _Outcome()
        chunks_wanted = self._fanout.wants_chunks
        reused = self._reuse.get(segment.index)
        if reused is not None and reused.text == segment.text:
            try:
                audio = await asyncio.to_thread(reused.load)
            except OSError:
                logger.info("segment %d: earlier file unreadable, synthesizing anew", segment.index)
            else:
                return await self._complete(flow, audio, audio, 0.0, streamed=False, reused=True)
        cfg = self._config
        began = time.monotonic()
        decoder: PcmDecoder | None = None
        pieces = 0

        def put(chunk: AudioChunk) -> None:
            nonlocal pieces
            pieces += 1
            flow.put(chunk)

        try:
            if not chunks_wanted:  # files only: the engine's cheapest whole-audio path
                audio = await self._engine.synthesize(
                    segment.text, voice=self._voice, rate=cfg.rate, volume=cfg.volume,
                    pitch=cfg.pitch,
                )
            else:
                stream = self._engine.stream(
                    segment.text, voice=self._voice, rate=cfg.rate, volume=cfg.volume,
                    pitch=cfg.pitch,
                )
                async with contextlib.aclosing(stream):
                    async for chunk in stream:
                        if chunk.format == "pcm":
                            put(chunk)
                            continue
                        if decoder is None:  # an encoded stream (edge-tts MP3): PCM as it comes
                            decoder = _decoder_for(chunk, put)
                            await decoder.start()
                        await decoder.feed(chunk.data)
                if decoder is not None:
                    await decoder.finish()
                audio = stream.audio
        except Exception as exc:  # any engine failure costs one segment only
            if not isinstance(exc, TTSError):
                logger.error("segment %d: the %s engine failed unexpectedly", segment.index,
                             self._engine.name, exc_info=exc)
            return _Outcome(error=exc)
        finally:
            if decoder is not None:
                await decoder.aclose()
        return await self._complete(flow, audio, None, time.monotonic() - began,
                                    streamed=pieces > 0, reused=False)

    async def _complete(
        self, flow: _Flow, audio: SynthesizedAudio, converted: SynthesizedAudio | None,
        synth_s: float, *, streamed: bool, reused: bool,
    ) -> _Outcome:
        """The segment in the run's format; its PCM as one chunk when sinks want
        chunks and none were streamed (an encoded engine stream, a resumed file)."""
        try:
            if converted is None and audio.format == self._config.format:
                converted = convert(audio, audio.format)  # a magic-bytes check only: no thread
            elif converted is None:
                converted = await asyncio.to_thread(convert, audio, self._config.format)
            if self._fanout.wants_chunks and not streamed:
                pcm = await asyncio.to_thread(convert, audio, "pcm")
                flow.put(AudioChunk(pcm.data, "pcm", pcm.sample_rate, pcm.channels,
                                    engine=audio.engine, voice=audio.voice))
        except (OutputError, ValueError) as exc:
            return _Outcome(error=exc)
        return _Outcome(audio=converted, synth_s=synth_s, reused=reused)

    async def _deliver(self) -> None:
        """Reorder buffer: hands segments to the sinks strictly in index order."""
        pending: dict[int, _Flow] = {}
        next_index = 0
        while True:
            flow = await self._flows_q.get()
            if flow is _EOF:
                break
            pending[flow.segment.index] = flow
            while next_index in pending:
                await self._land(pending.pop(next_index))
                self._in_flight.release()
                next_index += 1
        for index in sorted(pending):  # only if the buffer ever skipped an index
            await self._land(pending.pop(index))
            self._in_flight.release()
        await self._tell_total()

    async def _tell_total(self) -> None:
        """Tell the sinks how many segments there are, once it is known."""
        if self._total is not None and not self._total_told:
            self._total_told = True
            await self._fanout.end_of_input(self._total)

    async def _land(self, flow: _Flow) -> None:
        segment = flow.segment
        if self._pause is not None:
            await self._pause.wait()  # paused: nothing more to the sinks (a segment boundary)
        await self._tell_total()  # only ever at a segment boundary
        async for chunk in flow.chunks():
            self._tally.audio_handed_out(self._now())
            self._pacer.audio_out()
            await self._fanout.chunk(segment, chunk)
        outcome = flow.outcome
        assert outcome is not None
        index = segment.index
        if outcome.error is not None:
            self._tally.failed.append(index)
            self._fail(outcome.error, segment_index=index)
            await self._fanout.skip(segment, outcome.error)
            return
        if outcome.audio is None:
            self._tally.skipped.append(index)
            await self._fanout.skip(segment, None)
            return
        audio = outcome.audio
        segment = replace(segment, synth_s=outcome.synth_s, reused=outcome.reused)
        announced: list[WrittenSegment] = []

        def placed(written: WrittenSegment) -> None:
            announced.append(written)
            self._audio_ready(written, outcome.synth_s)

        written = await self._fanout.write(segment, audio, placed)
        if written is None and announced:  # its sync failed: removed, and reported
            self._tally.taken_back(index, announced[0].duration_s, outcome.synth_s)
        await self._fanout.accept(segment, audio)
        self._pacer.audio_out()  # no file, or it failed: the other sinks had the audio
        if written is None and self._fanout.files is None:
            # a run without files: the sinks have it
            self._tally.delivered(self._now(), audio.duration_s, outcome.synth_s)

    def _audio_ready(self, written: WrittenSegment, synth_s: float) -> None:
        """A segment's file is complete under its name: announced now; its syncs
        (in the commit thread) and its manifest line follow meanwhile."""
        self._pacer.audio_out()  # runs whose sinks take no chunks: first audio is here
        now = self._now()
        self._tally.file_written(now, written.index, str(written.path))
        self._tally.delivered(now, written.duration_s, synth_s)
        self._emit(
            AudioReady,
            index=written.index,
            path=str(written.path),
            format=written.format,
            duration_s=written.duration_s,
            engine=written.engine,
            voice=written.voice,
            synth_s=synth_s,
            text=written.text,
        )
