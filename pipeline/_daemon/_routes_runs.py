"""``POST /v1/speak`` (SSE) and the ``/v1/runs/{run_id}`` routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.responses import FileResponse

from tts import AUDIO_FORMATS

from ._http import ApiError, check_id, contained
from ._messages import client_message
from ._routes_basic import daemon
from ._runs import ActiveRun, RunRecord
from ._speak import SpeakRequest, start_chat_run
from ._state import DaemonState

router = APIRouter(tags=["runs"])

#: Media type by file extension, from the one table of formats.
MEDIA_TYPES = {name: known.media_type for name, known in AUDIO_FORMATS.items()}
SUBTITLE_TYPES = {"srt": "application/x-subrip", "vtt": "text/vtt"}


@router.post(
    "/v1/speak",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}},
                     "description": "SSE: started, token, segment, audio, error, cancelled, done"}},
)
async def speak(body: SpeakRequest, request: Request) -> EventSourceResponse:
    """Ask the LLM and stream the answer as Server-Sent Events.

    Events (``event:`` name, ``data:`` JSON): ``started`` {run_id},
    ``token`` {text} (deltas coalesced over ``coalesce_ms``), ``segment``,
    ``audio`` {index, url, duration_s, format}, ``error``, ``cancelled``,
    ``done`` {ttft_s, ttfa_s, total_s, audio_urls, ...}. The run id is also
    in the ``X-Run-Id`` header. Disconnecting cancels the run.
    """
    state = daemon(request)
    run = start_chat_run(state, body, endpoint="speak")
    return EventSourceResponse(
        _sse(state, run), ping=state.settings.sse_ping_s, headers={"X-Run-Id": run.run_id}
    )


async def _sse(state: DaemonState, run: ActiveRun) -> AsyncIterator[ServerSentEvent]:
    sent = state.metrics.messages_sent.labels("sse")
    try:
        async for event in run.events(coalesce_s=state.settings.coalesce_ms / 1000):
            kind, data = client_message(event)
            sent.inc()
            yield ServerSentEvent(data=json.dumps(data, ensure_ascii=False), event=kind)
    finally:
        state.runs.finished(run.run_id)


def _record(state: DaemonState, run_id: str) -> RunRecord:
    check_id(run_id, kind="run")
    record = state.runs.get(run_id)
    if record is None:
        raise ApiError(404, "not_found", f"no run {run_id!r}")
    return record


@router.get("/v1/runs/{run_id}")
async def get_run(run_id: str, request: Request) -> dict[str, Any]:
    """Status, audio list (with URLs) and manifest records of a run.

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


@router.delete("/v1/runs/{run_id}", status_code=202)
async def cancel_run(run_id: str, request: Request) -> dict[str, Any]:
    """Cancel a running run: its LLM request and pending synthesis stop; the
    stream still ends with ``cancelled`` and ``done``. ``202`` when asked,
    ``409`` when the run already ended, ``404`` when unknown."""
    state = daemon(request)
    record = _record(state, run_id)
    run = state.runs.active(run_id)
    if run is None or record.status != "running":
        raise ApiError(409, "conflict", f"run {run_id!r} is not running ({record.status})")
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
