"""Pyttsx3Engine: pyttsx3 (espeak-ng on Linux, SAPI5 / NSSpeechSynthesizer elsewhere).

pyttsx3 is not thread-safe (concurrent calls segfault the process) and writes
only the last of several ``save_to_file`` calls queued before ``runAndWait``.
Isolation, in two layers:

* one **worker process** (``tts/_pyttsx3_worker.py``) owns the one pyttsx3
  engine and handles one request at a time, one file per ``runAndWait``; a
  crash there cannot take our process down, and its stdout (where pyttsx3
  prints "Audio saved to ...") goes to /dev/null;
* one **dedicated thread** (a single-worker executor) talks to it, so callers
  from any task, event loop or thread are queued in order and the event loop
  never blocks.

A request that gets no answer within ``timeout_s`` seconds kills the worker
and raises a retryable :class:`SynthesisError` (retried by the base class's
:class:`RetryPolicy`); so does a worker that dies. The next call starts a
fresh worker. pyttsx3 writes whole files, so this engine hands out each
segment's audio as one chunk once it is complete.

Word timings are estimated from text length over the measured speech span
(:mod:`tts._words`); macOS AIFF output is converted to WAV with ffmpeg.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import selectors
import shutil
import subprocess
import sys
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._base import TTSEngine
from ._errors import EngineUnavailableError, SynthesisError
from ._process import aiff_to_wav
from ._types import RetryPolicy, SynthesizedAudio, Voice
from ._words import audio_from_wav

_WORKER_SCRIPT = Path(__file__).with_name("_pyttsx3_worker.py")


@dataclass(frozen=True)
class Pyttsx3Config:
    """Options of :class:`Pyttsx3Engine` (validated on construction).

    Attributes:
        voice: default pyttsx3 voice id (``None``: the driver's default).
        timeout_s: seconds one request may take before the worker is killed
            and restarted; > 0.
        start_timeout_s: seconds the worker may take to import and start
            pyttsx3; > 0.
        python: interpreter that runs the worker (default: this one).
    """

    voice: str | None = None
    timeout_s: float = 30.0
    start_timeout_s: float = 30.0
    python: str = sys.executable

    def __post_init__(self) -> None:
        for option in ("timeout_s", "start_timeout_s"):
            value = getattr(self, option)
            if not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{option} must be > 0 seconds, got {value!r}")


class _WorkerDied(Exception):
    """The worker process ended or stopped answering (internal)."""


class _WorkerExited(_WorkerDied):
    """The worker process ended before answering (internal)."""


class _Worker:
    """The worker process and its line protocol. Used only from the engine's one thread."""

    def __init__(self, config: Pyttsx3Config, log_path: Path) -> None:
        self._config = config
        self._log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""
        self._next_id = 0

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _start(self) -> subprocess.Popen[bytes]:
        argv = [self._config.python, "-P", "-u", str(_WORKER_SCRIPT)]
        try:
            with open(self._log_path, "ab") as log:
                proc = subprocess.Popen(
                    argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log
                )
        except OSError as exc:
            raise EngineUnavailableError(
                f"cannot start the pyttsx3 worker {argv[0]!r}: {exc}", engine="pyttsx3"
            ) from exc
        self._proc, self._buffer = proc, b""
        hello = self._read_message(self._config.start_timeout_s, "start")
        if not hello.get("ready"):
            self.stop()
            message = f"pyttsx3 cannot start: {hello.get('error')}"
            raise EngineUnavailableError(message, engine="pyttsx3")
        return proc

    def request(self, payload: dict[str, Any]) -> dict[str, Any]:
        """Send one request and wait for its reply (blocking; raises _WorkerDied).

        A worker found dead without answering (killed or crashed between calls,
        or on this request) is restarted and the request sent once more; a
        second death, or no answer within ``timeout_s``, raises _WorkerDied.
        """
        try:
            return self._request_once(payload)
        except _WorkerExited:
            return self._request_once(payload)

    def _request_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self._proc is not None and self._proc.poll() is not None:
            self.stop()  # died while idle: reap it and close its pipes
        proc = self._proc if self._proc is not None else self._start()
        self._next_id += 1
        payload = {**payload, "id": self._next_id}
        assert proc.stdin is not None
        try:
            proc.stdin.write((json.dumps(payload) + "\n").encode("utf-8"))
            proc.stdin.flush()
        except BrokenPipeError as exc:
            self.stop()
            raise _WorkerExited(f"the pyttsx3 worker exited ({exc})") from exc
        reply = self._read_message(self._config.timeout_s, payload["op"])
        if reply.get("id") != payload["id"]:
            self.stop()
            raise _WorkerDied(f"the pyttsx3 worker answered out of turn: {reply!r}")
        return reply

    def _read_message(self, timeout_s: float, what: str) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        fd = proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                if not selector.select(timeout_s):
                    self.stop(kill=True)
                    raise _WorkerDied(
                        f"the pyttsx3 worker gave no answer to {what!r} within {timeout_s} s "
                        "(killed; a new one starts on the next call)"
                    )
                chunk = os.read(fd, 65536)
                if not chunk:
                    status = proc.wait()
                    self.stop()
                    raise _WorkerExited(
                        f"the pyttsx3 worker exited with status {status} during {what!r}"
                        f"{self._log_tail()}"
                    )
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        return message

    def _log_tail(self) -> str:
        try:
            tail = self._log_path.read_bytes()[-400:].decode("utf-8", "replace").strip()
        except OSError:
            return ""
        return f"; its stderr ends with: {tail}" if tail else ""

    def stop(self, *, kill: bool = False) -> None:
        """End the worker: EOF on stdin, then kill if it does not exit within 2 s
        (at once with ``kill=True``, for a worker that stopped answering)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill and proc.poll() is None:
            proc.kill()
        if proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):  # already gone: nothing to flush
                proc.stdin.close()
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class Pyttsx3Engine(TTSEngine):
    """pyttsx3 in an isolated worker process, reached through one dedicated thread.

    Output: WAV, 16-bit mono (22050 Hz with espeak-ng on Linux); ``duration_s``
    from the sample count; ``words`` estimated. Prosody: ``rate`` multiplies
    the driver's default words per minute, ``volume`` is the driver's 0-1
    volume, ``pitch`` multiplies espeak's default pitch (50 of 0-99; drivers
    without pitch raise SynthesisError for pitch != 1).
    """

    name = "pyttsx3"

    def __init__(
        self,
        *,
        voice: str | None = None,
        timeout_s: float = 30.0,
        start_timeout_s: float = 30.0,
        python: str = sys.executable,
        retry: RetryPolicy | None = None,
    ) -> None:
        if retry is not None:
            self.retry = retry
        self.config = Pyttsx3Config(
            voice=voice, timeout_s=timeout_s, start_timeout_s=start_timeout_s, python=python
        )
        self._dir = Path(tempfile.mkdtemp(prefix="speakstream-pyttsx3-"))
        self._worker = _Worker(self.config, self._dir / "worker.log")
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pyttsx3")
        #: How many times the worker had to repeat a write that came out empty
        #: (a pyttsx3 espeak-driver race, see ``_pyttsx3_worker.EMPTY_ATTEMPTS``).
        self.rewrites = 0

    @property
    def worker_pid(self) -> int | None:
        """Process id of the running worker, ``None`` when none runs."""
        return self._worker.pid

    async def _call(self, payload: dict[str, Any], text: str) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        try:
            reply = await loop.run_in_executor(self._thread, self._worker.request, payload)
        except _WorkerDied as exc:
            raise SynthesisError(str(exc), engine=self.name, text=text, retryable=True) from exc
        if not reply.get("ok"):
            raise SynthesisError(
                f"pyttsx3 failed ({reply.get('kind')}): {reply.get('error')}",
                engine=self.name,
                text=text,
                # EmptyAudio comes after the worker's own EMPTY_ATTEMPTS writes:
                # not retryable, or the retry policy would multiply the writes.
                retryable=False,
            )
        self.rewrites += reply.get("attempts", 1) - 1
        return reply

    async def _synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> SynthesizedAudio:
        voice = voice or self.config.voice
        suffix = ".aiff" if sys.platform == "darwin" else ".wav"
        path = self._dir / f"{uuid.uuid4().hex}{suffix}"
        request = {
            "op": "synth",
            "text": text,
            "path": str(path),
            "voice": voice,
            "rate": rate,
            "volume": volume,
            "pitch": pitch,
        }
        try:
            await self._call(request, text)
            try:
                raw = await asyncio.to_thread(path.read_bytes)
            except FileNotFoundError as exc:
                raise SynthesisError(
                    "pyttsx3 reported success but wrote no file", engine=self.name, text=text
                ) from exc
        finally:
            await asyncio.to_thread(path.unlink, True)
        if raw[:4] == b"FORM":  # AIFF from NSSpeechSynthesizer
            raw = await aiff_to_wav(raw, engine=self.name, text=text)
        return audio_from_wav(raw, text=text, engine=self.name, voice=voice)

    async def list_voices(self) -> list[Voice]:
        """The driver's voices (``id`` is what ``voice=`` takes)."""
        reply = await self._call({"op": "voices"}, "")
        return [
            Voice(
                id=v["id"],
                name=v["name"],
                language=(v["languages"] or [""])[0],
                gender=v["gender"].lower(),
                engine=self.name,
            )
            for v in reply["voices"]
        ]

    async def aclose(self) -> None:
        """Stop the worker (after requests already queued) and remove temp files."""
        if self._closed:
            return
        await super().aclose()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._worker.stop)
        self._thread.shutdown(wait=False)
        await asyncio.to_thread(shutil.rmtree, self._dir, True)
