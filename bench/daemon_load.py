"""Scenario 7: the daemon under load: concurrent ``POST /v1/speak`` SSE clients.

Processes: this one runs a :class:`~bench.common.TimedLLMServer` (Ollama
NDJSON, TTFT 200 ms, 40 tokens/s, :func:`~bench.common.short_answer`) and the
httpx clients; a child process (``python -m bench.daemon_load serve URL``) runs
``pipeline.daemon.create_app`` under uvicorn on 127.0.0.1 (a free port) with the
``ollama`` provider pointed at the fake server and a fast
:class:`tests.fakes.engine.FakeEngine` (30 ms + 1 ms/char, short tones).
``CLIENTS`` clients (100; 20 with ``--quick``) start at once, each with its
own message, and read the SSE stream to ``done``; each request is bounded by
``REQUEST_TIMEOUT_S`` and the whole burst by ``BURST_TIMEOUT_S``.

Per client, TTFA overhead = its first ``audio`` event received - (instant
the fake server sent the last character of its segment 0 + the engine's
latency for that segment's text); ``time.monotonic`` is the system-wide
CLOCK_MONOTONIC, so the two processes' times compare. Errors = clients with
a non-200 status, an SSE ``error`` event, a ``done`` with an error, no audio,
or a transport failure/timeout. Peak RSS = the daemon's ``VmHWM``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import TimedLLMServer, complete_at, llm_reply, short_answer, summary
from bench.ttfa import engine_latency, fast_engine

CLIENTS = 100
REQUEST_TIMEOUT_S = 60.0
BURST_TIMEOUT_S = 120.0


def serve(llm_url: str) -> None:
    """Child process: the daemon app on a free loopback port (printed on stdout)."""
    import uvicorn

    from pipeline import StreamingConfig
    from pipeline.daemon import DaemonSettings, create_app

    out = tempfile.mkdtemp(prefix="speakstream-bench-daemon-")
    settings = DaemonSettings(
        port=0, output_dir=out, llm_provider="ollama",
        llm_config={"base_url": llm_url, "model": "fake"},
        streaming_config=StreamingConfig(output_dir=out),
    )  # fmt: skip
    app = create_app(settings, tts_engine=fast_engine())
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", backlog=512)
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT from the parent: a clean stop
        uvicorn.Server(config).run(sockets=[sock])


async def _client(http: httpx.AsyncClient, url: str, n: int) -> dict[str, Any]:
    message = f"Client {n}: how does a bicycle stay up?"
    row: dict[str, Any] = {"client": n, "message": message, "error": None}
    try:
        async with http.stream("POST", url + "/v1/speak", json={"message": message}) as response:
            if response.status_code != 200:
                row["error"] = f"HTTP {response.status_code}"
                return row
            event, data = "message", list[str]()
            async for line in response.aiter_lines():
                if line == "":
                    if data:
                        _on_event(row, event, json.loads("\n".join(data)))
                    event, data = "message", []
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].lstrip(" "))
    except httpx.HTTPError as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
    if row["error"] is None and "audio_at" not in row:
        row["error"] = "no audio"
    if row["error"] is None and "done" not in row:
        row["error"] = "no done event"
    return row


def _on_event(row: dict[str, Any], event: str, data: dict[str, Any]) -> None:
    if event == "segment" and data["index"] == 0:
        row["segment0"] = data
        row["segment0_at"] = time.monotonic()
    elif event == "audio" and "audio_at" not in row:
        row["audio_at"] = time.monotonic()
        row["audio0"] = data
    elif event == "error" and row["error"] is None:
        row["error"] = f"{data.get('error_type')}: {data.get('message')}"
    elif event == "done":
        row["done"] = True
        if data.get("error") and row["error"] is None:
            row["error"] = data["error"]


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def _burst(url: str, clients: int) -> list[dict[str, Any]]:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    timeout = httpx.Timeout(REQUEST_TIMEOUT_S)
    async with httpx.AsyncClient(limits=limits, timeout=timeout) as http:
        await http.get(url + "/healthz")
        async with asyncio.timeout(BURST_TIMEOUT_S):
            return list(await asyncio.gather(*(_client(http, url, n) for n in range(clients))))


async def _wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError("the daemon did not become ready")


def run(quick: bool = False) -> dict[str, Any]:
    clients = 20 if quick else CLIENTS
    reply = llm_reply(short_answer(), ttft_s=0.2, tokens_per_s=40.0)
    with TimedLLMServer(reply) as server:
        proc = subprocess.Popen([sys.executable, "-m", "bench.daemon_load", "serve", server.url],
                                stdout=subprocess.PIPE, text=True)  # fmt: skip
        try:
            assert proc.stdout is not None
            url = f"http://127.0.0.1:{int(proc.stdout.readline())}"
            asyncio.run(_wait_ready(url))
            idle_mb = _vm_hwm_mb(proc.pid)
            started, cpu_here, cpu_daemon = time.monotonic(), time.process_time(), _cpu_s(proc.pid)
            rows = asyncio.run(_burst(url, clients))
            burst_s = time.monotonic() - started
            cpu_here = time.process_time() - cpu_here
            cpu_daemon = _cpu_s(proc.pid) - cpu_daemon
            peak_mb = _vm_hwm_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        by_message = {}
        for rec in server.requests:
            messages = (rec.json or {}).get("messages") or [{}]
            by_message[messages[-1].get("content")] = server.token_times(rec)
    overheads, to_segment, in_daemon, delivery = [], [], [], []
    for row in rows:
        if row["error"] is None:
            seg = row["segment0"]
            text_done = complete_at(by_message[row["message"]], seg["end"])
            latency = engine_latency(seg["spoken_text"])
            overheads.append(1000 * (row["audio_at"] - (text_done + latency)))
            # Breakdown: text complete -> segment event received; segment -> audio
            # inside the daemon (its own clock, minus the engine latency); the rest.
            to_segment.append(1000 * (row["segment0_at"] - text_done))
            in_daemon.append(1000 * (row["audio0"]["t"] - seg["t"] - latency))
            delivery.append(overheads[-1] - to_segment[-1] - in_daemon[-1])
    errors = [row["error"] for row in rows if row["error"] is not None]
    return {
        "clients": clients, "errors": len(errors), "error_samples": errors[:5],
        "burst_s": burst_s, "ttfa_overhead_ms": summary(overheads) if overheads else None,
        "to_segment_event_ms": summary(to_segment) if to_segment else None,
        "segment_to_audio_in_daemon_ms": summary(in_daemon) if in_daemon else None,
        "rest_ms": summary(delivery) if delivery else None,
        "cpu_s_daemon": cpu_daemon, "cpu_s_llm_server_and_clients": cpu_here,
        "daemon_rss_idle_mb": idle_mb, "daemon_peak_rss_mb": peak_mb, "cores": os.cpu_count(),
    }  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        serve(sys.argv[2])
    else:
        print(json.dumps(run(quick="--quick" in sys.argv), indent=1))
