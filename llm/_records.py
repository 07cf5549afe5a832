"""Typed reads of one decoded stream record (JSON): a wrong shape is an ``LLMStreamError``.

The providers' parsers read records only through :class:`Fields`, so a
record of the wrong shape (a choice that is a string, ``parts`` that is an
object, ``content`` that is a number) becomes one clear
:class:`~llm.LLMStreamError` instead of an ``AttributeError`` or
``TypeError`` from deep inside a parser. A missing key or ``null`` reads as
empty. Advisory numbers (token counts, durations) of the wrong type are
ignored instead: they never change the text.
"""

from __future__ import annotations

import json
from typing import Any, Generic, TypeVar

from ._errors import LLMStreamError
from ._finish import normalize_finish_reason
from ._types import Report, Thinking

Piece = TypeVar("Piece")


class Fields:
    """Typed getters for ``provider``'s records; ``where`` names the field in errors."""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def malformed(self, where: str, value: Any, expected: str) -> LLMStreamError:
        shown = json.dumps(value, ensure_ascii=False, default=repr)[:120]
        return LLMStreamError(
            f"{self.provider}: malformed stream record: {where} is {shown}, expected {expected}",
            provider=self.provider,
        )

    def load(self, text: str) -> dict[str, Any]:
        """One JSON object; bad JSON or another JSON type is an ``LLMStreamError``."""
        try:
            record = json.loads(text)
        except ValueError as exc:
            raise LLMStreamError(
                f"{self.provider}: invalid JSON in stream: {text[:200]!r}", provider=self.provider
            ) from exc
        if not isinstance(record, dict):
            raise self.malformed("the record", record, "a JSON object")
        return record

    def obj(self, value: Any, where: str) -> dict[str, Any]:
        """``value`` as an object: ``None`` -> ``{}``."""
        if value is None:
            return {}
        if isinstance(value, dict):
            return value
        raise self.malformed(where, value, "an object")

    def array(self, value: Any, where: str) -> list[Any]:
        """``value`` as an array: ``None`` -> ``[]``."""
        if value is None:
            return []
        if isinstance(value, list):
            return value
        raise self.malformed(where, value, "an array")

    def text(self, value: Any, where: str) -> str:
        """``value`` as a string: ``None`` -> ``""``."""
        if value is None:
            return ""
        if isinstance(value, str):
            return value
        raise self.malformed(where, value, "a string")

    def name(self, value: Any, where: str) -> str | None:
        """An optional enum-like string (a finish reason): ``None``/``""`` -> ``None``."""
        return self.text(value, where) or None


def count(value: Any) -> int | None:
    """An advisory non-negative integer, or ``None`` if absent or of the wrong type."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def seconds_from_ns(value: Any) -> float | None:
    """An advisory duration in nanoseconds as seconds, or ``None``."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return value / 1e9
    return None


class RecordParser(Generic[Piece]):
    """Pure, I/O-free parser of one provider's stream, one piece (line or SSE event) at a time.

    :meth:`feed` returns the items of a piece: text deltas (``str``) and
    :class:`~llm._types.Thinking`; it fills :attr:`report` and raises only
    :class:`~llm.LLMError` subclasses. :attr:`ended` is set by an explicit end
    marker (stop reading); :attr:`complete` when the stream may end here.

    Attributes:
        provider: the provider name (errors, finish reason table).
        end_marker: what a complete stream ends with, for the "ended before"
            error of a truncated stream.
    """

    provider = ""
    end_marker = ""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.fields = Fields(self.provider)
        self.ended = False
        self.complete = False

    def feed(self, piece: Piece) -> list[str | Thinking]:
        raise NotImplementedError

    def finish(self, raw: str | None) -> None:
        """Record the provider's stop value ``raw`` (normalized) if there is one."""
        if raw:
            self.report.finish_reason = normalize_finish_reason(self.provider, raw)
