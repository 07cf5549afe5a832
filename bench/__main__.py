"""``python -m bench [--quick] [--only a,b] [--out DIR]``: run the benchmarks.

Scenarios (see each module's docstring), in order: ``ttfa`` (1), ``overlap``
(2), ``first_segment`` (3), ``segmenter`` (4, :mod:`bench.segmenter`),
``memory`` (5), ``engines`` (6), ``daemon`` (7), ``local`` (8), ``accuracy``
(9, :mod:`bench.accuracy`), ``speech`` (10), ``default_path`` (11,
:mod:`bench.default_path`), ``peers`` (12, :mod:`bench.peers`: RealtimeTTS side
by side, skipped when it is not installed), ``narrate`` (13, jobs in-process and
on Ray, :mod:`bench.narrate`).

Writes ``DIR/latest.json`` (headline keys at the top level, every scenario's
details under ``scenarios``), ``DIR/latest.md`` (the table, also printed) and
``DIR/summary.png``. A scenario that fails is reported in the table and the
JSON (``errors``) and the exit status is 1; the others still run.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import report
from bench.common import ROOT, machine

RESULTS = ROOT / "bench" / "results"


def _scenarios() -> dict[str, Callable[[bool], dict[str, Any]]]:
    from bench import (
        accuracy,
        daemon_load,
        default_path,
        engines,
        first_segment,
        local_model,
        memory,
        narrate,
        overlap,
        peers,
        segmenter,
        speech,
        ttfa,
    )

    return {
        "ttfa": ttfa.run,
        "overlap": overlap.run,
        "first_segment": first_segment.run,
        "segmenter": lambda quick: segmenter.run(quick=quick),
        "memory": memory.run,
        "engines": engines.run,
        "daemon": daemon_load.run,
        "local": local_model.run,
        "accuracy": accuracy.run,
        "speech": speech.run,
        "default_path": default_path.run,
        "peers": peers.run,
        "narrate": narrate.run,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer runs (< 2 min)")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    scenarios = _scenarios()
    chosen = [s.strip() for s in args.only.split(",") if s.strip()] or list(scenarios)
    unknown = sorted(set(chosen) - set(scenarios))
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}; known: {', '.join(scenarios)}")

    results: dict[str, Any] = {
        "timestamp": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "machine": machine(), "quick": args.quick, "errors": {}, "seconds": {},
    }  # fmt: skip
    for name in chosen:
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        start = time.monotonic()
        try:
            results[name] = scenarios[name](args.quick)
        except Exception as exc:  # reported in the JSON and the table; exit status 1
            traceback.print_exc()
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
        results["seconds"][name] = round(time.monotonic() - start, 1)
        print(f"[bench] {name} done in {results['seconds'][name]} s", file=sys.stderr, flush=True)

    head = report.headline(results)
    table = report.markdown(results, head)
    scenario_data = {k: results[k] for k in scenarios if k in results}
    document = {**head, "machine": results["machine"], "timestamp": results["timestamp"],
                "quick": args.quick, "errors": results["errors"],
                "seconds": results["seconds"], "scenarios": scenario_data}  # fmt: skip
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "latest.json").write_text(json.dumps(document, indent=1, default=str) + "\n")
    (args.out / "latest.md").write_text(table)
    report.plot(results, args.out / "summary.png")
    print(table)
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
