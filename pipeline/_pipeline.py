"""The public streaming API: :func:`create_streaming_pipeline` and :class:`StreamingPipeline`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Iterator,
    Mapping,
    Sequence,
)
from pathlib import Path
from types import TracebackType
from typing import Any

import llm
import output
import tts
from output import (
    AudioOutput,
    AudioSink,
    FileSink,
    MergeSink,
    NoAudioDeviceError,
    Player,
    PlayerSink,
    SegmentWriter,
    SubtitleSink,
    lock_directory,
)
from tts import TTSEngine

from ._config import StreamingConfig
from ._events import ProgressEvent, event_to_dict
from ._pacing import Pacer
from ._pause import PauseControl
from ._resume import ReusableSegment, load_reusable
from ._run import RunSpec, StreamRun
from ._sync import PortalHolder, iterate_in_portal

logger = logging.getLogger("speakstream.pipeline")

#: Base name of a run's merged audio and subtitle files (``merged.mp3``, ``merged.srt``).
MERGED_STEM = "merged"

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_OUTPUT_KEYS = ("prefix", "device", "backends")
_CREATE_KEYS = (
    "llm_provider",
    "tts_provider",
    "streaming_config",
    "llm_config",
    "tts_config",
    "output_config",
    "llm_client",
    "tts_engine",
)


def new_run_id(*, random_bytes: int = 3) -> str:
    """A fresh id: ``YYYYmmdd-HHMMSS-<2 x random_bytes hex>`` (sortable, URL- and
    file-safe); runs use 3 random bytes, narration jobs 4."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(random_bytes)


def check_run_id(run_id: str) -> str:
    """Return ``run_id`` or raise ``ValueError``: 1–128 of ``A-Z a-z 0-9 . _ -``,
    starting with a letter or digit (it names the run's directory)."""
    if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
        raise ValueError(
            "run_id must be 1-128 characters of letters, digits, '.', '_' or '-' starting "
            f"with a letter or digit, got {run_id!r}"
        )
    return run_id


