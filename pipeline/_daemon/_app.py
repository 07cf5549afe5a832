"""The daemon's FastAPI app: :func:`create_app`.

Routes (all JSON errors have the shape of :mod:`._http`)::

    GET    /                               the web page (static/index.html)
    GET    /healthz                        liveness, no auth
    GET    /metrics                        Prometheus text format
    POST   /v1/speak                       SSE: token, segment, audio, done, error
    GET    /v1/runs/{run_id}               status + manifest
    DELETE /v1/runs/{run_id}               cancel a running run
    GET    /v1/runs/{run_id}/audio/{index} one segment file (or "merged")
    GET    /v1/runs/{run_id}/subtitles     the run's SRT/VTT file
    WS     /v1/stream                      speak/stop; chunk, audio + binary, done, error
    POST   /v1/audio/speech                OpenAI-compatible speech, streamed
    POST   /v1/narrations                  202 + job id (SQLite-backed jobs)
    GET    /v1/narrations                  jobs, newest first, with progress (paged)
    GET    /v1/narrations/{job_id}         progress (chars, percent, ETA) and result URLs
    GET    /v1/narrations/{job_id}/audio/{index}
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from tts import TTSEngine

from ._guard import GuardMiddleware
from ._http import STATUS_TYPES, ApiError, error_body, error_response, invalid_fields, not_json
from ._routes import ROUTERS
from ._settings import DaemonSettings
from ._state import DaemonState


def create_app(
    settings: DaemonSettings | None = None,
    *,
    llm_client: Any = None,
    tts_engine: TTSEngine | None = None,
    announce: Callable[[str], Any] | None = None,
    address: str = "",
    freeze_gc: bool = False,
) -> FastAPI:
    """Build the daemon's ASGI app (serve it with uvicorn, see :func:`serve`).

    Args:
        settings: the daemon's options (defaults: loopback, no token).
        llm_client: a ready LLM client every run uses instead of creating one
            per provider/model (tests, embedding). Not closed by the app.
        tts_engine: a ready TTS engine every run uses instead of the warm
            engines the app creates and keeps. Not closed by the app.
        announce: called once the app has started with one line saying what
            it serves and why (LLM, model, engine and the source of each).
        address: the daemon's URL, for that line.
        freeze_gc: once started, move every object then alive (modules, the
            app, warm engines) out of the cyclic garbage collector's reach
            (:func:`gc.freeze`), so that a full collection during a burst
            scans only what runs made. Measured with 100 clients: a 137 ms
            full collection in the middle of segment 0 became 40 ms, after
            it. For a process that serves one app (``speakstream serve``):
            frozen objects are never collected, even once unreachable.

    The app's lifespan opens the narration store (resuming unfinished jobs)
    and, on shutdown, stops running jobs and closes the engines it created.
    Every error, the framework's own included (unknown path 404, wrong
    method 405, bad body 400/422, a bug 500), is answered in the JSON shape
    of :mod:`._http`.
    """
    settings = settings or DaemonSettings()
    state = DaemonState(settings, llm_client=llm_client, tts_engine=tts_engine,
                        announce=announce, address=address)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
        if freeze_gc:
            gc.collect()  # what start-up left behind goes now, not frozen
            gc.freeze()
        try:
            yield
        finally:
            await state.aclose()

    app = FastAPI(
        title="speakstream daemon",
        summary="Streamed LLM text and speech over SSE, WebSocket and an OpenAI-compatible API.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.daemon = state

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {}
        if first.get("type") == "json_invalid":
            where = first.get("loc", ("body",))[-1]
            reason = (first.get("ctx") or {}).get("error", "invalid")
            return error_response(not_json(reason, where if isinstance(where, int) else None))
        return error_response(invalid_fields(errors, skip=1))  # skip FastAPI's "body"

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> JSONResponse:
        kind = STATUS_TYPES.get(exc.status_code, "http_error")
        message = str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        return JSONResponse(error_body(kind, message), status_code=exc.status_code,
                            headers=exc.headers)

    @app.exception_handler(Exception)
    async def _bug(request: Request, exc: Exception) -> JSONResponse:
        # Starlette still logs the traceback (and re-raises to the server).
        return JSONResponse(error_body("internal_error",
                                       f"internal error ({type(exc).__name__}); see the "
                                       "daemon's log"), status_code=500)

    for router in ROUTERS:
        app.include_router(router)

    # Auth and size limits come before every route ...
    app.add_middleware(
        GuardMiddleware, token=settings.token, max_body_bytes=settings.max_body_bytes
    )
    if settings.cors_origins:
        # ... and CORS before them (outermost, added last): it answers preflights,
        # which carry no credentials, and adds its headers to every answer,
        # 401 and 413 included, so a page on an allowed origin can read them.
        app.add_middleware(
            JsonCORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
            expose_headers=["X-Run-Id", "X-Sample-Rate"],
        )
    return app


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS middleware whose refused preflights (a 400 in plain text
    there) answer in the daemon's JSON error shape."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items()
                   if k.lower() not in ("content-length", "content-type")}
        message = bytes(response.body).decode("utf-8", "replace")
        return JSONResponse(error_body("invalid_request_error", message),
                            status_code=response.status_code, headers=headers)
