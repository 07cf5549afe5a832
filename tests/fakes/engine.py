"""FakeEngine: a TTS engine with known, controllable behaviour for timing-sensitive tests.

It sits behind the real :class:`tts.TTSEngine` seam (so the base class's
validation and empty-audio checks apply) and produces *real* audio:

* **Audio**: a valid WAV, 16-bit mono PCM at ``sample_rate`` (22050 Hz by
  default), a quiet 440 Hz tone (amplitude ``amplitude``/32767) so that
  playback tests hear something. Its length is a known function of the text:
  ``duration_s = max(min_duration_s, seconds_per_char * len(text))`` rounded to
  whole samples; ``SynthesizedAudio.duration_s`` is exactly
  ``frames / sample_rate``.
* **Words**: one :class:`tts.WordBoundary` per whitespace token, laid end to end
  proportionally to their character counts (so subtitle code has timings).
* **Latency**: ``latency(text) -> seconds`` awaited with a real
  ``asyncio.sleep`` before the audio is returned (default: no delay).
* **Gates**: ``gates={index: asyncio.Event}``: call number ``index`` (0-based, in
  call order) waits until its event is set before returning. Use them to prove
  ordering/causality without timing assertions. ``started[index]`` is an
  ``asyncio.Event`` set the moment call ``index`` starts.
* **Failure injection**: ``fail_on={key: exception}`` where ``key`` is a call
  index (int) or a predicate ``text -> bool``; the exception instance is raised
  from that call (after its latency and gate). Raise ``tts.SynthesisError`` /
  ``tts.EngineUnavailableError`` to exercise fallbacks.
* **Retries**: ``retry=RetryPolicy(...)`` (default: one attempt, no retry, so
  an injected failure is seen exactly once unless a test asks for retries).
* **Record**: ``calls`` lists a :class:`FakeCall` per call with the index, text,
  prosody arguments, ``start``/``end`` ``time.monotonic()`` seconds and the
  outcome (``"ok"``, ``"error"``, ``"cancelled"``; ``"running"`` while in progress).

Example::

    engine = FakeEngine(seconds_per_char=0.01, latency=lambda text: 0.05,
                        fail_on={2: SynthesisError("boom", engine="fake")})
    audio = await engine.synthesize("Hello.")   # 0.06 s of tone, WAV bytes
"""

from __future__ import annotations

import asyncio
import functools
import math
import struct
import time
from array import array
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field

from tts import (
    AudioChunk,
    RetryPolicy,
    SynthesizedAudio,
    TTSEngine,
    Voice,
    WordBoundary,
    pcm_to_wav,
)

FailKey = int | Callable[[str], bool]


@dataclass
class FakeCall:
    """One ``synthesize`` call as the fake saw it (times are ``time.monotonic()`` seconds)."""

    index: int
    text: str
    voice: str | None
    rate: float | None
    volume: float | None
    pitch: float | None
    start: float
    end: float | None = None
    outcome: str = "running"
    error: BaseException | None = field(default=None, repr=False)


@functools.lru_cache(maxsize=256)
def tone_wav(duration_s: float, *, sample_rate: int = 22050, amplitude: int = 3000) -> bytes:
    """A 440 Hz 16-bit mono WAV of ``round(duration_s * sample_rate)`` frames.

    Cached: the same arguments give the same bytes, and computing the samples
    in Python costs about 1 ms per 0.05 s of audio, CPU that a benchmark's
    event loop would otherwise spend on the fake engine instead of the code
    it measures (a real engine makes its samples in a thread or a process).
    """
    frames = max(1, round(duration_s * sample_rate))
    samples = array(
        "h",
        (int(amplitude * math.sin(2 * math.pi * 440 * i / sample_rate)) for i in range(frames)),
    )
    if struct.pack("=h", 1) != struct.pack("<h", 1):  # pragma: no cover - big-endian hosts
        samples.byteswap()
    return pcm_to_wav(samples.tobytes(), sample_rate=sample_rate)


