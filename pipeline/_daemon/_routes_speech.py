"""``POST /v1/audio/speech``: OpenAI-compatible text to speech, streamed.

Request and response follow OpenAI's ``audio/speech`` API
(https://platform.openai.com/docs/api-reference/audio/createSpeech), as
Kokoro-FastAPI and openedai-speech serve it: ``model``, ``input``, ``voice``,
``response_format`` (mp3, opus, aac, flac, wav, pcm), ``speed`` (0.25–4.0).
The input goes through the same pipeline as everything else
(``astream_text_to_audio``): it is segmented, segments are synthesized in
parallel, and the body streams (chunked) as segments finish, encoded as one
continuous stream by :mod:`._encoder`.

Mapping: ``model`` ``tts-1``, ``tts-1-hd``, ``gpt-4o-mini-tts`` mean the
daemon's default engine; a speakstream engine name (``espeak``, ``piper``...)
picks that engine. OpenAI's voice names (``alloy``, ``nova``...) mean the
engine's default voice; other values are passed to the engine as its voice id.
``pcm`` is 16-bit little-endian mono at the engine's sample rate (given in the
``X-Sample-Rate`` header), not OpenAI's fixed 24 kHz.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import StreamingResponse

from .._errors import PipelineError
from .._events import AudioReady, ProgressEvent, RunCompleted, RunFailed
from .._pipeline import new_run_id
from ._encoder import SPEECH_FORMATS, StreamEncoder, read_pcm
from ._http import ApiError, check_length
from ._routes_basic import daemon
from ._runs import ActiveRun, RunRecord
from ._state import DaemonState

router = APIRouter(tags=["openai"])

OPENAI_MODELS = frozenset({"tts-1", "tts-1-hd", "gpt-4o-mini-tts"})
OPENAI_VOICES = frozenset({"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova",
                           "sage", "shimmer", "verse"})


class SpeechRequest(BaseModel):
    """OpenAI's ``audio/speech`` body (unknown fields such as ``instructions`` are ignored)."""

    model_config = ConfigDict(extra="ignore")

    model: str
    input: str
    voice: str = "alloy"
    response_format: Literal["mp3", "opus", "aac", "flac", "wav", "pcm"] = "mp3"
    speed: float = Field(default=1.0, ge=0.25, le=4.0)


@router.post(
    "/v1/audio/speech",
    response_class=StreamingResponse,
    responses={200: {"content": {t: {} for _, t in SPEECH_FORMATS.values()},
                     "description": "the audio, streamed as segments finish"}},
)
async def create_speech(body: SpeechRequest, request: Request) -> StreamingResponse:
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
    run_id = new_run_id()
    stop = asyncio.Event()
    run = ActiveRun(
        RunRecord(run_id=run_id, endpoint="speech"),
        state.source.text(body.input, pipe=pipe, run_id=run_id, voice=voice, stop_event=stop),
        stop_event=stop, metrics=state.metrics, queue_size=state.settings.ws_queue_size,
    )
    state.runs.add(run)
    events = run.events()
    try:
        first = await _first_audio(events)
        pcm, rate, channels = await asyncio.to_thread(
            read_pcm, Path(first.path), sample_rate=None, channels=None
        )
    except BaseException:
        await events.aclose()
        state.runs.finished(run_id)
        raise
    encoder = StreamEncoder(body.response_format)
    await encoder.start(rate, channels)
    media_type = SPEECH_FORMATS[body.response_format][1]
    return StreamingResponse(
        _body(state, run, events, encoder, pcm, rate, channels), media_type=media_type,
        headers={"X-Run-Id": run_id, "X-Sample-Rate": str(rate)},
    )


async def _first_audio(events: AsyncGenerator[ProgressEvent, None]) -> AudioReady:
    """The first AudioReady of the run, or ApiError(502) when the run ends without one."""
    failure: RunFailed | None = None
    async for event in events:
        if isinstance(event, AudioReady):
            return event
        if isinstance(event, RunFailed):
            failure = event  # a segment is missing: never answer 200 without it
            break
        if isinstance(event, RunCompleted):
            break
    message = f"{failure.error_type}: {failure.message}" if failure else "no audio was produced"
    raise ApiError(502, "synthesis_failed", message)


async def _body(
    state: DaemonState, run: ActiveRun, events: AsyncGenerator[ProgressEvent, None],
    encoder: StreamEncoder, first_pcm: bytes, rate: int, channels: int,
) -> AsyncIterator[bytes]:
    async def feed() -> None:
        try:
            await encoder.feed(first_pcm)
            async for event in events:
                if isinstance(event, RunFailed):
                    # A sentence would be missing from the audio: end the body
                    # early (the client sees a broken stream, not a silent gap).
                    raise PipelineError(
                        f"segment {event.segment_index} failed: "
                        f"{event.error_type}: {event.message}"
                    )
                if isinstance(event, AudioReady):
                    pcm, _, _ = await asyncio.to_thread(
                        read_pcm, Path(event.path), sample_rate=rate, channels=channels
                    )
                    await encoder.feed(pcm)
        finally:
            # Always: output() then ends, and `await feeder` raises the real error.
            await encoder.finish()

    feeder = asyncio.create_task(feed(), name=f"speech-feed-{run.run_id}")
    try:
        async for chunk in encoder.output():
            yield chunk
        await feeder
    finally:
        if not feeder.done():
            feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait({feeder})
        await encoder.aclose()
        await events.aclose()
        state.runs.finished(run.run_id)
