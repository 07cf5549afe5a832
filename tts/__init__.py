"""Text-to-speech engines behind one seam: ``await engine.synthesize(text)``.

See :class:`TTSEngine` and :func:`create_engine`. Engines: EdgeEngine (online),
PiperEngine, Pyttsx3Engine, EspeakEngine (offline), FallbackEngine (a chain).
"""

from __future__ import annotations

from ._base import TTSEngine
from ._edge import EdgeEngine
from ._errors import AllEnginesFailedError, EngineUnavailableError, SynthesisError, TTSError
from ._espeak import EspeakEngine
from ._factory import create_engine
from ._fallback import FallbackEngine
from ._piper import PiperEngine
from ._pyttsx3 import Pyttsx3Engine
from ._types import AUDIO_FORMATS, SynthesizedAudio, Voice, WordBoundary

__all__ = [
    "AUDIO_FORMATS",
    "AllEnginesFailedError",
    "EdgeEngine",
    "EngineUnavailableError",
    "EspeakEngine",
    "FallbackEngine",
    "PiperEngine",
    "Pyttsx3Engine",
    "SynthesisError",
    "SynthesizedAudio",
    "TTSEngine",
    "TTSError",
    "Voice",
    "WordBoundary",
    "create_engine",
]
