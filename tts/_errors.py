"""Errors of the ``tts`` package.

The tree (``tts`` imports nothing else of speakstream, so its root is
``TTSError``; ``pipeline.SpeakStreamError`` groups it with the other roots)::

    TTSError                      any failure to turn text into audio
    ├── EngineUnavailableError    engine not installed, no device, no network
    └── SynthesisError            the engine ran but gave no usable audio
        └── AllEnginesFailedError every engine of a FallbackEngine failed

Vendor exceptions (aiohttp, edge_tts.exceptions, pyttsx3/OSError, subprocess
failures) are mapped once, at the edge, with ``raise ... from exc``.
"""

from __future__ import annotations


class TTSError(Exception):
    """Root of every error raised by :mod:`tts`.

    Attributes:
        engine: name of the engine that failed (``""`` when not engine-specific).
        retryable: ``True`` when trying the same call again may succeed
            (e.g. a dropped connection), ``False`` for permanent failures.
    """

    def __init__(self, message: str, *, engine: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.engine = engine
        self.retryable = retryable


class EngineUnavailableError(TTSError):
    """The engine cannot be used here: not installed, no network, no device."""


class SynthesisError(TTSError):
    """The engine was available but produced no usable audio for ``text``.

    Attributes:
        text: the segment text that failed (characters, as given).
    """

    def __init__(
        self, message: str, *, engine: str = "", text: str = "", retryable: bool = False
    ) -> None:
        super().__init__(message, engine=engine, retryable=retryable)
        self.text = text


class AllEnginesFailedError(SynthesisError):
    """Every engine of a :class:`~tts.FallbackEngine` failed on one segment.

    Attributes:
        failures: ``(engine name, error)`` for every attempt, in order; the
            last one is also ``__cause__``.
    """

    def __init__(
        self, message: str, *, text: str, failures: tuple[tuple[str, TTSError], ...]
    ) -> None:
        super().__init__(message, engine="fallback", text=text, retryable=False)
        self.failures = failures
