"""Text-to-speech engines behind one seam: ``await engine.synthesize(text)``.

See :class:`TTSEngine` and :func:`create_engine`.
"""

from __future__ import annotations

from ._base import TTSEngine
from ._errors import EngineUnavailableError, SynthesisError, TTSError
from ._espeak import EspeakEngine
from ._types import AUDIO_FORMATS, SynthesizedAudio, Voice, WordBoundary

__all__ = [
    "AUDIO_FORMATS",
    "EngineUnavailableError",
    "EspeakEngine",
    "SynthesisError",
    "SynthesizedAudio",
    "TTSEngine",
    "TTSError",
    "Voice",
    "WordBoundary",
]
