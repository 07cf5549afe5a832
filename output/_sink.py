"""The sink seam: where a run's finished audio goes, in index order, in memory.

A run (``pipeline``) is reader → cutter → synthesis workers → reorder → sinks.
Every sink sees the same calls, in the same order, from one task at a time
(never two calls on one sink at once)::

    for each segment index 0, 1, 2, ... (strictly increasing, none left out):
        chunk(segment, chunk)*          its audio as it is synthesized (PCM), in order
        then exactly one of
            accept(segment, audio)      the segment's complete audio
            skip(segment, error)        no audio: cleaned to nothing (error None) or failed
    end_of_input(segments_total)        at most once, at a segment boundary (before the
                                        first call about a segment, or after the last
                                        segment), at the first boundary after the text
                                        source ended and the cutter released its last
                                        segment (for a given text: before segment 0);
                                        never when the run is cancelled before that
    finish(summary)                     exactly once, last, in every case (completed,
                                        failed, cancelled)

Shapes and units:

* ``chunk.data`` is raw 16-bit little-endian PCM, whole frames, channels
  interleaved, at ``chunk.sample_rate`` Hz (``chunk.format == "pcm"``, always:
  the run decodes engines' encoded streams first). Joined, the chunks of a
  segment are its audio as the engine made it. Chunks are delivered only to
  sinks with ``wants_chunks = True``; a segment with audio always gets at least
  one chunk before ``accept`` (segments an earlier run made, e.g. on resume,
  get theirs decoded from the file), a failed one may get some before ``skip``.
* ``accept``'s ``audio`` is the segment's whole audio *in the run's file
  format* (what the segment file holds, byte for byte), with its duration in
  seconds, word timings and the engine that made it; ``audio.text`` is what
  was actually spoken (after :func:`tts.sanitize_text`).
* :class:`SegmentInfo` says which segment (index, texts, offsets in characters).

Errors (the run's policy; a failing sink never loses other sinks' output):

* :class:`OutputError` or ``OSError`` from a call is reported by the run as
  one progress event (``RunFailed``) and the run goes on: the other sinks
  still get that segment, and the failing sink keeps getting the next
  segments (a disk that filled up may free up; a sink that cannot go on, like
  a player whose device vanished, goes quiet by itself and says so once).
* Anything else is a bug: that sink gets no further calls (not even
  ``finish``), the other sinks get everything and finish normally, the run's
  record is completed with status ``"failed"``, and the run then raises the
  bug to its consumer.
* Cancellation (``asyncio.CancelledError``) interrupts a call; ``finish`` is
  still called with ``summary.status == "cancelled"`` and should release what
  the sink holds quickly.

The file sink (:class:`~output.FileSink`) has a special place in a run: it is
the run's record, so it takes each segment *before* the other sinks (the
``audio`` event reports its file) and finishes *after* them (its manifest
summary line names what they made, e.g. the merged file).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from tts import AudioChunk, SynthesizedAudio


@dataclass(frozen=True)
class SegmentInfo:
    """Which segment a sink call is about.

    Attributes:
        index: the segment's index in the run (0-based, never renumbered).
        text: the text sent to the engine (cleaned for speech, characters).
        raw_text: the segment's text as it was streamed (characters).
        start: offset of its first character in the run's whole text.
        end: offset one past its last character.
        reason: why the cutter released it (``"sentences"``, ...).
        synth_s: seconds its synthesis took (wall clock); 0 in ``chunk`` calls
            (known once the segment is complete).
        reused: True when its audio comes from an earlier, interrupted run's
            file (resume) instead of the engine.
    """

    index: int
    text: str
    raw_text: str = ""
    start: int = 0
    end: int = 0
    reason: str = ""
    synth_s: float = 0.0
    reused: bool = False

    def manifest_fields(self) -> dict[str, Any]:
        """The fields a manifest line records besides the audio's own (JSON-ready)."""
        return {
            "raw_text": self.raw_text,
            "start": self.start,
            "end": self.end,
            "reason": self.reason,
            "synth_s": round(self.synth_s, 6),
            "reused": self.reused,
        }


@dataclass(frozen=True)
class RunSummary:
    """How a run ended, given to :meth:`AudioSink.finish`.

    Attributes:
        status: ``"completed"``, ``"failed"`` (it ended, with an error) or
            ``"cancelled"``.
        error: ``"ErrorType: message"`` of the first failure, or ``None``.
        fields: the run's summary as JSON-ready values (run id, complete text,
            segment counts and indices, TTFT/TTFA in seconds, ...): what the
            manifest's summary line records.
        artifacts: files made by sinks that finished before this one, by
            name (``"merged_path"``, ``"subtitles_path"``) -> path.
    """

    status: str
    error: str | None
    fields: Mapping[str, Any] = field(default_factory=dict)
    artifacts: Mapping[str, str] = field(default_factory=dict)


class AudioSink(ABC):
    """One place a run's audio goes (see the module docstring for the call order,
    shapes and error policy). Subclasses implement :meth:`accept`; the other
    calls default to doing nothing.

    Attributes:
        name: short name for messages and logs (``"player"``, ``"merge"``...).
        wants_chunks: True when the sink takes audio chunk by chunk (players
            and streaming routes: they start on the first chunk). False sinks
            get only whole segments, and the run spends no work on chunks for them.
    """

    name: ClassVar[str] = "sink"
    wants_chunks: ClassVar[bool] = False

    async def chunk(self, segment: SegmentInfo, chunk: AudioChunk) -> None:  # noqa: B027
        """A piece of ``segment``'s audio (16-bit PCM), in order."""

    @abstractmethod
    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        """``segment``'s complete audio, in the run's file format."""

    async def skip(self, segment: SegmentInfo, error: BaseException | None) -> None:  # noqa: B027
        """``segment`` has no audio: it cleaned to nothing (``error`` is
        ``None``) or failed (``error`` says why; its chunks, if any, were a
        partial take)."""

    async def end_of_input(self, segments_total: int) -> None:  # noqa: B027
        """The run has exactly ``segments_total`` segments (indices 0 to
        ``segments_total - 1``)."""

    async def finish(self, summary: RunSummary) -> Mapping[str, str]:
        """The run ended. Returns files this sink made, by name (``{}`` for none)."""
        return {}
