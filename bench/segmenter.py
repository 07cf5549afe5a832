"""Segmenter benchmark: speakstream's SentenceBuffer vs stream2sentence, side by side.

Feeds a long text (Alice in Wonderland, repeated to size) in ~4-character
pushes, as an LLM streams tokens, and reports characters per second for 10 KB,
1 MB and 10 MB (``--quick``: 10 KB, 100 KB, 1 MB). Per-character cost must stay
flat as the size grows (linear total cost). stream2sentence (its default
rule-based splitter) runs on the same chunks in the same process; its runs are
capped (``s2s_cap_chars``) and the throughput of the capped prefix stands for
the full size: it is marked ``extrapolated``. Both tools' accuracy on the
hard-case suite (``tests/pipeline/hard_cases.py``) is reported too, next to
plain NLTK Punkt. pySBD (batch only: it needs the whole text) is timed on a
prefix of each size (``pysbd_cap_chars``) when installed, for scale; the
accuracy of all four on other projects' test sets is :mod:`bench.accuracy`.

Importable (``run(quick=...) -> dict``) and runnable::

    python bench/segmenter.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/segmenter.py` from anywhere
    sys.path.insert(0, str(ROOT))

from pipeline import SentenceBuffer, split_sentences  # noqa: E402
from tests.pipeline.hard_cases import HARD_CASES  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "alice_in_wonderland.txt"
CHUNK = 4
FULL_SIZES = (10_000, 1_000_000, 10_000_000)
QUICK_SIZES = (10_000, 100_000, 1_000_000)


def corpus(size: int, path: Path = CORPUS) -> str:
    """``size`` characters of the corpus, repeated as needed."""
    base = path.read_text(encoding="utf-8")
    return (base * (size // len(base) + 1))[:size]


def _chunks(text: str, chunk: int = CHUNK) -> Iterator[str]:
    for i in range(0, len(text), chunk):
        yield text[i : i + chunk]


def time_speakstream(text: str, chunk: int = CHUNK) -> dict[str, Any]:
    """Stream ``text`` through a default SentenceBuffer (no time rule); seconds, chars/s."""
    buffer = SentenceBuffer(max_buffer_time=None)
    segments = 0
    start = time.perf_counter()
    for piece in _chunks(text, chunk):
        segments += len(buffer.push(piece))
    segments += len(buffer.flush())
    seconds = time.perf_counter() - start
    return {"chars": len(text), "seconds": seconds, "chars_per_s": len(text) / seconds,
            "segments": segments}  # fmt: skip


def time_stream2sentence(
    text: str, chunk: int = CHUNK, cap_chars: int | None = None
) -> dict[str, Any]:
    """Stream ``text`` (or its first ``cap_chars``) through stream2sentence's defaults."""
    from stream2sentence import generate_sentences

    measured = text if cap_chars is None else text[:cap_chars]
    start = time.perf_counter()
    sentences = sum(1 for _ in generate_sentences(_chunks(measured, chunk)))
    seconds = time.perf_counter() - start
    rate = len(measured) / seconds
    return {"chars": len(text), "measured_chars": len(measured), "seconds": len(text) / rate,
            "chars_per_s": rate, "sentences": sentences,
            "extrapolated": len(measured) < len(text)}  # fmt: skip


def time_pysbd(text: str, cap_chars: int) -> dict[str, Any] | None:
    """pySBD (batch) on the first ``cap_chars`` of ``text``; None when not installed."""
    try:
        import pysbd
    except ImportError:
        return None
    measured = text[:cap_chars]
    segmenter = pysbd.Segmenter(language="en", clean=False)
    start = time.perf_counter()
    sentences = len(segmenter.segment(measured))
    seconds = time.perf_counter() - start
    return {"measured_chars": len(measured), "chars_per_s": len(measured) / seconds,
            "sentences": sentences, "extrapolated": len(measured) < len(text)}  # fmt: skip


