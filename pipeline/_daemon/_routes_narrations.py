"""``/v1/narrations``: long texts narrated as background jobs (SQLite-backed)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.datastructures import UploadFile
from starlette.responses import FileResponse

from .._errors import ConfigError
from .._jobfile import JobItem
from .._pipeline import new_run_id
from ._http import ApiError, check_id, check_length, contained, invalid_fields, not_json
from ._jobs import Job
from ._routes_basic import daemon
from ._routes_runs import MEDIA_TYPES
from ._state import DaemonState

router = APIRouter(tags=["narrations"])


class NarrationRequest(BaseModel):
    """A narration job: ``text`` (or an uploaded UTF-8 ``file``) or ``items`` (job
    items, as in a ``narrate`` job file: ``{"text"}`` or ``{"prompt", "system"?,
    "llm"?, "model"?, "base_url"?}``; ``{"path"}`` is refused), engine options."""

    model_config = ConfigDict(extra="forbid")

    text: str | None = None
    items: list[Any] | None = None
    voice: str | None = None
    tts: str | None = None
    format: str | None = None
    streaming_config: dict[str, Any] | None = None


_BODY_DOC = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": NarrationRequest.model_json_schema()},
            "multipart/form-data": {"schema": {"type": "object", "properties": {
                "file": {"type": "string", "format": "binary"},
                "voice": {"type": "string"}, "tts": {"type": "string"},
                "format": {"type": "string"}}, "required": ["file"]}},
        },
    }
}


async def _parse(request: Request) -> NarrationRequest:
    content_type = request.headers.get("content-type", "")
    try:
        if content_type.startswith("multipart/form-data"):
            form = await request.form()
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(422, "invalid_request_error", "multipart body needs a 'file'",
                               param="file")
            raw = await upload.read()
            await form.close()
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ApiError(422, "invalid_request_error", f"file is not UTF-8 text: {exc}",
                               param="file") from exc
            fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
            return NarrationRequest.model_validate({"text": text, **fields})
        return NarrationRequest.model_validate(json.loads(await request.body()))
    except ValidationError as exc:
        raise invalid_fields(exc.errors()) from exc
    except json.JSONDecodeError as exc:  # malformed JSON is a 400, as on every other route
        raise not_json(exc.msg, exc.pos) from exc
    except ValueError as exc:  # not UTF-8
        raise not_json(str(exc)) from exc


def _items(raw: list[Any], limit: int) -> list[JobItem]:
    """Job items from a request (ids ``item_0001``...).

    Raises:
        ApiError: 422 for an empty list, a bad item, or a ``path`` item (the
            daemon does not read files of its machine for clients); 413 when
            the texts and prompts together exceed ``limit`` characters.
    """
    if not raw:
        raise ApiError(422, "invalid_request_error", "items is empty", param="items")
    items = []
    for n, data in enumerate(raw):
        where = f"items[{n}]"
        if isinstance(data, dict) and "path" in data:
            raise ApiError(422, "invalid_request_error",
                           f"{where}: 'path' items are not accepted over HTTP (the daemon does "
                           "not read its machine's files for clients): send the text",
                           param="items")
        try:
            items.append(JobItem.from_dict(data, id=f"item_{n + 1:04d}", where=where))
        except ConfigError as exc:
            raise ApiError(422, "invalid_request_error", str(exc), param="items") from exc
    chars = sum(len(i.text or "") + len(i.prompt or "") + len(i.system or "") for i in items)
    if chars > limit:
        raise ApiError(413, "request_too_large",
                       f"items hold {chars} characters; the limit is {limit}", param="items")
    return items


def _checked_llm(state: DaemonState, item: JobItem, n: int) -> JobItem:
    """``item`` with its LLM checked as ``/v1/speak`` checks one.

    ``base_url`` is refused: the daemon would send its own API keys (from its
    environment) to whatever server a client names. With ``llm`` "local" a
    client may only name the daemon's own GGUF (by file name or path); the
    item then leaves ``model`` unset, so the daemon's model runs and no path
    of its disk is stored or shown.

    Raises:
        ApiError: 422 (``param`` "items") for a ``base_url`` or another local model.
    """
    if item.prompt is None:
        return item
    if item.base_url is not None:
        raise ApiError(422, "invalid_request_error",
                       f"items[{n}]: 'base_url' is not accepted over HTTP (the daemon's "
                       "operator sets its LLM servers): leave it out", param="items")
    if not item.model or (item.llm or state.source.settings.llm_provider) != "local":
        return item
    try:
        state.source.client_key(item.llm, item.model)
    except ApiError as exc:
        raise ApiError(422, "invalid_request_error", f"items[{n}]: {exc}",
                       param="items") from exc
    return dataclasses.replace(item, model=None)


@router.post("/v1/narrations", status_code=202, openapi_extra=_BODY_DOC)
async def create_narration(request: Request) -> dict[str, Any]:
    """Queue a narration job; returns ``202`` with ``{"id", "status", "url"}``.

    Body: JSON ``{"text" | "items", "voice"?, "tts"?, "format"?,
    "streaming_config"?}`` or multipart with a UTF-8 ``file``. ``items`` are
    job items (``{"text"}``, ``{"prompt", "system"?, "llm"?, "model"?,
    "base_url"?}``; unset LLM keys fall back to the daemon's settings).
    Errors: 413 (text or items over ``max_narration_chars``, body over
    ``max_body_bytes``), 422 (neither or both of ``text``/``items``, a bad
    item, a ``path`` item, bad options).
    """
    state = daemon(request)
    body = await _parse(request)
    limit = state.settings.max_narration_chars
    items: list[JobItem] = []
    if (body.text is None) == (body.items is None):
        raise ApiError(422, "invalid_request_error", "give exactly one of 'text' or 'items'",
                       param="text")
    if body.items is not None:
        items = [_checked_llm(state, item, n) for n, item in enumerate(_items(body.items, limit))]
    else:
        assert body.text is not None
        check_length(body.text, limit, param="text")
        if not body.text.strip():
            raise ApiError(422, "invalid_request_error", "text is empty", param="text")
    job_id = new_run_id(random_bytes=4)
    # Validate the options now (422), not when the job runs.
    state.source.config(body.streaming_config, output_dir=state.jobs.directory(job_id),
                        format=body.format)
    await asyncio.to_thread(state.jobs.store.create, job_id, text=body.text or "",
                            voice=body.voice, tts=body.tts, format=body.format,
                            options=body.streaming_config or {}, items=items)
    job = await asyncio.to_thread(state.jobs.store.get, job_id)
    assert job is not None
    state.jobs.start(job)
    return {"id": job_id, "status": "queued", "url": f"/v1/narrations/{job_id}"}


def _describe(state: DaemonState, job: Job, *, files: bool = True) -> dict[str, Any]:
    """A job as the API shows it; ``progress`` is read in the event loop (see callers)."""
    data: dict[str, Any] = {
        "id": job.id, "status": job.status, "chapters": job.chapters,
        "segments": job.segments, "audio_s": job.audio_s, "error": job.error,
        "attempts": job.attempts, "created": job.created, "updated": job.updated,
        "url": f"/v1/narrations/{job.id}",
    }
    if files:
        data["files"] = [{**f, "url": _audio_url(job.id, f)}
                         for f in state.jobs.store.files(job.id)]
        data["items"] = state.jobs.store.item_results(job.id)
    return data


def _audio_url(job_id: str, f: dict[str, Any]) -> str:
    item = f"/items/{f['item']}" if f["item"] else ""
    return f"/v1/narrations/{job_id}{item}/chapters/{f['chapter']}/audio/{f['idx']}"


@router.get("/v1/narrations")
async def list_narrations(
    request: Request,
    limit: int = Query(20, ge=1, le=100, description="jobs per page"),
    offset: int = Query(0, ge=0, description="jobs to skip"),
) -> dict[str, Any]:
    """Jobs, newest first, with their status and ``progress`` (no file lists):
    ``{"narrations": [...], "total", "limit", "offset", "next"}``; ``next`` is
    the URL of the next page, ``None`` on the last one. 422 for a bad
    ``limit`` (1-100) or ``offset`` (>= 0)."""
    state = daemon(request)
    jobs, total = await asyncio.to_thread(state.jobs.store.page, limit=limit, offset=offset)
    items = [{**_describe(state, job, files=False), "progress": state.jobs.progress(job)}
             for job in jobs]
    following = offset + len(jobs)
    return {
        "narrations": items, "total": total, "limit": limit, "offset": offset,
        "next": f"/v1/narrations?limit={limit}&offset={following}" if following < total
        else None,
    }


@router.get("/v1/narrations/{job_id}")
async def get_narration(job_id: str, request: Request) -> dict[str, Any]:
    """Status and progress of a job, with the URL of every file written so far
    (``files``: ``item``, ``chapter``, ``idx``, ``name``, ``format``,
    ``duration_s``, ``url``) and, for a job of items, each item's result
    (``items``: its ``results.jsonl`` line once it ended: ``status``,
    ``response``, ``streamed``, ``chunks``, ``provider``, ``model``,
    ``audio_files``, ``duration_s``, ``errors``...; before, ``status``
    ``"queued"``).

    ``progress``: ``phase`` (``"queued"``, ``"narrating"``, ``"merging"``,
    ``"finishing"``, ``"done"``, ``"failed"``, ``"cancelled"``), ``chapter``,
    ``chars_done``/``chars_total`` (characters of the text), ``percent``,
    ``segments_done``, ``files_merging``, ``rate_cps`` (characters
    synthesised per second, recent window) and ``eta_s`` (seconds; ``None``
    while the speed is still being measured).
    """
    check_id(job_id, kind="narration")
    state = daemon(request)
    job = await asyncio.to_thread(state.jobs.store.get, job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no narration {job_id!r}")
    data = await asyncio.to_thread(_describe, state, job)
    data["progress"] = state.jobs.progress(job)
    return data


@router.delete("/v1/narrations/{job_id}", status_code=202)
async def cancel_narration(job_id: str, request: Request) -> dict[str, Any]:
    """Cancel a running job (files written so far stay). 409 if it is not running."""
    check_id(job_id, kind="narration")
    state = daemon(request)
    job = await asyncio.to_thread(state.jobs.store.get, job_id)
    if job is None:
        raise ApiError(404, "not_found", f"no narration {job_id!r}")
    if job.status not in ("queued", "running"):
        raise ApiError(409, "conflict", f"narration {job_id!r} is {job.status}")
    await asyncio.to_thread(state.jobs.store.update, job_id, status="cancelled")
    state.jobs.cancel(job_id)
    return {"id": job_id, "status": "cancelled"}


@router.get("/v1/narrations/{job_id}/chapters/{chapter}/audio/{index}",
            response_class=FileResponse)
async def narration_audio(job_id: str, chapter: int, index: int,
                          request: Request) -> FileResponse:
    """One segment file of a text job."""
    return await _audio(request, job_id, "", chapter, index)


@router.get("/v1/narrations/{job_id}/items/{item}/chapters/{chapter}/audio/{index}",
            response_class=FileResponse)
async def narration_item_audio(job_id: str, item: str, chapter: int, index: int,
                               request: Request) -> FileResponse:
    """One segment file of an item (chapter 0 for a prompt's answer)."""
    return await _audio(request, job_id, item, chapter, index)


async def _audio(request: Request, job_id: str, item: str, chapter: int,
                 index: int) -> FileResponse:
    check_id(job_id, kind="narration")
    state = daemon(request)
    files = await asyncio.to_thread(state.jobs.store.files, job_id)
    for f in files:
        if f["item"] == item and f["chapter"] == chapter and f["idx"] == index:
            path = contained(state.jobs.directory(job_id), f["name"])
            if path.is_file():
                return FileResponse(path, media_type=MEDIA_TYPES.get(f["format"]),
                                    filename=path.name)
    where = f"{item}/" if item else ""
    raise ApiError(404, "not_found",
                   f"no audio {where}{chapter}/{index} in narration {job_id!r}")
