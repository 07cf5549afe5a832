"""Shared pieces of the benchmarks: answer texts, token streams, stats, timed fake server.

Token streams imitate an LLM's: :func:`tokenize` cuts text the way BPE
tokenizers of GPT/Llama families do (a word with its leading space is one
token, long words are split into ~4-character pieces, punctuation stands
alone), about 4 characters per token on English prose.

:class:`TimedLLMServer` is ``tests.fakes.llm_server.FakeLLMServer`` that also
records, for every request, the ``time.monotonic()`` instant each token frame
was handed to the socket (after ``drain()``), so a benchmark knows when a
segment's text was complete *at the server*.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/x.py` from anywhere
    sys.path.insert(0, str(ROOT))

from tests.fakes.llm_server import FakeLLMServer, RecordedRequest, Reply  # noqa: E402

CORPUS = ROOT / "tests" / "data" / "alice_in_wonderland.txt"

#: A realistic LLM answer (markdown, numbers, an abbreviation, a list): 40+ sentences.
LONG_ANSWER = """\
Sure! Here is how a bicycle stays upright, step by step, without the myths.

Most people think the spinning wheels act like a gyroscope and hold the bike up. \
That effect exists, but it is small: experiments with counter-rotating wheels show \
that a bike rides fine without it. The real answer is **steering**. When a bike starts \
to lean to the left, the rider (or the bike itself) turns the front wheel to the left. \
This moves the contact patches back under the center of mass. The bike is then upright \
again, and the process repeats many times per second.

There are three main reasons the front wheel turns into a lean:

1. **Trail.** The contact point of the front tire sits behind the steering axis. \
When the bike leans, the ground pushes that point sideways and the wheel swings into the lean.
2. **Head angle.** The steering axis is tilted back by about 70 degrees on most road bikes. \
A lean makes the front assembly fall toward the low side, which turns the bars the same way.
3. **Mass of the front assembly.** The weight of the fork, wheel and bars sits a bit ahead \
of the steering axis. Gravity pulls it down and steers it into the fall.

In 2011, a team led by Dr. Jim Papadopoulos and Andy Ruina built a bike with no gyroscopic \
effect and no trail. It still balanced itself above a certain speed. This showed that \
no single factor is required; what matters is how they work together.

Speed plays a big role. Below about 4 m/s a typical bike wobbles and falls, because the \
steering corrections come too slowly. Between roughly 4 and 6 m/s the bike is self-stable: \
push it and let go, and it rides on by itself. At higher speeds a slow lean can appear, \
but the rider fixes it without noticing.

The rider does a lot of the work too. To turn right, you first steer slightly left. \
This is called countersteering. The bike leans to the right, and only then do you steer \
right into the turn. Experienced riders do this without thinking about it. Children learn it \
within a few days, usually after a few scraped knees.

What does this mean in practice? A bike with too little trail feels twitchy and nervous. \
A bike with too much trail feels heavy and slow to turn. Frame builders choose the head \
angle and fork offset to land in between. Cargo bikes, racing bikes and mountain bikes each \
use different numbers for this reason.

So the short answer is: a moving bicycle steers itself back under its own weight. \
Gyroscopes help a little, geometry helps a lot, and the rider does the rest. \
If you want to see it yourself, push an empty bike down a gentle slope and watch it ride. \
It will wobble at first and then run straight for a surprisingly long way. \
Just make sure nobody is standing at the bottom!
"""

_PRETOKEN = re.compile(r"'(?:s|t|re|ve|m|ll|d)| ?[A-Za-z]+| ?[0-9]{1,3}| ?[^\sA-Za-z0-9]+|\s+")


def tokenize(text: str, *, piece: int = 5) -> list[str]:
    """Cut ``text`` into LLM-like tokens (``"".join(tokens) == text``).

    GPT-2-style pre-tokenization (leading space kept with the word, digits in
    groups of up to 3, punctuation runs apart), then words longer than
    ``piece`` + 2 characters are cut into ``piece``-character pieces.
    """
    tokens: list[str] = []
    for match in _PRETOKEN.finditer(text):
        word = match.group()
        while len(word) > piece + 2:
            tokens.append(word[:piece])
            word = word[piece:]
        tokens.append(word)
    assert "".join(tokens) == text
    return tokens


def short_answer() -> str:
    """The first ~4 sentences of :data:`LONG_ANSWER` (the TTFA scenario's reply)."""
    paragraphs = LONG_ANSWER.split("\n\n")
    return paragraphs[0] + "\n\n" + paragraphs[1].split("**steering**")[0].rstrip() + " steering."


def corpus_text() -> str:
    return CORPUS.read_text(encoding="utf-8")


def alice_chapter_1() -> str:
    """Chapter I of the corpus (from ``CHAPTER I`` up to ``CHAPTER II``)."""
    text = corpus_text()
    start = text.index("CHAPTER I\n")
    end = text.index("CHAPTER II", start)
    return text[start:end].strip() + "\n"


# -- statistics --------------------------------------------------------------


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of ``values``."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil
    return float(ordered[int(rank) - 1])


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "median": median(values), "p95": percentile(values, 95),
            "p99": percentile(values, 99), "min": min(values), "max": max(values)}  # fmt: skip


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gb = None
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        mem_gb = round(pages / 2**30, 1)
    except (ValueError, OSError):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "memory_gb": mem_gb,
            "python": platform.python_version(), "os": platform.platform(),
            "load_avg_1m": round(os.getloadavg()[0], 2)}  # fmt: skip


