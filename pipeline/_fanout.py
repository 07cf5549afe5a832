"""Handing a run's audio to its sinks, in order, so one failing sink never costs another its output.

The policy is the one documented in :mod:`output._sink`: an ``OutputError`` or
``OSError`` from a sink is reported (through ``report``) and the sink stays;
anything else is a bug: logged with its traceback, the sink is dropped, the
others go on, and :attr:`SinkFanout.bug` keeps it for the run to raise at the
end. The file sink is the run's record: it takes each segment first and
finishes last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from output import AudioSink, FileSink, OutputError, RunSummary, SegmentInfo, WrittenSegment
from tts import AudioChunk, SynthesizedAudio

logger = logging.getLogger("speakstream.pipeline")

#: ``report(error, segment_index)``: say that a sink failed (``segment_index``
#: when the failure cost that segment its file, else ``None``).
Report = Callable[[BaseException, "int | None"], None]

_EXPECTED = (OutputError, OSError)


class SinkFanout:
    """The sinks of one run (see the module docstring).

    Args:
        files: the file sink (segment files + manifest), or ``None``.
        sinks: the other sinks, called in this order.
        report: called for every expected sink failure.
    """

    def __init__(self, files: FileSink | None, sinks: Sequence[AudioSink], report: Report) -> None:
        self.files = files
        self._sinks = list(sinks)
        self._report = report
        #: The first unexpected error a sink raised (a bug), or ``None``.
        self.bug: BaseException | None = None

    @property
    def wants_chunks(self) -> bool:
        """True when some sink takes audio chunk by chunk."""
        return any(sink.wants_chunks for sink in self._sinks)

    async def chunk(self, segment: SegmentInfo, chunk: AudioChunk) -> None:
        for sink in [s for s in self._sinks if s.wants_chunks]:
            await self._call(sink, sink.chunk(segment, chunk))

    async def write(
        self, segment: SegmentInfo, audio: SynthesizedAudio,
        placed: Callable[[WrittenSegment], None],
    ) -> WrittenSegment | None:
        """The file sink's turn: the written segment, or ``None`` (no file sink,
        or it failed: then reported with the segment's index). ``placed`` is
        called when the file is complete under its name, before it is durable
        (:meth:`FileSink.write`); if it then fails, the report follows."""
        if self.files is None:
            return None
        try:
            return await self.files.write(segment, audio, placed=placed)
        except _EXPECTED as exc:
            self._report(exc, segment.index)
            return None

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        """The other sinks' turn (after :meth:`write`)."""
        for sink in list(self._sinks):
            await self._call(sink, sink.accept(segment, audio))

    async def skip(self, segment: SegmentInfo, error: BaseException | None) -> None:
        for sink in self._all():
            await self._call(sink, sink.skip(segment, error), index=segment.index)

    async def end_of_input(self, segments_total: int) -> None:
        for sink in self._all():
            await self._call(sink, sink.end_of_input(segments_total))

    async def finish_sinks(self, summary: RunSummary) -> dict[str, str]:
        """Finish every sink but the file sink, concurrently; return their artifacts."""
        sinks = list(self._sinks)
        results = await asyncio.gather(
            *(self._finish_one(sink, summary) for sink in sinks)
        )
        artifacts: dict[str, str] = {}
        for result in results:
            artifacts.update(result)
        return artifacts

    async def finish_files(self, summary: RunSummary) -> None:
        """Finish the file sink last (its summary line names the artifacts)."""
        if self.files is not None:
            await self._call(self.files, self.files.finish(summary))

    async def _finish_one(self, sink: AudioSink, summary: RunSummary) -> Mapping[str, str]:
        result: dict[str, Mapping[str, str]] = {}

        async def finish() -> None:
            result["artifacts"] = await sink.finish(summary)

        await self._call(sink, finish())
        return result.get("artifacts") or {}

    def _all(self) -> list[AudioSink]:
        return ([self.files] if self.files is not None else []) + list(self._sinks)

    async def _call(self, sink: AudioSink, call: Awaitable[Any], *, index: int | None = None
                    ) -> None:
        try:
            await call
        except _EXPECTED as exc:
            # A file sink failing to record a failed segment concerns that segment.
            self._report(exc, index if sink is self.files else None)
        except Exception as exc:
            logger.error("the %s sink failed unexpectedly; it gets no more audio", sink.name,
                         exc_info=exc)
            if sink in self._sinks:
                self._sinks.remove(sink)
            elif sink is self.files:
                self.files = None
            if self.bug is None:
                self.bug = exc
