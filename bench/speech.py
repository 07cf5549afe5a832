"""Scenario 10: ``POST /v1/audio/speech`` time to first byte vs the engine's time to first audio.

A child process (``python -m bench.speech serve ENGINE``) runs the daemon
(``pipeline.daemon.create_app`` under uvicorn on 127.0.0.1, a free port) with
a warm engine (piper when installed, and espeak-ng). This process, side by
side and interleaved run by run:

* **engine**: the same engine standalone, warm, in this process:
  ``engine.stream(text)`` until its first chunk — for the input's *first
  sentence* (the issue's definition) and for *exactly segment 0's text*
  (what the daemon's cutter releases first; often a shorter clause, so this
  ratio is the stricter one);
* **speech**: an OpenAI-style request with a 3,000-character input (Alice,
  chapter 1, from its first paragraph), timed from sending the request to the
  first body byte received; the response is then closed (the daemon cancels
  the run) and the next request waits until the run has ended.

Ratio = median time to first byte / median engine time to first audio (goal:
<= 1.25 against the first sentence). ``RUNS`` pairs per engine and format
(mp3, the OpenAI default, and raw pcm, which needs no encoder).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

from bench.common import alice_chapter_1, engine_ttfa, median, process_cpu_s

RUNS = 7
INPUT_CHARS = 3000
FORMATS = ("mp3", "pcm")
ENGINES = ("piper", "espeak")
SETTLE_TIMEOUT_S = 30.0


def speech_input(chars: int = INPUT_CHARS) -> str:
    """About ``chars`` characters of Alice chapter 1 from its first paragraph, cut
    at a sentence boundary."""
    from pipeline import split_sentences

    chapter = alice_chapter_1()
    text = chapter[chapter.index("ALICE was beginning"):]
    pos = end = 0
    for sentence in split_sentences(text):
        found = text.find(sentence, pos)
        if found < 0 or found + len(sentence) > chars:
            break
        pos = end = found + len(sentence)
    return text[:end]


def first_texts(text: str) -> tuple[str, str]:
    """(first sentence, segment 0's spoken text with the daemon's default cutting)."""
    from pipeline import SentenceBuffer, StreamingConfig, clean_for_speech, split_sentences

    cfg = StreamingConfig()
    buffer = SentenceBuffer(
        sentence_buffer_size=cfg.sentence_buffer_size, min_chunk_length=cfg.min_chunk_length,
        max_buffer_time=None, first_segment_min_length=cfg.first_segment_min_length,
    )
    segments = buffer.push(text) + buffer.flush()
    segment0 = clean_for_speech(segments[0].text).strip()
    return split_sentences(text)[0].strip(), segment0


def serve(engine: str) -> None:
    """Child process: the daemon with a warm ``engine`` on a free loopback port."""
    import uvicorn

    import tts
    from pipeline.daemon import DaemonSettings, create_app

    out = tempfile.mkdtemp(prefix="speakstream-bench-speech-")
    settings = DaemonSettings(port=0, output_dir=out, tts_provider=engine)
    warm = tts.create_engine(engine)
    asyncio.run(warm.warm_up())
    app = create_app(settings, tts_engine=warm)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT from the parent: a clean stop
        uvicorn.Server(config).run(sockets=[sock])


def _speech_ttfb(http: httpx.Client, url: str, text: str, fmt: str) -> tuple[float, str]:
    body = {"model": "tts-1", "input": text, "response_format": fmt}
    start = time.perf_counter()
    with http.stream("POST", url + "/v1/audio/speech", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.read()[:200]!r}")
        for data in response.iter_raw():
            if data:
                return time.perf_counter() - start, response.headers["x-run-id"]
    raise RuntimeError("empty body")


def _settle(http: httpx.Client, url: str, run_id: str, pid: int) -> None:
    """Wait (bounded) until the cancelled run has ended and the daemon is idle
    (an engine finishes the sentence it is on: ONNX cannot be interrupted), so
    runs and measurements never overlap."""
    deadline = time.monotonic() + SETTLE_TIMEOUT_S
    while time.monotonic() < deadline:
        if http.get(f"{url}/v1/runs/{run_id}").json().get("status") != "running":
            break
        time.sleep(0.05)
    while time.monotonic() < deadline:
        before = process_cpu_s(pid)
        time.sleep(0.2)
        if process_cpu_s(pid) - before < 0.02:  # < 10 % of one core: idle
            return


def _available(engine: str) -> bool:
    import tts

    async def probe() -> bool:
        candidate = tts.create_engine(engine)
        try:
            await candidate.synthesize("Hello.")
            return True
        except (tts.TTSError, OSError):
            return False
        finally:
            await candidate.aclose()

    return asyncio.run(probe())


def _one_engine(engine: str, text: str, runs: int) -> dict[str, Any]:
    import tts

    first_sentence, segment0 = first_texts(text)
    proc = subprocess.Popen([sys.executable, "-m", "bench.speech", "serve", engine],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = f"http://127.0.0.1:{int(proc.stdout.readline())}"
        with httpx.Client(timeout=120) as http:
            for _ in range(200):
                with contextlib.suppress(httpx.HTTPError):
                    if http.get(url + "/healthz").status_code == 200:
                        break
                time.sleep(0.05)
            standalone = tts.create_engine(engine)
            loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(standalone.warm_up())
                rows: dict[str, list[float]] = {"sentence": [], "segment0": []}
                rows.update({f: [] for f in FORMATS})
                for i in range(runs + 1):  # the first round warms everything up
                    sentence_s = loop.run_until_complete(engine_ttfa(standalone, first_sentence))
                    segment_s = loop.run_until_complete(engine_ttfa(standalone, segment0))
                    ttfbs = {}
                    for fmt in FORMATS:
                        ttfbs[fmt], run_id = _speech_ttfb(http, url, text, fmt)
                        _settle(http, url, run_id, proc.pid)
                    if i:
                        rows["sentence"].append(sentence_s)
                        rows["segment0"].append(segment_s)
                        for fmt in FORMATS:
                            rows[fmt].append(ttfbs[fmt])
            finally:
                loop.run_until_complete(standalone.aclose())
                loop.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    result: dict[str, Any] = {
        "first_sentence_chars": len(first_sentence), "segment0_chars": len(segment0),
        "engine_ttfa_first_sentence_s": median(rows["sentence"]),
        "engine_ttfa_segment0_s": median(rows["segment0"]),
        "samples": rows,
    }  # fmt: skip
    for fmt in FORMATS:
        ttfb = median(rows[fmt])
        result[fmt] = {
            "ttfb_s": ttfb,
            "ratio_vs_first_sentence": ttfb / result["engine_ttfa_first_sentence_s"],
            "ratio_vs_segment0": ttfb / result["engine_ttfa_segment0_s"],
        }
    return result


def run(quick: bool = False) -> dict[str, Any]:
    text = speech_input()
    runs = 3 if quick else RUNS
    out: dict[str, Any] = {"input_chars": len(text), "runs": runs, "formats": list(FORMATS),
                           "load_avg_1m_start": os.getloadavg()[0], "engines": {}}
    for engine in ENGINES:
        if not _available(engine):
            out["engines"][engine] = {"skipped": f"{engine} is not available here"}
            continue
        out["engines"][engine] = _one_engine(engine, text, runs)
    out["load_avg_1m_end"] = os.getloadavg()[0]
    return out


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "serve":
        serve(sys.argv[2])
    else:
        import json

        result = run(quick="--quick" in sys.argv)
        for engine in result["engines"].values():
            engine.pop("samples", None)
        print(json.dumps(result, indent=1))
