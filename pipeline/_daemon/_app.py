"""The daemon's FastAPI app: :func:`create_app`.

Routes (all JSON errors have the shape of :mod:`._http`)::

    GET    /                               the web page (static/index.html)
    GET    /healthz                        liveness, no auth
    GET    /metrics                        Prometheus text format
    POST   /v1/speak                       SSE: token, segment, audio, done, error
    GET    /v1/runs/{run_id}               status + manifest
    DELETE /v1/runs/{run_id}               cancel a running run
    GET    /v1/runs/{run_id}/audio/{index} one segment file (or "merged")
    WS     /v1/stream                      speak/stop; chunk, audio + binary, done, error
    POST   /v1/audio/speech                OpenAI-compatible speech, streamed
    POST   /v1/narrations                  202 + job id (SQLite-backed jobs)
    GET    /v1/narrations/{job_id}         progress and result URLs
    GET    /v1/narrations/{job_id}/audio/{index}
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse

from tts import TTSEngine

from ._guard import GuardMiddleware
from ._http import ApiError, error_body, error_response
from ._routes import ROUTERS
from ._settings import DaemonSettings
from ._state import DaemonState


def create_app(
    settings: DaemonSettings | None = None,
    *,
    llm_client: Any = None,
    tts_engine: TTSEngine | None = None,
) -> FastAPI:
    """Build the daemon's ASGI app (serve it with uvicorn, see :func:`serve`).

    Args:
        settings: the daemon's options (defaults: loopback, no token).
        llm_client: a ready LLM client every run uses instead of creating one
            per provider/model (tests, embedding). Not closed by the app.
        tts_engine: a ready TTS engine every run uses instead of the warm
            engines the app creates and keeps. Not closed by the app.

    The app's lifespan opens the narration store (resuming unfinished jobs)
    and, on shutdown, stops running jobs and closes the engines it created.
    """
    settings = settings or DaemonSettings()
    state = DaemonState(settings, llm_client=llm_client, tts_engine=tts_engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await state.start()
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
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        message = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}" for e in errors
        )
        return JSONResponse(error_body("invalid_request_error", message, param=param),
                            status_code=422)

    for router in ROUTERS:
        app.include_router(router)

    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.cors_origins),
            allow_methods=["GET", "POST", "DELETE"],
            allow_headers=["Authorization", "Content-Type"],
        )
    # Outermost: auth and size limits come before everything else.
    app.add_middleware(
        GuardMiddleware, token=settings.token, max_body_bytes=settings.max_body_bytes
    )
    return app
