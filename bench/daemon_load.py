"""Scenario 7: the daemon under load: concurrent ``POST /v1/speak`` SSE clients.

Processes: this one runs a :class:`~bench.common.TimedLLMServer` (Ollama
NDJSON, TTFT 200 ms, 40 tokens/s, :func:`~bench.common.short_answer`) and the
aiohttp clients (a lean load generator: the clients share the 2 cores
with the daemon, and httpx's per-line reading cost them about three times
the CPU); a child process (``python -m bench.daemon_load serve URL``) runs
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

Options: ``--clients N`` (default 100), ``--slow K``: K of them (the last K)
are *slow readers* (a 4 KiB receive buffer, 512 bytes read every 50 ms, over
raw TCP), reported apart; ``--pair`` runs the burst without slow readers and
with ``--slow`` (default 20) ``--rounds R`` times (default 3), interleaved
(A B, B A, A B, ...: a drift in the machine's load hits both sides alike),
and reports how much the slow readers moved the other clients' p95 (TTFA
overhead and time to ``done``): the ratio of each round and their median.
The daemon runs under uvicorn's defaults, as ``speakstream serve`` does:
uvloop and httptools when they are installed.
CPU per 1,000 tokens = the daemon's CPU seconds over the burst / the LLM
tokens it relayed (the fake server's deltas) x 1,000. SSE events per client:
how many events a (fast) client received; text deltas within ``coalesce_ms``
share one ``token`` event, so a busier daemon sends fewer, larger events. The machine's 1-minute
load average before and after the burst is reported with the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import json
import os
import socket
import sys
import tempfile
import time
from typing import Any

import aiohttp
import httpx

from bench.common import (
    TimedLLMServer,
    child_server,
    complete_at,
    llm_reply,
    median,
    proc_status_mb,
    process_cpu_s,
    serve_on_free_port,
    short_answer,
    summary,
)
from bench.ttfa import engine_latency, fast_engine
from llm import SSEDecoder

CLIENTS = 100
REQUEST_TIMEOUT_S = 60.0
BURST_TIMEOUT_S = 120.0


def serve(llm_url: str) -> None:
    """Child process: the daemon app on a free loopback port (printed on stdout)."""
    from pipeline import StreamingConfig
    from pipeline.daemon import DaemonSettings, create_app

    out = tempfile.mkdtemp(prefix="speakstream-bench-daemon-")
    settings = DaemonSettings(
        port=0, output_dir=out, llm_provider="ollama",
        llm_config={"base_url": llm_url, "model": "fake"},
        streaming_config=StreamingConfig(output_dir=out),
    )  # fmt: skip
    serve_on_free_port(create_app(settings, tts_engine=fast_engine(), freeze_gc=True))


async def _client(http: aiohttp.ClientSession, url: str, n: int) -> dict[str, Any]:
    message = f"Client {n}: how does a bicycle stay up?"
    row: dict[str, Any] = {"client": n, "message": message, "error": None,
                           "started_at": time.monotonic()}
    try:
        async with http.post(url + "/v1/speak", json={"message": message}) as response:
            if response.status != 200:
                row["error"] = f"HTTP {response.status}"
                return row
            decoder, utf8 = SSEDecoder(), codecs.getincrementaldecoder("utf-8")()
            async for data in response.content.iter_any():
                for event in decoder.feed(utf8.decode(data)):
                    _on_event(row, event.event, json.loads(event.data))
    except (aiohttp.ClientError, TimeoutError) as exc:
        row["error"] = f"{type(exc).__name__}: {exc}"
    if row["error"] is None and "audio_at" not in row:
        row["error"] = "no audio"
    if row["error"] is None and "done" not in row:
        row["error"] = "no done event"
    return row


def _on_event(row: dict[str, Any], event: str, data: dict[str, Any]) -> None:
    row["events"] = row.get("events", 0) + 1
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
        row["done_at"] = time.monotonic()
        if data.get("error") and row["error"] is None:
            row["error"] = data["error"]


async def _burst(url: str, clients: int, slow: int = 0) -> list[dict[str, Any]]:
    # Each read (and the connect) bounded, as httpx's Timeout did; the whole
    # burst by BURST_TIMEOUT_S below.
    read_s = REQUEST_TIMEOUT_S * max(1.0, clients / 100)
    timeout = aiohttp.ClientTimeout(total=None, connect=read_s, sock_read=read_s)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                     timeout=timeout) as http:
        async with http.get(url + "/healthz") as response:
            await response.read()
        # 120 s for 100 clients, more for bigger bursts (500: 600 s).
        async with asyncio.timeout(BURST_TIMEOUT_S * max(1.0, clients / 100)):
            return list(await asyncio.gather(*(
                _slow_client(url, n) if n >= clients - slow else _client(http, url, n)
                for n in range(clients)
            )))


async def _slow_client(url: str, n: int) -> dict[str, Any]:
    """A slow reader: small receive buffer, 512 bytes every 50 ms, raw HTTP/1.1."""
    message = f"Client {n}: how does a bicycle stay up?"
    row: dict[str, Any] = {"client": n, "message": message, "error": None, "slow": True,
                           "started_at": time.monotonic()}
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
    reader, writer = await asyncio.open_connection(sock=sock, limit=512)
    body = json.dumps({"message": message}).encode()
    writer.write(b"POST /v1/speak HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                 b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    received = b""
    try:
        while b"event: done" not in received:
            chunk = await reader.read(512)
            if not chunk:
                row["error"] = "closed before done"
                break
            received += chunk
            await asyncio.sleep(0.05)
        else:
            row["done_at"] = time.monotonic()
            row["done"] = True
    finally:
        writer.close()
    if b"event: audio" not in received and row["error"] is None:
        row["error"] = "no audio"
    return row


async def _wait_ready(url: str) -> None:
    async with httpx.AsyncClient() as http:
        for _ in range(200):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(url + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)
    raise RuntimeError("the daemon did not become ready")


def run(quick: bool = False, *, clients: int | None = None, slow: int = 0) -> dict[str, Any]:
    """One burst of ``clients`` SSE clients (``slow`` of them slow readers)."""
    clients = clients or (20 if quick else CLIENTS)
    reply = llm_reply(short_answer(), ttft_s=0.2, tokens_per_s=40.0)
    with TimedLLMServer(reply) as server:
        with child_server("bench.daemon_load", "serve", server.url) as (url, proc):
            asyncio.run(_wait_ready(url))
            idle_mb = proc_status_mb("VmHWM", proc.pid)
            load_before = os.getloadavg()[0]
            started, cpu_here = time.monotonic(), time.process_time()
            cpu_daemon = process_cpu_s(proc.pid)
            rows = asyncio.run(_burst(url, clients, slow))
            burst_s = time.monotonic() - started
            cpu_here = time.process_time() - cpu_here
            cpu_daemon = process_cpu_s(proc.pid) - cpu_daemon
            peak_mb = proc_status_mb("VmHWM", proc.pid)
            load = [load_before, os.getloadavg()[0]]
        by_message = {}
        for rec in server.requests:
            messages = (rec.json or {}).get("messages") or [{}]
            by_message[messages[-1].get("content")] = server.token_times(rec)
    tokens = sum(len(times) for times in by_message.values())
    overheads, to_segment, in_daemon, delivery, done_s, slow_done_s = [], [], [], [], [], []
    for row in rows:
        if row["error"] is not None:
            continue
        if row.get("slow"):
            slow_done_s.append(row["done_at"] - row["started_at"])
            continue
        done_s.append(row["done_at"] - row["started_at"])
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
    events = [float(row["events"]) for row in rows
              if row["error"] is None and not row.get("slow")]
    return {
        "clients": clients, "slow_readers": slow, "errors": len(errors),
        "error_samples": errors[:5],
        "burst_s": burst_s, "ttfa_overhead_ms": summary(overheads) if overheads else None,
        "to_segment_event_ms": summary(to_segment) if to_segment else None,
        "segment_to_audio_in_daemon_ms": summary(in_daemon) if in_daemon else None,
        "rest_ms": summary(delivery) if delivery else None,
        "done_s": summary(done_s) if done_s else None,
        "slow_done_s": summary(slow_done_s) if slow_done_s else None,
        "tokens_relayed": tokens,
        # How long the fake server took to send each answer (its pace is 40
        # tokens/s): done_s cannot be shorter; it stretches when the bench
        # process itself (server thread + clients) is short of CPU.
        "llm_send_s": summary([times[-1][0] - times[0][0]
                               for times in by_message.values() if times]),
        "sse_events_per_client": summary(events) if events else None,
        "cpu_s_daemon": cpu_daemon, "cpu_s_llm_server_and_clients": cpu_here,
        "daemon_cpu_s_per_1000_tokens": 1000 * cpu_daemon / tokens if tokens else None,
        "daemon_rss_idle_mb": idle_mb, "daemon_peak_rss_mb": peak_mb, "cores": os.cpu_count(),
        "loadavg_1min_before_after": load,
    }  # fmt: skip


def pair(clients: int = CLIENTS, slow: int = 20, rounds: int = 3) -> dict[str, Any]:
    """Side by side: the same burst without and with ``slow`` slow readers,
    ``rounds`` times interleaved; the ratios (with / without) say how much the
    slow readers moved the other clients' p95, per round and as the median."""

    def p95(result: dict[str, Any], key: str) -> float:
        return float(result[key]["p95"])

    pairs: list[dict[str, Any]] = []
    for n in range(rounds):
        if n % 2 == 0:
            without, with_slow = run(clients=clients, slow=0), run(clients=clients, slow=slow)
        else:
            with_slow, without = run(clients=clients, slow=slow), run(clients=clients, slow=0)
        pairs.append({
            "without_slow": without, "with_slow": with_slow,
            "ttfa_overhead_p95_ratio": p95(with_slow, "ttfa_overhead_ms")
            / p95(without, "ttfa_overhead_ms"),
            "done_p95_ratio": p95(with_slow, "done_s") / p95(without, "done_s"),
        })  # fmt: skip
    return {
        "rounds": pairs,
        "ttfa_overhead_p95_ratios": [p["ttfa_overhead_p95_ratio"] for p in pairs],
        "done_p95_ratios": [p["done_p95_ratio"] for p in pairs],
        "ttfa_overhead_p95_ratio_median": median([p["ttfa_overhead_p95_ratio"] for p in pairs]),
        "done_p95_ratio_median": median([p["done_p95_ratio"] for p in pairs]),
    }


if __name__ == "__main__":
    if sys.argv[1:2] == ["serve"]:
        if len(sys.argv) != 3:
            sys.exit("usage: python -m bench.daemon_load serve LLM_URL (a child of the bench)")
        serve(sys.argv[2])
    else:
        parser = argparse.ArgumentParser(prog="python -m bench.daemon_load",
                                         description=__doc__.splitlines()[0])
        parser.add_argument("--clients", type=int, default=None,
                            help=f"clients at once (default {CLIENTS}; --quick: 20)")
        parser.add_argument("--quick", action="store_true", help="20 clients")
        parser.add_argument("--slow", type=int, default=None,
                            help="how many of them are slow readers (--pair: 20, else 0)")
        parser.add_argument("--pair", action="store_true",
                            help="bursts without and with slow readers, interleaved")
        parser.add_argument("--rounds", type=int, default=3, help="--pair: rounds")
        args = parser.parse_args()
        if args.pair:
            result = pair(args.clients or CLIENTS, 20 if args.slow is None else args.slow,
                          args.rounds)
        else:
            result = run(quick=args.quick, clients=args.clients, slow=args.slow or 0)
        print(json.dumps(result, indent=1))
