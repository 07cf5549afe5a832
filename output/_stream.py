"""One ffmpeg process as an async byte pipe: bytes in on stdin, bytes out on stdout.

The daemon's streamed speech encoding (PCM in, MP3/Opus/FLAC/AAC out), the
merge sink (PCM in, a merged file out) and :class:`PcmDecoder` (an engine's
MP3 stream in, PCM out, for the player) all use it; the arguments come from
the one table of formats, :data:`tts.AUDIO_FORMATS`, through
:func:`pcm_input_args` and :func:`encoder_args`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from tts import AUDIO_FORMATS

from ._errors import FormatError

_READ = 65536


def pcm_input_args(sample_rate: int, channels: int) -> list[str]:
    """ffmpeg input options for raw 16-bit little-endian PCM on stdin.

    Probing is switched off (``-probesize 32 -analyzeduration 0``): raw PCM has
    nothing to probe, and probing would hold the first output back.
    """
    return ["-probesize", "32", "-analyzeduration", "0", "-f", "s16le",
            "-ar", str(sample_rate), "-ac", str(channels), "-i", "pipe:0"]


def encoder_args(format: str, *, streaming: bool = False) -> list[str]:
    """ffmpeg output options that encode ``format`` (a name of :data:`tts.AUDIO_FORMATS`).

    With ``streaming=True`` the format's ``stream_bitrate`` is used and every
    packet is flushed at once (``-flush_packets 1``), for a body that streams
    as it is made; otherwise ffmpeg's default quality (files).

    Raises:
        ValueError: unknown format, or raw ``"pcm"`` (nothing to encode).
    """
    known = AUDIO_FORMATS.get(format)
    if known is None or known.muxer is None or known.codec is None:
        encodable = [f.name for f in AUDIO_FORMATS.values() if f.muxer]
        raise ValueError(f"format must be one of {', '.join(encodable)}, got {format!r}")
    args = ["-c:a", known.codec]
    if streaming and known.stream_bitrate:
        args += ["-b:a", known.stream_bitrate]
    if known.sample_rate:
        args += ["-ar", str(known.sample_rate)]
    args += ["-f", known.muxer]
    if streaming:
        args += ["-flush_packets", "1"]
    return args


class FFmpegPipe:
    """One ffmpeg process: :meth:`write` bytes in, :meth:`read` bytes out, concurrently.

    Use: ``await start()``; one task ``write()``s and finally ``close_input()``s,
    another ``read()``s until ``b""``; then ``await wait()`` (raises if ffmpeg
    failed); ``aclose()`` kills it when still running (idempotent). With an
    ``output`` path instead of ``pipe:1`` nothing is read: ffmpeg writes the file.

    Args:
        input_args: options before and including ``-i pipe:0``.
        output_args: output options (codec, ``-f`` muxer...).
        output: ``"pipe:1"`` (default) or a file path.

    Raises:
        FormatError: ffmpeg is missing (:meth:`start`), died while being fed
            (:meth:`write`), or exited with an error (:meth:`wait`, message
            with its stderr).
    """

    def __init__(
        self, input_args: Sequence[str], output_args: Sequence[str], *, output: str = "pipe:1"
    ) -> None:
        self._argv = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y",
                      *input_args, *output_args, output]
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: asyncio.Task[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """ffmpeg's process id once started (``None`` before)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """True between :meth:`start` and the process's end."""
        return self._proc is not None and self._proc.returncode is None

    async def start(self) -> None:
        """Start ffmpeg."""
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self._argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise FormatError(f"cannot start ffmpeg: {exc}") from exc
        assert self._proc.stderr is not None
        self._stderr = asyncio.create_task(self._proc.stderr.read(), name="ffmpeg-stderr")

    async def write(self, data: bytes) -> None:
        """Feed ``data`` (waits while ffmpeg's input pipe is full: backpressure)."""
        proc = self._started()
        assert proc.stdin is not None
        try:
            proc.stdin.write(data)
            await proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise FormatError(f"ffmpeg stopped reading its input: {await self._why()}") from exc

    async def close_input(self) -> None:
        """No more input: ffmpeg flushes and ends its output."""
        proc = self._started()
        assert proc.stdin is not None
        if proc.stdin.is_closing():
            return
        proc.stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await proc.stdin.wait_closed()

    async def read(self, n: int = _READ) -> bytes:
        """The next encoded bytes (at most ``n``), ``b""`` once ffmpeg's output ended."""
        proc = self._started()
        assert proc.stdout is not None
        return await proc.stdout.read(n)

    async def wait(self) -> None:
        """Wait for ffmpeg to exit.

        Raises:
            FormatError: it exited with an error (message holds its stderr).
        """
        proc = self._started()
        status = await proc.wait()
        if status != 0:
            raise FormatError(f"ffmpeg exited with status {status}: {await self._why()}")

    async def aclose(self) -> None:
        """Kill ffmpeg if it still runs and reap it. Idempotent."""
        proc = self._proc
        if proc is None:
            return
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        if self._stderr is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._stderr

    def _started(self) -> asyncio.subprocess.Process:
        if self._proc is None:
            raise RuntimeError("FFmpegPipe.start() was not called")
        return self._proc

    async def _why(self) -> str:
        if self._stderr is None:
            return ""
        proc = self._started()
        if proc.returncode is None:
            # stderr ends only with the process: give it a moment to die of its error
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 5)
        if not self._stderr.done():
            return "(no message)"
        return (await self._stderr).decode(errors="replace").strip() or "(no message)"


