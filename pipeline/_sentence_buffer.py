"""The streaming sentence buffer: LLM deltas in, :class:`Segment` s out.

Pure, synchronous, no I/O, no threads (like httpx's ``LineDecoder``): the
pipeline feeds it with :meth:`SentenceBuffer.push`, sleeps until
:meth:`SentenceBuffer.next_deadline` to call :meth:`SentenceBuffer.poll`, and
calls :meth:`SentenceBuffer.flush` at end of stream.

Boundaries come from :class:`~pipeline._sentences.BoundaryScanner`, the same
code :func:`~pipeline.split_sentences` runs, so streaming agrees with batch for
every way of cutting the input into chunks. Each push scans only the new text
plus a bounded tail (see ``LOOKBACK``/``LOOKAHEAD`` in ``_sentences``).
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ._segment import Segment, SegmentReason
from ._sentences import LOOKBACK, BoundaryScanner

DEFAULT_FIRST_SEGMENT_MIN_LENGTH = 40
"""Characters. About 2.5 s of speech: long enough to sound like a phrase and to
cover synthesis of the next segment, short enough to arrive within a few tenths
of a second from an LLM streaming 30-100 tokens/s. Waiting for two full
sentences instead typically costs about one second before the first sound."""

_TERMINAL = re.compile(r"[.!?…‽][\"'”’»)\]}*_`]*\s*\Z")
_CLAUSE = re.compile(r"(?<=[\w)\"'”’])(?:[,;:—–]|--)\s+(?=\S)")
_WORD_GAP = re.compile(r"\s+(?=\S)")


@dataclass(frozen=True)
class SentenceBufferConfig:
    """Validated knobs of :class:`SentenceBuffer` (see there for meanings)."""

    sentence_buffer_size: int = 2
    min_chunk_length: int = 20
    max_buffer_time: float | None = 3.0
    first_segment_min_length: int | None = DEFAULT_FIRST_SEGMENT_MIN_LENGTH

    def __post_init__(self) -> None:
        size = self.sentence_buffer_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"sentence_buffer_size must be an int >= 1, got {size!r}")
        length = self.min_chunk_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"min_chunk_length must be an int >= 0, got {length!r}")
        first = self.first_segment_min_length
        if first is not None and (
            isinstance(first, bool) or not isinstance(first, int) or first < 1
        ):
            raise ValueError(
                f"first_segment_min_length must be None or an int >= 1, got {first!r}"
            )
        seconds = self.max_buffer_time
        if seconds is not None and (
            isinstance(seconds, bool)
            or not isinstance(seconds, int | float)
            or not math.isfinite(seconds)
            or seconds <= 0
        ):
            raise ValueError(
                f"max_buffer_time must be None or a finite number of seconds > 0, got {seconds!r}"
            )


class SentenceBuffer:
    """Cuts streamed LLM text into segments of whole sentences.

    Args:
        sentence_buffer_size: complete sentences per segment (one audio
            file), >= 1.
        min_chunk_length: characters; a segment that would be shorter (raw
            length, trailing whitespace included) is merged forward into the
            next one, never dropped or reordered. >= 0.
        max_buffer_time: seconds (on ``clock``) since the first unreleased
            non-whitespace character arrived after which :meth:`poll` releases
            the buffered text at the best break available: the whole buffer if
            it ends with sentence punctuation, else the last sentence end, else
            the last clause punctuation, else the last word boundary. The held
            back tail then gets a fresh deadline. ``None`` disables the rule.
        first_segment_min_length: characters; the first segment is released
            early at the first clause boundary (``,`` ``;`` ``:`` dash) or
            sentence end at which it is at least this long, so speech starts
            sooner. ``None`` disables it. Default 40, see
            :data:`DEFAULT_FIRST_SEGMENT_MIN_LENGTH`.
        clock: seconds, monotonic; injected so tests drive the time rule.
        language: Punkt model name (see :func:`~pipeline.split_sentences`).

    Raises:
        ValueError: a knob is out of range (the message names it), or the
            language has no model.

    A sentence boundary is confirmed only when the following word has arrived
    (so ``"3."`` + ``"14"`` and ``"Dr."`` + ``" Smith"`` never split); at end of
    stream :meth:`flush` decides. Segment ``text`` is raw (all segments
    concatenated == the input); clean it for TTS with
    :func:`~pipeline.clean_for_speech`. After :meth:`flush` the buffer is spent:
    :meth:`push` and :meth:`flush` raise ``RuntimeError``.
    """

    def __init__(
        self,
        *,
        sentence_buffer_size: int = 2,
        min_chunk_length: int = 20,
        max_buffer_time: float | None = 3.0,
        first_segment_min_length: int | None = DEFAULT_FIRST_SEGMENT_MIN_LENGTH,
        clock: Callable[[], float] = time.monotonic,
        language: str = "english",
    ) -> None:
        self.config = SentenceBufferConfig(
            sentence_buffer_size=sentence_buffer_size,
            min_chunk_length=min_chunk_length,
            max_buffer_time=max_buffer_time,
            first_segment_min_length=first_segment_min_length,
        )
        self._scanner = BoundaryScanner(language)
        self._clock = clock
        self._size = sentence_buffer_size
        self._min_len = min_chunk_length
        self._max_time = max_buffer_time
        self._first_min = first_segment_min_length
        # The text: ``_window`` is text[_win_start:] (trimmed to a bounded tail of
        # what was scanned); ``_pending`` holds text[_released:] as chunks.
        self._window = ""
        self._win_start = 0
        self._scan = 0  # global offset where undecided candidates begin
        self._end = 0
        self._pending: list[str] = []
        self._released = 0
        self._index = 0
        self._sentences = 0  # sentence ends inside the unreleased text
        self._last_sentence_end = 0  # global offset of the latest confirmed sentence end
        self._first_done = first_segment_min_length is None
        self._content_at: int | None = None  # global offset of the first unreleased non-space
        # Time rule: arrival time of each push (end offset, clock) while unreleased.
        self._arrivals: deque[tuple[int, float]] = deque()
        self._content_since: float | None = None  # when the oldest unreleased word arrived
        self._closed = False

    # -- public API -------------------------------------------------------------

    def push(self, text: str) -> list[Segment]:
        """Feed the next chunk of streamed text (any length); return segments now complete.

        Raises:
            TypeError: ``text`` is not a ``str``.
            RuntimeError: called after :meth:`flush`.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be str, not {type(text).__name__}")
        if self._closed:
            raise RuntimeError("SentenceBuffer is spent: push() after flush()")
        if not text:
            return []
        if self._content_at is None and not text.isspace():
            self._content_at = self._end + _first_non_space(text)
        self._end += len(text)
        self._pending.append(text)
        self._window += text
        if self._max_time is not None:
            now = self._clock()
            self._arrivals.append((self._end, now))
            if self._content_since is None and not text.isspace():
                self._content_since = now
        return self._advance(final=False)

    def poll(self) -> list[Segment]:
        """Release what the ``max_buffer_time`` rule releases now (at most one segment).

        Returns ``[]`` when the deadline has not passed, the rule is disabled,
        nothing but whitespace is buffered, or the buffer is spent.
        """
        deadline = self.next_deadline()
        if deadline is None or self._clock() < deadline:
            return []
        pending = self._pending_text()
        cut = self._released + self._best_break(pending)
        segment = self._emit(cut, "max_buffer_time", pending)
        if self._content_since is not None:
            # The tail held back is an unfinished word or clause: a fresh deadline.
            self._content_since = max(self._content_since, self._clock())
        return [segment]

    def next_deadline(self) -> float | None:
        """Clock time (seconds) at which :meth:`poll` releases something, or None.

        None when ``max_buffer_time`` is None, nothing but whitespace is
        buffered, or the buffer is spent.
        """
        if self._max_time is None or self._content_since is None or self._closed:
            return None
        return self._content_since + self._max_time

    def flush(self) -> list[Segment]:
        """End of stream: decide the last boundaries and release everything left.

        Raises:
            RuntimeError: called twice.
        """
        if self._closed:
            raise RuntimeError("SentenceBuffer is spent: flush() called twice")
        out = self._advance(final=True)
        self._closed = True
        if self._end > self._released:
            out.append(self._emit(self._end, "end_of_stream"))
        return out

    # -- internals --------------------------------------------------------------

    def _advance(self, *, final: bool) -> list[Segment]:
        window, base = self._window, self._win_start
        found, resume = self._scanner.scan(
            window,
            self._scan - base,
            final=final,
            text_start=base == 0,
            clauses=not self._first_done,
        )
        self._scan = base + resume
        # Keep LOOKBACK characters before the scan position, trimming in big steps.
        if resume > 4 * LOOKBACK:
            drop = resume - LOOKBACK
            self._window = window[drop:]
            self._win_start = base + drop
        out: list[Segment] = []
        for offset, is_sentence in found:
            cut = base + offset
            if cut <= self._released:
                continue  # already released by the time rule
            if self._content_at is None or cut <= self._content_at:
                continue  # only whitespace before it: merge it into the next segment
            length = cut - self._released
            if is_sentence:
                self._sentences += 1
                self._last_sentence_end = cut
                if self._sentences >= self._size and length >= self._min_len:
                    out.append(self._emit(cut, "sentences"))
                    continue
            if not self._first_done and self._first_min is not None:
                if length >= self._first_min:
                    out.append(self._emit(cut, "first_fragment"))
        return out

    def _pending_text(self) -> str:
        if len(self._pending) > 1:
            self._pending = ["".join(self._pending)]
        return self._pending[0] if self._pending else ""

    def _emit(self, cut: int, reason: SegmentReason, pending: str | None = None) -> Segment:
        if pending is None:
            pending = self._pending_text()
        split = cut - self._released
        rest = pending[split:]
        segment = Segment(self._index, pending[:split], self._released, cut, reason)
        self._index += 1
        self._released = cut
        self._pending = [rest] if rest else []
        has_content = bool(rest) and not rest.isspace()
        self._content_at = cut + _first_non_space(rest) if has_content else None
        self._sentences = 0
        self._first_done = True
        if self._max_time is not None:
            arrivals = self._arrivals
            while arrivals and arrivals[0][0] <= cut:
                arrivals.popleft()
            if has_content:
                # rest starts where a word starts; it arrived with the oldest push left.
                self._content_since = arrivals[0][1]
            else:
                self._content_since = None
        return segment

    def _best_break(self, pending: str) -> int:
        """Offset in ``pending`` where a time-rule release should cut (> 0)."""
        if _TERMINAL.search(pending):
            return len(pending)
        if self._last_sentence_end > self._released:
            return self._last_sentence_end - self._released
        clause = _last_match(_CLAUSE, pending)
        if clause is not None:
            return clause.end()
        if pending[-1].isspace():
            return len(pending)
        word = _last_match(_WORD_GAP, pending)
        if word is not None and word.start() > 0:
            return word.end()
        return len(pending)


def _last_match(regex: re.Pattern[str], text: str) -> re.Match[str] | None:
    last = None
    for last in regex.finditer(text):  # noqa: B007 - we want the last one
        pass
    return last


def _first_non_space(text: str) -> int:
    return len(text) - len(text.lstrip())
