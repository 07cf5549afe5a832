"""Run a helper program (espeak-ng, ffmpeg) with asyncio, mapping its failures once."""

from __future__ import annotations

import asyncio
import contextlib

from ._errors import EngineUnavailableError, SynthesisError


async def run_program(
    argv: list[str], *, stdin: bytes, timeout_s: float, engine: str, text: str
) -> bytes:
    """Run ``argv`` with ``stdin``; return its stdout.

    Raises EngineUnavailableError when the program is missing, SynthesisError
    (retryable) on timeout, SynthesisError with stderr on a non-zero exit.
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
    except (FileNotFoundError, PermissionError) as exc:
        raise EngineUnavailableError(f"cannot run {argv[0]!r}: {exc}", engine=engine) from exc
    try:
        stdout, stderr = await asyncio.wait_for(proc.communicate(stdin), timeout_s)
    except TimeoutError as exc:
        raise SynthesisError(
            f"{argv[0]} took longer than {timeout_s} s", engine=engine, text=text, retryable=True
        ) from exc
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        message = stderr.decode("utf-8", "replace").strip()
        raise SynthesisError(
            f"{argv[0]} exited with status {proc.returncode}: {message}", engine=engine, text=text
        )
    return stdout


async def aiff_to_wav(data: bytes, *, engine: str, text: str, timeout_s: float = 30.0) -> bytes:
    """Convert AIFF bytes (macOS NSSpeechSynthesizer output) to a 16-bit WAV with ffmpeg."""
    return await run_program(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "wav", "-acodec", "pcm_s16le", "pipe:1"],
        stdin=data,
        timeout_s=timeout_s,
        engine=engine,
        text=text,
    )
