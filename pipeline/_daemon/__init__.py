"""The speakstream daemon: FastAPI app, SSE, WebSocket, OpenAI speech, narration jobs.

``import pipeline`` must stay light, so FastAPI and uvicorn are imported only
when :func:`create_app` or :func:`serve` is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._settings import TOKEN_ENV, DaemonSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tts import TTSEngine


def create_app(
    settings: DaemonSettings | None = None,
    *,
    llm_client: Any = None,
    tts_engine: TTSEngine | None = None,
    announce: Callable[[str], Any] | None = None,
    address: str = "",
    freeze_gc: bool = False,
) -> FastAPI:
    """Build the daemon's FastAPI app; see :func:`pipeline._daemon._app.create_app`."""
    from ._app import create_app as _create_app

    return _create_app(settings, llm_client=llm_client, tts_engine=tts_engine,
                       announce=announce, address=address, freeze_gc=freeze_gc)


def serve(settings: DaemonSettings) -> None:
    """Run the daemon with uvicorn until interrupted (blocking)."""
    from ._serve import serve as _serve

    _serve(settings)


__all__ = ["TOKEN_ENV", "DaemonSettings", "create_app", "serve"]
