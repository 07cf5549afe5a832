"""Starting LLM runs for ``POST /v1/speak`` and WebSocket ``speak`` messages."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from output import AudioSink

from .._pause import PauseControl
from .._pipeline import new_run_id
from ._http import ID_RE, ApiError, check_length
from ._runs import ActiveRun, RunRecord
from ._state import DaemonState


class SpeakRequest(BaseModel):
    """Body of ``POST /v1/speak`` (and the fields of a WebSocket ``speak`` message).

    Attributes:
        message: the user's message (characters; at most ``max_message_chars``).
        conversation_id: keep a conversation across requests under this id
            (1–64 of ``A-Z a-z 0-9 _ -``); the reply is added to its history.
        llm / model: LLM provider and model (default: the daemon's).
        tts / voice: TTS engine and voice (default: the daemon's).
        format: audio file format (``wav mp3 ogg opus flac``).
        system: system prompt.
        max_tokens: cap on the answer's tokens (1-1,000,000), as the LLM counts them.
        streaming_config: :class:`~pipeline.StreamingConfig` keys to override
            (not ``output_dir`` or ``play``).
    """

    model_config = ConfigDict(extra="forbid")

    message: str
    conversation_id: str | None = None
    llm: str | None = None
    model: str | None = None
    tts: str | None = None
    voice: str | None = None
    format: str | None = None
    system: str | None = None
    max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)
    streaming_config: dict[str, Any] | None = Field(default=None)


def start_chat_run(state: DaemonState, body: SpeakRequest, *, endpoint: str,
                   sinks: Sequence[AudioSink] = ()) -> ActiveRun:
    """Validate ``body`` and register a new LLM run (not started until iterated).

    ``sinks`` are extra audio sinks of the run (the WebSocket's, for instance).

    Raises:
        ApiError: 413 for a too long message, 422 for bad options.
    """
    settings = state.settings
    check_length(body.message, settings.max_message_chars, param="message")
    if not body.message.strip():
        raise ApiError(422, "invalid_request_error", "message is empty", param="message")
    config = state.source.config(body.streaming_config, output_dir=settings.runs_dir,
                                 format=body.format)
    state.source.engine(body.tts)  # an unknown engine is a 422 before anything is held
    conversation = None
    lease = None
    if body.conversation_id is not None:
        if not ID_RE.match(body.conversation_id):
            raise ApiError(422, "invalid_request_error",
                           "conversation_id must be 1-64 of A-Z a-z 0-9 _ -",
                           param="conversation_id")
        conversation = state.conversation(body.conversation_id, body.llm, body.model,
                                          system=body.system)
        client = conversation.client
    else:
        lease = state.source.lease(body.llm, body.model)
        client = lease.client
    pipe = state.source.pipeline(config, tts_name=body.tts, with_llm=True, llm_client=client)
    run_id = new_run_id()
    stop = asyncio.Event()
    pause = PauseControl(hold_s=settings.pause_hold_s)
    events = state.source.chat(
        body.message, pipe=pipe, run_id=run_id, voice=body.voice, system=body.system,
        conversation=conversation, stop_event=stop, max_tokens=body.max_tokens, sinks=sinks,
        pause=pause,
    )
    run = ActiveRun(RunRecord(run_id=run_id, endpoint=endpoint), events, stop_event=stop,
                    metrics=state.metrics, log_bytes=settings.event_log_bytes,
                    coalesce_s=settings.coalesce_ms / 1000,
                    grace_s=settings.reconnect_grace_s, pause=pause,
                    on_end=lease.release if lease is not None else None)
    try:
        state.runs.add(run)
    except ValueError:
        run.abandon()  # releases the lease
        raise
    return run
