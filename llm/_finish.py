"""Why a model stopped: one small vocabulary over the providers' own values.

- ``"stop"``, a complete answer: Ollama ``done_reason`` ``stop``;
  OpenAI-compatible (and llama.cpp) ``finish_reason`` ``stop``; Anthropic
  ``stop_reason`` ``end_turn``, ``stop_sequence``; Gemini ``finishReason``
  ``STOP``.
- ``"length"``, cut off at the token limit: Ollama ``length``; OpenAI
  ``length``; Anthropic ``max_tokens``, ``model_context_window_exceeded``;
  Gemini ``MAX_TOKENS``.
- ``"content_filter"``: OpenAI ``content_filter``; Gemini ``SAFETY``,
  ``RECITATION``, ``BLOCKLIST``, ``PROHIBITED_CONTENT``, ``SPII``,
  ``IMAGE_SAFETY``.
- ``"refusal"``: Anthropic ``refusal``.

Any other value (``tool_calls``, ``pause_turn``, ``OTHER``, Ollama's
``load``...) is kept as the provider sent it. Sources: Ollama ``docs/api.md``
(``done_reason``); OpenAI API reference, chat completion chunk
(``choices[].finish_reason``); Anthropic Messages API, "Handling stop
reasons"; Gemini API reference, ``Candidate.FinishReason``.
"""

from __future__ import annotations

STOP = "stop"
LENGTH = "length"
CONTENT_FILTER = "content_filter"
REFUSAL = "refusal"

_OPENAI = {"stop": STOP, "length": LENGTH, "content_filter": CONTENT_FILTER}
_NATIVE: dict[str, dict[str, str]] = {
    "ollama": {"stop": STOP, "length": LENGTH},
    "openai": _OPENAI,
    "local": _OPENAI,  # llama-cpp-python's create_chat_completion chunks
    "anthropic": {
        "end_turn": STOP,
        "stop_sequence": STOP,
        "max_tokens": LENGTH,
        "model_context_window_exceeded": LENGTH,
        "refusal": REFUSAL,
    },
    "gemini": {
        "STOP": STOP,
        "MAX_TOKENS": LENGTH,
        "SAFETY": CONTENT_FILTER,
        "RECITATION": CONTENT_FILTER,
        "BLOCKLIST": CONTENT_FILTER,
        "PROHIBITED_CONTENT": CONTENT_FILTER,
        "SPII": CONTENT_FILTER,
        "IMAGE_SAFETY": CONTENT_FILTER,
    },
}

_EXPLAINED = {
    LENGTH: "the answer was cut off: max tokens reached",
    CONTENT_FILTER: "the answer was stopped by the provider's content filter",
    REFUSAL: "the model refused to answer",
}


def normalize_finish_reason(provider: str, raw: str) -> str:
    """Our name for ``provider``'s stop value ``raw`` (``raw`` itself if unmapped)."""
    return _NATIVE.get(provider, {}).get(raw, raw)


def explain_finish_reason(finish_reason: str | None) -> str | None:
    """One line for a user when an answer did not end normally, else ``None``.

    Args:
        finish_reason: a :attr:`~llm.StreamStats.finish_reason` value.

    Returns:
        ``None`` for ``"stop"`` (a complete answer) and for ``None`` (not
        reported); otherwise a lower-case sentence without a final period,
        e.g. ``"the answer was cut off: max tokens reached"`` for
        ``"length"``. Cut-off answers must never look complete: the CLI
        prints this as a warning.
    """
    if finish_reason is None or finish_reason == STOP:
        return None
    return _EXPLAINED.get(
        finish_reason, f"the answer ended early (finish reason {finish_reason!r})"
    )
