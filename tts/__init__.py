"""Text-to-speech engines behind one seam: ``engine.stream(text)`` / ``engine.synthesize(text)``.

See :class:`TTSEngine`, :class:`SynthesisStream` and :func:`create_engine`.
Engines: EdgeEngine (online), PiperEngine, Pyttsx3Engine, EspeakEngine
(offline), FallbackEngine (a chain). :data:`AUDIO_FORMATS` is speakstream's one
table of audio formats; :func:`pcm_to_wav` wraps raw samples in a WAV header.
"""

from __future__ import annotations

from ._audio import pcm_to_wav
from ._base import SynthesisStream, TTSEngine
from ._edge import EdgeEngine
from ._errors import AllEnginesFailedError, EngineUnavailableError, SynthesisError, TTSError
from ._espeak import EspeakEngine
from ._factory import create_engine
from ._fallback import FallbackEngine
from ._formats import AUDIO_FORMATS, AudioFormat
from ._piper import PiperEngine, find_bundled_model
from ._pyttsx3 import Pyttsx3Engine
from ._text import sanitize_text
from ._types import AudioChunk, RetryPolicy, SynthesizedAudio, Voice, WordBoundary

__all__ = [
    "AUDIO_FORMATS",
    "AllEnginesFailedError",
    "AudioChunk",
    "AudioFormat",
    "EdgeEngine",
    "EngineUnavailableError",
    "EspeakEngine",
    "FallbackEngine",
    "PiperEngine",
    "Pyttsx3Engine",
    "RetryPolicy",
    "SynthesisError",
    "SynthesisStream",
    "SynthesizedAudio",
    "TTSEngine",
    "TTSError",
    "Voice",
    "WordBoundary",
    "create_engine",
    "find_bundled_model",
    "pcm_to_wav",
    "sanitize_text",
]
