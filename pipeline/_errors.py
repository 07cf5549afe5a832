"""Errors of the ``pipeline`` package, and the speakstream-wide ``SpeakStreamError``.

``llm`` and ``tts`` import nothing of speakstream and ``output`` only ``tts``
types, so the project cannot have a single root class without breaking that
layering. Instead each package has its own root and :data:`SpeakStreamError`
is the *tuple* of the four roots, usable wherever a class is in ``except``::

    SpeakStreamError = (LLMError, TTSError, OutputError, PipelineError)

    LLMError        llm/_errors.py      (connection, timeout, model, auth, stream...)
    TTSError        tts/_errors.py      (EngineUnavailableError, SynthesisError)
    OutputError     output/_errors.py   (FormatError, NoAudioDeviceError, ...)
    PipelineError   this module

    try:
        ...
    except pipeline.SpeakStreamError as exc:
        ...

(``isinstance(exc, SpeakStreamError)`` works too; ``raise SpeakStreamError``
does not: raise one of the roots.)
"""

from __future__ import annotations

from llm import LLMError
from output import OutputError
from tts import TTSError


class PipelineError(Exception):
    """Root of the errors raised by :mod:`pipeline` itself."""


SpeakStreamError: tuple[type[Exception], ...] = (LLMError, TTSError, OutputError, PipelineError)
