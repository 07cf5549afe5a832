"""The streaming core: sentence buffer, orchestration, CLI and daemon.

``pipeline`` composes :mod:`llm`, :mod:`tts` and :mod:`output`; they never
import it.
"""

from __future__ import annotations

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

__all__ = [
    "AudioReady",
    "ProgressEvent",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "Segment",
    "SegmentQueued",
    "StreamingConfig",
    "TextDelta",
    "event_to_dict",
]