# -- the fake LLM server with send times -------------------------------------------


class TimedLLMServer(FakeLLMServer):
    """:class:`FakeLLMServer` that records when each token frame left the server.

    ``token_times(rec)`` -> ``[(monotonic_s, token_text), ...]`` in send order.
    Times are taken in the server's thread right after the frame was written
    and drained into the socket; ``time.monotonic`` is shared by the threads
    of one process, so they compare with times taken by the client.
    """

    def __init__(self, *replies: Reply) -> None:
        super().__init__(*replies)
        self._times: dict[int, list[tuple[float, str]]] = {}
        self._frames: dict[int, tuple[RecordedRequest, str]] = {}

    def __enter__(self) -> TimedLLMServer:
        super().__enter__()
        return self

    def token_times(self, rec: RecordedRequest) -> list[tuple[float, str]]:
        return list(self._times.get(id(rec), []))

    def _protocol(self, rec: RecordedRequest, reply: Reply) -> Any:
        protocol = super()._protocol(rec, reply)
        if protocol is None:
            return None
        self._times[id(rec)] = []
        make_token = protocol.token

        def token(text: str) -> bytes:
            frame: bytes = make_token(text)
            self._frames[id(frame)] = (rec, text)
            return frame

        protocol.token = token  # type: ignore[method-assign]
        return protocol

    async def _send(self, writer: asyncio.StreamWriter, frame: bytes, split: Any) -> None:
        await super()._send(writer, frame, split)
        owner = self._frames.pop(id(frame), None)
        if owner is not None:
            rec, text = owner
            self._times[id(rec)].append((time.monotonic(), text))


def complete_at(times: list[tuple[float, str]], end: int) -> float:
    """When the first ``end`` characters of the reply had all been sent (monotonic s)."""
    sent = 0
    for at, text in times:
        sent += len(text)
        if sent >= end:
            return at
    raise ValueError(f"the server sent only {sent} characters, fewer than {end}")


def llm_reply(text: str, *, ttft_s: float, tokens_per_s: float) -> Reply:
    """A :class:`Reply` streaming ``text`` as :func:`tokenize` tokens at a set rate."""
    return Reply(tokens=tokenize(text), first_token_delay=ttft_s, token_delay=1.0 / tokens_per_s)


async def engine_ttfa(engine: Any, text: str) -> float:
    """Seconds from asking ``engine.stream(text)`` to its first audio chunk.

    Raises:
        RuntimeError: the engine gave no audio.
    """
    stream = engine.stream(text)
    start = time.perf_counter()
    async with contextlib.aclosing(stream):
        async for _ in stream:
            return time.perf_counter() - start
    raise RuntimeError("the engine gave no audio")


def serve_on_free_port(app: Any, **uvicorn_options: Any) -> None:
    """Run ASGI ``app`` under uvicorn on a free loopback port until SIGINT
    (a child process's main: the port is printed on stdout first). The socket
    listens before the port is printed, so a client may connect at once; uvicorn
    uses its defaults (uvloop and httptools when installed), a backlog of 512."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on", backlog=512,
                            **uvicorn_options)  # fmt: skip
    with contextlib.suppress(KeyboardInterrupt):  # SIGINT from the parent: a clean stop
        uvicorn.Server(config).run(sockets=[sock])


@contextlib.contextmanager
def child_server(module: str, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``python -m <module> <args>`` from the repository root, whose first line on
    stdout is its port (see :func:`serve_on_free_port`): yields its URL and the
    process; on exit SIGINT, then a kill if it has not ended within 30 s.

    Raises:
        RuntimeError: the child's first line is not a port (it failed to start).
    """
    with subprocess.Popen([sys.executable, "-m", module, *args], cwd=ROOT,
                          stdout=subprocess.PIPE, text=True) as proc:  # fmt: skip
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.strip().isdigit():
                raise RuntimeError(f"{module} gave no port (exit {proc.poll()}): {line!r}")
            yield f"http://127.0.0.1:{int(line)}", proc
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_mb(field: str, pid: int | str = "self") -> float:
    """A memory figure of ``/proc/PID/status`` in MB (``"VmRSS"``, ``"VmHWM"``: peak RSS;
    ``ru_maxrss`` would include a parent's peak before the exec); NaN when absent."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")
