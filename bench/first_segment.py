"""Scenario 3: time to the first segment's text, segment counts and hard-case accuracy.

The same token streams (:func:`bench.common.tokenize`) are replayed on a
virtual clock (token ``i`` arrives at ``i / 40`` s, first token at 0) through:

* ``speakstream``: :class:`pipeline.SentenceBuffer` with its defaults (quick
  first fragment at a clause boundary once >= 40 characters, 2 sentences >= 20
  characters per segment, 3 s time rule polled at its deadlines);
* ``speakstream_wait_next_word``: the same release replayed under the rule
  before issue 12 item 6: a clause boundary was confirmed only once the next
  word had started to arrive (first non-space character after the mark), so a
  fragment ending at ``,`` ``;`` ``—`` went out one token later. Side by side
  with ``speakstream`` it shows what releasing at the mark itself saves;
* ``speakstream_no_first_fragment``: the same with ``first_segment_min_length=None``;
* ``stream2sentence``: ``generate_sentences`` with its defaults;
* ``stream2sentence_quick``: with ``quick_yield_single_sentence_fragment=True``;
* ``baseline``: :class:`bench.baseline.BaselineBuffer` (the seed's strategy).

First segment time = arrival time of the token after which the tool released
its first segment (for stream2sentence: the last token it had pulled). A
virtual clock makes this a property of the algorithms, not of the machine;
their CPU cost is scenario 4's business. Accuracy on the hard cases
(``tests/pipeline/hard_cases.py``) comes from :func:`bench.segmenter.accuracy`
plus the baseline's regex.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from bench import segmenter
from bench.baseline import BaselineBuffer, split_baseline
from bench.common import LONG_ANSWER, alice_chapter_1, tokenize
from pipeline import Segment, SentenceBuffer

TOKENS_PER_S = 40.0
STREAMS: dict[str, Callable[[], str]] = {
    "answer": lambda: LONG_ANSWER,
    "alice_ch1": alice_chapter_1,
    "chat_short_first": lambda: "Hi. " + LONG_ANSWER.split("\n\n", 1)[1],
}


def _speakstream(tokens: list[str], **options: Any) -> tuple[float | None, int]:
    first, count, _ = _speakstream_run(tokens, **options)
    return first, count


def _speakstream_run(
    tokens: list[str], **options: Any
) -> tuple[float | None, int, Segment | None]:
    now = 0.0
    buffer = SentenceBuffer(clock=lambda: now, **options)
    first: float | None = None
    first_segment: Segment | None = None
    count = 0
    for i, token in enumerate(tokens):
        t = i / TOKENS_PER_S
        while (deadline := buffer.next_deadline()) is not None and deadline <= t:
            now = deadline
            released = buffer.poll()
            count += len(released)
            if released and first is None:
                first, first_segment = now, released[0]
        now = t
        released = buffer.push(token)
        count += len(released)
        if released and first is None:
            first, first_segment = now, released[0]
    released = buffer.flush()
    count += len(released)
    if released and first is None:
        first, first_segment = now, released[0]
    return first, count, first_segment


def _speakstream_wait_next_word(tokens: list[str]) -> tuple[float | None, int]:
    """speakstream's first release, had it waited for the next word after a clause mark."""
    first, count, segment = _speakstream_run(tokens)
    text = "".join(tokens)
    if first is None or segment is None or segment.reason != "first_fragment":
        return first, count
    if text[segment.end - 1 : segment.end] not in (",", ";", "—"):
        return first, count
    rest = text[segment.end :]
    if not rest.strip():
        return first, count
    needed = segment.end + len(rest) - len(rest.lstrip()) + 1  # the next word's first character
    arrived = 0
    for i, token in enumerate(tokens):
        arrived += len(token)
        if arrived >= needed:
            return max(first, i / TOKENS_PER_S), count
    return first, count


def _stream2sentence(tokens: list[str], **options: Any) -> tuple[float | None, int]:
    from stream2sentence import generate_sentences

    pulled = [-1]

    def feed() -> Iterator[str]:
        for i, token in enumerate(tokens):
            pulled[0] = i
            yield token

    first: float | None = None
    count = 0
    for _sentence in generate_sentences(feed(), **options):
        if first is None:
            first = pulled[0] / TOKENS_PER_S
        count += 1
    return first, count


def _baseline(tokens: list[str]) -> tuple[float | None, int]:
    buffer = BaselineBuffer()
    first: float | None = None
    count = 0
    for i, token in enumerate(tokens):
        released = buffer.push(token)
        count += len(released)
        if released and first is None:
            first = i / TOKENS_PER_S
    released = buffer.flush()
    count += len(released)
    if released and first is None:
        first = (len(tokens) - 1) / TOKENS_PER_S
    return first, count


TOOLS: dict[str, Callable[[list[str]], tuple[float | None, int]]] = {
    "speakstream": _speakstream,
    "speakstream_wait_next_word": _speakstream_wait_next_word,
    "speakstream_no_first_fragment": lambda t: _speakstream(t, first_segment_min_length=None),
    "stream2sentence": _stream2sentence,
    "stream2sentence_quick": lambda t: _stream2sentence(
        t, quick_yield_single_sentence_fragment=True
    ),
    "baseline": _baseline,
}


def run(quick: bool = False) -> dict[str, Any]:
    streams: dict[str, Any] = {}
    ratios: dict[str, float] = {}  # first segment time, release at the mark / wait next word
    for name, make in STREAMS.items():
        tokens = tokenize(make())
        row: dict[str, Any] = {"tokens": len(tokens), "chars": sum(map(len, tokens))}
        for tool, fn in TOOLS.items():
            first, count = fn(tokens)
            row[tool] = {"first_segment_s": first, "segments": count}
        streams[name] = row
        before = row["speakstream_wait_next_word"]["first_segment_s"]
        after = row["speakstream"]["first_segment_s"]
        if before and after is not None:
            ratios[name] = after / before
    scores = segmenter.accuracy()
    scores["baseline"] = segmenter._score(split_baseline)
    accuracy = {k: {"passed": v["passed"], "total": v["total"], "rate": v["rate"]}
                for k, v in scores.items()}  # fmt: skip
    return {"tokens_per_s": TOKENS_PER_S, "streams": streams, "accuracy": accuracy,
            "ratio_vs_wait_next_word": ratios}  # fmt: skip


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=1))
