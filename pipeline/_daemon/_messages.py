"""Progress events as client messages: the one mapping SSE and WebSocket share.

Built on :func:`pipeline.event_to_dict`; server file paths are replaced by
URLs of the daemon's audio routes (clients never see server paths)::

    RunStarted    -> "started"    {run_id, llm_provider, model, tts, t}
    TextDelta     -> "token"      {text, t}                (WebSocket: "chunk")
    SegmentQueued -> "segment"    {index, text, spoken_text, start, end, reason, t}
    AudioReady    -> "audio"      {index, url, format, duration_s, engine, voice, synth_s, text, t}
    RunFailed     -> "error"      {error_type, message, retryable, partial_text, segment_index, t}
    RunCancelled  -> "cancelled"  {reason, t}
    RunCompleted  -> "done"       {audio_urls, audio_indices, failed_indices, merged_url,
                                   subtitles_url, complete_text, ttft_s, ttfa_s, first_file_s,
                                   total_s, audio_s, rtf, error, t}
"""

from __future__ import annotations

from typing import Any

from .._events import (
    AudioReady,
    ProgressEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    SegmentQueued,
    TextDelta,
    event_to_dict,
)

KINDS: dict[type, str] = {
    RunStarted: "started",
    TextDelta: "token",
    SegmentQueued: "segment",
    AudioReady: "audio",
    RunFailed: "error",
    RunCancelled: "cancelled",
    RunCompleted: "done",
}

_SERVER_PATHS = ("path", "output_dir", "audio_files", "manifest_path", "merged_path",
                 "subtitles_path")


def audio_url(kind: str, owner_id: str, index: int | str) -> str:
    """URL path of a segment (or ``"merged"``) of a run or narration."""
    return f"/v1/{kind}/{owner_id}/audio/{index}"


def client_message(event: ProgressEvent, *, kind: str = "runs") -> tuple[str, dict[str, Any]]:
    """``(message kind, JSON-ready data)`` of ``event`` (see the module docstring).

    ``kind`` is ``"runs"`` or ``"narrations"``: the collection URLs point into.
    """
    data = event_to_dict(event)
    data.pop("status")
    owner = event.run_id
    if isinstance(event, AudioReady):
        data["url"] = audio_url(kind, owner, event.index)
    elif isinstance(event, RunCompleted):
        data["audio_urls"] = [audio_url(kind, owner, i) for i in event.audio_indices]
        data["merged_url"] = audio_url(kind, owner, "merged") if event.merged_path else None
        data["subtitles_url"] = f"/v1/{kind}/{owner}/subtitles" if event.subtitles_path else None
    for key in _SERVER_PATHS:
        data.pop(key, None)
    return KINDS[type(event)], data
