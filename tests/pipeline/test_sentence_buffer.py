"""SentenceBuffer: invariants under hypothesis, the time rule on a fake clock, knobs."""

from __future__ import annotations

import itertools
import math
import re

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pipeline import Segment, SentenceBuffer, clean_for_speech, split_sentences
from pipeline._cleanup import CODE_PLACEHOLDER
from pipeline._sentence_buffer import DEFAULT_MAX_SEGMENT_LENGTH
from pipeline._sentences import LOOKAHEAD, LOOKBACK, BoundaryScanner, speakable

FRAGMENTS = [
    "Dr.", " Smith", "3.14", " 3.", "14", "e.g.", " e.g. ", "U.S.", " U.S. ", "...", "…",
    '"', "”", "'", "(", ")", "\n", "\n\n", "- ", "* ", "1. ", "2)", "# ", "https://a.b/c.d",
    " www.x.org.", "Hi.", " Hi. ", "Yes!", "?!", "?", "!", ".", ". ", ",", ", ", ";", " -- ",
    "—", ":", " ", "  ", "the", " cat", " sat", "It", " He", " How", " I", " The", " p.m.",
    " 5", " etc.", " a. ", "J.", " K.", "v2.0.1", "mail a@b.co.", "Wait", " ok", "**", "`x`",
    "```", "```py\n", "\n```\n", "~~~", "\n  ```",
    # Spaced ellipses, runs of marks, citations, inline lists, camel case, names.
    " . . .", " . . . .", " ? ? ?", ".[3]", "[...]", " 2. ", " b. ", " 3) ", "• ", "⁃",
    " iPhones", " Everyone", " Rome", " B.C.", " Co.", " Ltd.", " Natl.", " Ph.D.",
    " Yahoo!", " Finance", " A.", " No.", " 4", "Steps:", " 1.)", " 2.)", "\t", "end",
]  # fmt: skip

texts = st.lists(st.sampled_from(FRAGMENTS), min_size=0, max_size=14).map("".join)
EXAMPLES = settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


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
        "max_segment_length": st.sampled_from([80, 97, 600]),
    }
)
long_texts = st.lists(st.sampled_from(FRAGMENTS), min_size=10, max_size=80).map("".join)


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


@EXAMPLES
@given(text=long_texts, knob=knobs, cuts=st.lists(st.integers(0, 10_000), max_size=30))
# Found by hypothesis: streamed, "•  " was judged before its "3." arrived.
@example(text="Dr.Dr.Dr.Dr. 2. Dr.- •  3. Smith", cuts=[23], knob={
    "sentence_buffer_size": 1, "min_chunk_length": 0, "first_segment_min_length": None,
    "max_segment_length": 80})
def test_chunk_invariance_on_long_texts_with_the_cap(
    text: str, knob: dict[str, object], cuts: list[int]
) -> None:
    whole = _run([text], max_buffer_time=None, **knob)
    assert _run(_chunks(text, cuts), max_buffer_time=None, **knob) == whole
    assert _run(list(text), max_buffer_time=None, **knob) == whole
    _assert_tiles(text, whole)
    cap = knob["max_segment_length"]
    assert all(len(s.text) <= cap for s in whole)


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


# -- invariant 3b: nothing to say is never cut off on its own ------------------------


@EXAMPLES
@given(text=texts, cuts=st.lists(st.integers(0, 10_000), max_size=12))
def test_no_segment_has_nothing_to_say(text: str, cuts: list[int]) -> None:
    segments = _run(
        _chunks(text, cuts), sentence_buffer_size=1, min_chunk_length=0,
        max_buffer_time=None, first_segment_min_length=None,
    )  # fmt: skip
    if len(segments) > 1:
        assert all(speakable(s.text) for s in segments), [s.text for s in segments]


# -- invariant 4: max_buffer_time fires with a fake clock while no text arrives --------


