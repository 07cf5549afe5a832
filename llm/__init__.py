"""Streaming LLM clients over httpx (and an embedded llama.cpp model).

See :func:`create_client`.
"""

from __future__ import annotations

from ._errors import (
    LLMAuthError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMStreamError,
    LLMTimeoutError,
    ModelNotFoundError,
)

__all__ = [
    "LLMAuthError",
    "LLMConnectionError",
    "LLMError",
    "LLMRateLimitError",
    "LLMResponseError",
    "LLMStreamError",
    "LLMTimeoutError",
    "ModelNotFoundError",
]
