"""Reconnect without loss (issue 13 item 1): a client dropped mid-answer reads on
from its last event id (SSE ``Last-Event-ID``, WebSocket ``resume``) and gets
exactly what a client that never dropped got: same ids, same messages, no
duplicates. Real uvicorn, real TCP drops, a gated LLM holding the answer open."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
from websockets.sync.client import connect

from .conftest import LONG_ANSWER, Daemon, ws_until_done

Event = tuple[int, str, dict[str, Any]]




def _parse(text: str) -> tuple[list[Event], str]:
    """Complete SSE events (with their ids) in ``text``, and the unfinished rest."""
    *blocks, rest = text.replace("\r\n", "\n").split("\n\n")
    out: list[Event] = []
    for block in blocks:
        fields = dict(line.split(": ", 1) for line in block.split("\n")
                      if line and not line.startswith(":"))
        if fields:
            out.append((int(fields["id"]), fields["event"], json.loads(fields["data"])))
    return out, rest


def _sse_events(response: httpx.Response, *, until: str = "done") -> list[Event]:
    """Events of ``response`` up to and including the first ``until`` event."""
    out: list[Event] = []
    pending = ""
    for text in response.iter_text():
        events, pending = _parse(pending + text)
        for event in events:
            out.append(event)
            if event[1] == until:
                return out
    return out


def _check_ids(events: list[Event]) -> None:
    ids = [i for i, _, _ in events]
    assert ids == list(range(1, len(ids) + 1)), "ids must be 1, 2, ... with no gap or repeat"


def test_sse_client_reconnects_with_last_event_id_and_misses_nothing(gated: Daemon) -> None:
    with httpx.stream("POST", gated.url + "/v1/speak", json={"message": "Talk a while"},
                      timeout=60) as response:
        run_id = response.headers["x-run-id"]
        before = _sse_events(response, until="token")
        assert gated.llm.reached_gate.wait(30)
    # Dropped mid-answer (the connection closed unread): the LLM is still "talking".
    assert before[0][1] == "started"
    last_id = before[-1][0]

    status = httpx.get(gated.url + f"/v1/runs/{run_id}").json()
    assert status["status"] == "running", "the run must survive its client's drop"

    # A client that never drops: the same run from its first event.
    with httpx.stream("GET", gated.url + f"/v1/runs/{run_id}/events", timeout=60) as whole:
        gated.llm.gate.set()
        uninterrupted = _sse_events(whole)
    with httpx.stream("GET", gated.url + f"/v1/runs/{run_id}/events", timeout=60,
                      headers={"Last-Event-ID": str(last_id)}) as again:
        after = _sse_events(again)

    assert before + after == uninterrupted
    _check_ids(uninterrupted)
    tokens = "".join(d["text"] for _, k, d in uninterrupted if k == "token")
    assert tokens == "".join(LONG_ANSWER)
    assert uninterrupted[-1][2]["complete_text"] == tokens
    assert not gated.llm.cancelled.is_set()
    record = httpx.get(gated.url + f"/v1/runs/{run_id}").json()
    assert record["last_event_id"] == uninterrupted[-1][0]
    health = record["health"]
    assert health["tokens"] == len(LONG_ANSWER)
    assert health["chunk_chars"]["max"] == max(len(d) for d in LONG_ANSWER)
    assert health["chunk_chars"]["min"] == min(len(d) for d in LONG_ANSWER)
    assert health["errors"] == {} and health["paused"] is False
    assert health["queue_depths"]["log_events"] == len(uninterrupted)
    assert health["queue_depths"]["clients"] == []  # nobody follows any more
    metrics = httpx.get(gated.url + "/metrics").text
    assert f'speakstream_llm_chunks_total{{endpoint="speak"}} {float(len(LONG_ANSWER))}' \
        in metrics
    assert 'speakstream_replays_total{transport="sse"} 1.0' in metrics
    # The query parameter does the same as the header.
    with httpx.stream("GET", gated.url + f"/v1/runs/{run_id}/events",
                      params={"last_event_id": str(last_id)}, timeout=60) as by_query:
        assert _sse_events(by_query) == after


def test_sse_events_route_errors(gated: Daemon) -> None:
    missing = httpx.get(gated.url + "/v1/runs/nope/events")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found"
    gated.llm.gate.set()
    with httpx.stream("POST", gated.url + "/v1/speak", json={"message": "hi"},
                      timeout=60) as response:
        run_id = response.headers["x-run-id"]
        events = _sse_events(response)
    _check_ids(events)
    bad = httpx.get(gated.url + f"/v1/runs/{run_id}/events",
                    headers={"Last-Event-ID": "x1"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "last_event_id"
    # A finished run still replays, from any id.
    with httpx.stream("GET", gated.url + f"/v1/runs/{run_id}/events",
                      headers={"Last-Event-ID": str(len(events) - 1)}) as tail:
        assert _sse_events(tail) == events[-1:]


def test_websocket_client_resumes_after_a_drop_and_misses_nothing(gated: Daemon) -> None:
    before: list[tuple[dict[str, Any], bytes | None]] = []
    with connect(gated.ws_url + "/v1/stream") as ws:
        ws.send(json.dumps({"type": "speak", "message": "Talk for a while"}))
        assert gated.llm.reached_gate.wait(30)
        while not any(m["type"] == "chunk" for m, _ in before):
            frame = ws.recv(timeout=60)
            assert isinstance(frame, str)
            message = json.loads(frame)
            binary = ws.recv(timeout=60) if message["type"] == "audio" else None
            before.append((message, binary))  # type: ignore[arg-type]
        run_id = before[0][0]["run_id"]
        ws.socket.shutdown(socket.SHUT_RDWR)  # a dropped TCP connection, no close frame
    last_id = before[-1][0]["id"]
    assert httpx.get(gated.url + f"/v1/runs/{run_id}").json()["status"] == "running"

    with connect(gated.ws_url + "/v1/stream", max_size=None) as whole:
        whole.send(json.dumps({"type": "resume", "run_id": run_id, "after": 0}))
        # The first message proves the follower is attached before the LLM goes on.
        first = json.loads(whole.recv(timeout=60))
        assert first["type"] == "started" and first["id"] == 1
        gated.llm.gate.set()
        uninterrupted = [(first, None), *ws_until_done(whole)]
    with connect(gated.ws_url + "/v1/stream", max_size=None) as again:
        again.send(json.dumps({"type": "resume", "run_id": run_id, "after": last_id}))
        after = ws_until_done(again)

    assert before + after == uninterrupted
    ids = [m["id"] for m, _ in uninterrupted]
    assert ids == list(range(1, len(ids) + 1))
    chunks = "".join(m["data"] for m, _ in uninterrupted if m["type"] == "chunk")
    assert chunks == "".join(LONG_ANSWER)
    audio = [(m, b) for m, b in uninterrupted if m["type"] == "audio"]
    assert [m["index"] for m, _ in audio] == list(range(len(audio))) and audio
    for message, data in audio:
        assert data == httpx.get(gated.url + message["url"]).content
    assert not gated.llm.cancelled.is_set()


def test_websocket_resume_errors(daemon: Daemon) -> None:
    with connect(daemon.ws_url + "/v1/stream") as ws:
        ws.send(json.dumps({"type": "resume", "run_id": "nope", "after": 0}))
        assert json.loads(ws.recv(timeout=60))["error"]["type"] == "not_found"
        ws.send(json.dumps({"type": "resume", "run_id": "nope", "after": -1}))
        assert json.loads(ws.recv(timeout=60))["error"]["param"] == "after"
        ws.send(json.dumps({"type": "pause"}))
        assert json.loads(ws.recv(timeout=60))["error"]["type"] == "no_run"
