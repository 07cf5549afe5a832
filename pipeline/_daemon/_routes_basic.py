"""``/``, ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.responses import HTMLResponse, Response

from ._state import DaemonState

router = APIRouter()


def daemon(request: Request) -> DaemonState:
    """The app's shared state."""
    state: DaemonState = request.app.state.daemon
    return state


@router.get("/healthz", tags=["ops"])
async def healthz() -> dict[str, str]:
    """Liveness: ``{"status": "ok"}`` while the daemon serves requests (no auth)."""
    return {"status": "ok"}


@router.get("/metrics", tags=["ops"], response_class=Response)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format 0.0.4)."""
    return Response(daemon(request).metrics.render(), media_type=CONTENT_TYPE_LATEST)


@router.get("/", tags=["web"], response_class=HTMLResponse, include_in_schema=False)
async def index() -> HTMLResponse:
    """The web page: ask, read the answer as it streams, hear it, stop it."""
    page = resources.files(__package__).joinpath("static/index.html").read_text("utf-8")
    return HTMLResponse(page)
