"""split_sentences: hard-case accuracy against plain Punkt, offline model, errors."""

from __future__ import annotations

import nltk
import pytest
from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

from pipeline import split_sentences
from pipeline._sentence_buffer import iter_sentence_spans
from pipeline._sentences import EXTRA_ABBREVIATIONS, punkt_parameters
from tests.pipeline.hard_cases import HARD_CASES

REQUIRED_PASS_RATE = 0.95


def _plain_punkt(extra_abbreviations: bool) -> PunktSentenceTokenizer:
    """NLTK's sent_tokenize-style Punkt on the shipped English model, no extra rules."""
    import punkt

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    if extra_abbreviations:
        params.abbrev_types |= EXTRA_ABBREVIATIONS
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    for typ, flags in model.ortho_context.items():
        params.ortho_context[typ] = int(flags)
    return PunktSentenceTokenizer(params)


def _pass_rate(split) -> tuple[float, list[str]]:
    failures = []
    for category, text, expected in HARD_CASES:
        got = [s.strip() for s in split(text) if s.strip()]
        if got != expected:
            failures.append(f"[{category}] {text!r}: got {got!r}")
    return 1 - len(failures) / len(HARD_CASES), failures


def test_hard_cases_are_many_and_well_formed() -> None:
    assert len(HARD_CASES) >= 60
    assert len({text for _, text, _ in HARD_CASES}) == len(HARD_CASES)
    for _, text, expected in HARD_CASES:
        # Expected sentences appear in the text, in order.
        position = 0
        for sentence in expected:
            found = text.find(sentence, position)
            assert found >= 0, (text, sentence)
            position = found + len(sentence)


def test_hard_case_pass_rate_beats_plain_punkt(capsys: pytest.CaptureFixture[str]) -> None:
    ours, failures = _pass_rate(split_sentences)
    plain, _ = _pass_rate(_plain_punkt(extra_abbreviations=False).tokenize)
    plain_abbrev, _ = _pass_rate(_plain_punkt(extra_abbreviations=True).tokenize)
    with capsys.disabled():
        print(
            f"\nhard cases ({len(HARD_CASES)}): speakstream {ours:.1%}, "
            f"plain NLTK Punkt {plain:.1%}, plain Punkt + our abbreviations {plain_abbrev:.1%}"
        )
        for failure in failures:
            print("  FAIL", failure)
    assert ours >= REQUIRED_PASS_RATE, failures
    assert ours > plain


def test_works_offline_without_nltk_data(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_download(*args: object, **kwargs: object) -> None:
        raise AssertionError("nltk.download must never be called")

    monkeypatch.setattr(nltk, "download", no_download)
    monkeypatch.setattr(nltk.data, "path", [])
    punkt_parameters.cache_clear()
    try:
        assert split_sentences("Dr. Smith is here. He is late.") == [
            "Dr. Smith is here.",
            "He is late.",
        ]
    finally:
        punkt_parameters.cache_clear()


def test_parameters_come_from_the_shipped_model_plus_our_abbreviations() -> None:
    params = punkt_parameters("english")
    assert {"dr", "mr", "u.s", "p.m"} <= params.abbrev_types  # from the model
    assert EXTRA_ABBREVIATIONS <= params.abbrev_types
    assert "however" in params.sent_starters
    assert len(params.ortho_context) > 10_000


def test_reading_the_model_does_not_grow_it() -> None:
    params = punkt_parameters("english")
    before = len(params.ortho_context)
    split_sentences("Qwertyuiop. Zxcvbnmlkj is new. Asdfghjklq. Poiuytrewq.")
    assert len(params.ortho_context) == before


def test_other_bundled_languages_work_and_unknown_ones_are_rejected() -> None:
    assert split_sentences("Das ist gut. Wir gehen.", language="german") == [
        "Das ist gut.",
        "Wir gehen.",
    ]
    with pytest.raises(ValueError, match="language='klingon'"):
        split_sentences("Hi.", language="klingon")


def test_rejects_non_text() -> None:
    with pytest.raises(TypeError, match="str"):
        split_sentences(b"Hi. There.")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    ["", "   ", "Hi.", "  Hi. There.  \n\n", "a.\n\nb", "One. Two! Three? ..."],
)
def test_spans_tile_the_text(text: str) -> None:
    spans = list(iter_sentence_spans(text))
    assert "".join(text[a:b] for a, b in spans) == text
    assert all(a < b for a, b in spans)
    assert [b for _, b in spans[:-1]] == [a for a, _ in spans[1:]]


def test_decimal_and_version_and_url_periods_are_not_boundaries() -> None:
    text = "Pi is 3.14159 and v10.2.3 is at https://a.b/c.d?e=f.g so read it."
    assert split_sentences(text) == [text]


def test_fenced_code_block_has_no_boundaries_inside() -> None:
    text = "Run this:\n```py\n# Done. Next thing.\nx = 1\n\n```\nDone. Ok then."
    assert split_sentences(text) == [
        "Run this:",
        "```py\n# Done. Next thing.\nx = 1\n\n```",
        "Done.",
        "Ok then.",
    ]


def test_unclosed_fence_runs_to_the_end() -> None:
    text = "Code:\n~~~\nEnd. Begin. Stop.\n\nDone."
    assert split_sentences(text) == ["Code:", "~~~\nEnd. Begin. Stop.\n\nDone."]


def test_only_public_nltk_names_are_used() -> None:
    """The scanner reads Punkt's model data itself: no private NLTK API to break."""
    import ast
    import inspect

    import pipeline._sentences as module

    tree = ast.parse(inspect.getsource(module))
    imported = [
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("nltk")
        for alias in node.names
    ]
    assert imported == ["PunktParameters"]
    attributes = {node.attr for node in ast.walk(tree) if isinstance(node, ast.Attribute)}
    assert not {"_first_pass_annotation", "_second_pass_annotation", "_params"} & attributes


def test_ortho_flags_match_the_model_data_format() -> None:
    """Our reading of ``ortho_context`` bits is NLTK's punkt_tab format (pinned here)."""
    from nltk.tokenize import punkt as nltk_punkt

    from pipeline._sentences import (
        ORTHO_BEG_LC,
        ORTHO_BEG_UC,
        ORTHO_LC,
        ORTHO_MID_LC,
        ORTHO_MID_UC,
        ORTHO_UNK_LC,
        ORTHO_UNK_UC,
    )

    assert (ORTHO_BEG_UC, ORTHO_MID_UC, ORTHO_UNK_UC) == (
        nltk_punkt._ORTHO_BEG_UC, nltk_punkt._ORTHO_MID_UC, nltk_punkt._ORTHO_UNK_UC,
    )  # fmt: skip
    assert (ORTHO_BEG_LC, ORTHO_MID_LC, ORTHO_UNK_LC, ORTHO_LC) == (
        nltk_punkt._ORTHO_BEG_LC, nltk_punkt._ORTHO_MID_LC, nltk_punkt._ORTHO_UNK_LC,
        nltk_punkt._ORTHO_LC,
    )  # fmt: skip
    ortho = punkt_parameters("english").ortho_context
    assert ortho["the"] & ORTHO_BEG_UC and ortho["the"] & ORTHO_MID_LC  # "The ..." / "... the"
    assert ortho["rome"] and not ortho["rome"] & ORTHO_LC  # a name: never lowercase
