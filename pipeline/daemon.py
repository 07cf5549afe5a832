"""The daemon and its client: the server and client names, apart from the library surface.

``pipeline`` exports the streaming library (pipelines, events, config,
errors); the server (:func:`create_app`, :func:`serve`, :class:`DaemonSettings`)
and the client of a running daemon (:class:`DaemonClient`, :class:`DaemonError`)
live here::

    from pipeline.daemon import DaemonClient, DaemonSettings, create_app, serve

Importing this module stays light: FastAPI and uvicorn are imported only when
:func:`create_app` or :func:`serve` is called.
"""

from __future__ import annotations

from ._client import DaemonClient, DaemonError
from ._daemon import DaemonSettings, create_app, serve

__all__ = ["DaemonClient", "DaemonError", "DaemonSettings", "create_app", "serve"]
