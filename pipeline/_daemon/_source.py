"""Where the daemon's runs come from: per-request pipelines over warm, shared engines.

A :class:`~pipeline.StreamingPipeline` holds one :class:`StreamingConfig`, so
each request gets its own (cheap) pipeline object, built with
:func:`pipeline.create_streaming_pipeline` around LLM clients and TTS
engines the daemon creates once and keeps warm (or the ones injected into
:func:`create_app`). Those are closed by :meth:`PipelineSource.aclose` only
if the daemon created them.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import llm
import tts
from output import AudioSink
from tts import TTSEngine

from .._config import StreamingConfig
from .._events import ProgressEvent
from .._pipeline import StreamingPipeline, create_streaming_pipeline
from ._http import ApiError
from ._settings import DaemonSettings

#: streaming_config keys a request may not set: where files go and whether the
#: daemon's machine plays sound are the daemon's decisions.
FORBIDDEN_KEYS = frozenset({"output_dir", "play"})


class PipelineSource:
    """Builds runs for requests; owns the warm clients/engines it creates."""

    def __init__(
        self, settings: DaemonSettings, *, llm_client: Any = None, tts_engine: TTSEngine | None
    ) -> None:
        self._settings = settings
        self._llm_client = llm_client
        self._tts_engine = tts_engine
        self._clients: dict[tuple[str, str], Any] = {}
        self._engines: dict[str, TTSEngine] = {}

    def config(
        self,
        overrides: Mapping[str, Any] | None,
        *,
        output_dir: Path,
        format: str | None = None,
        param: str = "streaming_config",
    ) -> StreamingConfig:
        """The run's config: the daemon default with the request's ``overrides``.

        Raises:
            ApiError: 422 for a forbidden or unknown key or a bad value.
        """
        overrides = dict(overrides or {})
        forbidden = sorted(FORBIDDEN_KEYS & set(overrides))
        if forbidden:
            raise ApiError(422, "invalid_request_error",
                           f"{param} may not set {', '.join(forbidden)}", param=param)
        if format is not None:
            overrides["format"] = format
        try:
            return self._settings.streaming_config.replace(
                **overrides, output_dir=str(output_dir), play=False
            )
        except (TypeError, ValueError) as exc:
            raise ApiError(422, "invalid_request_error", str(exc), param=param) from exc

    def engine(self, name: str | None) -> TTSEngine:
        """The warm engine ``name`` (default: the daemon's ``tts_provider``).

        Raises:
            ApiError: 422 for an unknown engine name.
        """
        if self._tts_engine is not None:
            return self._tts_engine
        name = name or self._settings.tts_provider
        engine = self._engines.get(name)
        if engine is None:
            try:
                engine = tts.create_engine(name, **dict(self._settings.tts_config or {}))
            except ValueError as exc:
                raise ApiError(422, "invalid_request_error", str(exc), param="tts") from exc
            self._engines[name] = engine
        return engine

    def client(self, provider: str | None, model: str | None) -> Any:
        """The warm LLM client for ``provider``/``model`` (defaults: the daemon's).

        Raises:
            ApiError: 422 for an unknown provider or bad options.
        """
        if self._llm_client is not None:
            return self._llm_client
        provider = provider or self._settings.llm_provider
        options = dict(self._settings.llm_config or {})
        if model:
            options["model"] = model
        key = (provider, json.dumps(options, sort_keys=True, default=str))
        client = self._clients.get(key)
        if client is None:
            try:
                client = llm.create_client(provider, **options)
            except ValueError as exc:
                raise ApiError(422, "invalid_request_error", str(exc), param="llm") from exc
            self._clients[key] = client
        return client

    def pipeline(
        self, config: StreamingConfig, *, tts_name: str | None, with_llm: bool,
        llm_provider: str | None = None, model: str | None = None,
    ) -> StreamingPipeline:
        """A pipeline for one request (closing it closes nothing shared)."""
        return create_streaming_pipeline(
            None,
            streaming_config=config,
            llm_client=self.client(llm_provider, model) if with_llm else None,
            tts_engine=self.engine(tts_name),
        )

    def chat(
        self, message: str, *, pipe: StreamingPipeline, run_id: str, voice: str | None,
        system: str | None, conversation: Any, stop_event: asyncio.Event,
        sinks: Sequence[AudioSink] = (),
    ) -> AsyncIterator[ProgressEvent]:
        """The events of an LLM run (see ``StreamingPipeline.astream_chat_to_audio``)."""
        return pipe.astream_chat_to_audio(
            message, voice=voice, system=system, conversation=conversation,
            run_id=run_id, stop_event=stop_event, sinks=sinks,
        )

    def text(
        self, text: AsyncIterable[str] | str, *, pipe: StreamingPipeline, run_id: str,
        voice: str | None, stop_event: asyncio.Event, resume: bool = False,
    ) -> AsyncIterator[ProgressEvent]:
        """The events of a given-text run (``astream_text_to_audio``)."""
        return pipe.astream_text_to_audio(
            text, voice=voice, run_id=run_id, stop_event=stop_event, resume=resume
        )

    async def aclose(self) -> None:
        """Close the clients and engines this source created (never injected ones)."""
        clients, engines = list(self._clients.values()), list(self._engines.values())
        self._clients.clear()
        self._engines.clear()
        try:
            for client in clients:
                await client.aclose()
        finally:
            for engine in engines:
                await engine.aclose()
