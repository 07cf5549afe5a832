"""Where the daemon's runs come from: per-request pipelines over warm, shared engines.

A :class:`~pipeline.StreamingPipeline` holds one :class:`StreamingConfig`, so
each request gets its own (cheap) pipeline object, built with
:func:`pipeline.create_streaming_pipeline` around LLM clients and TTS
engines the daemon creates once and keeps warm (or the ones injected into
:func:`create_app`). Those are closed by :meth:`PipelineSource.aclose` only
if the daemon created them.

LLM clients are kept per provider/model in a bounded LRU cache
(``max_llm_clients``): any client may name any ``model``, so an unbounded
cache is a memory leak anyone can trigger. A run or conversation *leases* its
client (:meth:`PipelineSource.lease`); a client evicted from the cache is
closed once its last lease is released, never under a running answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import llm
import tts
from output import AudioSink
from tts import TTSEngine

from .._config import StreamingConfig
from .._events import ProgressEvent
from .._pause import PauseControl
from .._pipeline import StreamingPipeline, create_streaming_pipeline
from .._settings import LLM_OPTIONS
from ._http import ApiError
from ._settings import DaemonSettings

logger = logging.getLogger("speakstream.daemon")

#: streaming_config keys a request may not set: where files go and whether the
#: daemon's machine plays sound are the daemon's decisions.
FORBIDDEN_KEYS = frozenset({"output_dir", "play"})


class ClientLease:
    """A run's or conversation's hold on an LLM client; :meth:`release` once done
    (idempotent). The client is not closed while any lease on it is held."""

    def __init__(self, source: PipelineSource | None, key: str, client: Any) -> None:
        self._source = source
        self.key = key
        self.client = client

    def release(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            source._release(self.client)


class PipelineSource:
    """Builds runs for requests; owns the warm clients/engines it creates."""

    def __init__(
        self, settings: DaemonSettings, *, llm_client: Any = None, tts_engine: TTSEngine | None
    ) -> None:
        self._settings = settings
        self._llm_client = llm_client
        self._tts_engine = tts_engine
        self._clients: OrderedDict[str, Any] = OrderedDict()  # key -> client, oldest use first
        self._leases: dict[int, int] = {}  # id(client) -> leases held
        self._retired: dict[int, Any] = {}  # evicted from the cache, still leased
        self._closing: set[asyncio.Task[None]] = set()
        self.closed_clients = 0  # clients this source created and closed (observable)
        self._engines: dict[str, TTSEngine] = {}

    @property
    def settings(self) -> DaemonSettings:
        """The daemon's settings."""
        return self._settings

    @property
    def injected_llm(self) -> Any:
        """The LLM client given to :func:`create_app` (every run uses it), or ``None``."""
        return self._llm_client

    @property
    def cached_clients(self) -> int:
        """LLM clients kept warm in the cache (at most ``max_llm_clients``)."""
        return len(self._clients)

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

    def client_key(self, provider: str | None, model: str | None) -> tuple[str, dict[str, Any]]:
        """``(cache key, create_client options)`` of ``provider``/``model``.

        The daemon's ``llm_config`` (model, base URL, timeouts) applies to its
        own provider; another provider gets only the timeouts: a model name or
        a server URL belongs to one provider. For ``"local"`` a ``model`` is a
        GGUF path on the daemon's disk, so a client may only name the model the
        daemon was started with (by path or file name).

        Raises:
            ApiError: 422 when a client names another local model.
        """
        provider = provider or self._settings.llm_provider
        config = dict(self._settings.llm_config or {})
        if provider != self._settings.llm_provider:
            config = {k: v for k, v in config.items() if k in LLM_OPTIONS}
        if model and provider == "local":
            own = config.get("model")
            if own is None or Path(model).name != Path(own).name:
                raise ApiError(422, "invalid_request_error",
                               "llm 'local' serves only the model the daemon was started "
                               "with; a client cannot choose a GGUF file", param="model")
            model = own
        if model:
            config["model"] = model
        return json.dumps([provider, config], sort_keys=True, default=str), config

    def lease(self, provider: str | None, model: str | None) -> ClientLease:
        """A lease on the warm LLM client for ``provider``/``model`` (defaults: the daemon's).

        Raises:
            ApiError: 422 for an unknown provider, bad options, or a provider
                that cannot be used here (no API key, no model file...).
        """
        if self._llm_client is not None:
            return ClientLease(None, "", self._llm_client)
        key, config = self.client_key(provider, model)
        client = self._clients.get(key)
        if client is None:
            name = provider or self._settings.llm_provider
            try:
                client = llm.create_client(name, **config)
            except (ValueError, llm.LLMError) as exc:
                raise ApiError(422, "invalid_request_error", str(exc),
                               param="model" if model else "llm") from exc
            self._clients[key] = client
            self._evict()
        else:
            self._clients.move_to_end(key)
        self._leases[id(client)] = self._leases.get(id(client), 0) + 1
        return ClientLease(self, key, client)

    def _evict(self) -> None:
        while len(self._clients) > self._settings.max_llm_clients:
            _, client = self._clients.popitem(last=False)
            if self._leases.get(id(client)):
                self._retired[id(client)] = client  # closed when its last lease ends
            else:
                self._close_later(client)

    def _release(self, client: Any) -> None:
        held = self._leases.get(id(client), 0) - 1
        if held > 0:
            self._leases[id(client)] = held
            return
        self._leases.pop(id(client), None)
        retired = self._retired.pop(id(client), None)
        if retired is not None:
            self._close_later(retired)

    def _close_later(self, client: Any) -> None:
        task = asyncio.get_running_loop().create_task(self._close(client))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _close(self, client: Any) -> None:
        try:
            await client.aclose()
        except (llm.LLMError, OSError):  # nobody waits for this close: say it, lose nothing
            logger.warning("closing an evicted LLM client failed", exc_info=True)
        self.closed_clients += 1

    def pipeline(
        self, config: StreamingConfig, *, tts_name: str | None, with_llm: bool = False,
        llm_client: Any = None,
    ) -> StreamingPipeline:
        """A pipeline for one request (closing it closes nothing shared); an LLM
        pipeline gets ``llm_client`` (from a :meth:`lease`)."""
        if with_llm and llm_client is None:
            raise ValueError("an LLM pipeline needs llm_client (from lease())")
        return create_streaming_pipeline(
            None,
            streaming_config=config,
            llm_client=llm_client,
            tts_engine=self.engine(tts_name),
        )

    def chat(
        self, message: str, *, pipe: StreamingPipeline, run_id: str, voice: str | None,
        system: str | None, conversation: Any, stop_event: asyncio.Event,
        max_tokens: int | None = None, sinks: Sequence[AudioSink] = (),
        pause: PauseControl | None = None,
    ) -> AsyncIterator[ProgressEvent]:
        """The events of an LLM run (see ``StreamingPipeline.astream_chat_to_audio``)."""
        return pipe.astream_chat_to_audio(
            message, voice=voice, system=system, conversation=conversation,
            run_id=run_id, stop_event=stop_event, max_tokens=max_tokens, sinks=sinks,
            pause=pause,
        )

    def text(
        self, text: AsyncIterable[str] | str, *, pipe: StreamingPipeline, run_id: str,
        voice: str | None, stop_event: asyncio.Event, resume: bool = False,
    ) -> AsyncIterator[ProgressEvent]:
        """The events of a given-text run (``astream_text_to_audio``)."""
        return pipe.astream_text_to_audio(
            text, voice=voice, run_id=run_id, stop_event=stop_event, resume=resume
        )

    async def describe(self, *, voice: str | None) -> tuple[str, str]:
        """``(llm, tts)``: what the daemon serves by default, for the start-up line.

        ``llm`` is ``provider:model``; ``tts`` the engine, and for ``auto`` the
        engine that will speak and why (the engines are warmed up to find out).
        """
        lease = self.lease(None, None)
        try:
            client = lease.client
            model = str(getattr(client, "model", "") or "")
            llm_text = f"{getattr(client, 'provider', '?')}:{model.rsplit('/', 1)[-1]}"
        finally:
            lease.release()
        engine = self.engine(None)
        tts_text = engine.name if self._tts_engine is not None else self._settings.tts_provider
        if isinstance(engine, tts.FallbackEngine):
            tts_text += " → " + await engine.choose(voice)
        return llm_text, tts_text

    async def aclose(self) -> None:
        """Close the clients and engines this source created (never injected ones)."""
        clients = [*self._clients.values(), *self._retired.values()]
        engines = list(self._engines.values())
        self._clients.clear()
        self._retired.clear()
        self._engines.clear()
        try:
            for client in clients:
                await client.aclose()
            if self._closing:
                await asyncio.wait(set(self._closing))
        finally:
            for engine in engines:
                await engine.aclose()