def _score(split: Callable[[str], list[str]]) -> dict[str, Any]:
    failures = []
    for category, text, expected in HARD_CASES:
        got = [s.strip() for s in split(text) if s.strip()]
        if got != expected:
            failures.append({"category": category, "text": text, "got": got})
    passed = len(HARD_CASES) - len(failures)
    return {"passed": passed, "total": len(HARD_CASES), "rate": passed / len(HARD_CASES),
            "failures": failures}  # fmt: skip


def _stream2sentence_split(text: str) -> list[str]:
    from stream2sentence import generate_sentences

    # A pure splitter: no merging of short sentences, fed character by character.
    return list(generate_sentences(iter(text), minimum_sentence_length=0,
                                   minimum_first_fragment_length=0))  # fmt: skip


def _plain_punkt_split(text: str) -> list[str]:
    import punkt
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    model = punkt.load_model("english")
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    params.ortho_context.update({k: int(v) for k, v in model.ortho_context.items()})
    return PunktSentenceTokenizer(params).tokenize(text)


def accuracy() -> dict[str, dict[str, Any]]:
    """Hard-case pass rates: speakstream, stream2sentence, plain NLTK Punkt."""
    return {
        "speakstream": _score(split_sentences),
        "stream2sentence": _score(_stream2sentence_split),
        "plain_punkt": _score(_plain_punkt_split),
    }


def run(quick: bool = False, s2s_cap_chars: int | None = None) -> dict[str, Any]:
    """Run everything; returns ``{"throughput": [...], "accuracy": {...}}``."""
    sizes = QUICK_SIZES if quick else FULL_SIZES
    cap = s2s_cap_chars if s2s_cap_chars is not None else (200_000 if quick else 1_000_000)
    rows = []
    for size in sizes:
        text = corpus(size)
        ours = time_speakstream(text)
        theirs = time_stream2sentence(text, cap_chars=cap)
        rows.append({"size": size, "speakstream": ours, "stream2sentence": theirs,
                     "ratio": ours["chars_per_s"] / theirs["chars_per_s"],
                     "pysbd": time_pysbd(text, 20_000 if quick else 100_000)})  # fmt: skip
    return {"chunk_chars": CHUNK, "throughput": rows, "accuracy": accuracy()}


def _print(result: dict[str, Any]) -> None:
    print(f"segmenter benchmark: {CORPUS.name} repeated, {result['chunk_chars']} chars/push")
    print(f"{'size':>10} {'speakstream':>22} {'us/char':>8} {'stream2sentence':>26} {'ratio':>7}"
          f" {'pySBD (prefix)':>16}")
    for row in result["throughput"]:
        ours, theirs = row["speakstream"], row["stream2sentence"]
        mark = "*" if theirs["extrapolated"] else " "
        print(
            f"{row['size']:>10,} {ours['chars_per_s']:>12,.0f} c/s {ours['seconds']:>6.2f}s"
            f" {1e6 / ours['chars_per_s']:>8.3f}"
            f" {theirs['chars_per_s']:>12,.0f} c/s {theirs['seconds']:>8.2f}s{mark}"
            f" {row['ratio']:>6.1f}x"
            + (f" {row['pysbd']['chars_per_s']:>12,.0f} c/s" if row["pysbd"] else "  n/a")
        )
    if any(r["stream2sentence"]["extrapolated"] for r in result["throughput"]):
        print("  * stream2sentence time extrapolated from its capped prefix")
    print("hard cases:")
    for name, score in result["accuracy"].items():
        print(f"  {name:<16} {score['passed']:>3}/{score['total']} = {score['rate']:.1%}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 KB / 100 KB / 1 MB")
    parser.add_argument("--s2s-cap", type=int, default=None,
                        help="characters of each size stream2sentence really runs")  # fmt: skip
    args = parser.parse_args(argv)
    _print(run(quick=args.quick, s2s_cap_chars=args.s2s_cap))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
