"""Audio to disk and to speakers: segment files, format conversion, manifest,
merging, subtitles and playback. Knows nothing of LLMs."""

from __future__ import annotations

__all__: list[str] = []
