"""A real PulseAudio server with a null sink, for playback tests.

Recipe from shared/ENVIRONMENT.md: a private ``pulseaudio`` daemon (its own
``XDG_RUNTIME_DIR`` and ``HOME``) with ``module-null-sink``; a test records the
sink's monitor with ``parec`` and checks what was really played.

Readiness is awaited by events, never by sleeping: the daemon logs "Daemon
startup complete." and ``parec -v`` logs "Stream successfully created.".

Use in pytest (``tests/output/conftest.py`` has the fixture ``pulse_server``)::

    with PulseServer() as pulse:           # sets nothing globally
        env = pulse.env                    # PULSE_SERVER=unix:... for clients
        with pulse.record() as rec:        # parec on <sink>.monitor
            ... play into pulse.sink ...
            rec.wait_for_seconds(1.0)
        pcm = rec.pcm                      # mono s16le at rec.sample_rate
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

_STARTUP_TIMEOUT_S = 30.0


def pulse_available() -> bool:
    """True when the pulseaudio daemon and its client tools are installed."""
    return all(shutil.which(x) for x in ("pulseaudio", "pactl", "parec", "pacat"))


def _wait_for_line(stream: object, marker: str, lines: list[str]) -> bool:
    assert hasattr(stream, "readline")
    for raw in iter(stream.readline, ""):
        lines.append(raw)
        if marker in raw:
            return True
    return False


class PulseServer:
    """A private PulseAudio daemon with one null sink named ``sink``."""

    def __init__(self, *, sink: str = "ttsnull") -> None:
        self.sink = sink
        # Short path: a unix socket path must stay under ~108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="pa-", dir="/tmp"))
        self.socket = self.root / "native"
        self.env: dict[str, str] = {}
        self._proc: subprocess.Popen[str] | None = None
        self._log: list[str] = []

    def start(self) -> PulseServer:
        run, home = self.root / "run", self.root / "home"
        run.mkdir(mode=0o700)
        home.mkdir()
        daemon_env = {**os.environ, "XDG_RUNTIME_DIR": str(run), "HOME": str(home)}
        daemon_env.pop("PULSE_SERVER", None)
        cmd = [
            "pulseaudio",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "-n",
            "--log-target=stderr",
            "--log-level=info",
            f"--load=module-native-protocol-unix socket={self.socket} auth-anonymous=1",
            f"--load=module-null-sink sink_name={self.sink}",
            "--load=module-always-sink",
        ]
        self._proc = subprocess.Popen(
            cmd,
            env=daemon_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = threading.Event()
        assert self._proc.stderr is not None
        stderr = self._proc.stderr

        def watch() -> None:
            if _wait_for_line(stderr, "Daemon startup complete", self._log):
                ready.set()
                for raw in iter(stderr.readline, ""):  # keep draining the pipe
                    self._log.append(raw)

        threading.Thread(target=watch, daemon=True).start()
        if not ready.wait(_STARTUP_TIMEOUT_S):
            self.stop()
            raise RuntimeError("pulseaudio did not start:\n" + "".join(self._log[-20:]))
        self.env = {
            "PULSE_SERVER": f"unix:{self.socket}",
            "XDG_RUNTIME_DIR": str(run),
            "HOME": str(home),
        }
        return self

    def record(self, *, sample_rate: int = 48000) -> Recorder:
        """A recorder of ``<sink>.monitor`` (start it with ``with``)."""
        return Recorder(self, sample_rate=sample_rate)

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr is not None:
                self._proc.stderr.close()
            self._proc = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PulseServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Recorder:
    """``parec`` on the null sink's monitor: mono s16le PCM into memory.

    The null sink's monitor yields audio only while something plays, so the
    recording is what was played, back to back (gaps inside one playback
    stream are recorded as silence).
    """

    def __init__(self, server: PulseServer, *, sample_rate: int) -> None:
        self.server = server
        self.sample_rate = sample_rate
        self._buf = bytearray()
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._log: list[str] = []

    @property
    def pcm(self) -> bytes:
        with self._cond:
            return bytes(self._buf)

    def __enter__(self) -> Recorder:
        cmd = [
            "parec",
            "-v",
            f"--device={self.server.sink}.monitor",
            "--raw",
            "--format=s16le",
            f"--rate={self.sample_rate}",
            "--channels=1",
            "--latency-msec=20",
        ]
        self._proc = subprocess.Popen(
            cmd,
            env={**os.environ, **self.server.env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        ready = threading.Event()
        proc = self._proc
        assert proc.stdout is not None and proc.stderr is not None
        stdout, stderr = proc.stdout, proc.stderr

        def read_audio() -> None:
            while chunk := stdout.read1(65536):
                with self._cond:
                    self._buf += chunk
                    self._cond.notify_all()

        def read_log() -> None:
            for raw in iter(stderr.readline, b""):
                line = raw.decode(errors="replace")
                self._log.append(line)
                if "Stream successfully created" in line:
                    ready.set()
            ready.set()  # parec ended: do not wait forever

        self._threads = [
            threading.Thread(target=read_audio, daemon=True),
            threading.Thread(target=read_log, daemon=True),
        ]
        for t in self._threads:
            t.start()
        if not ready.wait(_STARTUP_TIMEOUT_S) or proc.poll() is not None:
            self.__exit__(None, None, None)
            raise RuntimeError("parec did not start:\n" + "".join(self._log[-20:]))
        return self

    def wait_for_seconds(self, seconds: float, *, timeout: float = 60.0) -> bool:
        """Block until ``seconds`` of audio were recorded (False on ``timeout``).

        ``timeout`` is a safety net against a hang, not a measurement.
        """
        need = round(seconds * self.sample_rate) * 2
        with self._cond:
            return self._cond.wait_for(lambda: len(self._buf) >= need, timeout)

    def wait_until(self, predicate: Callable[[bytes], bool], *, timeout: float = 60.0) -> bool:
        """Block until ``predicate(recorded pcm)`` holds (False on ``timeout``)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(bytes(self._buf)), timeout)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait()
            for t in self._threads:
                t.join()
            for stream in (self._proc.stdout, self._proc.stderr):
                if stream is not None:
                    stream.close()
            self._proc = None
