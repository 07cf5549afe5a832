"""``WS /v1/stream``: the WebSocket protocol.

Client → server (JSON text frames)::

    {"type": "speak", "message": "...", ...}   same fields as POST /v1/speak
    {"type": "stop"}                           cancel the current run
    {"type": "ping"}                           → {"type": "pong"}

Server → client::

    {"type": "started", "run_id": ...}
    {"type": "chunk", "data": "<text>"}        text deltas, coalesced over coalesce_ms
    {"type": "segment", "index": ..., ...}
    {"type": "audio", "index", "format", "duration_s", "url", ...}
        followed by ONE binary frame: the segment's file bytes (handed over in
        memory by the run's WebSocket sink, never read back from the file)
    {"type": "error", "error": {"type", "message", ...}}
    {"type": "cancelled", "reason": ...}
    {"type": "done", ...summary...}

One run at a time per connection (``speak`` during a run → ``error`` type
``busy``). Malformed frames (not JSON, binary, unknown ``type``, bad fields)
get an ``error`` message and the connection stays usable. Heartbeat: the
server pings every ``ws_ping_s`` (protocol-level, by uvicorn) and answers
application ``ping`` messages. Backpressure: run events pass a bounded queue
(``ws_queue_size``) and each frame is awaited before the next is taken, so a
slow client makes the daemon wait instead of buffering without bound.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, WebSocket
from pydantic import ValidationError
from starlette.websockets import WebSocketDisconnect

from output import AudioSink, SegmentInfo
from tts import SynthesizedAudio

from .._events import AudioReady, RunFailed
from ._http import ApiError, error_body, parse_json
from ._messages import client_message
from ._runs import ActiveRun
from ._speak import SpeakRequest, start_chat_run
from ._state import DaemonState

router = APIRouter(tags=["stream"])
logger = logging.getLogger("speakstream.daemon")


class AudioHandover(AudioSink):
    """The WebSocket's sink: each segment's bytes (the file's exact content, in
    the run's format) kept in memory until the ``audio`` message goes out.

    Entries live from the segment's ``accept`` until its ``AudioReady`` is sent
    (:meth:`take`), so what is held is bounded by the run's own event
    backpressure; a segment whose file could not be written never gets an
    ``AudioReady`` and is dropped when a later one is taken, or at ``finish``.
    """

    name = "websocket"

    def __init__(self) -> None:
        self._data: dict[int, bytes] = {}

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        self._data[segment.index] = audio.data

    def take(self, index: int) -> bytes | None:
        """The bytes of segment ``index`` (``None`` when the sink never got them)."""
        for stale in [i for i in self._data if i < index]:
            del self._data[stale]
        return self._data.pop(index, None)

    async def finish(self, summary: Any) -> dict[str, str]:
        self._data.clear()
        return {}


class _Connection:
    def __init__(self, ws: WebSocket, state: DaemonState) -> None:
        self.ws = ws
        self.state = state
        self.lock = asyncio.Lock()  # an audio header and its binary frame stay together
        self.run: ActiveRun | None = None
        self.pump: asyncio.Task[None] | None = None
        self.sent = state.metrics.messages_sent.labels("websocket")

    async def send(self, message: dict[str, Any], binary: bytes | None = None) -> None:
        async with self.lock:
            await self.ws.send_text(json.dumps(message, ensure_ascii=False))
            self.sent.inc()
            if binary is not None:
                await self.ws.send_bytes(binary)
                self.sent.inc()

    async def error(self, type: str, message: str, *, param: str | None = None,
                    **extra: Any) -> None:
        """Send ``{"type": "error", "error": {...}}``: the documented error shape
        (type, message, param, code) plus ``extra`` keys."""
        body = error_body(type, message, param=param)["error"]
        await self.send({"type": "error", "error": {**body, **extra}})

    async def handle(self, raw: Mapping[str, Any]) -> None:
        if raw.get("bytes") is not None:
            await self.error("invalid_message", "binary frames are not accepted")
            return
        try:
            message = parse_json(raw.get("text") or "")
        except ApiError as exc:  # nested too deep
            await self.error("invalid_message", exc.message)
            return
        except ValueError as exc:
            await self.error("invalid_message", f"not JSON: {exc}")
            return
        if not isinstance(message, dict):
            await self.error("invalid_message", "a message must be a JSON object")
            return
        kind = message.pop("type", None)
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "stop":
            if self.run is None or self.pump is None or self.pump.done():
                await self.error("no_run", "no run to stop")
            else:
                self.run.stop()
        elif kind == "speak":
            await self.speak(message)
        else:
            await self.error("invalid_message", f"unknown message type {kind!r}; "
                             "expected speak, stop or ping")

    async def speak(self, fields: dict[str, Any]) -> None:
        if self.pump is not None and not self.pump.done():
            await self.error("busy", "a run is in progress; send stop first")
            return
        handover = AudioHandover()
        try:
            body = SpeakRequest.model_validate(fields)
            run = start_chat_run(self.state, body, endpoint="stream", sinks=[handover])
        except ValidationError as exc:
            await self.error("invalid_request_error", str(exc))
            return
        except ApiError as exc:
            await self.error(exc.type, exc.message, param=exc.param)
            return
        self.run = run
        self.pump = asyncio.create_task(self._pump(run, handover), name=f"ws-{run.run_id}")

    async def _pump(self, run: ActiveRun, handover: AudioHandover) -> None:
        coalesce_s = self.state.settings.coalesce_ms / 1000
        try:
            async for event in run.events(coalesce_s=coalesce_s):
                kind, data = client_message(event)
                if kind == "token":
                    await self.send({"type": "chunk", "data": data["text"], "t": data["t"]})
                elif isinstance(event, AudioReady):
                    audio = handover.take(event.index)
                    if audio is None:  # its sink was dropped by a bug: say so, send no frame
                        await self.error("audio_unavailable",
                                         f"the audio of segment {event.index} is not available",
                                         index=event.index)
                    else:
                        await self.send({"type": "audio", **data}, audio)
                elif isinstance(event, RunFailed):
                    await self.send({"type": "error", "error": {"type": event.error_type, **data}})
                else:
                    await self.send({"type": kind, **data})
        finally:
            self.state.runs.finished(run.run_id)

    async def aclose(self) -> None:
        pump = self.pump
        if pump is None:
            return
        if not pump.done():
            pump.cancel()
            await asyncio.wait({pump})
        if self.run is not None:
            self.run.abandon()  # a pump cancelled before it started never ran the run
            self.state.runs.finished(self.run.run_id)
        if not pump.cancelled() and pump.exception() is not None:
            logger.warning("WebSocket run ended with %r", pump.exception())


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    """The WebSocket protocol (see the module docstring)."""
    state: DaemonState = ws.app.state.daemon
    await ws.accept()
    state.metrics.ws_opened()
    received = state.metrics.messages_received.labels("websocket")
    connection = _Connection(ws, state)
    try:
        while True:
            raw = await ws.receive()
            if raw["type"] == "websocket.disconnect":
                break
            received.inc()
            await connection.handle(raw)
    except WebSocketDisconnect:
        pass  # the client left: the finally below stops its run
    finally:
        await connection.aclose()
        state.metrics.ws_closed()
