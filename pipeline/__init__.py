"""The streaming core: sentence buffer, orchestration, CLI and daemon.

``pipeline`` composes :mod:`llm`, :mod:`tts` and :mod:`output`; they never
import it.
"""

from __future__ import annotations

from ._segment import Segment

__all__ = [
    "Segment",
]
