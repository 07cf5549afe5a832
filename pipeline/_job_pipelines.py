"""The pipelines of a job's items: one text pipeline, one per distinct LLM of its prompts.

Every pipeline shares the text pipeline's warm TTS engine. A prompt item's
LLM settings are its own keys over the command's, resolved by the one
settings resolver (:func:`pipeline._settings.resolve_settings`).

A job's engine is sized to its CPU share (:func:`engine_options`), the rule
Ray applies to its tasks and actors (a worker given ``num_cpus`` sizes its
native thread pools to them; Ray sets ``OMP_NUM_THREADS=num_cpus``): the
process's cores (or a Ray actor's assigned CPUs) divided among the
``workers`` segments synthesized at once.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from ._errors import ConfigError, SpeakStreamError
from ._jobfile import JobItem
from ._pipeline import StreamingPipeline, create_streaming_pipeline
from ._settings import Settings, resolve_settings


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def engine_options(tts: str, *, cpus: int, workers: int) -> dict[str, Any]:
    """``tts_config`` of a batch job's engine on ``cpus`` CPUs with ``workers`` segment
    workers: each worker's native threads sized to its share (``cpus // workers``, at
    least 1), at most ``workers`` segments synthesized at once by the whole job
    (its runs overlap, see :func:`pipeline._ahead.in_order`). Only piper has
    native thread pools; espeak-ng (a process per segment) and edge-tts (a
    request per segment) get ``parallel`` only; ``{}`` for pyttsx3 (one worker).
    """
    piper = {"threads": max(1, cpus // max(1, workers)), "parallel": workers}
    bounded = {"parallel": workers}  # espeak-ng processes, edge-tts requests
    if tts == "piper":
        return piper
    if tts in ("espeak", "edge"):
        return bounded
    if tts == "auto":
        return {"edge": bounded, "piper": piper, "espeak": bounded}
    return {}


def prompt_settings(settings: Settings, item: JobItem) -> Settings:
    """The settings of ``item``'s run: its ``llm``/``model``/``base_url`` as flags over
    the command's flags, then the config file, environment and defaults. A
    model and a server URL belong to one provider: an item naming another
    ``llm`` does not inherit the command's ``model``/``base_url`` flags.

    Raises:
        ConfigError: a value does not apply (e.g. ``base_url`` with ``llm = "local"``).
    """
    flags = {k: v for k, v in settings.values.items() if settings.sources.get(k) == "flag"}
    if item.llm is not None and item.llm != settings.values["llm"]:
        flags = {k: v for k, v in flags.items() if k not in ("model", "base_url")}
    return resolve_settings({**flags, **item.settings_flags()})


class JobPipelines:
    """Pipelines by item (an async context manager closing those it made).

    Args:
        text: the pipeline of narrate items (its engine is shared).
        settings: the command's settings.
        llm_client: a ready LLM client every prompt uses instead of one made
            from its settings (the daemon's injected client); not closed here.
    """

    def __init__(self, text: StreamingPipeline, settings: Settings, *,
                 llm_client: Any = None) -> None:
        self._text = text
        self._settings = settings
        self._llm_client = llm_client
        self._made: dict[tuple[Any, ...], StreamingPipeline] = {}

    async def get(self, item: JobItem) -> StreamingPipeline:
        """The pipeline for ``item`` (made on first use, then reused).

        Raises:
            ConfigError: the item's LLM settings are bad or unknown.
        """
        if item.kind == "narrate":
            return self._text
        settings = prompt_settings(self._settings, item)
        key = (settings.values["llm"], settings.values["model"], settings.values["base_url"])
        pipe = self._made.get(key)
        if pipe is None:
            try:
                if self._llm_client is not None:
                    pipe = create_streaming_pipeline(
                        None, streaming_config=self._text.config, llm_client=self._llm_client,
                        tts_engine=self._text.engine,
                    )
                else:
                    pipe = create_streaming_pipeline(
                        settings.values["llm"], streaming_config=self._text.config,
                        llm_config=settings.llm_config(), tts_engine=self._text.engine,
                    )
            except ValueError as exc:
                if isinstance(exc, SpeakStreamError):
                    raise
                raise ConfigError(str(exc), key="llm") from exc
            self._made[key] = pipe
        return pipe

    async def aclose(self) -> None:
        """Close the pipelines made here (not the text pipeline). Idempotent."""
        made, self._made = self._made, {}
        for pipe in made.values():
            await pipe.aclose()

    async def __aenter__(self) -> JobPipelines:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def item_size(item: JobItem) -> int:
    """The item's size for a progress bar: characters of text, bytes of a file, 0 for a
    prompt (its answer's length is not known before) or stdin."""
    if item.text is not None:
        return len(item.text)
    if item.path is not None and item.path != "-":
        try:
            return os.path.getsize(item.path)
        except OSError:
            return 0
    return 0


def job_size(items: Iterable[JobItem]) -> int:
    """The sum of :func:`item_size` (reads job files once more, lazily)."""
    return sum(item_size(item) for item in items)
