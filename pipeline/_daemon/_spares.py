"""Spare encoders: ffmpeg processes started before the ``/v1/audio/speech`` requests that use them.

Why (issue 12, "time to first byte <= 1.25x the engine's first audio"):
starting ffmpeg costs 0.45-0.75 s of wall time on a 2-core machine (loading
its shared libraries and setting up the codec; only ~0.12 s of it is CPU),
while espeak-ng's first audio takes 20-30 ms. An encoder started per request
(even before the run, as the sink did) made the first MP3 byte 14-26x later
than the engine's first audio. A started ffmpeg waits on its stdin at no CPU
cost and encodes its first input within ~10 ms. So the daemon keeps one
started encoder per (format, sample rate, channels) it serves, hands it to
the next request that needs exactly that, and starts its replacement in the
background once that request's first byte is out (never on its path).

Ways weighed: one long-lived ffmpeg shared by all requests (no: every body is
its own stream, with its own MP3/Ogg/ADTS headers and encoder state, and
bodies cannot be cut back out of one stream); encoding in this process with
another library (PyAV, lameenc: new binary dependencies for one route, where
the house uses ffmpeg); spares (this: ffmpeg as before, its start-up moved
off the request's path).

Costs: one idle process per kept layout (~50 MB resident, mostly shared
libraries; no CPU while it waits), at most :data:`MAX_SPARES` of them, the
least recently used dropped first. From start-up the daemon keeps one for
:data:`STARTUP_KEYS` (mp3, OpenAI's default ``response_format``, at 22050 Hz
mono, the rate of piper's and espeak-ng's voices); other formats and layouts
get a spare after their first request. :meth:`SpareEncoders.aclose` kills and
reaps every spare (the daemon's shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict

from output import FFmpegPipe, OutputError, encoder_args, pcm_input_args

logger = logging.getLogger("speakstream.daemon")

#: ``(sample rate in Hz, channels)`` of a PCM stream.
Layout = tuple[int, int]
#: ``(format, sample rate, channels)``: what one encoder process serves.
Key = tuple[str, int, int]

#: Spare encoders kept at most (one per key).
MAX_SPARES = 4
#: The layout assumed for an engine before its first chunk was seen.
DEFAULT_LAYOUT: Layout = (22050, 1)
#: Spares started with the daemon.
STARTUP_KEYS: tuple[Key, ...] = (("mp3", *DEFAULT_LAYOUT),)


def new_encoder(key: Key) -> FFmpegPipe:
    """An ffmpeg (not started) encoding raw 16-bit PCM of ``key``'s layout into its format,
    packets flushed as they are made."""
    format, rate, channels = key
    return FFmpegPipe(pcm_input_args(rate, channels), encoder_args(format, streaming=True))


class SpareEncoders:
    """Started encoders kept ready, one per key (see the module docstring).

    Args:
        max_spares: spares kept at most (>= 0; 0: every encoder starts on demand).
    """

    def __init__(self, *, max_spares: int = MAX_SPARES) -> None:
        if max_spares < 0:
            raise ValueError(f"max_spares must be >= 0, got {max_spares!r}")
        self.max_spares = max_spares
        self._spares: OrderedDict[Key, FFmpegPipe] = OrderedDict()
        self._starting: dict[Key, asyncio.Task[None]] = {}
        self._layouts: dict[str, Layout] = {}
        self._closed = False

    # -- layouts ---------------------------------------------------------------

    def layout_hint(self, engine_key: str) -> Layout:
        """The layout ``engine_key``'s audio had last time (:data:`DEFAULT_LAYOUT` before)."""
        return self._layouts.get(engine_key, DEFAULT_LAYOUT)

    def remember_layout(self, engine_key: str, layout: Layout) -> None:
        self._layouts[engine_key] = layout

    # -- encoders --------------------------------------------------------------

    async def start(self, keys: tuple[Key, ...] = STARTUP_KEYS) -> None:
        """Start spares for ``keys`` (the daemon's start-up). Returns once they
        are started; an ffmpeg that cannot start is logged and skipped (the
        request that needs it gets the error)."""
        for key in keys:
            self._refill(key)
        if self._starting:
            await asyncio.wait(set(self._starting.values()))

    async def take(self, format: str, layout: Layout) -> FFmpegPipe:
        """A started encoder of ``format`` at ``layout``, the caller's to use and close:
        the spare when one is ready, else a new one. The caller calls
        :meth:`replenish` once its first output is sent: a replacement started
        at once would take the CPU (ffmpeg's start-up) from the very request
        it serves.

        Raises:
            FormatError: ffmpeg cannot be started.
            RuntimeError: the spares were closed.
        """
        if self._closed:
            raise RuntimeError("the spare encoders are closed")
        key: Key = (format, *layout)
        spare = self._spares.pop(key, None)
        if spare is not None and spare.running:
            return spare
        if spare is not None:  # died while it waited (killed from outside): reap it
            await spare.aclose()
        encoder = new_encoder(key)
        await encoder.start()
        return encoder

    def replenish(self, format: str, layout: Layout) -> None:
        """Start a spare of ``format`` at ``layout`` in the background unless one is
        ready or starting (or the spares are closed)."""
        self._refill((format, *layout))

    @property
    def pids(self) -> dict[Key, int]:
        """Process ids of the spares ready now, by key (for monitoring and tests); a
        spare seen to have died is not ready."""
        return {key: pipe.pid for key, pipe in self._spares.items()
                if pipe.pid is not None and pipe.running}  # fmt: skip

    async def aclose(self) -> None:
        """Stop starting spares, kill and reap every spare. Idempotent."""
        self._closed = True
        starting = list(self._starting.values())
        for task in starting:
            task.cancel()
        await asyncio.gather(*starting, return_exceptions=True)
        spares, self._spares = list(self._spares.values()), OrderedDict()
        await asyncio.gather(*(spare.aclose() for spare in spares), return_exceptions=True)

    def _refill(self, key: Key) -> None:
        if self._closed or self.max_spares == 0 or key in self._starting or key in self._spares:
            return
        task = asyncio.get_running_loop().create_task(self._start_spare(key),
                                                      name=f"spare-encoder-{key[0]}")
        self._starting[key] = task
        task.add_done_callback(lambda _: self._starting.pop(key, None))

    async def _start_spare(self, key: Key) -> None:
        encoder = new_encoder(key)
        try:
            await encoder.start()
        except OutputError as exc:
            logger.warning("cannot start a spare %s encoder: %s", key[0], exc)
            return
        except asyncio.CancelledError:
            await encoder.aclose()
            raise
        if self._closed:
            await encoder.aclose()
            return
        self._spares[key] = encoder
        while len(self._spares) > self.max_spares:
            _, oldest = self._spares.popitem(last=False)
            await oldest.aclose()
