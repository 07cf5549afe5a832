"""Streaming LLM clients over httpx (and an embedded llama.cpp model).

See :func:`create_client`.
"""

from __future__ import annotations

from ._base import LLMClient
from ._conversation import Conversation
from ._errors import (
    LLMAuthError,
    LLMConnectionError,
    LLMDependencyError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMStreamError,
    LLMTimeoutError,
    ModelNotFoundError,
)
from ._factory import create_client
from ._options import ClientOptions
from ._sse import SSEDecoder, SSEEvent
from ._types import ModelResponse, StreamChunk, StreamStats

__all__ = [
    "ClientOptions",
    "Conversation",
    "LLMAuthError",
    "LLMClient",
    "LLMConnectionError",
    "LLMDependencyError",
    "LLMError",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMStreamError",
    "LLMTimeoutError",
    "ModelNotFoundError",
    "ModelResponse",
    "SSEDecoder",
    "SSEEvent",
    "StreamChunk",
    "StreamStats",
    "create_client",
]
