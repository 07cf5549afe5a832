"""Fixtures of the daemon tests: a real uvicorn server on a free loopback port.

The server runs in a thread of the test process (its own event loop), so
tests can inject a ready TTS engine and a scripted LLM client and look at
them afterwards. Clients (httpx, websockets, the openai SDK, Chromium) talk
to it over real TCP.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from llm import LLMStreamError
from pipeline._daemon import DaemonSettings, create_app
from tests.fakes.engine import FakeEngine


class ScriptedLLM:
    """A duck-typed LLM client: yields ``deltas``; optionally waits on a gate.

    ``gate_after``: after that many deltas it waits until ``gate`` (a
    ``threading.Event``, set by the test thread) is set. ``closed`` is set
    when the stream's generator is closed (normally or by cancellation) and
    ``cancelled`` when it was closed before its end, proving the daemon
    cancelled the LLM request.
    """

    provider = "scripted"
    model = "script-1"

    def __init__(self, deltas: Sequence[str], *, gate_after: int | None = None,
                 fail_after: int | None = None) -> None:
        self.deltas = list(deltas)
        self.gate_after = gate_after
        self.fail_after = fail_after
        self.gate = threading.Event()
        self.reached_gate = threading.Event()
        self.closed = threading.Event()
        self.cancelled = threading.Event()
        self.requests: list[list[dict[str, str]]] = []

    def astream_chat(self, messages: list[dict[str, str]], *, system: str | None = None,
                     **_: Any) -> AsyncIterator[str]:
        self.requests.append(list(messages))
        return self._stream()

    async def _stream(self) -> AsyncIterator[str]:
        finished = False
        try:
            for i, delta in enumerate(self.deltas):
                if self.gate_after is not None and i == self.gate_after:
                    self.reached_gate.set()
                    while not self.gate.is_set():
                        await asyncio.to_thread(self.gate.wait, 0.5)
                if self.fail_after is not None and i == self.fail_after:
                    raise LLMStreamError("connection dropped", provider="scripted",
                                         partial_text="".join(self.deltas[:i]))
                yield delta
            finished = True
        finally:
            if not finished:
                self.cancelled.set()
            self.closed.set()

    async def aclose(self) -> None:
        pass


@dataclass
class Daemon:
    """A running daemon: ``url`` (``http://127.0.0.1:PORT``), its settings and fakes."""

    url: str
    settings: DaemonSettings
    server: uvicorn.Server
    thread: threading.Thread
    engine: Any = None
    llm: Any = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[len("http"):]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive(), "daemon thread did not stop"


def start_daemon(settings: DaemonSettings, *, llm: Any = None, engine: Any = None) -> Daemon:
    """Start ``create_app(settings, ...)`` under uvicorn on a free 127.0.0.1 port."""
    app = create_app(settings, llm_client=llm, tts_engine=engine)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)  # clients may connect at once; uvicorn accepts after startup
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on",
                            ws_ping_interval=settings.ws_ping_s)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return Daemon(f"http://127.0.0.1:{port}", settings, server, thread, engine=engine, llm=llm)


LONG_ANSWER = [
    "Streaming ", "speech ", "starts ", "early. ", "Each ", "sentence ", "becomes ",
    "audio ", "soon. ", "The ", "listener ", "hears ", "the ", "first ", "part ", "first. ",
    "Then ", "the ", "rest ", "follows ", "in ", "order.",
]


@pytest.fixture
def settings(tmp_path: Path) -> DaemonSettings:
    return DaemonSettings(
        output_dir=tmp_path / "out",
        streaming_config=DaemonSettings().streaming_config.replace(
            sentence_buffer_size=1, min_chunk_length=5, max_buffer_time=None
        ),
    )


@pytest.fixture
def daemon(settings: DaemonSettings) -> Iterator[Daemon]:
    """A daemon with a FakeEngine and a ScriptedLLM giving LONG_ANSWER."""
    running = start_daemon(settings, llm=ScriptedLLM(LONG_ANSWER), engine=FakeEngine())
    try:
        yield running
    finally:
        running.stop()


def read_sse(response: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Parse a ``text/event-stream`` httpx response into ``(event, data)`` pairs
    (JSON data; keep-alive comments skipped)."""
    import json

    from llm import SSEDecoder

    decoder = SSEDecoder()
    for text in response.iter_text():
        for event in decoder.feed(text):
            yield event.event, json.loads(event.data)


@pytest.fixture
def gated(settings: DaemonSettings) -> Iterator[Daemon]:
    """A daemon whose ScriptedLLM stops after 6 tokens until the test ends (or opens
    ``llm.gate``): its runs are still running while the test acts on them."""
    llm = ScriptedLLM(LONG_ANSWER, gate_after=6)
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    try:
        yield running
    finally:
        llm.gate.set()
        running.stop()


def ws_until_done(ws: Any) -> list[tuple[dict[str, Any], bytes | None]]:
    """WebSocket messages until ``done``; each audio message paired with its binary frame."""
    out: list[tuple[dict[str, Any], bytes | None]] = []
    while True:
        frame = ws.recv(timeout=60)
        assert isinstance(frame, str), "expected a JSON text frame"
        message = json.loads(frame)
        binary = None
        if message["type"] == "audio":
            binary = ws.recv(timeout=60)
            assert isinstance(binary, bytes)
        out.append((message, binary))
        if message["type"] == "done":
            return out
