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
    ├── ConfigError         a setting is unknown, unparsable, out of range or does not apply
    │                       (also a ValueError)
    └── RayJobError         a narration job's Ray task failed for good (``narrate --ray``)

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


class ConfigError(PipelineError, ValueError):
    """A setting (flag, config file, environment variable) is unknown, cannot be
    read, is out of range or does not apply; the message names it and where it
    came from. Also a ``ValueError``, the library's error for bad options.

    Attributes:
        key: the setting's name (``"workers"``, ``"base_url"``...), ``""`` when
            the error is not about one key (an unreadable file).
    """

    def __init__(self, message: str, *, key: str = "") -> None:
        super().__init__(message)
        self.key = key


class RayJobError(PipelineError):
    """A Ray task of a narration job failed for a reason other than narration (a
    narration error is in the item's result instead), or the cluster has no CPU.

    Attributes:
        item: the item's id (``""`` when not about one item).
    """

    def __init__(self, message: str, *, item: str) -> None:
        super().__init__(message)
        self.item = item


SpeakStreamError: tuple[type[Exception], ...] = (LLMError, TTSError, OutputError, PipelineError)
