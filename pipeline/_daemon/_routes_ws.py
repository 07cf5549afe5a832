"""``WS /v1/stream``: the WebSocket protocol.

Client → server (JSON text frames)::

    {"type": "speak", "message": "...", ...}   same fields as POST /v1/speak
    {"type": "stop"}                           cancel the current run
    {"type": "pause"}                          pause the current run (segment boundary)
    {"type": "resume"}                         resume the paused current run
    {"type": "resume", "run_id": ..., "after": N}
                                               follow run_id from after message N
                                               (a reconnect: the missed messages,
                                               then the live ones)
    {"type": "ping"}                           → {"type": "pong"}

Server → client (every message of a run has ``"id"``: its number in the run,
the same as the SSE ``id``)::

    {"type": "started", "id": 1, "run_id": ...}
    {"type": "chunk", "id": ..., "data": "<text>"}   text deltas, coalesced over coalesce_ms
    {"type": "segment", "id": ..., "index": ..., ...}
    {"type": "audio", "id": ..., "index", "format", "duration_s", "url", ...}
        followed by ONE binary frame: the segment's file bytes (live: handed
        over in memory by the run's WebSocket sink; replayed: read from the file)
    {"type": "error", "id": ..., "error": {"type", "message", ...}}
    {"type": "paused", "id": ...} / {"type": "resumed", "id": ...}
    {"type": "cancelled", "id": ..., "reason": ...}
    {"type": "done", "id": ..., ...summary...}

Replies to a message (``pong``, errors about a message) have no ``id``.
One run at a time per connection (``speak`` or ``resume`` with a run id
during a run → ``error`` type ``busy``). Malformed frames (not JSON, binary,
unknown ``type``, bad fields) get an ``error`` message and the connection
stays usable. Heartbeat: the server pings every ``ws_ping_s``
(protocol-level, by uvicorn) and answers application ``ping`` messages.
A connection that drops does not end its run: the run goes on, and a new
connection reads on with ``resume`` (within ``reconnect_grace_s``). Each
frame is awaited before the next is taken: a slow client only falls behind
in the run's log; the run and other clients never wait for it.
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

from ._eventlog import EventsExpired
from ._http import ID_RE, ApiError, error_body, invalid_fields, parse_json
from ._runs import ActiveRun
from ._speak import SpeakRequest, start_chat_run
from ._state import DaemonState

router = APIRouter(tags=["stream"])
logger = logging.getLogger("speakstream.daemon")


class AudioHandover(AudioSink):
    """The WebSocket's sink: the bytes of the run's latest segments (the files'
    exact content, in the run's format) kept in memory, so live clients send
    them without reading the file back.

    At most :attr:`KEEP` segments are held (the newest); a client further
    behind, or replaying, reads the segment's file. Cleared at ``finish``.
    """

    name = "websocket"
    KEEP = 4

    def __init__(self) -> None:
        self._data: dict[int, bytes] = {}

    async def accept(self, segment: SegmentInfo, audio: SynthesizedAudio) -> None:
        self._data[segment.index] = audio.data
        while len(self._data) > self.KEEP:
            del self._data[min(self._data)]

    def get(self, index: int) -> bytes | None:
        """The bytes of segment ``index`` if still held."""
        return self._data.get(index)

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

    async def send(self, message: dict[str, Any] | str, binary: bytes | None = None) -> None:
        text = message if isinstance(message, str) else json.dumps(message, ensure_ascii=False)
        async with self.lock:
            await self.ws.send_text(text)
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

    @property
    def busy(self) -> bool:
        return self.pump is not None and not self.pump.done()

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
            if self.run is None or not self.busy or not self.run.running:
                await self.error("no_run", "no run to stop")
            else:
                self.run.stop()
        elif kind == "pause" or (kind == "resume" and "run_id" not in message):
            if self.run is None or not self.run.running:
                await self.error("no_run", f"no run to {kind}")
            elif not (self.run.pause() if kind == "pause" else self.run.resume()):
                await self.error("conflict", f"the run cannot {kind}")
        elif kind == "resume":
            await self.attach(message)
        elif kind == "speak":
            await self.speak(message)
        else:
            await self.error("invalid_message", f"unknown message type {kind!r}; "
                             "expected speak, stop, pause, resume or ping")

    async def speak(self, fields: dict[str, Any]) -> None:
        if self.busy:
            await self.error("busy", "a run is in progress; send stop first")
            return
        handover = AudioHandover()
        try:
            body = SpeakRequest.model_validate(fields)
            run = start_chat_run(self.state, body, endpoint="stream", sinks=[handover])
        except ValidationError as exc:
            error = invalid_fields(exc.errors())
            await self.error(error.type, error.message, param=error.param)
            return
        except ApiError as exc:
            await self.error(exc.type, exc.message, param=exc.param)
            return
        self.run = run
        run.audio_source = handover.get
        self.pump = asyncio.create_task(self._pump(run, 0), name=f"ws-{run.run_id}")

    async def attach(self, fields: dict[str, Any]) -> None:
        """``resume`` with a ``run_id``: follow that run after message ``after``."""
        if self.busy:
            await self.error("busy", "a run is in progress; send stop first")
            return
        run_id, after = fields.get("run_id"), fields.get("after", 0)
        if set(fields) - {"run_id", "after"}:
            await self.error("invalid_message", "resume takes run_id and after only")
            return
        if not isinstance(run_id, str) or not ID_RE.match(run_id):
            await self.error("invalid_request_error", "run_id must be a run id", param="run_id")
            return
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            await self.error("invalid_request_error", "after must be a whole number >= 0",
                             param="after")
            return
        run = self.state.runs.active(run_id)
        if run is None:
            kind = "not_found" if self.state.runs.get(run_id) is None else "events_expired"
            await self.error(kind, f"no events kept for run {run_id!r}", param="run_id")
            return
        if after + 1 < run.log.first_seq:
            await self.error("events_expired", f"events after {after} of run {run_id!r} are "
                             f"no longer kept (oldest kept: {run.log.first_seq})", param="after")
            return
        if after:
            self.state.metrics.replays.labels("websocket").inc()
        self.run = run
        self.pump = asyncio.create_task(self._pump(run, after), name=f"ws-{run.run_id}")

    async def _pump(self, run: ActiveRun, after: int) -> None:
        log = run.log
        with run.follow(after, "websocket") as sub:
            while True:
                try:
                    batch = run.batch_read(sub)
                except EventsExpired as exc:
                    await self.error("events_expired", str(exc))
                    return
                if not batch:
                    if log.closed:
                        return
                    await log.wait(sub.cursor)
                    continue
                for entry in batch:
                    if entry.kind == "audio" and entry.index is not None:
                        audio = await self._audio(run, entry.index)
                        if audio is None:  # neither in memory nor on disk: say so, no frame
                            await self.error("audio_unavailable",
                                             f"the audio of segment {entry.index} is not "
                                             "available", index=entry.index)
                        else:
                            await self.send(entry.ws(), audio)
                    else:
                        await self.send(entry.ws())

    async def _audio(self, run: ActiveRun, index: int) -> bytes | None:
        data = run.audio_source(index) if run.audio_source is not None else None
        if data is not None:
            return data
        entry = run.record.files.get(index)
        if entry is None:
            return None
        try:
            return await asyncio.to_thread(entry.path.read_bytes)
        except OSError:
            return None

    async def aclose(self) -> None:
        pump = self.pump
        if pump is None:
            return
        if not pump.done():
            pump.cancel()
            await asyncio.wait({pump})
        if self.run is not None:
            self.run.abandon()  # a pump cancelled before it started never ran the run
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
        pass  # the client left: its run goes on for reconnect_grace_s
    finally:
        await connection.aclose()
        state.metrics.ws_closed()
