"""The speech sink: a run's audio as ONE continuous encoded body (OpenAI speech endpoint).

:class:`SpeechSink` is an :class:`output.AudioSink` of the run: it takes the
PCM chunks as the engine makes them (nothing is written and read back) and
turns them into the response body:

* ``pcm``: the samples themselves (16-bit little-endian, the engine's rate);
* ``wav``: a WAV header, then the samples (no encoder);
* ``mp3``, ``opus`` (Ogg), ``aac`` (ADTS), ``flac``: one ffmpeg process
  (:class:`output.FFmpegPipe`) encodes a single stream. It is taken before
  the first chunk from the daemon's started spares (:mod:`._spares`: ffmpeg's
  own start-up costs ~0.5 s, so it is done ahead of the request), at the
  rate the engine gave last time (a different rate takes another).

Lengths in headers (WAV's RIFF/data sizes, FLAC's STREAMINFO total samples):
when the input is one segment, the body is made whole first and sent with
exact sizes and a ``Content-Length``; a longer input streams from its first
chunk, and then the header cannot know the length: WAV declares ``0xFFFFFFFF``
for both sizes (the "unknown length, read to the end" convention ffmpeg and
other streaming encoders use) and FLAC ``total_samples = 0`` ("unknown", per
the FLAC format). Decoders read such bodies to their end.

A segment that fails after audio was sent ends the body early (the client
sees a broken stream, never a silent gap); a run that ends without any audio
makes :attr:`SpeechSink.ready` fail (the route answers 502).
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Mapping

from output import (
    AudioSink,
    FFmpegPipe,
    FormatError,
    OutputError,
    RunSummary,
    SegmentInfo,
    convert,
    resample_pcm,
)
from tts import AUDIO_FORMATS, AudioChunk, SynthesizedAudio, pcm_to_wav

from ._spares import SpareEncoders

#: OpenAI ``response_format`` values, from the one table of formats.
SPEECH_FORMATS: tuple[str, ...] = tuple(f.name for f in AUDIO_FORMATS.values() if f.speech)

#: WAV sizes meaning "unknown length" in a streamed header.
UNKNOWN_SIZE = 0xFFFFFFFF

_BODY_QUEUE = 16  # encoded pieces waiting for the HTTP client: the backpressure bound


class SpeechFailed(Exception):
    """The run ended without audio; ``str()`` is ``"ErrorType: message"``."""


def streamed_wav_header(sample_rate: int, channels: int) -> bytes:
    """A 16-bit PCM WAV header whose RIFF and data sizes say "unknown" (0xFFFFFFFF)."""
    frame = 2 * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", UNKNOWN_SIZE, b"WAVE", b"fmt ", 16, 1, channels,
        sample_rate, sample_rate * frame, frame, 16, b"data", UNKNOWN_SIZE,
    )


class SpeechSink(AudioSink):
    """Encodes a run's audio into one HTTP body (see the module docstring).

    Use: ``await prepare()`` before the run starts; pass the sink to the run;
    ``await ready`` gives ``(sample_rate, channels)`` once the body can start
    (or the whole body as ``bytes`` when it was made whole, one-segment
    input with a length in its header), or raises :class:`SpeechFailed`;
    then iterate :meth:`body` for the bytes. :meth:`aclose` releases ffmpeg.

    Args:
        format: one of :data:`SPEECH_FORMATS`.
        encoders: the daemon's started encoders (and the layout each engine gave last time).
        engine_key: names the engine for the layout hint (the request's ``model``).
    """

    name = "speech"
    wants_chunks = True

    def __init__(self, format: str, *, encoders: SpareEncoders, engine_key: str = "") -> None:
        if format not in SPEECH_FORMATS:
            raise ValueError(f"format must be one of {', '.join(SPEECH_FORMATS)}, got {format!r}")
        self.format = format
        self._encoders = encoders
        self._key = engine_key
        self._known = AUDIO_FORMATS[format]
        self.ready: asyncio.Future[tuple[int, int] | bytes] = (
            asyncio.get_running_loop().create_future()
        )
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=_BODY_QUEUE)
        self._pipe: FFmpegPipe | None = None
        self._pipe_layout: tuple[int, int] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._layout: tuple[int, int] | None = None  # of the first chunk: the body's
        self._total: int | None = None
        self._whole: list[bytes] | None = None  # PCM kept to make the body whole
        self._sent_audio = False
        self._failure: str | None = None
        self._ended = False

    # -- the route's side ------------------------------------------------------

    @property
    def layout_rate(self) -> int:
        """The body's sample rate (Hz): the engine's, from its first chunk (0 before)."""
        return self._layout[0] if self._layout else 0

    async def prepare(self) -> None:
        """Take a started encoder for the hinted layout (no-op for pcm/wav).

        Raises:
            FormatError: ffmpeg cannot be started.
        """
        if self._needs_encoder():
            await self._start_pipe(self._encoders.layout_hint(self._key))

    async def body(self) -> AsyncIterator[bytes]:
        """The encoded body, piece by piece, as the run goes.

        Raises:
            SpeechFailed: a segment failed after audio was sent (the caller
                lets the body break), or the encoder failed.
        """
        first = True
        while (data := await self._queue.get()) is not None:
            yield data
            if first:  # the server asks for more: the first piece is sent
                first = False
                self._replenish()  # now the next request's encoder may start
        if self._failure is not None:
            raise SpeechFailed(self._failure)

    async def aclose(self) -> None:
        """Stop the encoder and its reader. Idempotent."""
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pipe is not None:
            await self._pipe.aclose()
            self._replenish()
        if not self.ready.done():
            self.ready.set_exception(SpeechFailed("the request ended"))
            self.ready.exception()  # retrieved: nobody may wait for it any more

    # -- the run's side (AudioSink) -----------------------------------------------

    async def end_of_input(self, segments_total: int) -> None:
        self._total = segments_total

    async def chunk(self, segment: SegmentInfo, chunk: AudioChunk) -> None:
        if self._ended:
            return
        layout = (chunk.sample_rate, chunk.channels)
        if self._layout is None:
            self._layout = layout
            self._encoders.remember_layout(self._key, layout)
            if self._known.length_in_header and self._total == 1:
                self._whole = []  # one segment: send it whole, with exact sizes
            else:
                try:
                    await self._begin()
                except OutputError as exc:  # no encoder: no body at all (the route says 502)
                    self._ended = True
                    if not self.ready.done():
                        self.ready.set_exception(SpeechFailed(f"{type(exc).__name__}: {exc}"))
                    raise
        pcm = chunk.data
        if layout != self._layout:
            pcm = await asyncio.to_thread(resample_pcm, pcm, *layout, *self._layout)
        if self._whole is not None:
            self._whole.append(pcm)
            return
        await self._send_pcm(pcm)
        self._sent_audio = True

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        if self._whole is not None and not self._ended:
            assert self._layout is not None
            wav = pcm_to_wav(b"".join(self._whole), sample_rate=self._layout[0],
                             channels=self._layout[1])
            self._whole = None
            data = wav
            if self.format != "wav":
                whole = SynthesizedAudio(data=wav, format="wav", sample_rate=self._layout[0],
                                         channels=self._layout[1], duration_s=audio.duration_s)
                data = (await asyncio.to_thread(convert, whole, self.format)).data
            self._ended = True
            if not self.ready.done():
                self.ready.set_result(data)

    async def skip(self, segment: SegmentInfo, error: BaseException | None) -> None:
        if error is None or self._ended:
            return
        message = f"segment {segment.index} failed: {type(error).__name__}: {error}"
        if not self._sent_audio and not self.ready.done():
            self._ended = True
            self.ready.set_exception(SpeechFailed(f"{type(error).__name__}: {error}"))
            return
        await self._end(failure=message)  # a sentence would be missing: break the body

    async def finish(self, summary: RunSummary) -> Mapping[str, str]:
        if summary.status == "cancelled":
            await self.aclose()
        elif not self.ready.done():
            self._ended = True
            self.ready.set_exception(SpeechFailed(summary.error or "no audio was produced"))
        elif not self._ended:
            await self._end(failure=None)
        return {}

    # -- internals ---------------------------------------------------------------

    def _needs_encoder(self) -> bool:
        return self._known.muxer is not None and self.format != "wav"

    async def _begin(self) -> None:
        """The body starts: headers can go out."""
        assert self._layout is not None
        if self._needs_encoder() and self._pipe_layout != self._layout:
            if self._pipe is not None:
                await self._pipe.aclose()
            await self._start_pipe(self._layout)
        if self._needs_encoder():
            self._reader = asyncio.create_task(self._read(), name="speech-encoder-output")
        elif self.format == "wav":
            await self._queue.put(streamed_wav_header(*self._layout))
        if not self.ready.done():
            self.ready.set_result(self._layout)

    def _replenish(self) -> None:
        """Have the spare this sink took replaced (no-op if done already)."""
        if self._pipe_layout is not None:
            self._encoders.replenish(self.format, self._pipe_layout)

    async def _start_pipe(self, layout: tuple[int, int]) -> None:
        pipe = await self._encoders.take(self.format, layout)
        self._pipe, self._pipe_layout = pipe, layout

    async def _send_pcm(self, pcm: bytes) -> None:
        if self._pipe is None or not self._needs_encoder():
            await self._queue.put(pcm)
            return
        try:
            await self._pipe.write(pcm)
        except OutputError as exc:
            await self._end(failure=f"the {self.format} encoder failed: {exc}")

    async def _read(self) -> None:
        """Encoder output -> body queue; ends the body when ffmpeg ends."""
        pipe = self._pipe
        assert pipe is not None
        failure: str | None = None
        try:
            while data := await pipe.read():
                await self._queue.put(data)
            await pipe.wait()
        except FormatError as exc:
            failure = f"the {self.format} encoder failed: {exc}"
        if failure is not None and self._failure is None:
            self._failure = failure
        await self._queue.put(None)

    async def _end(self, *, failure: str | None) -> None:
        """No more audio: let the encoder flush (or stop it on failure), then end the body."""
        if self._ended:
            return
        self._ended = True
        if failure is not None:
            self._failure = failure
        if self._reader is not None:
            assert self._pipe is not None
            if failure is None:
                with contextlib.suppress(OutputError):  # its own failure ends the body too
                    await self._pipe.close_input()
            else:
                await self._pipe.aclose()  # the reader then sees the end at once
            await asyncio.shield(self._reader)
        else:
            await self._queue.put(None)
