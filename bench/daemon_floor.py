"""Scenario 7's floors: what a burst of 100 clients costs with nothing of ours in the way.

Two limits of this machine, to read ``bench/daemon_load.py``'s figures against:

- *relay*: the same :class:`~bench.common.TimedLLMServer` (Ollama NDJSON, TTFT
  200 ms, 40 tokens/s, :func:`~bench.common.short_answer`) and 100 aiohttp
  SSE clients (lighter than ``daemon_load``'s: they only time each ``token``
  event), but the server is a bare relay: a plain ASGI app
  under uvicorn (as ``speakstream serve`` runs: uvloop and httptools when
  installed, a child process: ``python -m bench.daemon_floor relay URL``)
  that opens each answer's LLM stream with aiohttp, splits lines,
  ``json.loads`` each and writes one SSE ``token`` event per network chunk.
  No sentence buffer, no synthesis, no files, no FastAPI. One answer is
  relayed before the burst (start-up and first use not counted). Reported:
  the relay's CPU seconds per 1,000 tokens (as ``daemon_load`` reports the
  daemon's, whose figure also holds synthesis, files and fsyncs) and each
  token's delivery latency (the fake server sent it ->
  a client parsed its event; ``time.monotonic`` is system-wide).
- *disk*: segment 0 of ``CLIENTS`` runs written at once as the daemon writes
  it: one :class:`output.SegmentWriter` per run directory (the file written
  and fsynced under a temporary name, linked into place, its manifest line
  appended and fsynced), a short tone like the fast fake engine's (0.05 s,
  22,050 Hz), on thread pools of :data:`POOLS` sizes (the disk's journal
  serialises fsyncs: more threads are not faster), each pool's threads
  started beforehand. Reported: each write's time from the common start to
  its return, in ms, per pool size; ``last_write_ms``, the best pool's
  maximum, is how soon the last of a burst's first files can be durable
  with one ``fsync`` per file and per line (``SegmentWriter.write``).
  Side by side, ``group_commit``: the same writes through
  ``SegmentWriter.awrite`` from one event loop at once (the process's
  group commit: one ``syncfs`` per round for every write waiting,
  :mod:`output._commit`; as the daemon made them until 2026-12-04, before its
  ``audio`` event stopped waiting for them); ``group_commit_last_ms`` is its
  last write's return.

Run it with ``python -m bench.daemon_floor`` (prints JSON).
"""

from __future__ import annotations

import asyncio
import codecs
import json
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiohttp
from starlette.types import Receive, Scope, Send

from bench.common import (
    TimedLLMServer,
    child_server,
    llm_reply,
    process_cpu_s,
    serve_on_free_port,
    short_answer,
    summary,
)
from bench.daemon_load import CLIENTS
from llm import SSEDecoder
from output import SegmentWriter
from tests.fakes.engine import tone_wav
from tts import SynthesizedAudio

#: Thread pool sizes the disk floor tries (the daemon's has 64 threads).
POOLS = (4, 16, 64, 100)

#: The message of the request made before the burst (its tokens are not counted).
WARM_UP = "warm up"


class Relay:
    """The bare relay ASGI app (see the module docstring); ``llm_url``: the fake server."""

    def __init__(self, llm_url: str) -> None:
        self.llm_url = llm_url
        self.http: aiohttp.ClientSession | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                self.http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
                await send({"type": "lifespan.startup.complete"})
            assert self.http is not None
            await self.http.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip
        if scope["path"] == "/v1/speak":
            await self._relay(json.loads(body)["message"], send)
        await send({"type": "http.response.body", "body": b"event: done\ndata: {}\n\n"})

    async def _relay(self, message: str, send: Send) -> None:
        assert self.http is not None
        request = {"model": "fake", "stream": True,
                   "messages": [{"role": "user", "content": message}]}  # fmt: skip
        seq, rest = 0, b""
        async with self.http.post(self.llm_url + "/api/chat", json=request) as response:
            async for data in response.content.iter_any():
                *lines, rest = (rest + data).split(b"\n")
                events = []
                for line in lines:
                    text = json.loads(line)["message"]["content"] if line.strip() else ""
                    if text:
                        seq += 1
                        events.append(f"id: {seq}\nevent: token\ndata: "
                                      f"{json.dumps({'text': text})}\n\n")  # fmt: skip
                if events:
                    await send({"type": "http.response.body", "more_body": True,
                                "body": "".join(events).encode()})  # fmt: skip


def relay(llm_url: str) -> None:
    """Child process: the bare relay on a free loopback port (printed on stdout)."""
    serve_on_free_port(Relay(llm_url))


async def _client(http: aiohttp.ClientSession, url: str, message: str) -> list[float]:
    """When each ``token`` event arrived (``time.monotonic``)."""
    arrived: list[float] = []
    decoder, utf8 = SSEDecoder(), codecs.getincrementaldecoder("utf-8")()
    async with http.post(url + "/v1/speak", json={"message": message}) as response:
        response.raise_for_status()
        async for data in response.content.iter_any():
            for event in decoder.feed(utf8.decode(data)):
                if event.event == "token":
                    arrived.append(time.monotonic())
    return arrived


