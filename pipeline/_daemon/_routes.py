"""The routers the app mounts, in order."""

from __future__ import annotations

from ._routes_basic import router as basic
from ._routes_narrations import router as narrations
from ._routes_runs import router as runs
from ._routes_speech import router as speech
from ._routes_ws import router as ws

ROUTERS = [basic, runs, speech, ws, narrations]
