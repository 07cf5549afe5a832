"""A client that disconnects mid-answer and does not come back within
``reconnect_grace_s`` (0 here) ends its run (issue 11 item 4): the run is
``cancelled``, the active-stream gauge drops, the LLM request is cancelled and
DELETE says the run is no longer running. Real uvicorn, real TCP drops."""

from __future__ import annotations

import dataclasses
import json
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from websockets.sync.client import connect

from tests.fakes.engine import FakeEngine

from .conftest import LONG_ANSWER, Daemon, ScriptedLLM, start_daemon


def _eventually(check: Callable[[], bool], what: str) -> None:
    """Wait (bounded: 200 tries) for the daemon to have acted; no time is asserted."""
    for _ in range(200):
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened: {what}")


def _active_streams(daemon: Daemon, endpoint: str) -> float:
    for line in httpx.get(daemon.url + "/metrics").text.splitlines():
        if line.startswith(f'speakstream_active_streams{{endpoint="{endpoint}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _status(daemon: Daemon, run_id: str) -> str:
    return str(httpx.get(daemon.url + f"/v1/runs/{run_id}").json()["status"])


@pytest.fixture
def gated(settings):
    llm = ScriptedLLM(LONG_ANSWER, gate_after=6)
    running = start_daemon(dataclasses.replace(settings, reconnect_grace_s=0), llm=llm,
                           engine=FakeEngine())
    try:
        yield running
    finally:
        llm.gate.set()
        running.stop()


def test_sse_client_dropping_the_connection_ends_the_run(gated: Daemon) -> None:
    host, port = gated.url.removeprefix("http://").split(":")
    body = json.dumps({"message": "Talk for a while"}).encode()
    sock = socket.create_connection((host, int(port)))
    sock.sendall(b"POST /v1/speak HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n" % len(body) + body)
    received = b""
    while b"event: token" not in received:
        chunk = sock.recv(65536)
        assert chunk, "the daemon closed the stream"
        received += chunk
    run_id = received.split(b"x-run-id: ")[1].split(b"\r\n")[0].decode()
    assert gated.llm.reached_gate.wait(30)
    assert _status(gated, run_id) == "running" and _active_streams(gated, "speak") == 1
    sock.close()  # mid-answer: the LLM is still "talking"

    _eventually(lambda: _status(gated, run_id) == "cancelled", "run cancelled")
    assert gated.llm.cancelled.wait(30), "the LLM request was not cancelled"
    _eventually(lambda: _active_streams(gated, "speak") == 0, "gauge back to 0")
    refused = httpx.delete(gated.url + f"/v1/runs/{run_id}")
    assert refused.status_code == 409
    assert "cancelled" in refused.json()["error"]["message"]
    assert 'speakstream_runs_total{endpoint="speak",outcome="cancelled"} 1.0' in \
        httpx.get(gated.url + "/metrics").text


def test_websocket_client_dropping_the_connection_ends_the_run(gated: Daemon) -> None:
    with connect(gated.ws_url + "/v1/stream") as ws:
        ws.send(json.dumps({"type": "speak", "message": "Talk for a while"}))
        started = json.loads(ws.recv(timeout=30))
        assert started["type"] == "started"
        run_id = started["run_id"]
        assert gated.llm.reached_gate.wait(30)
        ws.socket.shutdown(socket.SHUT_RDWR)  # a dropped TCP connection, no close frame

    _eventually(lambda: _status(gated, run_id) == "cancelled", "run cancelled")
    assert gated.llm.cancelled.wait(30)
    _eventually(lambda: _active_streams(gated, "stream") == 0, "gauge back to 0")
    assert httpx.delete(gated.url + f"/v1/runs/{run_id}").status_code == 409
