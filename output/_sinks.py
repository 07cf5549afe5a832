"""The sinks of ``output``: segment files + manifest, the speakers, one merged file, subtitles.

See :mod:`output._sink` for the seam (call order, shapes, error policy).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from pydub import AudioSegment

from tts import AudioChunk, SynthesizedAudio, WordBoundary

from ._atomic import temp_name
from ._errors import FormatError, OutputError, WriteError
from ._formats import check_format
from ._player import Player
from ._sink import AudioSink, RunSummary, SegmentInfo
from ._stream import FFmpegPipe, encoder_args, pcm_input_args
from ._subtitles import cues_from_segments, write_srt, write_vtt
from ._writer import SegmentWriter, WrittenSegment


class FileSink(AudioSink):
    """Segment files and ``manifest.jsonl`` through a :class:`SegmentWriter`.

    ``accept`` writes ``<prefix>_<index:04d>.<format>`` atomically and its
    manifest line (:meth:`write` returns the :class:`WrittenSegment`);
    ``skip`` with an error writes a ``"failed"`` line (the text is never
    lost); ``finish`` writes the summary line (``summary.fields`` plus the
    other sinks' ``artifacts`` as file names relative to the run directory)
    and closes the manifest, even when the disk is full.

    Raises (from its calls): :class:`WriteError` (disk full or read-only),
    :class:`FormatError`, :class:`OutputExistsError` (see
    :meth:`SegmentWriter.write`).
    """

    name = "files"

    def __init__(self, writer: SegmentWriter) -> None:
        self.writer = writer

    async def write(
        self,
        segment: SegmentInfo,
        audio: SynthesizedAudio,
        *,
        placed: Callable[[WrittenSegment], None] | None = None,
    ) -> WrittenSegment:
        """Write ``segment``'s file and manifest line; the manifest's ``text`` is
        what was spoken (``audio.text``). ``placed``: called as soon as the file
        is complete under its name, before it is durable (see
        :meth:`SegmentWriter.awrite`)."""
        return await self.writer.awrite(
            segment.index, audio, text=audio.text or segment.text,
            extra=segment.manifest_fields(), placed=placed,
        )

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        await self.write(segment, audio)

    async def skip(self, segment: SegmentInfo, error: BaseException | None) -> None:
        if error is None:
            return  # cleaned to nothing: listed in the summary's skipped_indices
        await asyncio.to_thread(
            self.writer.write_failed, segment.index, text=segment.text,
            error=f"{type(error).__name__}: {error}", extra=segment.manifest_fields(),
        )

    async def end_of_input(self, segments_total: int) -> None:
        self.writer.end_of_input(segments_total)

    async def finish(self, summary: RunSummary) -> Mapping[str, str]:
        fields = dict(summary.fields)
        fields.update({key: Path(path).name for key, path in summary.artifacts.items()})
        await asyncio.shield(self.writer.aclose(fields))
        return {}


class PlayerSink(AudioSink):
    """The speakers: each chunk's PCM goes straight into a :class:`Player` (gapless).

    Playback starts with the first chunk of segment 0; nothing is decoded
    again. ``finish`` waits until everything was heard (completed or failed
    runs) or cuts playback at once (cancelled), then closes the player. The
    first playback failure is raised once (by the call that meets it, or by
    ``finish``); after it the sink stays quiet and the run goes on writing files.
    """

    name = "player"
    wants_chunks = True

    def __init__(self, player: Player) -> None:
        self.player = player
        self._off = False

    async def chunk(self, segment: SegmentInfo, chunk: AudioChunk) -> None:
        if self._off:
            return
        try:
            self.player.feed(chunk.data, sample_rate=chunk.sample_rate, channels=chunk.channels)
        except (ValueError, RuntimeError) as exc:
            self._off = True
            raise FormatError(f"cannot play segment {segment.index}: {exc}") from exc

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        return None  # its audio came chunk by chunk

    async def finish(self, summary: RunSummary) -> Mapping[str, str]:
        try:
            if summary.status == "cancelled" or self._off:
                await self.player.stop()
            else:
                await self.player.drain()
        finally:
            await self.player.aclose()
        return {}


class MergeSink(AudioSink):
    """One merged file of the whole run, encoded while the run goes on.

    Each accepted segment's PCM (from its chunks: the engine's own samples,
    not the encoded segment file) is piped into one ffmpeg process that
    encodes ``path``'s temp file, with ``silence_ms`` milliseconds of silence
    between segments; nothing is read back from disk and memory stays flat
    (one segment is held until it is accepted, so a failed segment's partial
    audio is never merged). Segments with another sample rate or channel count
    than the first are resampled to it. ``finish`` renames the temp file to
    ``path`` atomically (completed or failed runs with audio; nothing for a
    cancelled run) and returns ``{"merged_path": path}``.

    Failures (ffmpeg missing or dying, disk full) stop the merge; the first is
    raised once, by ``finish``, and the segment files are not affected.
    """

    name = "merge"
    wants_chunks = True

    def __init__(self, path: str | os.PathLike[str], *, format: str | None = None,
                 silence_ms: int = 0) -> None:
        self.path = Path(path)
        self.format = check_format(format or self.path.suffix.lstrip("."))
        if isinstance(silence_ms, bool) or not isinstance(silence_ms, int) or silence_ms < 0:
            raise ValueError(f"silence_ms must be an int >= 0, got {silence_ms!r}")
        self.silence_ms = silence_ms
        self._tmp = temp_name(self.path)
        self._pipe: FFmpegPipe | None = None
        self._layout: tuple[int, int] | None = None  # (sample rate, channels) of the file
        self._pending: list[AudioChunk] = []
        self._pending_index: int | None = None
        self._merged = 0
        self._error: OutputError | None = None

    async def chunk(self, segment: SegmentInfo, chunk: AudioChunk) -> None:
        if self._pending_index != segment.index:
            self._pending, self._pending_index = [], segment.index
        self._pending.append(chunk)

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        chunks = self._pending if self._pending_index == segment.index else []
        self._pending, self._pending_index = [], None
        if self._error is not None or not chunks:
            return
        try:
            await self._append(chunks)
        except OutputError as exc:
            self._error = exc
            await self._abort()

    async def skip(self, segment: SegmentInfo, error: BaseException | None) -> None:
        self._pending, self._pending_index = [], None

    async def _append(self, chunks: list[AudioChunk]) -> None:
        first = chunks[0]
        if self._pipe is None:
            self._layout = (first.sample_rate, first.channels)
            pipe = FFmpegPipe(pcm_input_args(*self._layout), encoder_args(self.format),
                              output=str(self._tmp))
            await pipe.start()
            self._pipe = pipe
        assert self._layout is not None
        rate, channels = self._layout
        if self._merged and self.silence_ms:
            frames = rate * self.silence_ms // 1000
            await self._pipe.write(bytes(2 * channels * frames))
        for chunk in chunks:
            pcm = chunk.data
            if (chunk.sample_rate, chunk.channels) != self._layout:
                pcm = await asyncio.to_thread(
                    resample_pcm, pcm, chunk.sample_rate, chunk.channels, rate, channels
                )
            await self._pipe.write(pcm)
        self._merged += 1

    async def finish(self, summary: RunSummary) -> Mapping[str, str]:
        if summary.status == "cancelled" or self._pipe is None or self._error is not None:
            await self._abort()
            if self._error is not None:
                raise self._error
            return {}
        pipe = self._pipe
        try:
            await pipe.close_input()
            await pipe.wait()
            await asyncio.to_thread(_publish, self._tmp, self.path)
        except OSError as exc:
            await self._abort()
            raise WriteError(f"cannot write {self.path.name}: {exc.strerror or exc}",
                             path=self.path, errno=exc.errno) from exc
        except OutputError:
            await self._abort()
            raise
        return {"merged_path": str(self.path)}

    async def _abort(self) -> None:
        if self._pipe is not None:
            await self._pipe.aclose()
        self._tmp.unlink(missing_ok=True)


def _publish(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` and move it to ``final`` (replacing it) atomically."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)


def resample_pcm(pcm: bytes, sample_rate: int, channels: int, to_rate: int,
                 to_channels: int) -> bytes:
    """16-bit PCM at ``sample_rate`` Hz / ``channels`` converted to ``to_rate`` / ``to_channels``
    (pydub; blocking, run it off the event loop for long audio)."""
    segment = AudioSegment(data=pcm, sample_width=2, frame_rate=sample_rate, channels=channels)
    return bytes(segment.set_frame_rate(to_rate).set_channels(to_channels).raw_data)


class SubtitleSink(AudioSink):
    """A subtitle file (SRT or WebVTT) for the merged timeline.

    Keeps each accepted segment's text, duration and word timings (not its
    audio) and writes ``path`` atomically at ``finish`` (completed or failed
    runs with audio) with ``silence_ms`` between segments, exactly as
    :class:`MergeSink` lays them out. Returns ``{"subtitles_path": path}``.
    """

    name = "subtitles"

    def __init__(self, path: str | os.PathLike[str], *, kind: str | None = None,
                 silence_ms: int = 0) -> None:
        self.path = Path(path)
        kind = kind or self.path.suffix.lstrip(".")
        if kind not in ("srt", "vtt"):
            raise ValueError(f"kind must be srt or vtt, got {kind!r}")
        self.kind = kind
        self.silence_ms = silence_ms
        self._timings: list[tuple[str, float, tuple[WordBoundary, ...]]] = []

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        self._timings.append((audio.text or segment.text, audio.duration_s, audio.words))

    async def finish(self, summary: RunSummary) -> Mapping[str, str]:
        if summary.status == "cancelled" or not self._timings:
            return {}
        cues = cues_from_segments(self._timings, silence_ms=self.silence_ms)
        write = write_srt if self.kind == "srt" else write_vtt
        try:
            path = await asyncio.to_thread(write, cues, self.path)
        except OSError as exc:
            raise WriteError(f"cannot write {self.path.name}: {exc.strerror or exc}",
                             path=self.path, errno=exc.errno) from exc
        return {"subtitles_path": str(path)}