@EXAMPLES
@given(
    text=texts.filter(lambda t: t.strip() != ""),
    wait=st.floats(0.0, 10.0, allow_nan=False),
)
@example(text='", Smith```py\n', wait=2.0)  # found by hypothesis: finished words after marks
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
    elif out:
        assert len(out) == 1 and out[0].reason == "max_buffer_time"
        assert speakable(out[0].text)
    else:
        # Held only when nothing before the unfinished last word has anything to
        # say (marks, a lone "1."), and then with a fresh deadline.
        gaps = [m.end() for m in re.finditer(r"\s+(?=\S)", text)]
        assert not speakable(text[: gaps[-1]] if gaps and not text[-1].isspace() else text)
        assert buffer.next_deadline() == clock.now + 2.0
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
    out = buffer.push("that is a good question,")
    # Released at the comma itself: a comma after a letter is a clause boundary
    # whatever comes next, so the buffer does not wait for the next word.
    assert [(s.text, s.reason) for s in out] == [
        ("Well, that is a good question,", "first_fragment")
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
        ("max_segment_length", 79),
        ("max_segment_length", 600.0),
        ("max_segment_length", True),
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


# -- the hard cap on segment length (issue: no punctuation must still give audio) ------


def _no_punctuation(words: int) -> str:
    vocabulary = "the quick brown fox jumps over a lazy dog while birds sing softly".split()
    return " ".join(vocabulary[i % len(vocabulary)] for i in range(words))


def test_text_without_punctuation_is_cut_at_blanks_within_the_cap() -> None:
    text = _no_punctuation(40_000)  # ~200 KB, not one sentence mark
    segments = _run([text[i : i + 7] for i in range(0, len(text), 7)], max_buffer_time=None)
    _assert_tiles(text, segments)
    assert len(segments) > len(text) // DEFAULT_MAX_SEGMENT_LENGTH
    assert all(len(s.text) <= DEFAULT_MAX_SEGMENT_LENGTH for s in segments)
    # Never inside a word: every cut falls after a blank, and segments are not tiny.
    assert all(s.text.endswith(" ") for s in segments[:-1])
    assert all(len(s.text) > DEFAULT_MAX_SEGMENT_LENGTH // 2 for s in segments[:-1])
    assert {s.reason for s in segments[:-1]} == {"max_segment_length"}


def test_poem_with_line_breaks_and_no_periods_is_cut_at_line_ends() -> None:
    stanza = "Over the hills and far away\nthe river runs along its bed\nand sings\n"
    text = stanza * 3000  # ~210 KB
    segments = _run([text], max_buffer_time=None, max_segment_length=200)
    _assert_tiles(text, segments)
    assert all(len(s.text) <= 200 for s in segments)
    assert all(s.text.endswith("\n") for s in segments[:-1])
    assert len(segments) >= len(text) // 200


def test_cap_prefers_clause_punctuation_then_line_break_then_blank() -> None:
    filler = "word " * 30  # 150 characters
    clause = SentenceBuffer(
        max_buffer_time=None, max_segment_length=200, first_segment_min_length=None
    )
    out = clause.push(filler + "one, two\nthree " + filler) + clause.flush()
    assert out[0].text == filler + "one, "
    line = SentenceBuffer(
        max_buffer_time=None, max_segment_length=200, first_segment_min_length=None
    )
    out = line.push(filler + "one two\nthree " + filler) + line.flush()
    assert out[0].text == filler + "one two\n"


def test_cap_cuts_inside_a_word_only_without_any_blank() -> None:
    text = "x" * 1000
    segments = _run([text], max_buffer_time=None, max_segment_length=300)
    assert [len(s.text) for s in segments] == [300, 300, 300, 100]


def test_cap_prefers_an_unreleased_sentence_end() -> None:
    first = "This is the first sentence and it is short. "
    text = first + "Then " + _no_punctuation(100)
    segments = _run(
        [text], sentence_buffer_size=2, max_buffer_time=None, max_segment_length=200,
        first_segment_min_length=None,
    )  # fmt: skip
    assert segments[0].text == first and segments[0].reason == "max_segment_length"


def test_cap_holds_the_buffer_bounded_with_no_time_rule() -> None:
    buffer = SentenceBuffer(max_buffer_time=None, max_segment_length=100)
    released = 0
    for i in range(5000):
        released += sum(len(s.text) for s in buffer.push("abc "))
        assert 4 * (i + 1) - released <= 100 + LOOKAHEAD
    assert released + sum(len(s.text) for s in buffer.flush()) == 4 * 5000


def test_a_code_block_cut_by_the_cap_is_not_read_aloud() -> None:
    code = "".join(f"    value_{i} = compute({i}, {i + 1})\n" for i in range(60))
    text = "Here is the code:\n```python\n" + code + "```\nThat is all."
    segments = _run([text], sentence_buffer_size=1, max_buffer_time=None, max_segment_length=300)
    _assert_tiles(text, segments)
    inside = [s for s in segments if s.starts_in_code]
    assert len(inside) >= 4
    spoken = [clean_for_speech(s.text, starts_in_code=s.starts_in_code) for s in segments]
    assert spoken[0] == "Here is the code:"
    assert spoken[1] == CODE_PLACEHOLDER
    assert spoken[-1] == "That is all."
    assert all(not text or text == CODE_PLACEHOLDER for text in spoken[1:-1])
