"""Issue 15's failure classes (tests/pipeline/boundary_cases.py), batch and streamed.

Every case must come out right from :func:`split_sentences` and from a
:class:`SentenceBuffer` fed 1-6 characters at a time (several fixed random
cuttings), and no segment may be something a speech engine reads as a blip:
only punctuation, or a bare list marker.
"""

from __future__ import annotations

import random
import re

import pytest

from pipeline import SentenceBuffer, clean_for_speech, split_sentences
from tests.pipeline.boundary_cases import BOUNDARY_CASES

CASES = [
    pytest.param(text, expected, id=f"{name}-{i}")
    for name, cases in BOUNDARY_CASES.items()
    for i, (text, expected) in enumerate(cases)
]
_BLIP = r"^\W*(?:\d{1,3}|[A-Za-z]|[ivxIVX]{1,4})?[.)]*\W*$"


def _streamed(text: str, seed: int) -> list[str]:
    rnd = random.Random(seed)
    buffer = SentenceBuffer(
        sentence_buffer_size=1, min_chunk_length=0, max_buffer_time=None,
        first_segment_min_length=None,
    )  # fmt: skip
    segments = []
    i = 0
    while i < len(text):
        step = rnd.randint(1, 6)
        segments += buffer.push(text[i : i + step])
        i += step
    segments += buffer.flush()
    assert "".join(s.text for s in segments) == text
    return [s.text.strip() for s in segments if s.text.strip()]


def test_the_set_is_large_and_well_formed() -> None:
    assert len(CASES) >= 100
    assert all(len(cases) >= 10 for cases in BOUNDARY_CASES.values())
    texts = [text for cases in BOUNDARY_CASES.values() for text, _ in cases]
    assert len(set(texts)) == len(texts)
    for cases in BOUNDARY_CASES.values():
        for text, expected in cases:
            position = 0
            for sentence in expected:  # expected sentences appear in order
                found = text.find(sentence, position)
                assert found >= 0, (text, sentence)
                position = found + len(sentence)


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_batch(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_streamed_in_1_to_6_characters(text: str, expected: list[str]) -> None:
    for seed in range(3):
        assert _streamed(text, seed) == expected


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_no_segment_is_a_blip(text: str, expected: list[str]) -> None:
    for sentence in split_sentences(text):
        spoken = clean_for_speech(sentence)
        assert spoken == "" or not re.match(_BLIP, spoken), sentence


# -- other projects' test sets (bench/data, with their licences) -------------------------


def test_golden_rules_streamed_1_to_6_characters_at_a_time() -> None:
    from bench.accuracy import golden_rules

    cases = golden_rules()
    assert len(cases) == 48
    failures = [text for text, expected in cases
                if any(_streamed(text, seed) != expected for seed in range(3))]  # fmt: skip
    # Issue 15 asks for >= 44/48; all 48 pass today (pySBD itself passes 47).
    assert failures == []


def test_stream2sentence_stress_paragraph_streamed() -> None:
    from bench.accuracy import stress_paragraph

    text, expected = stress_paragraph()
    assert len(expected) == 12
    for seed in range(3):
        assert _streamed(text, seed) == expected
