"""Errors of the ``llm`` package.

The tree (``llm`` imports nothing else of speakstream, so its root is
``LLMError``; ``pipeline.SpeakStreamError`` groups it with the other roots)::

    LLMError                    any failure talking to a model
    ├── LLMConnectionError      could not connect / connection refused (retryable)
    ├── LLMTimeoutError         connect, time-to-first-token or idle timeout
    ├── ModelNotFoundError      HTTP 404 naming the model, no GGUF file
    ├── LLMAuthError            HTTP 401/403, or a required API key is missing
    │                           (raised by create_client, naming the variable)
    ├── LLMRateLimitError       HTTP 429 (retryable)
    ├── LLMResponseError        any other HTTP error status before the stream,
    │                           e.g. a 404 at a wrong base URL (with a hint)
    ├── PromptBlockedError      the provider refused the prompt itself (Gemini
    │                           promptFeedback.blockReason); never retried
    ├── LLMDependencyError      an optional dependency (llama-cpp-python) is missing
    └── LLMStreamError          the stream broke after it started (error object
                                inside the stream, dropped connection, bad JSON,
                                a malformed record)

Every error carries ``provider``, ``status_code`` (``None`` when not HTTP),
``retryable``, ``retry_after`` (seconds the server asked to wait, from
``Retry-After``, else ``None``) and ``partial_text``: all text already yielded
to the caller before the failure (``""`` when it failed before the first
token). aiohttp and llama-cpp exceptions are translated once, at the edge, with
``raise ... from exc``.

A stream that ENDS normally is no error, even when the answer was cut off
(token limit, content filter, refusal): that is reported as the stream's
``finish_reason`` (see :class:`~llm.LLMStream`).
"""

from __future__ import annotations


class LLMError(Exception):
    """Root of every error raised by :mod:`llm`.

    Attributes:
        provider: ``"ollama"``, ``"openai"``, ``"anthropic"``, ``"gemini"`` or ``"local"``.
        status_code: the HTTP status when the server answered with one, else ``None``.
        retryable: ``True`` when the same request may succeed if sent again.
        retry_after: seconds the server asked to wait before retrying
            (HTTP ``Retry-After`` / ``retry-after-ms`` on 429/503/529), else ``None``.
        partial_text: the text deltas yielded before the failure, concatenated.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "",
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        partial_text: str = "",
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after
        self.partial_text = partial_text


class LLMConnectionError(LLMError):
    """The server could not be reached (refused, DNS, reset before any reply)."""


class LLMTimeoutError(LLMError):
    """A timeout fired: connect, time to first token, or idle time between chunks.

    Attributes:
        phase: ``"connect"``, ``"first_token"`` or ``"idle"``.
    """

    def __init__(self, message: str, *, phase: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.phase = phase


class ModelNotFoundError(LLMError):
    """The requested model does not exist on the server (or the GGUF file is missing)."""


class LLMAuthError(LLMError):
    """The server refused the credentials (HTTP 401/403), or none were given.

    A missing required key is raised by :func:`~llm.create_client` itself,
    before any connection, with a message naming the environment variable
    to set (``ANTHROPIC_API_KEY``, ``GEMINI_API_KEY``, ``OPENAI_API_KEY``).
    """


class LLMRateLimitError(LLMError):
    """The server asked us to slow down (HTTP 429)."""


class LLMResponseError(LLMError):
    """The server answered with an HTTP error status not covered above."""


class PromptBlockedError(LLMError):
    """The provider refused the prompt itself, before generating anything.

    Gemini answers a blocked prompt with ``promptFeedback.blockReason`` and no
    candidates. Never retryable (the same prompt is blocked again).

    Attributes:
        reason: the provider's block reason, e.g. ``"SAFETY"``, ``"OTHER"``.
    """

    def __init__(self, message: str, *, reason: str = "", **kwargs: object) -> None:
        super().__init__(message, **kwargs)  # type: ignore[arg-type]
        self.reason = reason


class LLMStreamError(LLMError):
    """The stream failed after it had started; ``partial_text`` holds what arrived."""


class LLMDependencyError(LLMError):
    """An optional dependency of a provider is not installed.

    The message says what to install, e.g. ``pip install 'speakstream[local]'``
    for the ``"local"`` provider (llama-cpp-python).
    """
