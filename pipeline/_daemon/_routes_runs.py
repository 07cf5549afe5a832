"""``POST /v1/speak`` (SSE) and the ``/v1/runs/{run_id}`` routes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, StreamingResponse

from tts import AUDIO_FORMATS

from ._eventlog import EventsExpired
from ._http import ApiError, check_id, contained
from ._routes_basic import daemon
from ._runs import ActiveRun, RunRecord
from ._speak import SpeakRequest, start_chat_run
from ._state import DaemonState

router = APIRouter(tags=["runs"])

#: Media type by file extension, from the one table of formats.
MEDIA_TYPES = {name: known.media_type for name, known in AUDIO_FORMATS.items()}
SUBTITLE_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt"}


_SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
_SSE_DESCRIPTION = ("SSE, each event with an `id` (1, 2, ...): started, token, segment, audio, "
                    "error, cancelled, paused, resumed, done")


@router.post(
    "/v1/speak",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": _SSE_DESCRIPTION}},
)
async def speak(body: SpeakRequest, request: Request) -> StreamingResponse:
    """Ask the LLM and stream the answer as Server-Sent Events.

    Events (``id:`` its number in the run, ``event:`` name, ``data:`` JSON):
    ``started`` {run_id}, ``token`` {text} (deltas coalesced over
    ``coalesce_ms``), ``segment``, ``audio`` {index, url, duration_s, format},
    ``error``, ``cancelled``, ``paused``, ``resumed``, ``done`` {ttft_s,
    ttfa_s, total_s, audio_urls, ...}. The run id is also in the
    ``X-Run-Id`` header. A client that disconnects can read on with
    ``GET /v1/runs/{id}/events`` (``Last-Event-ID``); a run nobody follows
    for ``reconnect_grace_s`` is cancelled.
    """
    state = daemon(request)
    run = start_chat_run(state, body, endpoint="speak")
    return _sse_response(state, run, 0)


@router.get(
    "/v1/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": _SSE_DESCRIPTION}},
)
async def run_events(run_id: str, request: Request,
                     last_event_id: str | None = None) -> StreamingResponse:
    """A run's events as SSE (the same events and ids as ``POST /v1/speak``):
    those after ``Last-Event-ID`` (header, or the ``last_event_id`` query
    parameter; none: from the first), then the live ones until the run ends.

    Errors: 404 unknown run; 410 ``events_expired`` when the run's event log
    is no longer kept (or no longer holds the events asked for); 422 for a
    ``Last-Event-ID`` that is not a whole number.
    """
    state = daemon(request)
    _record(state, run_id)
    run = state.runs.active(run_id)
    if run is None:
        raise ApiError(410, "events_expired", f"the events of run {run_id!r} are no longer kept")
    raw = request.headers.get("last-event-id", last_event_id)
    after = 0
    if raw is not None and raw.strip():
        if not (raw.strip().isascii() and raw.strip().isdigit()) or len(raw.strip()) > 18:
            raise ApiError(422, "invalid_request_error",
                           f"Last-Event-ID must be a whole number, got {raw!r}",
                           param="last_event_id")
        after = int(raw)
    if after + 1 < run.log.first_seq:
        raise ApiError(410, "events_expired",
                       f"events after {after} of run {run_id!r} are no longer kept "
                       f"(oldest kept: {run.log.first_seq})")
    if after:
        state.metrics.replays.labels("sse").inc()
    return _sse_response(state, run, after)


def _sse_response(state: DaemonState, run: ActiveRun, after: int) -> StreamingResponse:
    return StreamingResponse(
        _sse(state, run, after), media_type="text/event-stream",
        headers={**_SSE_HEADERS, "X-Run-Id": run.run_id},
    )


async def _sse(state: DaemonState, run: ActiveRun, after: int) -> AsyncIterator[bytes]:
    """The run's log after ``after`` as SSE bytes: one write per batch of messages
    (already encoded once in the log), a keep-alive comment when idle."""
    sent = state.metrics.messages_sent.labels("sse")
    ping_s = state.settings.sse_ping_s
    log = run.log
    with run.follow(after, "sse") as sub:
        while True:
            try:
                batch = run.batch_read(sub)
            except EventsExpired as exc:
                data = {"error_type": "events_expired", "message": str(exc)}
                yield f"event: error\ndata: {json.dumps(data)}\n\n".encode()
                return
            if batch:
                sent.inc(len(batch))
                yield b"".join([entry.sse() for entry in batch])
                continue
            if log.closed:
                return
            try:
                async with asyncio.timeout(ping_s):
                    await log.wait(sub.cursor)
            except TimeoutError:
                yield b": ping\n\n"


def _record(state: DaemonState, run_id: str) -> RunRecord:
    check_id(run_id, kind="run")
    record = state.runs.get(run_id)
    if record is None:
        raise ApiError(404, "not_found", f"no run {run_id!r}")
    return record


@router.get("/v1/runs/{run_id}")
async def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """Status, audio list (with URLs), stream health, last event id and manifest
    records of a run.

    Errors: 404 for an unknown or malformed id.
    """
    state = daemon(request)
    record = _record(state, run_id)
    data = record.to_json()
    for item in data["audio"]:
        item["url"] = f"/v1/runs/{run_id}/audio/{item['index']}"
    data["merged_url"] = f"/v1/runs/{run_id}/audio/merged" if record.merged_path else None
    data["subtitles_url"] = f"/v1/runs/{run_id}/subtitles" if record.subtitles_path else None
    data["manifest"] = state.runs.manifest(record)
    return data


def _running(state: DaemonState, run_id: str) -> ActiveRun:
    record = _record(state, run_id)
    run = state.runs.active(run_id)
    if run is None or record.status != "running":
        raise ApiError(409, "conflict", f"run {run_id!r} is not running ({record.status})")
    return run


@router.post("/v1/runs/{run_id}/pause")
async def pause_run(run_id: str, request: Request) -> dict[str, Any]:
    """Pause a running run at the next segment boundary: synthesis and audio stop,
    the LLM stream is held (not cancelled) for up to ``pause_hold_s``, then
    closed with its text kept. Idempotent. ``409`` when the run is not running
    (or cannot be paused), ``404`` when unknown."""
    run = _running(daemon(request), run_id)
    if not run.pause():
        raise ApiError(409, "conflict", f"run {run_id!r} cannot be paused")
    return {"run_id": run_id, "status": "paused"}


@router.post("/v1/runs/{run_id}/resume")
async def resume_run(run_id: str, request: Request) -> dict[str, Any]:
    """Resume a paused run where it stopped (nothing lost or repeated). Idempotent.
    ``409`` when the run is not running, ``404`` when unknown."""
    run = _running(daemon(request), run_id)
    if not run.resume():
        raise ApiError(409, "conflict", f"run {run_id!r} cannot be paused")
    return {"run_id": run_id, "status": "running"}


@router.delete("/v1/runs/{run_id}", status_code=202)
async def cancel_run(run_id: str, request: Request) -> dict[str, Any]:
    """Cancel a running run: its LLM request and pending synthesis stop; the
    stream still ends with ``cancelled`` and ``done``. ``202`` when asked,
    ``409`` when the run already ended, ``404`` when unknown."""
    run = _running(daemon(request), run_id)
    run.stop()
    return {"run_id": run_id, "status": "cancelling"}


@router.get("/v1/runs/{run_id}/audio/{index}", response_class=FileResponse)
async def run_audio(run_id: str, index: str, request: Request) -> FileResponse:
    """A run's segment file (``index`` 0, 1, ...) or its merged file (``merged``)."""
    return audio_response(_record(daemon(request), run_id), index)


