"""Pause and resume a run (issue 13 item 2): synthesis and audio stop at a segment
boundary, the LLM stream is held (not cancelled), resume completes the text and
audio in order; past ``pause_hold_s`` the LLM stream is closed with its text
kept. Errors in the documented shape. No durations are asserted: waits are
bounded polls."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.fakes.engine import FakeEngine

from .conftest import LONG_ANSWER, Daemon, ScriptedLLM, start_daemon
from .test_reconnect import _sse_events


def _eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(400):
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened: {what}")


def _run(daemon: Daemon, run_id: str) -> dict[str, Any]:
    return httpx.get(daemon.url + f"/v1/runs/{run_id}").json()


def _start(daemon: Daemon) -> str:
    """Start a run and follow it from a second client (a dropped first client)."""
    with httpx.stream("POST", daemon.url + "/v1/speak", json={"message": "Talk"},
                      timeout=60) as response:
        run_id = response.headers["x-run-id"]
        _sse_events(response, until="started")
    return str(run_id)




def test_pause_holds_the_llm_then_resume_completes_in_order(gated: Daemon) -> None:
    run_id = _start(gated)
    assert gated.llm.reached_gate.wait(30)
    paused = httpx.post(gated.url + f"/v1/runs/{run_id}/pause")
    assert paused.status_code == 200 and paused.json()["status"] == "paused"
    assert httpx.post(gated.url + f"/v1/runs/{run_id}/pause").status_code == 200  # idempotent
    gated.llm.gate.set()  # the LLM could go on: the paused run must hold it
    _eventually(lambda: _run(gated, run_id)["health"]["backpressure_events"]["llm_holds"] >= 1,
                "LLM stream held")
    held = _run(gated, run_id)
    assert held["status"] == "running" and held["health"]["paused"] is True
    time.sleep(1.0)  # a bounded wait while paused (nothing is timed)
    still = _run(gated, run_id)
    assert len(still["audio"]) == len(held["audio"]), "audio was made while paused"
    assert still["health"]["tokens"] == held["health"]["tokens"], "LLM read while paused"
    assert not gated.llm.closed.is_set(), "the LLM request was closed while held"

    with httpx.stream("GET", gated.url + f"/v1/runs/{run_id}/events", timeout=60) as events:
        assert httpx.post(gated.url + f"/v1/runs/{run_id}/resume").json()["status"] == "running"
        everything = _sse_events(events)
    kinds = [k for _, k, _ in everything]
    assert kinds.count("paused") == 1 and kinds.count("resumed") == 1
    assert kinds.index("paused") < kinds.index("resumed")
    # Nothing audible between paused and resumed but what was already landing.
    between = kinds[kinds.index("paused"):kinds.index("resumed")]
    assert between.count("audio") <= 1
    text = "".join(d["text"] for _, k, d in everything if k == "token")
    assert text == "".join(LONG_ANSWER)
    done = everything[-1][2]
    assert done["complete_text"] == text and done["error"] is None
    segments = [d for _, k, d in everything if k == "segment"]
    audio = [d["index"] for _, k, d in everything if k == "audio"]
    assert audio == [s["index"] for s in segments if s["spoken_text"]] and audio
    assert "".join(s["text"] for s in segments) == text  # nothing lost or repeated
    assert not gated.llm.cancelled.is_set()
    final = _run(gated, run_id)
    assert final["status"] == "completed" and final["health"]["paused"] is False
    assert final["health"]["tokens"] == len(LONG_ANSWER)


def test_pause_longer_than_the_hold_limit_keeps_the_text_so_far(settings) -> None:
    llm = ScriptedLLM(LONG_ANSWER, gate_after=6)
    running = start_daemon(dataclasses.replace(settings, pause_hold_s=0.2), llm=llm,
                           engine=FakeEngine())
    try:
        run_id = _start(running)
        assert llm.reached_gate.wait(30)
        assert httpx.post(running.url + f"/v1/runs/{run_id}/pause").status_code == 200
        llm.gate.set()
        assert llm.closed.wait(30), "the held LLM stream was never closed"
        with httpx.stream("GET", running.url + f"/v1/runs/{run_id}/events",
                          timeout=60) as events:
            httpx.post(running.url + f"/v1/runs/{run_id}/resume")
            everything = _sse_events(events)
        text = "".join(d["text"] for _, k, d in everything if k == "token")
        assert "".join(LONG_ANSWER).startswith(text) and len(text) < len("".join(LONG_ANSWER))
        done = everything[-1][2]
        assert done["complete_text"] == text and done["finish_reason"] == "paused"
        segments = [d for _, k, d in everything if k == "segment"]
        assert "".join(s["text"] for s in segments) == text
        assert [d["index"] for _, k, d in everything if k == "audio"] == \
            [s["index"] for s in segments if s["spoken_text"]]
    finally:
        llm.gate.set()
        running.stop()


def test_pause_errors(daemon: Daemon) -> None:
    unknown = httpx.post(daemon.url + "/v1/runs/nope/pause")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found"
    with httpx.stream("POST", daemon.url + "/v1/speak", json={"message": "hi"},
                      timeout=60) as response:
        run_id = response.headers["x-run-id"]
        _sse_events(response)
    for action in ("pause", "resume"):
        ended = httpx.post(daemon.url + f"/v1/runs/{run_id}/{action}")
        assert ended.status_code == 409
        assert ended.json()["error"]["type"] == "conflict"


def test_websocket_pause_and_resume(gated: Daemon) -> None:
    with connect(gated.ws_url + "/v1/stream", max_size=None) as ws:
        ws.send(json.dumps({"type": "speak", "message": "Talk"}))
        assert gated.llm.reached_gate.wait(30)
        ws.send(json.dumps({"type": "pause"}))
        messages: list[dict[str, Any]] = []
        while not messages or messages[-1]["type"] != "paused":
            frame = ws.recv(timeout=60)
            if isinstance(frame, str):
                messages.append(json.loads(frame))
        gated.llm.gate.set()
        ws.send(json.dumps({"type": "resume"}))
        while messages[-1]["type"] != "done":
            frame = ws.recv(timeout=60)
            if isinstance(frame, str):
                messages.append(json.loads(frame))
    kinds = [m["type"] for m in messages]
    assert kinds.index("paused") < kinds.index("resumed")
    assert "".join(m["data"] for m in messages if m["type"] == "chunk") == "".join(LONG_ANSWER)
    assert messages[-1]["error"] is None
