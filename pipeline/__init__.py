"""The streaming core: sentence buffer, orchestration, CLI and daemon.

``pipeline`` composes :mod:`llm`, :mod:`tts` and :mod:`output`; they never
import it.
"""

from __future__ import annotations

from ._cleanup import clean_for_speech
from ._client import DaemonClient, DaemonError
from ._config import StreamingConfig
from ._daemon import DaemonSettings, create_app, serve
from ._errors import NarrationError, PipelineError, SpeakStreamError
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
from ._pipeline import (
    StreamingPipeline,
    astream_chat_to_audio,
    create_streaming_pipeline,
    stream_chat_to_audio,
)
from ._segment import Segment
from ._sentence_buffer import SentenceBuffer, split_sentences

__all__ = [
    "AudioReady",
    "DaemonClient",
    "DaemonError",
    "DaemonSettings",
    "NarrationError",
    "PipelineError",
    "ProgressEvent",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "Segment",
    "SegmentQueued",
    "SentenceBuffer",
    "SpeakStreamError",
    "StreamingConfig",
    "StreamingPipeline",
    "TextDelta",
    "astream_chat_to_audio",
    "clean_for_speech",
    "create_app",
    "create_streaming_pipeline",
    "event_to_dict",
    "serve",
    "split_sentences",
    "stream_chat_to_audio",
]
