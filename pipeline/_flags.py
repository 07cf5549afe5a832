"""Command-line options shared by several subcommands (``ask``, ``chat``, ``serve``)."""

from __future__ import annotations

import argparse

from ._settings import DEFAULTS, flag_name


def add_llm_arguments(p: argparse.ArgumentParser) -> None:
    """``--llm --model --base-url --first-token-timeout --idle-timeout``; each ``dest``
    is the settings key (see :mod:`pipeline._settings`); unset flags are ``None``."""
    p.add_argument("--llm", help="LLM provider: local (default), ollama, openai, anthropic, gemini")
    p.add_argument("--model", help="model name (or GGUF path for --llm local)")
    p.add_argument("--base-url", dest="base_url",
                   help="server URL (ollama, openai-compatible, anthropic, gemini)")
    for key, what in (("first_token_timeout", "request sent -> first token"),
                      ("idle_timeout", "longest silence between two tokens")):
        p.add_argument(flag_name(key), dest=key, type=seconds, metavar="SECONDS",
                       help=f"LLM timeout: {what} (seconds, or 'none'; default {DEFAULTS[key]:g})")


def seconds(text: str) -> float | str:
    """argparse type of a timeout: a number of seconds > 0, or ``"none"`` (which the
    resolver reads as "no timeout"; a ``None`` flag would mean "not given")."""
    if text.strip().lower() in ("none", "off"):
        return "none"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type of a count that must be at least 1 (``--max-tokens``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value
