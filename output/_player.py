"""Playing audio in order, gapless, through PulseAudio or ALSA.

No mpv and no Python audio library: raw 16-bit PCM is written into ONE
long-lived player process (``pacat`` for PulseAudio, ``aplay`` for ALSA)
reading raw PCM on stdin, started at the PCM's own rate and channel count (the
sound server resamples). Audio comes in two ways, played in the order given:

* :meth:`Player.feed`: PCM in memory, as an engine streams it (the pipeline's
  player sink: no file is written and decoded again, playback starts with the
  first chunk);
* :meth:`Player.enqueue`: a file, decoded by ``ffmpeg`` to PCM at the
  player's ``sample_rate``/``channels`` (decoded ahead, while the previous one
  plays).

Pieces of the same rate and channel count follow each other sample-exactly
(gapless) as long as they arrive before the player's buffer runs dry; a late
piece plays after a short silence. A change of format (a fallback engine with
another sample rate) restarts the player process after the previous audio has
played out.

Detection never trusts a player's exit code (``ffplay`` exits 0 with no device):
PulseAudio counts when ``pactl info`` reaches a server, ALSA when ``aplay -l``
lists a card. Otherwise :class:`NoAudioDeviceError`: fall back to files only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from ._errors import NoAudioDeviceError, PlaybackError

_BACKENDS = ("pulse", "alsa")
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class AudioOutput:
    """A working audio output found by :func:`find_audio_output`.

    Attributes:
        backend: ``"pulse"`` (played with ``pacat``) or ``"alsa"`` (``aplay``).
        device: PulseAudio sink name or ALSA PCM name; ``None`` for the default.
        description: what was found, for logs (server name, card list line).
    """

    backend: str
    device: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if self.backend not in _BACKENDS:
            raise ValueError(f"backend must be one of {_BACKENDS}, got {self.backend!r}")

    def command(self, sample_rate: int, channels: int) -> list[str]:
        """The player command reading raw s16le PCM on stdin."""
        if self.backend == "pulse":
            cmd = ["pacat", "--playback", "--raw", "--format=s16le"]
            cmd += [f"--rate={sample_rate}", f"--channels={channels}"]
            cmd += ["--client-name=speakstream", "--stream-name=speakstream"]
            return cmd + ([f"--device={self.device}"] if self.device else [])
        cmd = ["aplay", "-q", "-t", "raw", "-f", "S16_LE", "-r", str(sample_rate)]
        cmd += ["-c", str(channels)]
        return cmd + (["-D", self.device] if self.device else []) + ["-"]


def _run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=10, check=False)


def find_audio_output(
    *, backends: tuple[str, ...] = _BACKENDS, device: str | None = None
) -> AudioOutput:
    """Find a working audio output, trying ``backends`` in order.

    ``pulse``: ``pactl info`` must reach a server (honours ``PULSE_SERVER``)
    and ``pacat`` must exist; ``alsa``: ``aplay -l`` must list a sound card.
    Blocks for the few milliseconds these commands take.

    Raises:
        ValueError: an unknown backend name.
        NoAudioDeviceError: none works; ``checked`` says why for each.
    """
    for name in backends:
        if name not in _BACKENDS:
            raise ValueError(f"backends must be taken from {_BACKENDS}, got {name!r}")
    checked: list[str] = []  # details, with what the tools printed
    reasons: list[str] = []  # one short phrase per backend, for the message
    for name in backends:
        if name == "pulse":
            if not (shutil.which("pactl") and shutil.which("pacat")):
                checked.append("pulse: pactl/pacat not installed (pulseaudio-utils)")
                reasons.append("pactl/pacat not installed")
                continue
            info = _run(["pactl", "info"])
            if info.returncode != 0:
                checked.append(f"pulse: no server ({(info.stderr or info.stdout).strip()})")
                reasons.append("no PulseAudio server")
                continue
            server = next(
                (ln for ln in info.stdout.splitlines() if ln.startswith("Server Name")), "server"
            )
            return AudioOutput("pulse", device, server.strip())
        if not shutil.which("aplay"):
            checked.append("alsa: aplay not installed (alsa-utils)")
            reasons.append("aplay not installed")
            continue
        cards = _run(["aplay", "-l"])
        listed = [ln for ln in cards.stdout.splitlines() if ln.startswith("card ")]
        if cards.returncode != 0 or not listed:
            checked.append(f"alsa: no sound card ({(cards.stderr or cards.stdout).strip()})")
            reasons.append("no ALSA sound card")
            continue
        return AudioOutput("alsa", device, listed[0])
    raise NoAudioDeviceError(
        "no audio output found (" + "; ".join(reasons) + ")",
        checked=tuple(checked),
    )


@dataclass(frozen=True)
class _PlayerConfig:
    sample_rate: int
    channels: int

    def __post_init__(self) -> None:
        if not isinstance(self.sample_rate, int) or not 8000 <= self.sample_rate <= 192000:
            raise ValueError(
                f"sample_rate must be an int in [8000, 192000], got {self.sample_rate!r}"
            )
        if self.channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {self.channels!r}")


@dataclass
class _Drain:
    done: asyncio.Future[None]


@dataclass
class _Piece:
    """Audio to play: its PCM (ready, or being decoded) and its format."""

    label: Path | None
    pcm: bytes | asyncio.Task[bytes]
    sample_rate: int
    channels: int


_Item = _Piece | _Drain


class Player:
    """Plays PCM and audio files in the order they are given, gapless, without blocking the loop.

    Usage::

        async with Player.detect() as player:   # NoAudioDeviceError -> files only
            player.feed(pcm, sample_rate=22050, channels=1)   # in memory, as it streams
            player.enqueue("run/segment_0001.wav")            # or a file
            await player.drain()                # returns once both were heard

    ``feed`` and ``enqueue`` return at once; ``drain`` waits until everything
    given so far has been played (the player process flushed and exited) and
    raises :class:`PlaybackError` if a file could not be decoded or the player
    failed (the other audio still plays). ``stop`` cuts playback at once: it
    kills the player and decoders and drops the queue. Leaving the ``async
    with`` block normally drains; leaving it with an exception stops. Files
    may be in any format ffmpeg decodes; they are resampled to ``sample_rate``
    Hz, ``channels`` channels. Fed PCM is played at its own rate.
    """

    def __init__(self, output: AudioOutput, *, sample_rate: int = 48000, channels: int = 2) -> None:
        self._config = _PlayerConfig(sample_rate, channels)
        self.output = output
        self._queue: asyncio.Queue[_Item] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._sink: asyncio.subprocess.Process | None = None
        self._sink_format: tuple[int, int] | None = None
        self._procs: set[asyncio.subprocess.Process] = set()
        self._decode_lock: asyncio.Lock | None = None
        self._errors: list[PlaybackError] = []
        self._closed = False
        #: Files whose audio was entirely handed to the player, in order.
        self.played: list[Path] = []

    @classmethod
    def detect(
        cls,
        *,
        backends: tuple[str, ...] = _BACKENDS,
        device: str | None = None,
        sample_rate: int = 48000,
        channels: int = 2,
    ) -> Player:
        """A player on the first working output (see :func:`find_audio_output`).

        Raises:
            NoAudioDeviceError: no output; the caller should write files only.
        """
        output = find_audio_output(backends=backends, device=device)
        return cls(output, sample_rate=sample_rate, channels=channels)

    def enqueue(self, path: str | os.PathLike[str]) -> None:
        """Queue ``path`` for playback after everything queued before it.

        Must be called from the event loop; decoding starts at once.

        Raises:
            FileNotFoundError: ``path`` is not a file.
            RuntimeError: the player is closed.
        """
        if self._closed:
            raise RuntimeError("Player is closed")
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"cannot play {file}: no such file")
        queue = self._ensure_worker()
        config = self._config
        decoding = asyncio.ensure_future(self._decode(file))
        queue.put_nowait(_Piece(file, decoding, config.sample_rate, config.channels))

    def feed(self, pcm: bytes, *, sample_rate: int, channels: int) -> None:
        """Queue raw PCM (16-bit little-endian, channels interleaved) after what is queued.

        Must be called from the event loop; returns at once. Consecutive pieces
        of the same ``sample_rate`` (Hz) and ``channels`` play gapless.

        Raises:
            ValueError: ``sample_rate`` not an int in 8000-192000, ``channels``
                not 1 or 2, or ``pcm`` not whole frames.
            RuntimeError: the player is closed.
        """
        if self._closed:
            raise RuntimeError("Player is closed")
        _PlayerConfig(sample_rate, channels)  # validates both
        if len(pcm) % (2 * channels):
            raise ValueError(f"pcm must hold whole {channels}-channel 16-bit frames, "
                             f"got {len(pcm)} bytes")
        if pcm:
            self._ensure_worker().put_nowait(_Piece(None, bytes(pcm), sample_rate, channels))

    async def drain(self) -> None:
        """Wait until everything enqueued so far has been played.

        Raises:
            PlaybackError: a file failed to decode or the player failed (the
                oldest such failure not yet reported; call ``drain`` again to
                get the next one). The other files were still played.
            RuntimeError: the player is closed.
        """
        if self._closed:
            raise RuntimeError("Player is closed")
        worker = self._worker
        if worker is not None and self._queue is not None:
            marker = _Drain(asyncio.get_running_loop().create_future())
            self._queue.put_nowait(marker)
            # Also wake when the worker ends without reaching the marker: stopped
            # (stop() cancelled it: return, as documented) or died (raise).
            await asyncio.wait({marker.done, worker}, return_when=asyncio.FIRST_COMPLETED)
            if not marker.done.done() and not worker.cancelled():
                failure = worker.exception()
                if failure is not None:
                    raise PlaybackError(f"the player failed: {failure!r}") from failure
        if self._errors:
            raise self._errors.pop(0)

    async def play(self, path: str | os.PathLike[str]) -> None:
        """Play ``path`` after what is queued, and wait until it has been heard."""
        self.enqueue(path)
        await self.drain()

    async def stop(self) -> None:
        """Cut playback now: kill the player and decoders, drop the queue.

        Pending ``drain`` calls return. The player can be used again.
        """
        worker, self._worker = self._worker, None
        queue, self._queue = self._queue, None
        procs = list(self._procs)
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if worker is not None:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        while queue is not None and not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, _Drain):
                if not item.done.done():
                    item.done.set_result(None)
            elif isinstance(item.pcm, asyncio.Task):
                item.pcm.cancel()
                with contextlib.suppress(asyncio.CancelledError, PlaybackError):
                    await item.pcm
        for proc in {*procs, *self._procs}:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            if proc.stdin is not None:
                proc.stdin.close()
            await proc.communicate()
        self._procs.clear()
        self._sink = None
        self._sink_format = None

    async def aclose(self) -> None:
        """Stop playback and release everything. Idempotent."""
        await self.stop()
        self._closed = True

    async def __aenter__(self) -> Player:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc is None:
                await self.drain()
        finally:
            await self.aclose()

    # -- internals ---------------------------------------------------------

    def _ensure_worker(self) -> asyncio.Queue[_Item]:
        if self._queue is None or self._worker is None:
            self._queue = asyncio.Queue()
            self._decode_lock = asyncio.Lock()
            self._worker = asyncio.create_task(self._run(self._queue), name="speakstream-player")
        return self._queue

    async def _spawn(self, cmd: list[str], *, stdin: int | None) -> asyncio.subprocess.Process:
        try:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
        except OSError as exc:
            raise PlaybackError(f"cannot start {cmd[0]}: {exc}") from exc
        self._procs.add(proc)
        return proc

    async def _decode(self, path: Path) -> bytes:
        assert self._decode_lock is not None
        cmd = ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn", "-f", "s16le"]
        cmd += ["-acodec", "pcm_s16le", "-ar", str(self._config.sample_rate)]
        cmd += ["-ac", str(self._config.channels), "-"]
        async with self._decode_lock:  # one ffmpeg at a time, in queue order
            proc = await self._spawn(cmd, stdin=subprocess.DEVNULL)
            try:
                pcm, err = await proc.communicate()
            finally:
                self._procs.discard(proc)
        if proc.returncode != 0 or not pcm:
            raise PlaybackError(
                f"ffmpeg could not decode {path}: {err.decode(errors='replace').strip()}",
                path=path,
                returncode=proc.returncode,
            )
        return pcm

    async def _run(self, queue: asyncio.Queue[_Item]) -> None:
        while True:
            item = await queue.get()
            if isinstance(item, _Drain):
                await self._finish_sink()
                if not item.done.done():
                    item.done.set_result(None)
                continue
            try:
                pcm = await item.pcm if isinstance(item.pcm, asyncio.Task) else item.pcm
                await self._write(item, pcm)
                if item.label is not None:
                    self.played.append(item.label)
            except PlaybackError as exc:
                self._errors.append(exc)

    async def _write(self, piece: _Piece, pcm: bytes) -> None:
        path = piece.label
        wanted = (piece.sample_rate, piece.channels)
        if self._sink is not None and self._sink_format != wanted:
            await self._finish_sink()  # plays out what it has, then a new format
        if self._sink is None:
            self._sink = await self._spawn(
                self.output.command(*wanted), stdin=subprocess.PIPE
            )
            self._sink_format = wanted
        sink = self._sink
        assert sink.stdin is not None
        try:
            for start in range(0, len(pcm), _CHUNK):
                sink.stdin.write(pcm[start : start + _CHUNK])
                await sink.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            await self._finish_sink()
            what = path if path is not None else "streamed audio"
            raise PlaybackError(
                f"{self.output.backend} player exited while playing {what}", path=path
            ) from exc

    async def _finish_sink(self) -> None:
        sink, self._sink = self._sink, None
        self._sink_format = None
        if sink is None:
            return
        try:
            assert sink.stdin is not None
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                sink.stdin.close()
                await sink.stdin.wait_closed()
            _, err = await sink.communicate()
        finally:
            self._procs.discard(sink)
        if sink.returncode != 0:
            self._errors.append(
                PlaybackError(
                    f"{self.output.command(1, 1)[0]} exited with {sink.returncode}: "
                    f"{err.decode(errors='replace').strip()}",
                    returncode=sink.returncode,
                )
            )
