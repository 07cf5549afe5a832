"""Scenario 11: ``speakstream ask`` on the embedded defaults, against its physical limit.

Three kinds of fresh ``speakstream ask`` processes, run as a user would
(``--no-play --json --max-tokens 64``), alternated so machine load hits them
alike, ``runs`` times each:

* **limit**: the same question with ``--tts espeak`` (espeak-ng costs a few ms
  per segment, so the LLM runs almost alone): ``t`` of segment 0's ``segment``
  event = when segment 0 is cut with generation undisturbed;
* **warm**: the defaults (``--llm local``, ``--tts auto`` → piper offline), with
  the optimized piper model already cached (see ``tts._piper``);
* **cold**: the same with an empty cache dir (``XDG_CACHE_HOME``) and the
  model files (GGUF, ONNX) evicted from the page cache
  (``posix_fadvise(DONTNEED)``): the first run after install.

Physical limit of a warm/cold run = median "segment 0 cut" of the limit runs
+ the engine's own time to first audio for exactly that run's segment 0
spoken text (a warm :class:`tts.PiperEngine` in this process, nothing else
running: median of 3). Headline: ``warm_ratio`` = median(TTFA ÷ limit) of
the warm runs (goal ≤ 1.25), ``cold_vs_warm`` = median cold TTFA ÷ median
warm TTFA (goal ≤ 1.5). TTFA is the run's own ``ttfa_s`` (first audio chunk
handed to a sink, seconds from the run's start, model loading included).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import engine_ttfa, median

RUNS = 5
QUESTION = "Why is the sky blue? Answer in a few sentences."
MAX_TOKENS = 64


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("speakstream")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline._cli"]


def _model_files() -> list[Path]:
    import llm
    from tts import find_bundled_model

    with llm.create_client("local") as client:
        gguf = Path(vars(client)["model_path"])  # the bundled SmolLM2 (nothing loaded yet)
    return [gguf, find_bundled_model()[0]]


def _evict(paths: list[Path]) -> None:
    """Drop ``paths`` from the page cache (works without root for clean pages)."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def _ask(out: str, *, tts: str | None, env: dict[str, str]) -> dict[str, Any]:
    argv = [*_cli(), "ask", QUESTION, "--no-play", "--json", "--max-tokens", str(MAX_TOKENS),
            "-o", out, *(["--tts", tts] if tts else [])]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONWARNINGS": "ignore", **env})  # fmt: skip
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"speakstream ask exited {proc.returncode}: {proc.stderr[-500:]}")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    done = next(e for e in events if e["status"] == "completed")
    if done["error"]:
        raise RuntimeError(f"speakstream ask failed: {done['error']}")
    first = next(e for e in events if e["status"] == "segment" and e["index"] == 0)
    engines = {e.get("engine") for e in events if e["status"] == "audio"}
    return {"ttft_s": done["ttft_s"], "ttfa_s": done["ttfa_s"], "segment0_cut_s": first["t"],
            "segment0_text": first["spoken_text"], "engines": sorted(str(e) for e in engines),
            "process_wall_s": wall}  # fmt: skip


async def _engine_ttfa(texts: list[str]) -> list[float]:
    """A warm piper's own time to first chunk for each text (median of 3 each), seconds."""
    import tts

    engine = tts.PiperEngine()
    result = []
    async with engine:
        await engine.warm_up()
        await engine.synthesize("Warm up.")
        for text in texts:
            result.append(median([await engine_ttfa(engine, text) for _ in range(3)]))
    return result


def run(quick: bool = False, runs: int | None = None) -> dict[str, Any]:
    runs = runs or (2 if quick else RUNS)
    rows: dict[str, list[dict[str, Any]]] = {"limit": [], "warm": [], "cold": []}
    with tempfile.TemporaryDirectory() as out, tempfile.TemporaryDirectory() as warm_cache:
        warm_env = {"XDG_CACHE_HOME": warm_cache}
        _ask(out, tts=None, env=warm_env)  # fills the warm cache (not counted)
        for _ in range(runs):
            rows["limit"].append(_ask(out, tts="espeak", env=warm_env))
            rows["warm"].append(_ask(out, tts=None, env=warm_env))
            with tempfile.TemporaryDirectory() as cold_cache:
                _evict(_model_files())
                rows["cold"].append(_ask(out, tts=None, env={"XDG_CACHE_HOME": cold_cache}))
    cut = median([r["segment0_cut_s"] for r in rows["limit"]])
    for kind in ("warm", "cold"):
        own = asyncio.run(_engine_ttfa([r["segment0_text"] for r in rows[kind]]))
        for row, engine_s in zip(rows[kind], own, strict=True):
            row["engine_ttfa_s"] = engine_s
            row["limit_s"] = cut + engine_s
            row["ratio"] = row["ttfa_s"] / row["limit_s"]
    warm_ttfa = median([r["ttfa_s"] for r in rows["warm"]])
    cold_ttfa = median([r["ttfa_s"] for r in rows["cold"]])
    return {
        "runs": runs, "question": QUESTION, "max_tokens": MAX_TOKENS,
        "load_avg_1m_end": round(os.getloadavg()[0], 2),
        "segment0_cut_alone_s": cut,
        "warm_ttft_s": median([r["ttft_s"] for r in rows["warm"]]),
        "warm_ttfa_s": warm_ttfa, "cold_ttfa_s": cold_ttfa,
        "warm_limit_s": median([r["limit_s"] for r in rows["warm"]]),
        "warm_ratio": median([r["ratio"] for r in rows["warm"]]),
        "cold_ratio": median([r["ratio"] for r in rows["cold"]]),
        "cold_vs_warm": cold_ttfa / warm_ttfa,
        "samples": rows,
    }  # fmt: skip


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = run(quick=args.quick, runs=args.runs)
    print(json.dumps({k: v for k, v in result.items() if k != "samples"}, indent=1))