class StreamingPipeline:
    """LLM (or given text) → sentence buffer → TTS → ordered files, playback and events.

    Build it with :func:`create_streaming_pipeline`. One pipeline serves any
    number of runs, one after another or concurrently (they share the LLM
    client and the engine). It is an async context manager; :meth:`aclose`
    closes the LLM client and the engine it created (never injected ones).
    Sync users use ``with`` / :meth:`close` and the sync twins, which run the
    async code in one private event-loop thread (do not mix the two styles on
    one pipeline).

    Each run writes into ``<output_dir>/<run_id>/``: ``segment_0000.wav``...,
    ``manifest.jsonl`` (one line per file as it lands, then a summary line),
    and ``merged.<format>`` / ``merged.srt|vtt`` when asked.

    A run's audio goes to sinks (:class:`output.AudioSink`), in index order,
    in memory: the file sink (segment files + manifest), the player (when
    ``config.play`` and a device exists), the merge and subtitle sinks (when
    asked), then any ``sinks=`` the caller passes to a run (a streaming HTTP
    route, a pause/resume controller, ...).

    Attributes:
        config: the :class:`StreamingConfig` of every run.
        llm_client: the LLM client (``None`` for a text-only pipeline).
        engine: the TTS engine (with its fallback chain, for ``"auto"``).
    """

    def __init__(
        self,
        *,
        config: StreamingConfig,
        llm_client: llm.LLMClient | None,
        engine: TTSEngine,
        tts_name: str,
        owns_llm: bool,
        owns_engine: bool,
        output_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.llm_client = llm_client
        self.engine = engine
        self._tts_name = tts_name
        self._owns_llm = owns_llm
        self._owns_engine = owns_engine
        self._output = dict(output_options or {})
        self._audio_output: AudioOutput | None = None
        self._no_device: str | None = None
        self._closed = False
        self._portal = PortalHolder()

    # -- lifecycle -----------------------------------------------------------

    async def aclose(self) -> None:
        """Close the owned LLM client and engine. Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._owns_llm and self.llm_client is not None:
                await self.llm_client.aclose()
        finally:
            if self._owns_engine:
                await self.engine.aclose()

    async def __aenter__(self) -> StreamingPipeline:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def close(self) -> None:
        """Sync twin of :meth:`aclose` (also stops the sync API's loop thread)."""
        try:
            if self._portal.started:
                self._portal.portal.call(self.aclose)
            else:
                asyncio.run(self.aclose())
        finally:
            self._portal.close()

    def __enter__(self) -> StreamingPipeline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("StreamingPipeline is closed")

    # -- playback --------------------------------------------------------------

    async def check_playback(self) -> str | None:
        """Find the audio output once; return why playback is impossible, or ``None``.

        ``None`` when ``config.play`` is false or an output works. When no
        device exists runs still write their files (playback is skipped) and
        this returns the reason, so a CLI can say so once.
        """
        if not self.config.play:
            return None
        if self._audio_output is None and self._no_device is None:
            options = {k: self._output[k] for k in ("device", "backends") if k in self._output}
            try:
                self._audio_output = await asyncio.to_thread(
                    output.find_audio_output, **options
                )
            except NoAudioDeviceError as exc:
                self._no_device = str(exc)
                logger.warning("no audio device, writing files only: %s", exc)
        return self._no_device

    async def _player(self) -> Player | None:
        await self.check_playback()
        return Player(self._audio_output) if self._audio_output is not None else None

    # -- runs ------------------------------------------------------------------

    async def astream_chat_to_audio(
        self,
        message: str,
        *,
        voice: str | None = None,
        conversation: llm.Conversation | None = None,
        system: str | None = None,
        run_id: str | None = None,
        output_dir: str | Path | None = None,
        stop_event: asyncio.Event | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        sinks: Sequence[AudioSink] = (),
        pause: PauseControl | None = None,
    ) -> AsyncGenerator[ProgressEvent, None]:
        """Ask the LLM ``message`` and stream the answer to audio, yielding events.

        Events: :class:`RunStarted`, then :class:`TextDelta` /
        :class:`SegmentQueued` / :class:`AudioReady` as they happen
        (``AudioReady`` in index order), then :class:`RunFailed` if the LLM or
        something else failed (after the audio for all text received was saved),
        :class:`RunCancelled` if ``stop_event`` was set, and always a final
        :class:`RunCompleted` whose ``error`` names any failure. LLM errors do
        not raise: they become ``RunFailed`` + ``RunCompleted(error=...)``.

        Args:
            message: the user's message (characters).
            voice: engine voice id for this run (default: ``config.voice``).
            conversation: an :class:`llm.Conversation`; the reply is streamed
                with ``conversation.astream_reply(message)`` so the history
                grows (only when the reply completed). Its client is used.
            system: system prompt (ignored with ``conversation``).
            run_id: names the run and its directory (default: a fresh id).
            output_dir: base directory (default: ``config.output_dir``).
            stop_event: set it to stop the run gracefully: the LLM request
                and pending synthesis are cancelled and the stream still ends
                with ``RunCancelled`` and ``RunCompleted``.
            temperature, max_tokens: sampling options of the LLM request
                (see :meth:`llm.LLMClient.astream_chat`); with ``conversation``,
                of this reply.
            sinks: more :class:`output.AudioSink` objects for this run, called
                after the built-in ones in the order given (see
                :mod:`output._sink` for what they get and when). Each serves
                one run; the run calls their ``finish``.
            pause: pauses and resumes the run at segment boundaries, the LLM
                stream held meanwhile (see :class:`PauseControl`).

        Closing the iterator early (``aclose()``, ``break``, cancelling the
        task) cancels the LLM request (the HTTP response is closed), pending
        synthesis and playback; files already written stay.

        Raises:
            ValueError: empty message, bad ``run_id``.
            RuntimeError: the pipeline is closed, or it has no LLM client.
            OutputExistsError: the run directory already holds a run.
        """
        if not isinstance(message, str) or not message.strip():
            raise ValueError(f"message must be non-empty text, got {message!r}")
        pacer = Pacer()  # holds an in-process LLM back while synthesis needs the CPU
        if conversation is not None:
            client: Any = getattr(conversation, "client", None)
            deltas: AsyncIterable[str] = conversation.astream_reply(
                message, temperature=temperature, max_tokens=max_tokens, pace=pacer.wait
            )
        else:
            if self.llm_client is None:
                raise RuntimeError("this pipeline has no LLM client")
            client = self.llm_client
            deltas = self.llm_client.astream_chat(
                [{"role": "user", "content": message}],
                system=system,
                temperature=temperature,
                max_tokens=max_tokens,
                pace=pacer.wait,
            )
        spec = RunSpec(
            llm_provider=str(getattr(client, "provider", "")),
            model=str(getattr(client, "model", "")),
            tts=self._tts_name,
        )
        async with contextlib.aclosing(
            self._run(deltas, spec, voice=voice, run_id=run_id, output_dir=output_dir,
                      stop_event=stop_event, sinks=sinks, pacer=pacer, pause=pause)
        ) as events:
            async for event in events:
                yield event

    async def astream_text_to_audio(
        self,
        deltas: AsyncIterable[str] | str,
        *,
        voice: str | None = None,
        run_id: str | None = None,
        output_dir: str | Path | None = None,
        stop_event: asyncio.Event | None = None,
        resume: bool = False,
        sinks: Sequence[AudioSink] = (),
    ) -> AsyncGenerator[ProgressEvent, None]:
        """The same machinery fed by given text instead of an LLM.

        ``deltas`` is the whole text (``str``) or an async iterable of text
        chunks. ``RunStarted.llm_provider`` is ``"text"``. With ``resume=True``
        and an earlier run's manifest in ``<output_dir>/<run_id>/``, segments
        already written there with the same spoken text are kept (rewritten
        from their own bytes, never synthesized again) and only the missing
        ones are synthesized; the manifest is rewritten to list each index
        once. Other arguments and events as :meth:`astream_chat_to_audio`.
        """
        source = _one_chunk(deltas) if isinstance(deltas, str) else deltas
        spec = RunSpec(llm_provider="text", model="", tts=self._tts_name)
        async with contextlib.aclosing(
            self._run(source, spec, voice=voice, run_id=run_id, output_dir=output_dir,
                      stop_event=stop_event, resume=resume, sinks=sinks)
        ) as events:
            async for event in events:
                yield event

    async def _run(
        self,
        deltas: AsyncIterable[str],
        spec: RunSpec,
        *,
        voice: str | None,
        run_id: str | None,
        output_dir: str | Path | None,
        stop_event: asyncio.Event | None,
        resume: bool = False,
        sinks: Sequence[AudioSink] = (),
        pacer: Pacer | None = None,
        pause: PauseControl | None = None,
    ) -> AsyncGenerator[ProgressEvent, None]:
        try:
            self._check_open()
            run_id = check_run_id(run_id) if run_id is not None else new_run_id()
            base = output_dir if output_dir is not None else self.config.output_dir
            run_dir = Path(base) / run_id
            # Before the lock makes the run directory: a failure here leaves
            # nothing half-made, and the LLM request is closed below.
            player = await self._player()
            lock = await asyncio.to_thread(lock_directory, run_dir)  # one writer per directory
        except BaseException:
            aclose = getattr(deltas, "aclose", None)
            if aclose is not None:
                await aclose()  # never leave an LLM request half-open
            raise
        with lock:
            async with contextlib.aclosing(
                self._locked_run(deltas, spec, run_dir, player, voice=voice, stop_event=stop_event,
                                 resume=resume, sinks=sinks, pacer=pacer, pause=pause)
            ) as events:
                async for event in events:
                    yield event

    async def _locked_run(
        self,
        deltas: AsyncIterable[str],
        spec: RunSpec,
        run_dir: Path,
        player: Player | None,
        *,
        voice: str | None,
        stop_event: asyncio.Event | None,
        resume: bool,
        sinks: Sequence[AudioSink],
        pacer: Pacer | None,
        pause: PauseControl | None,
    ) -> AsyncGenerator[ProgressEvent, None]:
        try:
            reuse: dict[int, ReusableSegment] = {}
            if resume:
                reuse = await asyncio.to_thread(load_reusable, run_dir)
            writer = await asyncio.to_thread(
                SegmentWriter,
                run_dir,
                format=self.config.format,
                prefix=self._output.get("prefix", "segment"),
                resume=resume,
                run_subdir=False,
                keep_records=False,  # the run keeps what it needs; memory stays flat
            )
        except BaseException:
            aclose = getattr(deltas, "aclose", None)
            if aclose is not None:
                await aclose()  # never leave an LLM request half-open
            raise
        run_id = run_dir.name
        run = StreamRun(
            run_id=run_id,
            deltas=deltas,
            engine=self.engine,
            config=self.config,
            spec=spec,
            files=FileSink(writer),
            sinks=[*self._builtin_sinks(writer.directory, player), *sinks],
            voice=voice,
            stop_event=stop_event,
            reuse=reuse,
            pacer=pacer,
            pause=pause,
        )
        async with contextlib.aclosing(run.events()) as events:
            async for event in events:
                yield event

    def _builtin_sinks(self, directory: Path, player: Player | None) -> list[AudioSink]:
        """The player, merge and subtitle sinks this pipeline's config asks for."""
        cfg = self.config
        sinks: list[AudioSink] = []
        if player is not None:
            sinks.append(PlayerSink(player))
        if cfg.merge:
            sinks.append(MergeSink(directory / f"{MERGED_STEM}.{cfg.format}", format=cfg.format,
                                   silence_ms=cfg.merge_silence_ms))
        if cfg.subtitles:
            sinks.append(SubtitleSink(directory / f"{MERGED_STEM}.{cfg.subtitles}",
                                      kind=cfg.subtitles, silence_ms=cfg.merge_silence_ms))
        return sinks

    # -- sync twins ------------------------------------------------------------

    def stream_chat_to_audio(self, message: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Sync twin of :meth:`astream_chat_to_audio`: yields ``event_to_dict`` dicts.

        Breaking out of the loop (or an exception such as ``KeyboardInterrupt``
        in it) cancels the run like closing the async iterator does.
        """
        return self._iterate_dicts(lambda: self.astream_chat_to_audio(message, **kwargs))

    def stream_text_to_audio(
        self, deltas: AsyncIterable[str] | str, **kwargs: Any
    ) -> Iterator[dict[str, Any]]:
        """Sync twin of :meth:`astream_text_to_audio` (dicts, as above)."""
        return self._iterate_dicts(lambda: self.astream_text_to_audio(deltas, **kwargs))

    def _iterate_dicts(
        self, make: Any
    ) -> Iterator[dict[str, Any]]:
        self._check_open()
        for event in iterate_in_portal(self._portal.portal, make):
            yield event_to_dict(event)


async def _one_chunk(text: str) -> AsyncIterator[str]:
    yield text


def create_streaming_pipeline(
    llm_provider: str | None = "ollama",
    tts_provider: str = "auto",
    streaming_config: StreamingConfig | Mapping[str, Any] | None = None,
    *,
    llm_config: Mapping[str, Any] | None = None,
    tts_config: Mapping[str, Any] | None = None,
    output_config: Mapping[str, Any] | None = None,
    llm_client: llm.LLMClient | None = None,
    tts_engine: TTSEngine | None = None,
) -> StreamingPipeline:
    """Build a :class:`StreamingPipeline`.

    Args:
        llm_provider: ``"ollama"``, ``"openai"``, ``"anthropic"``, ``"gemini"``
            or ``"local"`` (see :func:`llm.create_client`); ``None`` for a
            text-only pipeline (``astream_text_to_audio`` only).
        tts_provider: ``"auto"``, ``"espeak"``, ``"pyttsx3"``, ``"edge"``,
            ``"piper"`` (see :func:`tts.create_engine`).
        streaming_config: a :class:`StreamingConfig` or a dict of its keys
            (``sentence_buffer_size``, ``min_chunk_length``, ``max_buffer_time``,
            ``output_dir``, ``format``, ``workers``, ``play``, ...).
        llm_config: keyword arguments of :func:`llm.create_client` (``model``,
            ``base_url``, ``api_key``, timeouts...).
        tts_config: keyword arguments of :func:`tts.create_engine`.
        output_config: ``prefix`` (segment file name prefix), ``device`` and
            ``backends`` (audio output, see :func:`output.find_audio_output`).
        llm_client / tts_engine: ready objects to use instead of creating
            them (warm, shared engines; tests); the pipeline does NOT close them.

    Raises:
        ValueError: an unknown key or a bad value in any of the configs (the
            message names it), or an unknown provider.
    """
    if isinstance(streaming_config, StreamingConfig):
        config = streaming_config
    else:
        config = StreamingConfig.from_mapping(streaming_config)
    unknown = sorted(set(output_config or {}) - set(_OUTPUT_KEYS))
    if unknown:
        raise ValueError(
            f"unknown output_config key(s) {unknown}; known keys: {', '.join(_OUTPUT_KEYS)}"
        )
    engine = tts_engine
    if engine is None:
        engine = tts.create_engine(tts_provider, **dict(tts_config or {}))
    client = llm_client
    if client is None and llm_provider is not None:
        client = llm.create_client(llm_provider, **dict(llm_config or {}))
    return StreamingPipeline(
        config=config,
        llm_client=client,
        engine=engine,
        tts_name=tts_engine.name if tts_engine is not None else tts_provider,
        owns_llm=llm_client is None,
        owns_engine=tts_engine is None,
        output_options=output_config,
    )


def _split_kwargs(kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    create = {k: kwargs.pop(k) for k in _CREATE_KEYS if k in kwargs}
    return create, kwargs


def stream_chat_to_audio(message: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """One-shot sync API: create a pipeline, stream one answer, close it.

    ``kwargs`` are :func:`create_streaming_pipeline`'s arguments plus
    :meth:`StreamingPipeline.astream_chat_to_audio`'s, e.g.::

        for event in pipeline.stream_chat_to_audio(
            "Explain X", llm_provider="ollama",
            llm_config={"base_url": "http://127.0.0.1:11434", "model": "llama3.2"},
            streaming_config={"output_dir": "out"},
        ):
            print(event["status"])

    Yields ``event_to_dict`` dicts (see :mod:`pipeline._events`).
    """
    create, call = _split_kwargs(dict(kwargs))
    with create_streaming_pipeline(**create) as pipe:
        yield from pipe.stream_chat_to_audio(message, **call)


async def astream_chat_to_audio(message: str, **kwargs: Any) -> AsyncGenerator[ProgressEvent, None]:
    """One-shot async API: like :func:`stream_chat_to_audio`, yielding event objects."""
    create, call = _split_kwargs(dict(kwargs))
    async with create_streaming_pipeline(**create) as pipe:
        async with contextlib.aclosing(pipe.astream_chat_to_audio(message, **call)) as events:
            async for event in events:
                yield event
