"""SentenceBuffer: invariants under hypothesis, the time rule on a fake clock, knobs."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline import Segment, SentenceBuffer, split_sentences
from pipeline._sentences import LOOKAHEAD, LOOKBACK, BoundaryScanner

FRAGMENTS = [
    "Dr.", " Smith", "3.14", " 3.", "14", "e.g.", " e.g. ", "U.S.", " U.S. ", "...", "…",
    '"', "”", "'", "(", ")", "\n", "\n\n", "- ", "* ", "1. ", "2)", "# ", "https://a.b/c.d",
    " www.x.org.", "Hi.", " Hi. ", "Yes!", "?!", "?", "!", ".", ". ", ",", ", ", ";", " -- ",
    "—", ":", " ", "  ", "the", " cat", " sat", "It", " He", " How", " I", " The", " p.m.",
    " 5", " etc.", " a. ", "J.", " K.", "v2.0.1", "mail a@b.co.", "Wait", " ok", "**", "`x`",
    "```", "```py\n", "\n```\n", "~~~", "\n  ```",
]  # fmt: skip

texts = st.lists(st.sampled_from(FRAGMENTS), min_size=0, max_size=14).map("".join)
EXAMPLES = settings(
    max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _chunks(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points)]


def _run(chunks: list[str], **knobs: object) -> list[Segment]:
    buffer = SentenceBuffer(**knobs)  # type: ignore[arg-type]
    out: list[Segment] = []
    for chunk in chunks:
        out += buffer.push(chunk)
    out += buffer.flush()
    return out


def _assert_tiles(text: str, segments: list[Segment]) -> None:
    assert "".join(s.text for s in segments) == text
    assert [s.index for s in segments] == list(range(len(segments)))
    position = 0
    for s in segments:
        assert s.start == position and s.end == s.start + len(s.text) and s.text
        assert text[s.start : s.end] == s.text
        position = s.end
    assert position == len(text)
    # No whitespace-only segment, except a whitespace tail at end of stream.
    assert all(s.text.strip() for s in segments[:-1])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


knobs = st.fixed_dictionaries(
    {
        "sentence_buffer_size": st.integers(1, 3),
        "min_chunk_length": st.integers(0, 40),
        "first_segment_min_length": st.none() | st.integers(1, 50),
    }
)


# -- invariant 1: nothing lost, nothing reordered (with the time rule active) ----------


@EXAMPLES
@given(
    text=texts,
    knob=knobs,
    steps=st.lists(st.tuples(st.integers(0, 10_000), st.floats(0, 5), st.booleans()), max_size=20),
)
def test_nothing_lost_nothing_reordered(
    text: str, knob: dict[str, object], steps: list[tuple[int, float, bool]]
) -> None:
    clock = FakeClock()
    buffer = SentenceBuffer(max_buffer_time=1.0, clock=clock, **knob)  # type: ignore[arg-type]
    out: list[Segment] = []
    chunks = _chunks(text, [cut for cut, _, _ in steps])
    for i, chunk in enumerate(chunks):
        out += buffer.push(chunk)
        if i < len(steps):
            _, advance, polls = steps[i]
            clock.now += advance
            if polls:
                out += buffer.poll()
    out += buffer.flush()
    _assert_tiles(text, out)


# -- invariant 2: chunk invariance ------------------------------------------------------


@EXAMPLES
@given(text=texts, knob=knobs, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_chunk_invariance(text: str, knob: dict[str, object], cuts: list[int]) -> None:
    whole = _run([text], max_buffer_time=None, **knob)
    assert _run(list(text), max_buffer_time=None, **knob) == whole
    assert _run(_chunks(text, cuts), max_buffer_time=None, **knob) == whole
    _assert_tiles(text, whole)


# -- invariant 3: batch agreement -------------------------------------------------------


@EXAMPLES
@given(text=texts, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_batch_agreement(text: str, cuts: list[int]) -> None:
    segments = _run(
        _chunks(text, cuts),
        sentence_buffer_size=1,
        min_chunk_length=0,
        max_buffer_time=None,
        first_segment_min_length=None,
    )
    streamed = [s.text.strip() for s in segments if s.text.strip()]
    assert streamed == split_sentences(text)


# -- invariant 4: max_buffer_time fires with a fake clock while no text arrives --------


@EXAMPLES
@given(
    text=texts.filter(lambda t: t.strip() != ""),
    wait=st.floats(0.0, 10.0, allow_nan=False),
)
def test_deadline_fires_without_new_text(text: str, wait: float) -> None:
    clock = FakeClock()
    buffer = SentenceBuffer(
        max_buffer_time=2.0, first_segment_min_length=None, min_chunk_length=10_000, clock=clock
    )
    released = buffer.push(text)  # min_chunk_length keeps everything buffered
    assert released == []
    deadline = buffer.next_deadline()
    assert deadline == clock.now + 2.0
    clock.now += wait
    out = buffer.poll()
    if clock.now < deadline:
        assert out == []
    else:
        assert len(out) == 1 and out[0].reason == "max_buffer_time" and out[0].text.strip()
    _assert_tiles(text, out + buffer.flush())


# -- examples ---------------------------------------------------------------------------


def test_decimal_split_across_pushes_is_not_a_boundary() -> None:
    buffer = SentenceBuffer(sentence_buffer_size=1, min_chunk_length=0, max_buffer_time=None)
    assert buffer.push("It is about 3.") == []
    assert buffer.push("14 today. ") == []
    assert buffer.push("Next") == []  # "Next" may still grow into "Next." etc.
    assert [s.text for s in buffer.push(" one.")] == ["It is about 3.14 today. "]
    assert [s.text for s in buffer.flush()] == ["Next one."]


def test_title_split_across_pushes_is_not_a_boundary() -> None:
    buffer = SentenceBuffer(sentence_buffer_size=1, min_chunk_length=0, max_buffer_time=None)
    assert buffer.push("Dr.") == []
    assert buffer.push(" Smith") == []
    assert buffer.push(" is here. He") == []
    assert [s.text for s in buffer.push(" waits.")] == ["Dr. Smith is here. "]


def test_short_sentences_merge_forward_in_order() -> None:
    segments = _run(
        ["Hi. ", "Ok. ", "This is a longer sentence. ", "And one more here."],
        sentence_buffer_size=1,
        min_chunk_length=20,
        max_buffer_time=None,
        first_segment_min_length=None,
    )
    assert [s.text for s in segments] == [
        "Hi. Ok. This is a longer sentence. ",
        "And one more here.",
    ]
    assert [s.reason for s in segments] == ["sentences", "end_of_stream"]


def test_sentence_buffer_size_groups_sentences() -> None:
    text = "One is here. Two is here. Three is here. Four is here. Five."
    segments = _run(
        [text], sentence_buffer_size=2, min_chunk_length=0, max_buffer_time=None,
        first_segment_min_length=None,
    )  # fmt: skip
    assert [s.text for s in segments] == [
        "One is here. Two is here. ",
        "Three is here. Four is here. ",
        "Five.",
    ]


def test_first_fragment_released_at_a_clause_boundary() -> None:
    buffer = SentenceBuffer(first_segment_min_length=20, max_buffer_time=None)
    assert buffer.push("Well, ") == []  # a clause, but too short
    out = buffer.push("that is a good question, and")
    assert [(s.text, s.reason) for s in out] == [
        ("Well, that is a good question, ", "first_fragment")
    ]
    # Only the first segment is released early; later ones wait for sentences.
    assert buffer.push(" here is more, much more, text. Then") == []


def test_first_fragment_rule_disabled_with_none() -> None:
    buffer = SentenceBuffer(first_segment_min_length=None, max_buffer_time=None)
    assert buffer.push("Well, that is a good question, and here is more, much more") == []


def test_deadline_is_a_real_deadline_and_cuts_at_the_best_break() -> None:
    clock = FakeClock()
    buffer = SentenceBuffer(max_buffer_time=3.0, first_segment_min_length=None, clock=clock)
    assert buffer.next_deadline() is None
    assert buffer.push("   ") == [] and buffer.next_deadline() is None  # whitespace only
    assert buffer.push("The answer is, in short, tha") == []
    start = clock.now
    assert buffer.next_deadline() == start + 3.0
    clock.now = start + 2.999
    assert buffer.poll() == []
    clock.now = start + 3.0
    [segment] = buffer.poll()
    # No sentence end: the last clause boundary wins over the last word boundary.
    assert segment.text == "   The answer is, in short, "
    assert segment.reason == "max_buffer_time"
    # The unfinished tail gets a fresh deadline instead of being cut mid-word.
    assert buffer.next_deadline() == clock.now + 3.0
    assert buffer.poll() == []
    assert buffer.push("t is fine.") == []
    clock.now += 3.0
    assert [s.text for s in buffer.poll()] == ["that is fine."]  # ends with a terminator
    assert buffer.next_deadline() is None


def test_deadline_prefers_a_confirmed_sentence_end() -> None:
    clock = FakeClock()
    buffer = SentenceBuffer(max_buffer_time=1.0, first_segment_min_length=None, clock=clock)
    assert buffer.push("Short one. And then we went on, and on") == []
    clock.now += 1.0
    assert [s.text for s in buffer.poll()] == ["Short one. "]


def test_deadline_falls_back_to_the_last_word_boundary() -> None:
    clock = FakeClock()
    buffer = SentenceBuffer(max_buffer_time=1.0, first_segment_min_length=None, clock=clock)
    assert buffer.push("and then we went on and o") == []
    clock.now += 1.0
    assert [s.text for s in buffer.poll()] == ["and then we went on and "]


def test_deadline_counts_from_the_oldest_unreleased_word() -> None:
    clock = FakeClock()
    buffer = SentenceBuffer(
        sentence_buffer_size=1, min_chunk_length=0, max_buffer_time=5.0,
        first_segment_min_length=None, clock=clock,
    )  # fmt: skip
    buffer.push("First one. Sec")
    clock.now += 2.0
    assert [s.text for s in buffer.push("ond one")] == ["First one. "]
    # "Second one" started arriving at t=1000, not at t=1002.
    assert buffer.next_deadline() == 1005.0


def test_lifecycle_is_single_use() -> None:
    buffer = SentenceBuffer()
    buffer.push("Hello there.")
    assert [s.text for s in buffer.flush()] == ["Hello there."]
    with pytest.raises(RuntimeError):
        buffer.push("more")
    with pytest.raises(RuntimeError):
        buffer.flush()
    assert buffer.poll() == [] and buffer.next_deadline() is None


def test_push_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="str"):
        SentenceBuffer().push(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("sentence_buffer_size", 0),
        ("sentence_buffer_size", -1),
        ("sentence_buffer_size", 1.5),
        ("min_chunk_length", -1),
        ("first_segment_min_length", 0),
        ("first_segment_min_length", -5),
        ("max_buffer_time", 0),
        ("max_buffer_time", -1.0),
        ("max_buffer_time", math.inf),
        ("max_buffer_time", math.nan),
        ("max_buffer_time", True),
    ],
)
def test_invalid_knobs_raise_value_error_naming_the_option(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=option):
        SentenceBuffer(**{option: value})  # type: ignore[arg-type]


def test_each_push_scans_a_bounded_tail(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cost: the scanner never sees more than a bounded window, however long the stream."""
    sizes: list[int] = []
    original = BoundaryScanner.scan

    def spy(self: BoundaryScanner, window: str, pos: int, **kw: bool):  # type: ignore[no-untyped-def]
        sizes.append(len(window))
        return original(self, window, pos, **kw)

    monkeypatch.setattr(BoundaryScanner, "scan", spy)
    text = "Dr. Smith went to Washington, e.g. to the U.S. capital. He left at 5 p.m. " * 3000
    buffer = SentenceBuffer(max_buffer_time=None)
    total = 0
    for i in range(0, len(text), 4):
        total += len("".join(s.text for s in buffer.push(text[i : i + 4])))
    total += len("".join(s.text for s in buffer.flush()))
    assert total == len(text) > 200_000
    assert max(sizes) <= 4 * LOOKBACK + LOOKAHEAD + 8
