"""Result types of the TTS seam.

The shapes follow livekit-agents' ``SynthesizedAudio``: one frozen object per
synthesized segment, carrying the encoded audio bytes and what is known of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WordBoundary:
    """One spoken word's position inside a :class:`SynthesizedAudio`.

    Attributes:
        text: the word as the engine reported it (characters).
        offset_s: start of the word from the start of the audio, in seconds.
        duration_s: how long the word lasts, in seconds.
    """

    text: str
    offset_s: float
    duration_s: float


@dataclass(frozen=True)
class SynthesizedAudio:
    """The audio for one segment of text.

    Attributes:
        data: the encoded audio bytes (a whole file in ``format``; raw 16-bit
            little-endian samples for ``"pcm"``).
        format: a name of :data:`tts.AUDIO_FORMATS`; always what ``data`` really is
            (edge-tts gives MP3, never labelled WAV).
        sample_rate: samples per second (Hz).
        channels: 1 for mono, 2 for stereo.
        duration_s: length of the audio in seconds, measured from the audio
            itself (never the request latency).
        words: word timings where the engine reports or estimates them, in
            order; empty when unknown.
        engine: name of the engine that produced it (``"espeak"``,
            ``"pyttsx3"``, ``"edge"``, ``"piper"``, ...). With a fallback
            chain this is the engine that actually made the audio.
        voice: the voice used, as the engine names it, or ``None`` for the
            engine's default.
        text: the text that was synthesized: what was actually spoken, after
            :func:`tts.sanitize_text`.
    """

    data: bytes
    format: str
    sample_rate: int
    channels: int
    duration_s: float
    words: tuple[WordBoundary, ...] = field(default=())
    engine: str = ""
    voice: str | None = None
    text: str = ""


@dataclass(frozen=True)
class AudioChunk:
    """A piece of one segment's audio, as an engine produces it (see :meth:`TTSEngine.stream`).

    Chunks of a segment follow each other without gaps or overlap and share
    ``format``, ``sample_rate`` and ``channels``; joined, they are the
    segment's audio.

    Attributes:
        data: the bytes (never empty): for ``"pcm"`` whole frames of 16-bit
            little-endian samples, channels interleaved; for an encoded format
            (edge-tts: ``"mp3"``) a piece of that stream, not necessarily cut
            at a frame boundary.
        format: ``"pcm"`` or the encoded stream's name in :data:`tts.AUDIO_FORMATS`.
        sample_rate: samples per second (Hz).
        channels: 1 mono, 2 stereo.
        engine: the engine that made it (with a fallback chain: the one that
            actually spoke).
        voice: the voice used, ``None`` for the engine's default.
        words: word timings reported with this chunk, offsets in seconds from
            the start of the *segment* (usually empty: most engines report
            none, and the whole segment's audio carries the estimates).
    """

    data: bytes
    format: str
    sample_rate: int
    channels: int
    engine: str = ""
    voice: str | None = None
    words: tuple[WordBoundary, ...] = field(default=())

    @property
    def duration_s(self) -> float | None:
        """Length in seconds for ``"pcm"`` (frames / sample rate); ``None`` for
        encoded chunks, whose length is only known once decoded."""
        if self.format != "pcm" or not self.sample_rate or not self.channels:
            return None
        return len(self.data) / (2 * self.channels) / self.sample_rate


@dataclass(frozen=True)
class RetryPolicy:
    """How :class:`TTSEngine` retries a segment (one policy for every engine).

    A :class:`TTSError` with ``retryable=True`` (a timeout, a dropped
    connection, a restarted worker) is retried on the same engine while no
    audio of the segment has been handed out yet, waiting ``backoff_s``,
    then ``2 * backoff_s``, ... between attempts. After the first chunk the
    error is raised: audio already played cannot be taken back (livekit-agents
    ``ChunkedStream`` follows the same rule).

    Attributes:
        attempts: tries per segment in all, 1-10 (1 = no retry).
        backoff_s: seconds before the second try, doubled each time, 0-60.

    Raises:
        ValueError: a value out of range (the message names it).
    """

    attempts: int = 2
    backoff_s: float = 0.2

    def __post_init__(self) -> None:
        if (
            isinstance(self.attempts, bool)
            or not isinstance(self.attempts, int)
            or not 1 <= self.attempts <= 10
        ):
            raise ValueError(f"attempts must be an integer in [1, 10], got {self.attempts!r}")
        if (
            isinstance(self.backoff_s, bool)
            or not isinstance(self.backoff_s, (int, float))
            or not math.isfinite(self.backoff_s)
            or not 0 <= self.backoff_s <= 60
        ):
            raise ValueError(f"backoff_s must be in [0, 60] seconds, got {self.backoff_s!r}")

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2, 3, ...)."""
        return float(self.backoff_s) * 2 ** (attempt - 2)


@dataclass(frozen=True)
class Voice:
    """A voice an engine offers.

    Attributes:
        id: the identifier to pass as ``voice=`` to ``synthesize``.
        name: a human-readable name.
        language: BCP 47 tag such as ``"en-US"`` where known, else ``""``.
        gender: ``"female"``, ``"male"`` or ``""`` when unknown.
        engine: the engine offering it.
    """

    id: str
    name: str
    language: str = ""
    gender: str = ""
    engine: str = ""
