"""``POST /v1/audio/speech``: OpenAI-compatible text to speech, streamed.

Request and response follow OpenAI's ``audio/speech`` API
(https://platform.openai.com/docs/api-reference/audio/createSpeech), as
Kokoro-FastAPI and openedai-speech serve it: ``model``, ``input``, ``voice``,
``response_format`` (mp3, opus, aac, flac, wav, pcm), ``speed`` (0.25–4.0).
The input goes through the same pipeline as everything else
(``astream_text_to_audio``): it is segmented, segments are synthesized in
parallel, and their audio reaches the body through a sink of the run
(:class:`._encoder.SpeechSink`), in memory, chunk by chunk as the engine
makes it: the body starts with the engine's first chunk and streams
(chunked), encoded as one continuous stream. Segment files are still written
(``GET /v1/runs/{id}``), but never read back. A one-segment input in a format
whose header states the length (wav, flac) is sent whole with exact sizes and
a ``Content-Length`` (see :mod:`._encoder`).

Mapping: ``model`` ``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts`` mean the
daemon's default engine; a speakstream engine name (``espeak``, ``piper``...)
picks that engine. OpenAI's voice names (``alloy``, ``nova``...) mean the
engine's default voice; other values are passed to the engine as its voice id.
``pcm`` is 16-bit little-endian mono at the engine's sample rate (given in the
``X-Sample-Rate`` header), not OpenAI's fixed 24 kHz.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError
from starlette.background import BackgroundTask
from starlette.responses import Response, StreamingResponse

from output import OutputError
from tts import AUDIO_FORMATS

from .._errors import PipelineError
from .._pipeline import new_run_id
from ._encoder import SPEECH_FORMATS, SpeechFailed, SpeechSink
from ._http import ApiError, check_length
from ._routes_basic import daemon
from ._runs import ActiveRun, RunRecord
from ._state import DaemonState

router = APIRouter(tags=["openai"])
logger = logging.getLogger("speakstream.daemon")

OPENAI_MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"})
OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova",
                           "sage", "shimmer", "verse"})


class SpeechRequest(BaseModel):
    """OpenAI's ``audio/speech`` body (unknown fields such as ``instructions`` are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str
    voice: str = "alloy"
    response_format: str = Field(default="mp3", json_schema_extra={"enum": list(SPEECH_FORMATS)})
    speed: float = Field(default=1.0, ge=0.25, le=4.0)

    @field_validator("response_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in SPEECH_FORMATS:
            raise PydanticCustomError(
                "enum", "Input should be one of {formats}", {"formats": ", ".join(SPEECH_FORMATS)}
            )
        return value


@router.post(
    "/v1/audio/speech",
    response_class=StreamingResponse,
    responses={200: {"content": {AUDIO_FORMATS[f].media_type: {} for f in SPEECH_FORMATS},
                     "description": "the audio, streamed as it is synthesized"}},
)
async def create_speech(body: SpeechRequest, request: Request) -> Response:
    """Synthesize ``input`` and stream it back in ``response_format``.

    Errors (JSON, OpenAI's shape): 413 for ``input`` longer than
    ``max_speech_chars``, 422 for bad fields, 502 when no audio at all could be
    made (the engine failed); a failure after streaming began ends the body early.
    """
    state = daemon(request)
    check_length(body.input, state.settings.max_speech_chars, param="input")
    if not body.input.strip():
        raise ApiError(422, "invalid_request_error", "input is empty", param="input")
    engine = None if body.model in OPENAI_MODELS else body.model
    voice = None if body.voice in OPENAI_VOICES else body.voice
    config = state.source.config({"rate": body.speed if body.speed != 1.0 else None},
                                 output_dir=state.settings.runs_dir, format="wav")
    pipe = state.source.pipeline(config, tts_name=engine, with_llm=False)
    sink = SpeechSink(body.response_format, encoders=state.encoders, engine_key=body.model)
    try:
        await sink.prepare()
    except OutputError as exc:  # ffmpeg missing or broken
        await sink.aclose()
        raise ApiError(503, "encoder_unavailable", str(exc), param="response_format") from exc
    run_id = new_run_id()
    stop = asyncio.Event()
    run = ActiveRun(
        RunRecord(run_id=run_id, endpoint="speech"),
        pipe.astream_text_to_audio(body.input, voice=voice, run_id=run_id, stop_event=stop,
                                   sinks=[sink]),
        stop_event=stop, metrics=state.metrics, log_bytes=state.settings.event_log_bytes,
    )
    state.runs.add(run)
    # The run's events still flow (registry, metrics); the audio comes through the sink.
    watcher = asyncio.create_task(_watch(run), name=f"speech-run-{run_id}")
    try:
        first = await _first(sink, watcher)
    except BaseException:
        await _end(state, run, sink, watcher, cancel=True)
        raise
    media_type = AUDIO_FORMATS[body.response_format].media_type
    if isinstance(first, bytes):  # made whole: exact sizes, Content-Length
        rate = sink.layout_rate
        return Response(
            first, media_type=media_type,
            headers={"X-Run-Id": run_id, "X-Sample-Rate": str(rate)},
            background=BackgroundTask(_end, state, run, sink, watcher, cancel=False),
        )
    rate, _channels = first
    return StreamingResponse(
        _body(state, run, sink, watcher), media_type=media_type,
        headers={"X-Run-Id": run_id, "X-Sample-Rate": str(rate)},
    )


async def _watch(run: ActiveRun) -> None:
    await run.wait()  # cancelling this task cancels the run


async def _first(sink: SpeechSink, watcher: asyncio.Task[None]) -> tuple[int, int] | bytes:
    """The body's start (see ``SpeechSink.ready``), or ApiError(502) when the run
    ends without audio."""
    waiters: set[asyncio.Future[Any]] = {sink.ready, watcher}
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if not sink.ready.done():  # the run ended by an unexpected error before any audio
        watcher.result()  # raises it
        raise ApiError(502, "synthesis_failed", "no audio was produced")
    try:
        return sink.ready.result()
    except SpeechFailed as exc:
        raise ApiError(502, "synthesis_failed", str(exc)) from exc


async def _body(state: DaemonState, run: ActiveRun, sink: SpeechSink,
                watcher: asyncio.Task[None]) -> AsyncIterator[bytes]:
    finished = False
    try:
        async for data in sink.body():
            yield data
        finished = True
    except SpeechFailed as exc:
        # A sentence would be missing from the audio: end the body early (the
        # client sees a broken stream, not a silent gap).
        raise PipelineError(str(exc)) from exc
    finally:
        await _end(state, run, sink, watcher, cancel=not finished)


async def _end(state: DaemonState, run: ActiveRun, sink: SpeechSink, watcher: asyncio.Task[Any],
               *, cancel: bool) -> None:
    """Wait for the run to end (or cancel it when the client is gone); release everything."""
    try:
        if cancel and not watcher.done():
            watcher.cancel()
        await asyncio.wait({watcher})
        if not watcher.cancelled() and watcher.exception() is not None:
            logger.warning("speech run %s ended with %r", run.run_id, watcher.exception())
    finally:
        await sink.aclose()
