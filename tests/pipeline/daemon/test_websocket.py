"""WS /v1/stream: speak, chunks, audio + binary frames, stop, malformed frames, ping,
slow clients, auth, connection metrics."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from pipeline._daemon import DaemonSettings
from tests.fakes.engine import FakeEngine

from .conftest import LONG_ANSWER, Daemon, ScriptedLLM, start_daemon, ws_until_done


def _recv(ws: ClientConnection) -> dict[str, Any]:
    frame = ws.recv(timeout=60)
    assert isinstance(frame, str), "expected a JSON text frame"
    return json.loads(frame)


def test_speak_gives_chunks_audio_frames_and_done(daemon: Daemon) -> None:
    with connect(daemon.ws_url + "/v1/stream") as ws:
        ws.send(json.dumps({"type": "speak", "message": "Tell me"}))
        messages = ws_until_done(ws)
        types = [m["type"] for m, _ in messages]
        assert types[0] == "started"
        assert "".join(m["data"] for m, _ in messages if m["type"] == "chunk") == \
            "".join(LONG_ANSWER)
        audio = [(m, b) for m, b in messages if m["type"] == "audio"]
        assert [m["index"] for m, _ in audio] == list(range(len(audio))) and audio
        for message, data in audio:
            assert data is not None and data[:4] == b"RIFF"
            served = httpx.get(daemon.url + message["url"]).content
            assert served == data
            assert message["format"] == "wav" and message["duration_s"] > 0
        # The connection stays usable for a second run.
        ws.send(json.dumps({"type": "speak", "message": "Again"}))
        assert ws_until_done(ws)[-1][0]["error"] is None
    metrics = httpx.get(daemon.url + "/metrics").text
    assert "speakstream_websocket_connections_total 1.0" in metrics
    assert "speakstream_websocket_connections_peak 1.0" in metrics
    assert "speakstream_websocket_connections_active 0.0" in metrics
    assert 'speakstream_messages_received_total{transport="websocket"} 2.0' in metrics


def test_malformed_frames_get_errors_and_the_connection_survives(daemon: Daemon) -> None:
    with connect(daemon.ws_url + "/v1/stream") as ws:
        for frame, kind in (("not json", "invalid_message"), ("[1, 2]", "invalid_message"),
                            ('{"type": "dance"}', "invalid_message"),
                            ('{"type": "speak"}', "invalid_request_error"),
                            ('{"type": "speak", "message": "x", "streaming_config":'
                             ' {"output_dir": "/"}}', "invalid_request_error"),
                            ('{"type": "stop"}', "no_run")):
            ws.send(frame)
            reply = _recv(ws)
            assert reply["type"] == "error" and reply["error"]["type"] == kind, frame
        ws.send(b"\x00\x01")
        assert _recv(ws)["error"]["type"] == "invalid_message"
        ws.send(json.dumps({"type": "ping"}))
        assert _recv(ws) == {"type": "pong"}
        ws.send(json.dumps({"type": "speak", "message": "Still there?"}))
        assert ws_until_done(ws)[-1][0]["type"] == "done"


def test_stop_cancels_the_llm_request(settings: DaemonSettings) -> None:
    llm = ScriptedLLM(LONG_ANSWER, gate_after=5)
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    try:
        with connect(running.ws_url + "/v1/stream") as ws:
            ws.send(json.dumps({"type": "speak", "message": "go"}))
            assert _recv(ws)["type"] == "started"
            assert llm.reached_gate.wait(30)
            ws.send(json.dumps({"type": "speak", "message": "another"}))
            reply = _recv(ws)
            while reply["type"] != "error":  # chunks of the 5 deltas before the gate
                assert reply["type"] in ("chunk", "segment", "audio")
                if reply["type"] == "audio":
                    ws.recv(timeout=60)
                reply = _recv(ws)
            assert reply["error"]["type"] == "busy"
            ws.send(json.dumps({"type": "stop"}))
            types = [m["type"] for m, _ in ws_until_done(ws)]
            assert types[-2:] == ["cancelled", "done"]
            assert llm.cancelled.is_set()
    finally:
        llm.gate.set()
        running.stop()


def test_slow_client_gets_everything_in_order(settings: DaemonSettings) -> None:
    """A client that stops reading until the LLM is done still gets every message,
    in order: it reads the run's event log at its own pace, nothing is dropped."""
    llm = ScriptedLLM(LONG_ANSWER)
    running = start_daemon(settings, llm=llm, engine=FakeEngine(seconds_per_char=0.2))
    try:
        with connect(running.ws_url + "/v1/stream", max_size=None) as ws:
            ws.send(json.dumps({"type": "speak", "message": "go"}))
            assert llm.closed.wait(30)  # not reading meanwhile
            messages = ws_until_done(ws)
        text = "".join(m["data"] for m, _ in messages if m["type"] == "chunk")
        assert text == "".join(LONG_ANSWER)
        indices = [m["index"] for m, _ in messages if m["type"] == "audio"]
        assert indices == list(range(len(indices))) and len(indices) >= 3
    finally:
        running.stop()


def test_websocket_needs_the_token(tmp_path) -> None:
    token = "ws-token-12345"
    running = start_daemon(DaemonSettings(output_dir=tmp_path, token=token),
                           llm=ScriptedLLM(["Hi there."]), engine=FakeEngine())
    try:
        with pytest.raises(InvalidStatus):
            connect(running.ws_url + "/v1/stream")
        with connect(running.ws_url + "/v1/stream",
                     additional_headers={"Authorization": f"Bearer {token}"}) as ws:
            ws.send(json.dumps({"type": "ping"}))
            assert _recv(ws)["type"] == "pong"
        with connect(running.ws_url + f"/v1/stream?token={token}") as ws:
            ws.send(json.dumps({"type": "ping"}))
            assert _recv(ws)["type"] == "pong"
    finally:
        running.stop()
