"""Helpers shared by the tts tests: ffprobe as the independent judge of audio files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest


def ffprobe(data: bytes, tmp_path: Path, suffix: str) -> dict[str, float | int | str]:
    """Duration (s), sample rate, channels and codec of ``data`` as ffprobe reports them."""
    if shutil.which("ffprobe") is None:
        pytest.skip("ffprobe is not installed")
    path = tmp_path / f"probe{suffix}"
    path.write_bytes(data)
    out = subprocess.run(
        [
            "ffprobe", "-v", "error", "-print_format", "json",
            "-show_entries", "format=duration:stream=sample_rate,channels,codec_name",
            str(path),
        ],
        check=True, capture_output=True, text=True,
    ).stdout
    info = json.loads(out)
    stream = info["streams"][0]
    return {
        "duration_s": float(info["format"]["duration"]),
        "sample_rate": int(stream["sample_rate"]),
        "channels": int(stream["channels"]),
        "codec": stream["codec_name"],
    }


@pytest.fixture
def probe(tmp_path: Path):  # type: ignore[no-untyped-def]
    return lambda data, suffix: ffprobe(data, tmp_path, suffix)
