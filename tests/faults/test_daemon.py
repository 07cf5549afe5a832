"""Daemon abuse and load: malformed WebSocket frames, path traversal, auth, CORS,
oversized and nested bodies (each answered in the documented error shape, no
run started), then a well-formed request on the same daemon keeps the text
invariant; and 100 concurrent SSE clients of which 20 read slowly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from llm import SSEDecoder
from pipeline._daemon import DaemonSettings
from tests.fakes.engine import FakeEngine
from tests.pipeline.daemon.conftest import LONG_ANSWER, Daemon, ScriptedLLM, start_daemon

from .invariants import check_error_shape, check_files, check_text, from_daemon
from .table import fault

TOKEN = "fault-token-123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ORIGIN = "http://app.example"
SENT = "".join(LONG_ANSWER)


def daemon_settings(out: Path, **kw: Any) -> DaemonSettings:
    return DaemonSettings(
        output_dir=out,
        streaming_config=DaemonSettings().streaming_config.replace(
            sentence_buffer_size=1, min_chunk_length=5, max_buffer_time=None),
        **kw,
    )


@pytest.fixture
def guarded(tmp_path: Path) -> Iterator[Daemon]:
    """A daemon with a token, one allowed CORS origin and small limits."""
    settings = daemon_settings(tmp_path / "out", token=TOKEN, cors_origins=(ORIGIN,),
                               max_body_bytes=4096, max_message_chars=100)
    running = start_daemon(settings, llm=ScriptedLLM(LONG_ANSWER), engine=FakeEngine())
    yield running
    running.stop()


def speak_sse(daemon: Daemon, headers: dict[str, str]) -> list[dict[str, Any]]:
    """One well-formed ``/v1/speak`` run, its events as dicts."""
    decoder = SSEDecoder()
    messages = []
    with httpx.stream("POST", daemon.url + "/v1/speak", json={"message": "Tell me"},
                      headers=headers, timeout=60) as r:
        assert r.status_code == 200, r.read()
        for text in r.iter_text():
            messages += [(e.event, json.loads(e.data)) for e in decoder.feed(text)]
    return from_daemon(messages)


def assert_still_serves(daemon: Daemon, headers: dict[str, str]) -> None:
    """After the abuse: no run was started by it, and a good request keeps the invariant."""
    runs = daemon.settings.runs_dir
    assert not runs.exists() or not list(runs.iterdir()), "an abusive request started a run"
    events = speak_sse(daemon, headers)
    check_text(events, SENT)
    check_files(runs / events[0]["run_id"], events)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


# (fault, method, path, request options, status); every answer is the error shape
ABUSE: list[tuple[str, str, str, dict[str, Any], int]] = [
    ("auth", "POST", "/v1/speak", {"json": {"message": "hi"}}, 401),
    ("auth", "POST", "/v1/speak",
     {"json": {"message": "hi"}, "headers": {"Authorization": "Bearer wrong-token-9"}}, 401),
    ("auth", "GET", "/metrics", {}, 401),
    ("auth", "POST", "/v1/narrations", {"json": {"text": "Hi."}}, 401),
    ("cors", "OPTIONS", "/v1/speak",
     {"headers": {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}},
     400),
    ("oversized-body", "POST", "/v1/speak", {"json": {"message": "x" * 10_000}, "auth": 1}, 413),
    ("oversized-body", "POST", "/v1/speak",
     {"content": iter([b"{" + b" " * 1000] * 10), "auth": 1}, 413),
    ("oversized-body", "POST", "/v1/speak", {"json": {"message": "y" * 101}, "auth": 1}, 413),
    ("nested-body", "POST", "/v1/speak", {"content": nested(2000), "auth": 1}, 400),
    ("nested-body", "POST", "/v1/narrations", {"content": nested(100), "auth": 1}, 400),
    ("nested-body", "POST", "/v1/audio/speech", {"content": nested(100), "auth": 1}, 400),
    ("traversal", "GET", "/v1/runs/..%2F..%2Fetc", {"auth": 1}, 404),
    ("traversal", "GET", "/v1/runs/%2E%2E/audio/0", {"auth": 1}, 404),
    ("traversal", "GET", "/v1/runs/abc/audio/..%2F..%2Fnarrations.sqlite3", {"auth": 1}, 404),
    ("traversal", "GET", "/v1/runs/abc/audio/²", {"auth": 1}, 404),
    ("traversal", "GET", "/v1/narrations/..%2Fx", {"auth": 1}, 404),
]


@fault("auth")
@fault("cors")
@fault("oversized-body")
@fault("nested-body")
@fault("traversal")
def test_abusive_requests_get_the_error_shape_and_start_nothing(guarded: Daemon) -> None:
    for name, method, path, options, status in ABUSE:
        options = dict(options)
        headers = {"Origin": ORIGIN, **options.pop("headers", {})}
        if options.pop("auth", None):
            headers.update(AUTH)
        if "content" in options and not isinstance(options["content"], bytes | str):
            options["content"] = iter(list(options["content"]))
        r = httpx.request(method, guarded.url + path, headers=headers, timeout=30, **options)
        assert r.status_code == status, (name, path, r.status_code, r.text[:200])
        check_error_shape(r.json())
        if headers["Origin"] == ORIGIN:  # errors too carry the CORS headers
            assert r.headers.get("access-control-allow-origin") == ORIGIN, (name, path)
        assert "secret" not in r.text
    preflight = httpx.options(guarded.url + "/v1/speak", headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200  # browsers send no token with a preflight
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    with pytest.raises(InvalidStatus) as refused:
        connect(guarded.ws_url + "/v1/stream")
    assert refused.value.response.status_code == 401
    check_error_shape(json.loads(refused.value.response.body))
    assert_still_serves(guarded, {**AUTH, "Origin": ORIGIN})


def ws_until_done(ws: ClientConnection) -> list[tuple[str, dict[str, Any]]]:
    """WebSocket messages until ``done`` (each audio message's binary frame checked)."""
    messages = []
    for _ in range(1000):
        message = json.loads(ws.recv(timeout=60))
        kind = message.pop("type")
        if kind == "audio":
            assert ws.recv(timeout=60)[:4] == b"RIFF"
        messages.append((kind, message))
        if kind == "done":
            return messages
    raise AssertionError("no done message")


@fault("ws-malformed")
@fault("oversized-body")
@fault("nested-body")
def test_malformed_websocket_frames_leave_the_connection_usable(guarded: Daemon) -> None:
    frames: list[str | bytes] = [
        "not json", "[1, 2]", '{"type": "dance"}', '{"type": "speak"}', "\ud800".encode(
            "utf-8", "surrogatepass"), b"\x00\x01\xff", "{" * 50, nested(10_000).decode(),
        json.dumps({"type": "speak", "message": "z" * 101}), '{"type": "speak", "message": 7}',
        json.dumps({"type": "speak", "message": "x", "streaming_config": {"output_dir": "/"}}),
    ]
    with connect(guarded.ws_url + f"/v1/stream?token={TOKEN}", max_size=None) as ws:
        for frame in frames:
            ws.send(frame)
            reply = json.loads(ws.recv(timeout=60))
            assert reply["type"] == "error", frame[:40]
            check_error_shape({"error": reply["error"]})
        runs = guarded.settings.runs_dir
        assert not runs.exists() or not list(runs.iterdir())
        ws.send(json.dumps({"type": "speak", "message": "Still there?"}))
        events = from_daemon(ws_until_done(ws))
    check_text(events, SENT)
    check_files(runs / events[0]["run_id"], events)


@fault("sse-crowd")
async def test_a_hundred_sse_clients_twenty_slow_each_get_their_whole_run(
    tmp_path: Path,
) -> None:
    running = start_daemon(daemon_settings(tmp_path / "out"), llm=ScriptedLLM(LONG_ANSWER),
                           engine=FakeEngine(seconds_per_char=0.002))
    try:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=running.url, timeout=120, limits=limits) as client:

            async def one(slow: bool) -> list[dict[str, Any]]:
                decoder, messages = SSEDecoder(), []
                async with client.stream("POST", "/v1/speak",
                                         json={"message": "Tell me"}) as r:
                    assert r.status_code == 200
                    async for text in r.aiter_text(chunk_size=64 if slow else None):
                        messages += [(e.event, json.loads(e.data)) for e in decoder.feed(text)]
                        if slow:
                            await asyncio.sleep(0.01)
                return from_daemon(messages)

            async with asyncio.timeout(300):
                runs = await asyncio.gather(*(one(slow=i % 5 == 0) for i in range(100)))
    finally:
        running.stop()
    assert len({events[0]["run_id"] for events in runs}) == 100
    for events in runs:
        check_text(events, SENT)
        check_files(running.settings.runs_dir / events[0]["run_id"], events)