class PcmDecoder:
    """Decodes an encoded audio stream (edge-tts's MP3) into 16-bit PCM as it arrives.

    One ffmpeg process per stream: :meth:`feed` the encoded pieces, and every
    piece of PCM ffmpeg gives back is handed to ``on_pcm`` at once (whole
    frames, at ``sample_rate`` Hz and ``channels`` channels), so a player can
    start before the stream ends. :meth:`finish` flushes ffmpeg and waits for
    the last PCM; :meth:`aclose` kills it (idempotent).

    Args:
        format: the stream's format (a name of :data:`tts.AUDIO_FORMATS`).
        sample_rate, channels: the PCM wanted (Hz, 1 or 2).
        on_pcm: called with each PCM piece (bytes), in order.

    Raises:
        ValueError: ``format`` cannot be decoded (raw ``"pcm"`` needs no decoder).
        FormatError: ffmpeg is missing or failed (message with its stderr).
    """

    def __init__(self, format: str, *, sample_rate: int, channels: int,
                 on_pcm: Callable[[bytes], None]) -> None:
        known = AUDIO_FORMATS.get(format)
        if known is None or known.muxer is None:
            raise ValueError(f"cannot decode format {format!r}")
        self._pipe = FFmpegPipe(
            ["-probesize", "2048", "-analyzeduration", "0", "-f", known.demuxer, "-i", "pipe:0"],
            ["-f", "s16le", "-acodec", "pcm_s16le", "-ar", str(sample_rate),
             "-ac", str(channels), "-flush_packets", "1"],
        )
        self._frame = 2 * channels
        self._on_pcm = on_pcm
        self._rest = b""
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start ffmpeg and the reader of its output."""
        await self._pipe.start()
        self._reader = asyncio.create_task(self._read(), name="pcm-decoder-output")

    async def feed(self, data: bytes) -> None:
        """Decode ``data`` next."""
        await self._pipe.write(data)

    async def finish(self) -> None:
        """No more input: wait until all PCM was handed out and ffmpeg ended."""
        await self._pipe.close_input()
        assert self._reader is not None
        await self._reader
        await self._pipe.wait()

    async def aclose(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self._pipe.aclose()

    async def _read(self) -> None:
        while data := await self._pipe.read():
            data = self._rest + data
            cut = len(data) - len(data) % self._frame
            self._rest = data[cut:]
            if cut:
                self._on_pcm(data[:cut])
