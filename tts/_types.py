"""Result types of the TTS seam.

The shapes follow livekit-agents' ``SynthesizedAudio``: one frozen object per
synthesized segment, carrying the encoded audio bytes and what is known of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Audio container/codec names used across speakstream (also file extensions).
AUDIO_FORMATS = ("wav", "mp3", "ogg", "opus", "flac", "pcm")


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
        format: one of :data:`AUDIO_FORMATS`; always what ``data`` really is
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
        text: the text that was synthesized.
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