async def _warm_up(url: str) -> None:
    """One answer relayed before the burst: the child's start-up and first use
    (its first LLM connection, imports) are not counted."""
    async with aiohttp.ClientSession() as http:
        await _client(http, url, WARM_UP)


async def _burst(url: str, clients: int) -> dict[str, list[float]]:
    messages = [f"Client {n}: how does a bicycle stay up?" for n in range(clients)]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        arrivals = await asyncio.gather(*(_client(http, url, m) for m in messages))
    return dict(zip(messages, arrivals, strict=True))


def relay_floor(clients: int = CLIENTS) -> dict[str, Any]:
    """One burst of ``clients`` against the bare relay (see the module docstring)."""
    reply = llm_reply(short_answer(), ttft_s=0.2, tokens_per_s=40.0)
    with TimedLLMServer(reply) as server:
        with child_server("bench.daemon_floor", "relay", server.url) as (url, proc):
            asyncio.run(_warm_up(url))
            cpu = process_cpu_s(proc.pid)
            arrivals = asyncio.run(_burst(url, clients))
            cpu = process_cpu_s(proc.pid) - cpu
        latency, tokens = [], 0
        for rec in server.requests:
            messages = (rec.json or {}).get("messages") or [{}]
            if messages[-1].get("content") == WARM_UP:
                continue
            sent = server.token_times(rec)
            received = arrivals.get(messages[-1].get("content"), [])
            tokens += len(sent)
            # The relay writes every delta it reads: the k-th event is the k-th token.
            latency += [1000 * (got - at) for (at, _), got in zip(sent, received, strict=False)]
    return {"clients": clients, "tokens_relayed": tokens, "cpu_s": cpu,
            "cpu_s_per_1000_tokens": 1000 * cpu / tokens if tokens else None,
            "token_delivery_ms": summary(latency) if latency else None}  # fmt: skip


def disk_floor(writes: int = CLIENTS, threads: tuple[int, ...] = POOLS) -> dict[str, Any]:
    """``writes`` runs' segment 0 written at once, on a pool of each size in
    ``threads`` (see the module docstring); ``last_write_ms``: the best pool's."""
    audio = SynthesizedAudio(data=tone_wav(0.05, sample_rate=22050), format="wav",
                             sample_rate=22050, channels=1, duration_s=0.05, engine="fake",
                             text="Bicycles stay up because they steer.")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="speakstream-bench-disk-") as base:
        with SegmentWriter(Path(base), run_subdir=False) as writer:  # first use, not timed
            writer.write(0, audio, text="warm")
    pools = {}
    for size in threads:
        with tempfile.TemporaryDirectory(prefix="speakstream-bench-disk-") as base:
            writers = [SegmentWriter(Path(base) / f"run{n}", run_subdir=False)
                       for n in range(writes)]  # fmt: skip

            def write(writer: SegmentWriter) -> float:
                writer.write(0, audio, text=audio.text or "")
                return time.monotonic()

            with ThreadPoolExecutor(size) as pool:
                # Every thread started first: each waits at the barrier until all run.
                barrier = threading.Barrier(size, timeout=30)
                for waited in [pool.submit(barrier.wait) for _ in range(size)]:
                    waited.result()
                started = time.monotonic()
                finished = list(pool.map(write, writers))
            for writer in writers:
                writer.close()
        pools[str(size)] = summary([1000 * (at - started) for at in finished])
    grouped = asyncio.run(_group_commit(writes, audio))
    return {"writes": writes, "write_done_ms_by_threads": pools,
            "last_write_ms": min(p["max"] for p in pools.values()),
            "group_commit_ms": grouped,
            "group_commit_last_ms": grouped["max"]}  # fmt: skip


async def _group_commit(writes: int, audio: SynthesizedAudio) -> dict[str, float]:
    """``writes`` segment-0 writes through ``awrite`` at once; ms from the common
    start to each one's return (its file and line durable)."""
    with tempfile.TemporaryDirectory(prefix="speakstream-bench-disk-") as base:
        warm = SegmentWriter(Path(base) / "warm", run_subdir=False)  # first use, not timed
        await warm.awrite(0, audio, text="warm")
        await warm.aclose()
        writers = [SegmentWriter(Path(base) / f"run{n}", run_subdir=False)
                   for n in range(writes)]  # fmt: skip

        async def write(writer: SegmentWriter) -> float:
            await writer.awrite(0, audio, text=audio.text or "")
            return time.monotonic()

        started = time.monotonic()
        finished = await asyncio.gather(*(write(writer) for writer in writers))
        for writer in writers:
            await writer.aclose()
    return summary([1000 * (at - started) for at in finished])


if __name__ == "__main__":
    if sys.argv[1:2] == ["relay"]:
        if len(sys.argv) != 3:
            sys.exit("usage: python -m bench.daemon_floor relay LLM_URL (a child of the bench)")
        relay(sys.argv[2])
    else:
        print(json.dumps({"relay": relay_floor(), "disk": disk_floor()}, indent=1))
