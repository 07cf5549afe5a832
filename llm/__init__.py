"""Streaming LLM clients over aiohttp (and an embedded llama.cpp model).

See :func:`create_client`. A stream is an :class:`LLMStream` of text deltas
whose ``finish_reason`` says, once exhausted, whether the answer is complete;
:class:`PortalHolder` and :func:`iterate_in_portal` are the one sync bridge of
the project (``pipeline`` uses them too).
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
    PromptBlockedError,
)
from ._factory import create_client
from ._finish import explain_finish_reason
from ._options import ClientOptions
from ._sse import SSEDecoder, SSEEvent
from ._stream import LLMStream
from ._sync import PortalHolder, iterate_in_portal
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
    "LLMStream",
    "LLMStreamError",
    "LLMTimeoutError",
    "ModelNotFoundError",
    "ModelResponse",
    "PortalHolder",
    "PromptBlockedError",
    "SSEDecoder",
    "SSEEvent",
    "StreamChunk",
    "StreamStats",
    "create_client",
    "explain_finish_reason",
    "iterate_in_portal",
]
