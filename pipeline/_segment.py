"""The unit the sentence buffer emits: one segment = one audio file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SegmentReason = Literal[
    "sentences", "max_buffer_time", "end_of_stream", "first_fragment", "max_segment_length"
]


@dataclass(frozen=True)
class Segment:
    """A run of streamed text released for synthesis.

    Attributes:
        index: 0, 1, 2, ... in stream order, no gaps.
        text: the raw streamed text of the segment, exactly as received
            (including surrounding whitespace); concatenating ``text`` of all
            segments reproduces the input.
        start: offset of the first character in the full streamed text
            (characters, not bytes).
        end: offset one past the last character; ``text == full[start:end]``.
        reason: why it was released: ``"sentences"`` (enough complete
            sentences), ``"max_buffer_time"`` (the deadline fired),
            ``"end_of_stream"`` (``flush()``), ``"first_fragment"`` (early
            clause-boundary release of the first segment),
            ``"max_segment_length"`` (the hard cap on segment length).
        starts_in_code: the segment starts inside a fenced code block that an
            earlier segment opened (a code block cut by the cap or the time
            rule); pass it to :func:`~pipeline.clean_for_speech` so the rest
            of the block is not read aloud.
    """

    index: int
    text: str
    start: int
    end: int
    reason: SegmentReason
    starts_in_code: bool = False
