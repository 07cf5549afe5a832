"""After a run's last segment: the merged file and the subtitle file."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from output import cues_from_segments, merge, write_srt, write_vtt
from tts import WordBoundary

from ._config import StreamingConfig

#: Base name of a run's merged audio and subtitle files (``merged.mp3``, ``merged.srt``).
MERGED_STEM = "merged"


async def finish_outputs(
    directory: Path,
    files: Sequence[str],
    timings: Sequence[tuple[str, float, tuple[WordBoundary, ...]]],
    config: StreamingConfig,
    *,
    stem: str = MERGED_STEM,
) -> tuple[str | None, str | None]:
    """Write ``<stem>.<format>`` (when ``config.merge``) and ``<stem>.srt|vtt``
    (when ``config.subtitles``) into ``directory``, off the event loop.

    ``files`` are the segment files in play order and ``timings`` their
    ``(text, duration_s, words)``; subtitle times follow the merged timeline
    (``config.merge_silence_ms`` between segments).

    Returns:
        ``(merged_path, subtitles_path)``, each ``None`` when not asked for.

    Raises:
        OutputError: merging or writing failed (the segment files stay).
    """
    merged: str | None = None
    subtitles: str | None = None
    if config.merge and files:
        out = directory / f"{stem}.{config.format}"
        path = await asyncio.to_thread(
            merge, list(files), out, format=config.format, silence_ms=config.merge_silence_ms
        )
        merged = str(path)
    if config.subtitles and timings:
        cues = cues_from_segments(list(timings), silence_ms=config.merge_silence_ms)
        writer = write_srt if config.subtitles == "srt" else write_vtt
        path = await asyncio.to_thread(writer, cues, directory / f"{stem}.{config.subtitles}")
        subtitles = str(path)
    return merged, subtitles
