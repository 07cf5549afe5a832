"""Run a helper program (espeak-ng, ffmpeg) without blocking the event loop, mapping its
failures once: :func:`stream_program` streams its output (asyncio pipes),
:func:`run_program` returns it whole (a worker thread)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import AsyncGenerator

from ._errors import EngineUnavailableError, SynthesisError

_READ = 65536


async def stream_program(
    argv: list[str], *, stdin: bytes, timeout_s: float, engine: str, text: str
) -> AsyncGenerator[bytes, None]:
    """Run ``argv`` with ``stdin`` and yield its stdout as it comes (pieces of bytes).

    ``timeout_s`` bounds the whole run (seconds). Closing the generator early,
    or the timeout, kills the program's process group (its own), so a wrapper
    script's children go too. Stdin is written by a separate task, so a program that
    writes before it has read everything never deadlocks against us.

    Raises:
        EngineUnavailableError: the program is missing or not executable.
        SynthesisError: timeout (``retryable=True``), or a non-zero exit (the
            message holds its stderr).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # a group of its own, killed as one (uvloop too)
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise _unavailable(argv, exc, engine) from exc
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s

    async def write_stdin() -> None:
        assert proc.stdin is not None
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            proc.stdin.write(stdin)
            await proc.stdin.drain()
            proc.stdin.close()
            await proc.stdin.wait_closed()

    writer = asyncio.create_task(write_stdin(), name=f"{argv[0]}-stdin")
    stderr = asyncio.create_task(proc.stderr.read(), name=f"{argv[0]}-stderr")
    try:
        try:
            while True:
                async with asyncio.timeout_at(deadline):
                    data = await proc.stdout.read(_READ)
                if not data:
                    break
                yield data
            async with asyncio.timeout_at(deadline):
                await proc.wait()
                message = (await stderr).decode("utf-8", "replace").strip()
        except TimeoutError as exc:
            raise _timed_out(argv, timeout_s, engine, text) from exc
        if proc.returncode != 0:
            raise _exited(argv, proc.returncode, message, engine, text)
    finally:
        if proc.returncode is None:
            _kill_group(proc.pid)
            await proc.wait()
        for task in (writer, stderr):
            if not task.done():
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, OSError):
                await task


async def run_program(
    argv: list[str],
    *,
    stdin: bytes,
    timeout_s: float,
    engine: str,
    text: str,
    executor: concurrent.futures.Executor | None = None,
) -> bytes:
    """Run ``argv`` with ``stdin``; return its whole stdout (bytes).

    For callers that want the output only once the program is done: a worker
    thread of ``executor`` (``None``: the event loop's default) waits on it
    (``subprocess.Popen.communicate``), so the event loop wakes once per run
    instead of once per pipe read (a narration segment through espeak-ng:
    ~30 reads). The program runs in a process group of its own; when
    ``timeout_s`` (seconds, counted from the program's start) passes, or the
    awaiting task is cancelled, the whole group is killed (a wrapper script's
    children too) and reaped.

    Raises:
        EngineUnavailableError: the program is missing or not executable.
        SynthesisError: timeout (``retryable=True``), or a non-zero exit (the
            message holds its stderr).
    """
    started: list[subprocess.Popen[bytes]] = []
    cancelled = threading.Event()

    def run() -> tuple[int, bytes, bytes]:
        with subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True,
        ) as proc:  # on leaving: pipes closed, the program reaped
            started.append(proc)
            try:
                if cancelled.is_set():  # cancelled while the program was starting
                    _kill_group(proc.pid)
                out, err = proc.communicate(stdin, timeout=timeout_s)
            except subprocess.TimeoutExpired as exc:
                _kill_group(proc.pid)
                proc.communicate()
                raise TimeoutError(str(exc)) from exc
            except BaseException:
                if proc.returncode is None:
                    _kill_group(proc.pid)
                raise
            return proc.returncode, out, err

    try:
        returncode, out, err = await asyncio.get_running_loop().run_in_executor(executor, run)
    except (FileNotFoundError, PermissionError) as exc:
        raise _unavailable(argv, exc, engine) from exc
    except TimeoutError as exc:
        raise _timed_out(argv, timeout_s, engine, text) from exc
    except asyncio.CancelledError:
        cancelled.set()
        for proc in started:  # the thread's communicate() then returns at once
            if proc.returncode is None:  # not reaped yet: its pid is still its own
                _kill_group(proc.pid)
        raise
    if returncode != 0:
        raise _exited(argv, returncode, err.decode("utf-8", "replace").strip(), engine, text)
    return out


# -- the failures, mapped once for both ways of running a program --------------


def _kill_group(pid: int) -> None:
    """SIGKILL the process group of ``pid`` (its own: ``start_new_session``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _unavailable(argv: list[str], exc: OSError, engine: str) -> EngineUnavailableError:
    return EngineUnavailableError(f"cannot run {argv[0]!r}: {exc}", engine=engine)


def _timed_out(argv: list[str], timeout_s: float, engine: str, text: str) -> SynthesisError:
    return SynthesisError(
        f"{argv[0]} took longer than {timeout_s} s", engine=engine, text=text, retryable=True
    )


def _exited(
    argv: list[str], status: int | None, stderr: str, engine: str, text: str
) -> SynthesisError:
    return SynthesisError(f"{argv[0]} exited with status {status}: {stderr}", engine=engine,
                          text=text)


async def aiff_to_wav(data: bytes, *, engine: str, text: str, timeout_s: float = 30.0) -> bytes:
    """Convert AIFF bytes (macOS NSSpeechSynthesizer output) to a 16-bit WAV with ffmpeg."""
    return await run_program(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "wav", "-acodec", "pcm_s16le", "pipe:1"],
        stdin=data,
        timeout_s=timeout_s,
        engine=engine,
        text=text,
    )
