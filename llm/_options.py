"""Client options, validated once (keyword-only, ``ValueError`` naming option and range)."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields


def _check_seconds(name: str, value: object, *, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        allowed = "a number of seconds > 0" + (" or None" if allow_none else "")
        raise ValueError(f"{name}={value!r} is invalid: expected {allowed}")


@dataclass(frozen=True, kw_only=True)
class ClientOptions:
    """Timeouts and retry policy shared by every provider.

    All durations are in seconds (float); ``None`` disables a timeout.

    Attributes:
        connect_timeout: TCP/TLS connect (and pool) timeout; ``LLMTimeoutError``
            ``phase="connect"``, retried like a connection error. Default 10.
        first_token_timeout: from sending the request to the first output: a
            text delta, or reasoning ("thinking") of a reasoning model (covers
            model loading and prompt processing); ``phase="first_token"``.
            Default 120.
        idle_timeout: longest gap between two outputs (text or reasoning) once
            output flows; a stalled stream fails with ``phase="idle"`` and keeps
            ``partial_text``. Keep-alive comments and pings do not reset it.
            Default 60.
        max_retries: extra attempts after a retryable failure (connect error,
            connect timeout, HTTP 429/503/529, overloaded error event) that
            happened before the first text delta; never after text was
            yielded. A ``Retry-After`` from the server (up to 30 s) is waited
            for instead of a shorter back-off. 0..10, default 2.
        retry_backoff: first back-off delay in seconds, doubled per retry
            (0 allowed: retry at once). Default 0.5.
    """

    connect_timeout: float | None = 10.0
    first_token_timeout: float | None = 120.0
    idle_timeout: float | None = 60.0
    max_retries: int = 2
    retry_backoff: float = 0.5

    def __post_init__(self) -> None:
        for name in ("connect_timeout", "first_token_timeout", "idle_timeout"):
            _check_seconds(name, getattr(self, name), allow_none=True)
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or not 0 <= self.max_retries <= 10
        ):
            raise ValueError(
                f"max_retries={self.max_retries!r} is invalid: expected an int in 0..10"
            )
        if self.retry_backoff != 0:
            _check_seconds("retry_backoff", self.retry_backoff, allow_none=False)

    @classmethod
    def names(cls) -> frozenset[str]:
        """Names of all options (for ``create_client``'s unknown-option check)."""
        return frozenset(f.name for f in fields(cls))
