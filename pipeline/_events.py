"""Progress events of a streaming run: one frozen dataclass per kind.

A run of :meth:`pipeline.StreamingPipeline.astream_chat_to_audio` (or
``astream_text_to_audio``) yields, in this order::

    RunStarted
    (TextDelta | SegmentQueued | AudioReady)*     interleaved as they happen
    RunFailed?                                    LLM / engine / output failure
    RunCancelled?                                 the caller closed the stream
    RunCompleted                                  always last when the run ends normally
                                                  or with a failure (error names it)

Every event carries ``run_id``, ``t`` (seconds since the run started, from
:func:`time.monotonic`) and ``audio_files_generated`` (audio files written so
far). ``AudioReady`` events come strictly in segment index order.

:func:`event_to_dict` is the one place events become dicts
(``{"status": ..., **fields}``); the sync API, the CLI's ``--json`` NDJSON
output and the daemon's SSE/WebSocket streams all use it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeAlias

__all__ = [
    "AudioReady",
    "ProgressEvent",
    "RunCancelled",
    "RunCompleted",
    "RunFailed",
    "RunStarted",
    "SegmentQueued",
    "TextDelta",
    "event_to_dict",
]


@dataclass(frozen=True, kw_only=True)
class _Event:
    """Fields shared by every event.

    Attributes:
        run_id: identifier of the run (caller-given or generated, URL-safe).
        t: seconds since the run started (monotonic clock).
        audio_files_generated: number of audio files written so far in this run.
    """

    status: ClassVar[str] = ""

    run_id: str
    t: float
    audio_files_generated: int


@dataclass(frozen=True, kw_only=True)
class RunStarted(_Event):
    """The run began (status ``"started"``).

    Attributes:
        llm_provider: ``"ollama"``, ``"openai"``, ``"local"``, ... or ``"text"``
            when fed by given text (no LLM).
        model: the model name (``""`` when there is no LLM).
        tts: the engine name or spec (e.g. ``"auto"``, ``"espeak"``).
        output_dir: directory the run's audio files and manifest go to.
    """

    status: ClassVar[str] = "started"

    llm_provider: str
    model: str
    tts: str
    output_dir: str


@dataclass(frozen=True, kw_only=True)
class TextDelta(_Event):
    """A text delta arrived from the LLM (status ``"text"``), raw, as received."""

    status: ClassVar[str] = "text"

    text: str


@dataclass(frozen=True, kw_only=True)
class SegmentQueued(_Event):
    """The sentence buffer released a segment for synthesis (status ``"segment"``).

    Attributes:
        index: segment index, 0, 1, 2, ... without gaps.
        text: the raw streamed text of the segment.
        spoken_text: what is sent to the engine (``clean_for_speech(text)``);
            ``""`` when the segment cleans to nothing: then it gets no audio
            file and no ``AudioReady`` (its index is skipped, never renumbered).
        start: offset of the segment's first character in the full text (characters).
        end: offset one past its last character (characters).
        reason: why the buffer released it (see :class:`pipeline.Segment`).
    """

    status: ClassVar[str] = "segment"

    index: int
    text: str
    spoken_text: str
    start: int
    end: int
    reason: str


@dataclass(frozen=True, kw_only=True)
class AudioReady(_Event):
    """A segment's audio file is complete under its final name (status ``"audio"``),
    in index order.

    The file was written to a temporary name and moved into place (a reader
    sees all of it or nothing). It is made durable and listed in the
    manifest right after, before the run hands on its next segment; the
    event does not wait for the disk. If that sync fails (the disk's error),
    the file is removed again, a :class:`RunFailed` for this ``index``
    follows, and :class:`RunCompleted` counts the index in
    ``failed_indices``, not in ``audio_indices`` (later events'
    ``audio_files_generated`` is then one lower).

    Attributes:
        index: the segment index.
        path: path of the written file.
        format: file format (``"wav"``, ``"mp3"``, ...).
        duration_s: audio length in seconds.
        engine: the engine that produced the audio (after any fallback).
        voice: the voice used, or ``None`` for the engine default.
        synth_s: seconds spent synthesizing this segment (wall clock).
        text: the spoken text of the segment.
    """

    status: ClassVar[str] = "audio"

    index: int
    path: str
    format: str
    duration_s: float
    engine: str
    voice: str | None
    synth_s: float
    text: str


@dataclass(frozen=True, kw_only=True)
class RunFailed(_Event):
    """Something failed (status ``"error"``).

    Emitted after the audio for all text received so far has been synthesized
    and saved; the run then ends with a :class:`RunCompleted` whose ``error``
    names the failure (callers always get the summary). A segment whose every
    engine failed also gives a ``RunFailed`` (with ``segment_index``) and the
    run keeps going with the other segments.

    Attributes:
        error_type: the exception class name, e.g. ``"LLMStreamError"``.
        message: the exception message.
        retryable: whether the same request may succeed if sent again.
        partial_text: the LLM text received before the failure.
        segment_index: the segment that could not be synthesized/written, or
            ``None`` when the failure is not tied to one segment.
    """

    status: ClassVar[str] = "error"

    error_type: str
    message: str
    retryable: bool
    partial_text: str
    segment_index: int | None = None


@dataclass(frozen=True, kw_only=True)
class RunCancelled(_Event):
    """The run was cancelled (status ``"cancelled"``): the caller closed the
    stream, the task was cancelled, or Ctrl-C. ``reason`` says which."""

    status: ClassVar[str] = "cancelled"

    reason: str


@dataclass(frozen=True, kw_only=True)
class RunCompleted(_Event):
    """The run's summary (status ``"completed"``), always the last event.

    Attributes:
        audio_files: paths of the written audio files, in index order.
        audio_indices: the segment index of each of ``audio_files``, same order.
        failed_indices: segments with no file because their synthesis,
            conversion or write failed (each also had a ``RunFailed`` with its
            ``segment_index``), ascending.
        complete_text: all text received (the LLM reply, or the given text).
        ttft_s: seconds from the start to the first text delta (``None`` if none).
        ttfa_s: time to first audio: seconds from the start to the first audio
            handed to a sink — the first chunk the player or a streaming route
            gets (they start there), or the first whole segment when no sink
            takes chunks (``None`` if none).
        first_file_s: seconds from the start to the first segment file written
            (``None`` if none); ``>= ttfa_s``.
        total_s: seconds from the start to the end of the run.
        audio_s: total audio duration in seconds (sum of the written segments).
        rtf: real-time factor = total synthesis seconds / ``audio_s``
            (``None`` when there is no audio); below 1 is faster than real time.
        output_dir: directory holding the files and the manifest.
        manifest_path: path of ``manifest.jsonl``.
        merged_path: path of the merged file when merging was asked, else ``None``.
        subtitles_path: path of the subtitle file when asked, else ``None``.
        error: ``"ErrorType: message"`` of the first failure, ``None`` on success.
        finish_reason: why the LLM stopped, when its stream ended normally:
            ``"stop"`` (a complete answer), ``"length"`` (cut off at the token
            limit), ``"content_filter"``, ``"refusal"``, or the provider's own
            value (see :attr:`llm.LLMStream.finish_reason`); ``None`` without
            an LLM, after an LLM failure or a cancel, or when the server did
            not say. Anything but ``"stop"``/``None`` means the answer is not
            whole, although ``error`` is ``None``
            (:func:`llm.explain_finish_reason` words it).
    """

    status: ClassVar[str] = "completed"

    audio_files: list[str] = field(default_factory=list)
    complete_text: str
    ttft_s: float | None
    ttfa_s: float | None
    total_s: float
    audio_s: float
    rtf: float | None
    output_dir: str
    manifest_path: str
    merged_path: str | None = None
    subtitles_path: str | None = None
    error: str | None = None
    finish_reason: str | None = None
    audio_indices: list[int] = field(default_factory=list)
    failed_indices: list[int] = field(default_factory=list)
    first_file_s: float | None = None


ProgressEvent: TypeAlias = (
    RunStarted | TextDelta | SegmentQueued | AudioReady | RunFailed | RunCancelled | RunCompleted
)


def event_to_dict(event: ProgressEvent) -> dict[str, Any]:
    """The JSON-ready dict of ``event``: ``{"status": ..., **fields}``.

    Values are str, int, float, bool, None or lists of str/int; ``json.dumps``
    takes the result as is.
    """
    # Built field by field, not with ``dataclasses.asdict``: asdict deep-copies
    # every value and costs ~10x more on the daemon's per-event hot path. Lists
    # are copied, so the dict never shares state with the (frozen) event.
    data: dict[str, Any] = {"status": event.status}
    names = _FIELD_NAMES.get(type(event))
    if names is None:
        names = _FIELD_NAMES[type(event)] = tuple(f.name for f in dataclasses.fields(event))
    for name in names:
        value = getattr(event, name)
        data[name] = list(value) if isinstance(value, list) else value
    return data


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}  # event class -> its field names