@router.get("/v1/runs/{run_id}/subtitles", response_class=FileResponse)
async def run_subtitles(run_id: str, request: Request) -> FileResponse:
    """A run's subtitle file (``merged.srt`` or ``merged.vtt``, on the merged timeline),
    when the run asked for ``subtitles``. 404 otherwise."""
    record = _record(daemon(request), run_id)
    path = record.subtitles_path
    if path is None or record.directory is None or not path.is_file():
        raise ApiError(404, "not_found", f"no subtitles in {record.run_id!r}")
    safe = contained(record.directory, str(path))
    media = SUBTITLE_TYPES.get(safe.suffix.lstrip("."), "text/plain")
    return FileResponse(safe, media_type=media, filename=safe.name)


def audio_response(record: RunRecord, index: str) -> FileResponse:
    """The file of segment ``index`` / ``"merged"`` of ``record``, never outside its
    directory (a tampered manifest cannot point elsewhere)."""
    if index == "merged":
        path = record.merged_path
    elif index.isascii() and index.isdigit() and len(index) <= 9:  # not "²": isdigit() is true
        entry = record.files.get(int(index))
        path = entry.path if entry is not None else None
    else:
        path = None
    if path is None or record.directory is None or not path.is_file():
        raise ApiError(404, "not_found", f"no audio {index!r} in {record.run_id!r}")
    safe = contained(record.directory, str(path))
    media = MEDIA_TYPES.get(safe.suffix.lstrip("."), "application/octet-stream")
    return FileResponse(safe, media_type=media, filename=safe.name)