class FakeEngine(TTSEngine):
    """A deterministic engine for tests and benchmarks; see the module docstring."""

    def __init__(
        self,
        *,
        name: str = "fake",
        seconds_per_char: float = 0.01,
        min_duration_s: float = 0.05,
        sample_rate: int = 22050,
        amplitude: int = 3000,
        latency: Callable[[str], float] = lambda text: 0.0,
        gates: Mapping[int, asyncio.Event] | None = None,
        fail_on: Mapping[FailKey, BaseException] | None = None,
        voices: list[Voice] | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if seconds_per_char < 0 or min_duration_s <= 0:
            raise ValueError(
                f"seconds_per_char must be >= 0 and min_duration_s > 0, got "
                f"{seconds_per_char!r} and {min_duration_s!r}"
            )
        self.name = name
        self.retry = retry or RetryPolicy(attempts=1)
        self.seconds_per_char = seconds_per_char
        self.min_duration_s = min_duration_s
        self.sample_rate = sample_rate
        self.amplitude = amplitude
        self.latency = latency
        self.gates = dict(gates or {})
        self.fail_on = dict(fail_on or {})
        self.voices = list(voices or [])
        self.calls: list[FakeCall] = []
        self.started: dict[int, asyncio.Event] = {}
        self.closed_count = 0

    def duration_for(self, text: str) -> float:
        """The duration (seconds) the audio for ``text`` will have, before sample rounding."""
        return max(self.min_duration_s, self.seconds_per_char * len(text))

    def _failure_for(self, index: int, text: str) -> BaseException | None:
        for key, exc in self.fail_on.items():
            if isinstance(key, int):
                if key == index:
                    return exc
            elif key(text):
                return exc
        return None

    async def _synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> SynthesizedAudio:
        index = len(self.calls)
        call = FakeCall(index, text, voice, rate, volume, pitch, start=time.monotonic())
        self.calls.append(call)
        self.started.setdefault(index, asyncio.Event()).set()
        try:
            delay = self.latency(text)
            if delay > 0:
                await asyncio.sleep(delay)
            gate = self.gates.get(index)
            if gate is not None:
                await gate.wait()
            failure = self._failure_for(index, text)
            if failure is not None:
                raise failure
            frames = max(1, round(self.duration_for(text) * self.sample_rate))
            data = tone_wav(
                frames / self.sample_rate, sample_rate=self.sample_rate, amplitude=self.amplitude
            )
            duration = frames / self.sample_rate
        except asyncio.CancelledError:
            call.outcome, call.end = "cancelled", time.monotonic()
            raise
        except BaseException as exc:
            call.outcome, call.error, call.end = "error", exc, time.monotonic()
            raise
        call.outcome, call.end = "ok", time.monotonic()
        return SynthesizedAudio(
            data=data,
            format="wav",
            sample_rate=self.sample_rate,
            channels=1,
            duration_s=duration,
            words=_spread_words(text, duration),
            engine=self.name,
            voice=voice,
            text=text,
        )

    async def list_voices(self) -> list[Voice]:
        return list(self.voices)

    async def aclose(self) -> None:
        self.closed_count += 1
        await super().aclose()


def _spread_words(text: str, duration: float) -> tuple[WordBoundary, ...]:
    words = text.split()
    total = sum(len(w) for w in words)
    result, offset = [], 0.0
    for word in words:
        share = duration * len(word) / total
        result.append(WordBoundary(word, offset, share))
        offset += share
    return tuple(result)


class StreamingFakeEngine(FakeEngine):
    """A FakeEngine that streams: each call's tone comes as ``pieces`` PCM chunks.

    * ``hold``: ``{call_index: asyncio.Event}``: after its FIRST chunk, that
      call waits for the event before the rest (proves a consumer got the
      first chunk while the engine was still working).
    * ``fail_mid``: ``{call_index: exception}``: raised after the first chunk
      of that call (a failure after audio was handed out).

    The whole audio equals the FakeEngine's (same tone, same words).
    """

    def __init__(
        self,
        *,
        pieces: int = 3,
        hold: Mapping[int, asyncio.Event] | None = None,
        fail_mid: Mapping[int, BaseException] | None = None,
        **kwargs: object,
    ) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        if pieces < 1:
            raise ValueError(f"pieces must be >= 1, got {pieces!r}")
        self.pieces = pieces
        self.hold = dict(hold or {})
        self.fail_mid = dict(fail_mid or {})
        #: chunks handed out, per call index
        self.sent: dict[int, int] = {}

    async def _stream(  # type: ignore[override]
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> AsyncIterator[AudioChunk | SynthesizedAudio]:
        index = len(self.calls)
        audio = await self._synthesize(text, voice=voice, rate=rate, volume=volume, pitch=pitch)
        pcm = audio.data[44:]  # tone_wav writes a canonical 44-byte header
        frames = len(pcm) // 2
        bounds = [2 * (frames * k // self.pieces) for k in range(self.pieces + 1)]
        self.sent[index] = 0
        for k in range(self.pieces):
            piece = pcm[bounds[k] : bounds[k + 1]]
            if piece:
                yield AudioChunk(piece, "pcm", audio.sample_rate, 1, engine=self.name,
                                 voice=voice, words=audio.words if k == 0 else ())
                self.sent[index] += 1
            if k == 0:
                gate = self.hold.get(index)
                if gate is not None:
                    await gate.wait()
                failure = self.fail_mid.get(index)
                if failure is not None:
                    raise failure
