"""Text-to-speech engines behind one seam: ``await engine.synthesize(text)``.

See :class:`TTSEngine` and :func:`create_engine`.
"""

from __future__ import annotations

from ._base import TTSEngine
from ._errors import AllEnginesFailedError, EngineUnavailableError, SynthesisError, TTSError
from ._espeak import EspeakEngine
from ._fallback import FallbackEngine
from ._pyttsx3 import Pyttsx3Engine
from ._types import AUDIO_FORMATS, SynthesizedAudio, Voice, WordBoundary

__all__ = [
    "AUDIO_FORMATS",
    "AllEnginesFailedError",
    "EngineUnavailableError",
    "EspeakEngine",
    "FallbackEngine",
    "Pyttsx3Engine",
    "SynthesisError",
    "SynthesizedAudio",
    "TTSEngine",
    "TTSError",
    "Voice",
    "WordBoundary",
]
