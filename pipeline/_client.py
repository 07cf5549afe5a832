"""Client side of the daemon: :class:`DaemonClient` (httpx) and ``speakstream ask --daemon``.

:class:`DaemonClient` streams ``POST /v1/speak`` and parses the Server-Sent
Events (the SSE format of the HTML Living Standard, "Server-sent events")
into ``{"status": <wire name>, **data}`` dicts: the daemon's client messages
(see ``pipeline._daemon._messages``): ``started``, ``token``, ``segment``,
``audio`` (with a ``url``), ``error``, ``cancelled``, ``done``.

``ask --daemon`` is ``ask`` whose work runs in the daemon: every option is
sent with the request or refused (:data:`LOCAL_ONLY`), the audio is fetched by
the URLs the daemon gives, written under ``-o DIR/<run_id>/`` with the same
layout and manifest as a local run and played through the same
:class:`output.Player`, and the wire messages become the very event objects of
a local run (:func:`event_from_message`, the one place wire names are mapped
back), so ``--json`` and the live view print exactly what a local ``ask`` prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import json
import os
import secrets
import wave
from collections.abc import AsyncGenerator, Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import httpx

import output
import tts
from llm import SSEDecoder

from ._config import StreamingConfig
from ._daemon._messages import KINDS
from ._daemon._settings import TOKEN_ENV
from ._errors import ConfigError, PipelineError
from ._events import (
    AudioReady,
    ProgressEvent,
    RunCompleted,
    RunStarted,
)
from ._settings import LLM_OPTIONS, Settings, flag_name


class DaemonError(PipelineError):
    """The daemon refused a request or could not be reached.

    Attributes:
        status_code: the HTTP status, or ``None`` when no answer came.
        type: the daemon's error type (``"unauthorized"``, ``"payload_too_large"``...).
    """

    def __init__(self, message: str, *, status_code: int | None = None, type: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.type = type


class DaemonClient:
    """An async client of a running speakstream daemon.

    Args:
        base_url: e.g. ``http://127.0.0.1:8765``.
        token: bearer token (default: ``$SPEAKSTREAM_TOKEN``).
        timeout: httpx timeout in seconds for connecting and between bytes.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                       timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> DaemonClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def astream_speak(
        self, message: str, **options: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Ask ``message``; yield the run's messages as dicts (``status`` = wire name).

        ``options`` are the other fields of ``POST /v1/speak`` (``llm``, ``model``,
        ``tts``, ``voice``, ``format``, ``system``, ``max_tokens``,
        ``streaming_config``...); ``None`` values are left out.
        Closing the iterator closes the HTTP response, which cancels the run.

        Raises:
            DaemonError: connection failure or an HTTP error status (401, 413, 422...).
        """
        body = {"message": message, **{k: v for k, v in options.items() if v is not None}}
        try:
            async with self._http.stream("POST", "/v1/speak", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _error(response)
                decoder = SSEDecoder()
                async for text in response.aiter_text():
                    for event in decoder.feed(text):
                        yield {"status": event.event, **json.loads(event.data)}
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc

    async def fetch(self, path: str) -> bytes:
        """``GET path`` (a URL path the daemon gave, e.g. an ``audio`` message's
        ``url``) and return the body.

        Raises:
            DaemonError: unreachable or an HTTP error status.
        """
        try:
            response = await self._http.get(path)
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code != 200:
            raise _error(response)
        return response.content

    async def run(self, run_id: str) -> dict[str, Any]:
        """``GET /v1/runs/{run_id}``: status, audio list and manifest records.

        Raises:
            DaemonError: unreachable, unknown run, or another HTTP error.
        """
        data = json.loads(await self.fetch(f"/v1/runs/{run_id}"))
        if not isinstance(data, dict):
            raise DaemonError(f"daemon at {self._http.base_url}: unexpected answer {data!r:.80}")
        return data

    async def cancel(self, run_id: str) -> None:
        """``DELETE /v1/runs/{run_id}`` (a finished run is not an error)."""
        try:
            response = await self._http.delete(f"/v1/runs/{run_id}")
        except httpx.HTTPError as exc:
            raise self._unreachable(exc) from exc
        if response.status_code not in (202, 409):
            raise _error(response)

    def _unreachable(self, exc: httpx.HTTPError) -> DaemonError:
        return DaemonError(f"daemon at {self._http.base_url}: {type(exc).__name__}: {exc}")


def _error(response: httpx.Response) -> DaemonError:
    try:
        error = response.json()["error"]
        message, kind = str(error["message"]), str(error["type"])
    except (ValueError, KeyError, TypeError):
        message, kind = response.text[:200], ""
    return DaemonError(f"daemon answered HTTP {response.status_code}: {message}",
                       status_code=response.status_code, type=kind)


# -- wire messages -> events -------------------------------------------------------

#: Wire name -> event class: the daemon's table (``_messages.KINDS``) inverted.
EVENT_CLASSES: dict[str, type] = {name: cls for cls, name in KINDS.items()}


def event_from_message(
    message: dict[str, Any], **local: Any
) -> ProgressEvent:
    """The event object of a daemon message (``{"status": <wire name>, **data}``).

    The wire carries every field of the event except server paths, which the
    daemon replaces by URLs; ``local`` supplies them (``path``, ``output_dir``,
    ``audio_files``, ``manifest_path``, ``merged_path``, ``subtitles_path``) as
    the client's own files. Fields the wire adds (``url``, ``audio_urls``...)
    are dropped.

    Raises:
        DaemonError: an unknown message kind or a missing field.
    """
    kind = message.get("status")
    cls = EVENT_CLASSES.get(str(kind))
    if cls is None:
        raise DaemonError(f"the daemon sent an unknown message {kind!r}")
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    data = {k: v for k, v in message.items() if k in fields}
    data.update({k: v for k, v in local.items() if k in fields})
    missing = sorted(f.name for f in dataclasses.fields(cls)
                     if f.init and f.name not in data
                     and f.default is dataclasses.MISSING
                     and f.default_factory is dataclasses.MISSING)
    if missing:
        raise DaemonError(f"the daemon's {kind!r} message lacks {', '.join(missing)}")
    event: ProgressEvent = cls(**data)
    return event


# -- ask --daemon ------------------------------------------------------------------

#: Settings that stay on this machine with ``--daemon``: where files go, playback.
LOCAL_ONLY = ("output_dir", "play")
#: Settings the daemon owns (its LLM server and timeouts): refused as flags.
DAEMON_OWNED = ("base_url", *LLM_OPTIONS)
#: Sent as top-level fields of ``POST /v1/speak``; other StreamingConfig keys go in
#: its ``streaming_config``.
_TOP_LEVEL = {"llm": "llm", "model": "model", "tts": "tts", "voice": "voice", "format": "format"}


class View(Protocol):
    """What shows events (the CLI's ``JsonView`` / ``LiveView``)."""

    def show(self, event: ProgressEvent, **extra: Any) -> None: ...


def speak_request(settings: Settings, *, system: str | None,
                  max_tokens: int | None) -> tuple[dict[str, Any], list[str]]:
    """The ``POST /v1/speak`` fields for ``settings`` and the notes to print.

    Only settings given by a flag, a file or the environment are sent: the
    rest are the daemon's own defaults. Output location and playback stay
    local. The daemon's LLM server and timeouts are its own: given as flags
    they are refused, from a file or the environment they are ignored with a note.

    Raises:
        ConfigError: a flag that cannot be used with ``--daemon``, or an
            invalid value (checked here, before anything is sent).
    """
    settings.streaming_config()  # invalid values fail here with their name and source
    notes = []
    for key in DAEMON_OWNED:
        if not settings.given(key):
            continue
        if settings.sources[key] == "flag":
            raise ConfigError(
                f"{flag_name(key)} cannot be used with --daemon: the daemon's LLM settings "
                f"are its own (speakstream serve {flag_name(key)} ...)", key=key)
        notes.append(f"{key} from {settings.sources[key]} is ignored with --daemon "
                     "(the daemon's own setting applies)")
    fields: dict[str, Any] = {"system": system, "max_tokens": max_tokens}
    streaming: dict[str, Any] = {}
    for key, value in settings.values.items():
        if not settings.given(key) or key in LOCAL_ONLY or key in DAEMON_OWNED:
            continue
        if key in _TOP_LEVEL:
            fields[_TOP_LEVEL[key]] = value
        elif key in StreamingConfig.keys():
            streaming[key] = value
    if streaming:
        fields["streaming_config"] = streaming
    return fields, notes


async def ask_daemon(
    url: str,
    question: str,
    settings: Settings,
    *,
    view: View,
    stop_event: asyncio.Event,
    system: str | None = None,
    max_tokens: int | None = None,
    note: Callable[[str], Any] = print,
) -> RunCompleted | None:
    """``speakstream ask --daemon URL QUESTION``: the daemon does the work, this
    side shows the events, saves and plays the audio.

    Files: ``<output_dir>/<run_id>/segment_NNNN.<fmt>`` (the daemon's bytes),
    ``manifest.jsonl`` (a line per file as it lands, then the summary), and
    ``merged.<fmt>`` / ``merged.srt|vtt`` when asked, as a local run writes
    them. Setting ``stop_event`` (Ctrl-C) cancels the run on the daemon; the
    stream still ends with ``cancelled`` and ``completed``.

    Returns:
        The run's :class:`RunCompleted` (``None`` if the stream ended without one).

    Raises:
        ConfigError: an option that cannot be sent (see :func:`speak_request`).
        DaemonError: the daemon refused the request or could not be reached.
    """
    fields, notes = speak_request(settings, system=system, max_tokens=max_tokens)
    for text in notes:
        note(f"note: {text}")
    base = Path(settings.values["output_dir"])
    async with contextlib.AsyncExitStack() as stack:
        client = await stack.enter_async_context(
            DaemonClient(url, token=settings.values["token"]))
        player = await _player(settings, note)
        if player is not None:
            stack.push_async_callback(player.aclose)
        save = _LocalRun(client, base, fallback_format=settings.values["format"])
        stack.push_async_callback(save.aclose)
        stream = client.astream_speak(question, **fields)
        stack.push_async_callback(stream.aclose)
        watcher = asyncio.create_task(_cancel_on(stop_event, client, save))
        try:
            async for message in stream:
                event = await save.handle(message)
                if isinstance(event, RunStarted):
                    note(f"daemon {url}: model {event.llm_provider}:"
                         f"{Path(event.model).name or event.model}, tts {event.tts}")
                view.show(event)
                if isinstance(event, AudioReady) and player is not None:
                    player.enqueue(event.path)
                if isinstance(event, RunCompleted):
                    if player is not None:
                        try:
                            await player.drain()  # like a local run: done once heard
                        except output.PlaybackError as exc:  # the files are kept
                            note(f"playback failed: {exc}")
                    return event
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
    return None


async def _cancel_on(stop_event: asyncio.Event, client: DaemonClient, save: _LocalRun) -> None:
    await stop_event.wait()
    await save.started.wait()  # Ctrl-C before the daemon named the run: wait for its name
    assert save.run_id is not None
    await client.cancel(save.run_id)


async def _player(settings: Settings, note: Callable[[str], Any]) -> output.Player | None:
    """The same playback as a local run: a gapless Player, or files only with a note."""
    if not settings.values["play"]:
        return None
    try:
        device = await asyncio.to_thread(output.find_audio_output)
    except output.NoAudioDeviceError as exc:
        note(f"{exc}; writing files only")
        return None
    return output.Player(device)


class _LocalRun:
    """Turns a run's wire messages into events while writing its files locally."""

    def __init__(self, client: DaemonClient, base: Path, *, fallback_format: str) -> None:
        self._client = client
        self._base = base
        self._fallback_format = fallback_format
        self.run_id: str | None = None
        self.started = asyncio.Event()
        self._writer: output.SegmentWriter | None = None
        self._files: list[str] = []
        self._segments: dict[int, dict[str, Any]] = {}  # index -> its "segment" message

    @property
    def directory(self) -> Path:
        assert self.run_id is not None
        return (self._base / self.run_id).resolve()

    async def handle(self, message: dict[str, Any]) -> ProgressEvent:
        kind = message.get("status")
        if kind == "started":
            self.run_id = str(message["run_id"])
            self.started.set()
            return event_from_message(message, output_dir=str(self.directory))
        if kind == "segment":
            self._segments[int(message["index"])] = message
        elif kind == "audio":
            try:
                path = await self._save_segment(message)
            except DaemonError as exc:
                if exc.status_code != 404:
                    raise
                # Taken back already (its sync failed on the daemon's disk): the
                # `error` for this segment follows; nothing is saved here.
                return event_from_message(message, path="")
            return event_from_message(message, path=str(path))
        if kind == "done":
            return await self._finish(message)
        return event_from_message(message)

    def _writer_for(self, fmt: str) -> output.SegmentWriter:
        if self._writer is None:
            self._writer = output.SegmentWriter(
                self.directory, format=fmt, run_subdir=False, keep_records=False)
        return self._writer

    async def _save_segment(self, message: dict[str, Any]) -> Path:
        data = await self._client.fetch(str(message["url"]))
        fmt = str(message["format"])
        rate, channels = await asyncio.to_thread(_audio_info, data, fmt)
        audio = tts.SynthesizedAudio(
            data=data, format=fmt, sample_rate=rate, channels=channels,
            duration_s=float(message["duration_s"]), engine=str(message.get("engine", "")),
            voice=message.get("voice"), text=str(message.get("text", "")),
        )
        writer = await asyncio.to_thread(self._writer_for, fmt)
        index = int(message["index"])
        segment = self._segments.pop(index, {})
        extra = {  # the fields a local run's manifest has (pipeline/_run.py)
            "raw_text": segment.get("text", audio.text), "start": segment.get("start"),
            "end": segment.get("end"), "reason": segment.get("reason"),
            "synth_s": message.get("synth_s"), "reused": False,
        }
        written = await writer.awrite(index, audio, text=audio.text, extra=extra)
        self._files.append(str(written.path))
        return written.path

    async def _finish(self, message: dict[str, Any]) -> RunCompleted:
        writer = await asyncio.to_thread(self._writer_for, self._fallback_format)
        merged = await self._copy(message.get("merged_url"), lambda data: f"merged.{writer.format}")
        subtitles = await self._copy(
            message.get("subtitles_url"),
            lambda data: "merged.vtt" if data.lstrip(b"\xef\xbb\xbf").startswith(b"WEBVTT")
            else "merged.srt",
        )
        summary = await self._summary(message, merged, subtitles)
        await writer.aclose(summary)
        event = event_from_message(
            message, audio_files=list(self._files), output_dir=str(writer.directory),
            manifest_path=str(writer.manifest_path),
            merged_path=str(merged) if merged else None,
            subtitles_path=str(subtitles) if subtitles else None,
        )
        assert isinstance(event, RunCompleted)
        return event

    async def _copy(self, url: Any, name: Callable[[bytes], str]) -> Path | None:
        if not url:
            return None
        data = await self._client.fetch(str(url))
        path = self.directory / name(data)
        await asyncio.to_thread(_write_atomic, path, data)
        return path

    async def _summary(self, done: dict[str, Any], merged: Path | None,
                       subtitles: Path | None) -> dict[str, Any]:
        """The manifest summary: the daemon's own (fetched once), local file names."""
        summary: dict[str, Any] = {}
        if self.run_id is not None:
            with contextlib.suppress(DaemonError):
                records = (await self._client.run(self.run_id)).get("manifest") or []
                found = [r for r in records if isinstance(r, dict) and r.get("type") == "summary"]
                if found:
                    summary = {k: v for k, v in found[-1].items()
                               if k not in ("type", "segments", "duration_s")}
        if not summary:
            summary = {"run_id": self.run_id, "complete_text": done.get("complete_text"),
                       "error": done.get("error"), "ttft_s": done.get("ttft_s"),
                       "ttfa_s": done.get("ttfa_s"), "total_s": done.get("total_s"),
                       "rtf": done.get("rtf")}
        summary["merged_path"] = merged.name if merged else None
        summary["subtitles_path"] = subtitles.name if subtitles else None
        return summary

    async def aclose(self) -> None:
        """Close the manifest (summary ``complete: false``) if the run did not finish."""
        if self._writer is not None:
            await self._writer.aclose({"run_id": self.run_id, "status": "interrupted",
                                       "complete": False})


def _audio_info(data: bytes, fmt: str) -> tuple[int, int]:
    """``(sample rate, channels)`` of an encoded file (WAV read directly, other
    formats decoded by :func:`output.convert`)."""
    if fmt == "wav":
        with wave.open(io.BytesIO(data)) as w:
            return w.getframerate(), w.getnchannels()
    probe = tts.SynthesizedAudio(data=data, format=fmt, sample_rate=0, channels=0,
                                 duration_s=0.0)
    pcm = output.convert(probe, "pcm")
    return pcm.sample_rate, pcm.channels


def _write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and a rename (no partial file)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
