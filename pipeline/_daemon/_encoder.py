"""One continuous audio stream out of a run's segment files (OpenAI speech endpoint).

Segment WAVs cannot simply be concatenated (each has its own header), so the
PCM of each segment, as it lands, is piped into ONE ffmpeg process that
encodes a single stream (MP3 frames, an Ogg/Opus stream, FLAC, AAC/ADTS or a
streaming WAV whose header declares an unknown length). ``pcm`` needs no
encoder: raw 16-bit little-endian samples at the engine's sample rate.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from pydub import AudioSegment

from tts._audio import normalize_wav

#: response_format -> (ffmpeg output arguments, media type).
SPEECH_FORMATS: dict[str, tuple[list[str], str]] = {
    "mp3": (["-c:a", "libmp3lame", "-b:a", "64k", "-f", "mp3"], "audio/mpeg"),
    "opus": (["-c:a", "libopus", "-b:a", "32k", "-f", "ogg"], "audio/ogg"),
    "aac": (["-c:a", "aac", "-b:a", "64k", "-f", "adts"], "audio/aac"),
    "flac": (["-c:a", "flac", "-f", "flac"], "audio/flac"),
    "wav": (["-c:a", "pcm_s16le", "-f", "wav"], "audio/wav"),
    "pcm": ([], "audio/pcm"),
}


class EncoderError(RuntimeError):
    """ffmpeg failed while encoding the stream (message holds its stderr)."""


def read_pcm(path: Path, *, sample_rate: int | None, channels: int | None
             ) -> tuple[bytes, int, int]:
    """16-bit PCM of a WAV segment file, resampled to ``sample_rate``/``channels``
    when given and different. Returns ``(pcm bytes, sample_rate, channels)``."""
    wav = normalize_wav(path.read_bytes())
    rate, chans = wav.info.sample_rate, wav.info.channels
    if (sample_rate is None or sample_rate == rate) and (channels is None or channels == chans) \
            and wav.sample_width == 2:
        return wav.pcm, rate, chans
    segment = AudioSegment(data=wav.pcm, sample_width=wav.sample_width, frame_rate=rate,
                           channels=chans)
    segment = segment.set_sample_width(2)
    segment = segment.set_frame_rate(sample_rate or rate).set_channels(channels or chans)
    return segment.raw_data, segment.frame_rate, segment.channels


class StreamEncoder:
    """Feeds PCM into ffmpeg and yields the encoded bytes as they come.

    Use: ``await start(rate, channels)``, then concurrently ``feed(pcm)`` …
    ``finish()`` from one task and ``async for chunk in output()`` in another;
    ``aclose()`` kills ffmpeg if it still runs.
    """

    def __init__(self, format: str) -> None:
        self.format = format
        self._proc: asyncio.subprocess.Process | None = None
        self._pcm: asyncio.Queue[bytes | None] = asyncio.Queue()

    async def start(self, sample_rate: int, channels: int) -> None:
        """Start ffmpeg (not for ``pcm``)."""
        if self.format == "pcm":
            return
        args, _ = SPEECH_FORMATS[self.format]
        self._proc = await asyncio.create_subprocess_exec(
            "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin",
            "-f", "s16le", "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0",
            *args, "-flush_packets", "1", "pipe:1",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def feed(self, pcm: bytes) -> None:
        """Encode ``pcm`` next (waits while ffmpeg's input pipe is full)."""
        if self._proc is None:
            self._pcm.put_nowait(pcm)
            return
        assert self._proc.stdin is not None
        self._proc.stdin.write(pcm)
        await self._proc.stdin.drain()

    async def finish(self) -> None:
        """No more PCM: ffmpeg flushes and ends its output."""
        if self._proc is None:
            self._pcm.put_nowait(None)
            return
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self._proc.stdin.wait_closed()

    async def output(self) -> AsyncIterator[bytes]:
        """The encoded stream, chunk by chunk, until ffmpeg ends.

        Raises:
            EncoderError: ffmpeg exited with an error.
        """
        if self._proc is None:
            while (chunk := await self._pcm.get()) is not None:
                yield chunk
            return
        assert self._proc.stdout is not None and self._proc.stderr is not None
        while chunk := await self._proc.stdout.read(65536):
            yield chunk
        status = await self._proc.wait()
        if status != 0:
            raise EncoderError((await self._proc.stderr.read()).decode(errors="replace"))

    async def aclose(self) -> None:
        """Stop ffmpeg if it still runs. Idempotent."""
        if self._proc is not None and self._proc.returncode is None:
            self._proc.kill()
            await self._proc.wait()
