"""The streaming core: sentence buffer, orchestration, CLI and daemon.

``pipeline`` composes :mod:`llm`, :mod:`tts` and :mod:`output`; they never
import it. Its ``__all__`` is the library surface; the daemon's server and
client names are in :mod:`pipeline.daemon`.
"""

from __future__ import annotations

from ._cleanup import clean_for_speech
from ._config import StreamingConfig
from ._errors import ConfigError, PipelineError, SpeakStreamError
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
from ._pause import PauseControl
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
    "ConfigError",
    "PauseControl",
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
    "create_streaming_pipeline",
    "event_to_dict",
    "split_sentences",
    "stream_chat_to_audio",
]
