"""The streaming core: sentence buffer, orchestration, CLI and daemon.

``pipeline`` composes :mod:`llm`, :mod:`tts` and :mod:`output`; they never
import it.
"""

from __future__ import annotations

from ._cleanup import clean_for_speech
from ._config import StreamingConfig
from ._events import (
    AudioReady,
    ProgressEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    SegmentQueued,
    TextDelta,
    event_to_dict,
)
from ._segment import Segment
from ._sentence_buffer import SentenceBuffer
from ._sentences import split_sentences

__all__ = [
    "AudioReady",
    "ProgressEvent",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "Segment",
    "SegmentQueued",
    "SentenceBuffer",
    "StreamingConfig",
    "TextDelta",
    "clean_for_speech",
    "event_to_dict",
    "split_sentences",
]
