"""Fixtures for output tests: real espeak-ng speech, tones, a real PulseAudio server."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import wave
from collections.abc import Iterator

import pytest
from pydub import AudioSegment

from tests.fakes.pulse import PulseServer, pulse_available
from tests.fakes.tones import tone_wav, wav_bytes
from tts import SynthesizedAudio, WordBoundary


def espeak_audio(text: str) -> SynthesizedAudio:
    """Real espeak-ng speech as WAV (22050 Hz mono)."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    data = subprocess.run(["espeak-ng", "--stdout", text], capture_output=True, check=True).stdout
    # espeak-ng --stdout leaves the RIFF sizes as 0xFFFFFFFF (streaming); let
    # the wave module rewrite a proper header.
    with wave.open(io.BytesIO(data)) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    wav = wav_bytes(frames, sample_rate=rate)
    return SynthesizedAudio(
        data=wav,
        format="wav",
        sample_rate=rate,
        channels=1,
        duration_s=len(frames) / 2 / rate,
        engine="espeak",
        voice="en",
        text=text,
    )


def decode_file(path: str | os.PathLike[str]) -> AudioSegment:
    """Decode a file with pydub, closing it (pydub's own open leaks the handle)."""
    with open(path, "rb") as f:
        return AudioSegment.from_file(f)


def tone_audio(
    freq: float, seconds: float, *, words: tuple[WordBoundary, ...] = ()
) -> SynthesizedAudio:
    return SynthesizedAudio(
        data=tone_wav(freq, seconds),
        format="wav",
        sample_rate=22050,
        channels=1,
        duration_s=seconds,
        words=words,
        engine="tone",
        voice=None,
        text=f"{freq} Hz",
    )


@pytest.fixture
def pulse_server() -> Iterator[PulseServer]:
    """A private PulseAudio daemon with a null sink ``ttsnull``, one per test:
    a shared daemon can still be draining an earlier test's stream into the sink
    when the next test starts recording (seen under load)."""
    if not pulse_available():
        pytest.skip("pulseaudio / pulseaudio-utils not installed")
    with PulseServer() as server:
        yield server


@pytest.fixture
def pulse_env(pulse_server: PulseServer, monkeypatch: pytest.MonkeyPatch) -> PulseServer:
    """``pulse_server`` with PULSE_SERVER set in os.environ for this test."""
    for key, value in pulse_server.env.items():
        monkeypatch.setenv(key, value)
    return pulse_server


def fail_syncs_of(monkeypatch: pytest.MonkeyPatch, *parts: str) -> None:
    """Make the group commit's sync fail with EIO (as a disk's write-back error)
    for every descriptor whose path (the temp name a placed file was written
    under) contains all of ``parts``; the others sync for real."""
    import errno

    import output._commit as commit_mod

    real = commit_mod.sync_descriptors

    def failing(fds: list[int]) -> dict[int, OSError]:
        failed = real(fds)
        for fd in fds:
            path = os.readlink(f"/proc/self/fd/{fd}")
            if all(part in path for part in parts):
                failed[fd] = OSError(errno.EIO, "Input/output error")
        return failed

    monkeypatch.setattr(commit_mod, "sync_descriptors", failing)
