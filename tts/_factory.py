"""create_engine: an engine by name, or the "auto" fallback chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._base import TTSEngine
from ._edge import EdgeEngine
from ._espeak import EspeakEngine
from ._fallback import FallbackEngine
from ._piper import PiperEngine
from ._pyttsx3 import Pyttsx3Engine
from ._types import RetryPolicy

ENGINES: dict[str, type[TTSEngine]] = {
    "edge": EdgeEngine,
    "piper": PiperEngine,
    "pyttsx3": Pyttsx3Engine,
    "espeak": EspeakEngine,
}
#: The "auto" order: online neural, offline neural, pyttsx3, raw espeak-ng.
AUTO_ORDER = ("edge", "piper", "pyttsx3", "espeak")


def create_engine(name: str = "auto", **options: Any) -> TTSEngine:
    """Build an engine.

    Args:
        name: ``"edge"``, ``"piper"``, ``"pyttsx3"``, ``"espeak"`` (``options``
            go to that engine's constructor), or ``"auto"``: a
            :class:`FallbackEngine` over ``order`` (default edge -> piper ->
            pyttsx3 -> espeak). An engine that is not installed or not reachable
            is ruled out on its first failed attempt and skipped for the rest of
            the run.
        **options: for ``"auto"``: ``order`` (sequence of engine names),
            ``retries`` (extra attempts per segment on each engine after a
            retryable failure, 0-9: each engine's ``retry`` policy; default:
            each engine's own) and, per engine, a mapping of its constructor
            options under its name, e.g. ``edge={"voice": ...}``.

    Raises:
        ValueError: unknown engine name or option (the message lists the allowed ones).
    """
    if name in ENGINES:
        return ENGINES[name](**options)
    if name != "auto":
        raise ValueError(f"name must be one of {['auto', *ENGINES]}, got {name!r}")
    order: Sequence[str] = options.pop("order", AUTO_ORDER)
    retries: int | None = options.pop("retries", None)
    if isinstance(order, str) or not order:
        raise ValueError(f"order must be a non-empty sequence of engine names, got {order!r}")
    unknown = [n for n in [*order, *options] if n not in ENGINES]
    if unknown:
        raise ValueError(
            f"unknown engine name(s) or option(s) {unknown} for 'auto'; "
            f"engines are {list(ENGINES)}, options are order, retries and one mapping per engine"
        )
    per_engine: dict[str, Mapping[str, Any]] = options
    if retries is not None:
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 9:
            raise ValueError(f"retries must be an integer in [0, 9], got {retries!r}")
        retry = RetryPolicy(attempts=1 + retries)
        per_engine = {n: {"retry": retry, **dict(per_engine.get(n, {}))} for n in order}
    chain = FallbackEngine([ENGINES[n](**dict(per_engine.get(n, {}))) for n in order])
    chain.name = "auto"  # what users call it (--tts auto), in events and errors alike
    return chain
