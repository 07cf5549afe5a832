"""POST /v1/audio/speech through its sink: the body starts with the engine's first
chunk, nothing is read back from disk, and headers state the length whenever
it is known (one segment), as Python's ``wave`` and ffprobe read it."""

from __future__ import annotations

import asyncio
import io
import json
import shutil
import struct
import subprocess
import threading
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from pipeline.daemon import DaemonSettings
from tests.fakes.engine import FakeEngine, StreamingFakeEngine
from tts import AudioChunk, SynthesizedAudio

from .conftest import ScriptedLLM, start_daemon

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

ONE = "Just one sentence, short enough to be a single segment."
MANY = ("The daemon speaks like the OpenAI API. Long input is cut into sentences. "
        "Each sentence is synthesized while the next one waits.")


def settings(tmp_path: Path) -> DaemonSettings:
    return DaemonSettings(
        output_dir=tmp_path,
        streaming_config=DaemonSettings().streaming_config.replace(
            sentence_buffer_size=1, min_chunk_length=5, workers=1),
    )


def run_audio_seconds(url: str, run_id: str) -> float:
    run = httpx.get(f"{url}/v1/runs/{run_id}").json()
    return sum(a["duration_s"] for a in run["audio"])


def streaminfo(data: bytes) -> tuple[int, int, int]:
    """FLAC STREAMINFO: (sample rate, channels, total samples) (RFC 9639, section 8.2)."""
    assert data[:4] == b"fLaC"
    bits = int.from_bytes(data[18:26], "big")
    return bits >> 44, ((bits >> 41) & 7) + 1, bits & ((1 << 36) - 1)


def ffprobe_seconds(data: bytes, tmp_path: Path, name: str) -> float:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "json", str(path)], capture_output=True, check=True, text=True)
    return float(json.loads(out.stdout)["format"]["duration"])


def test_one_segment_wav_has_exact_sizes_and_a_content_length(tmp_path: Path) -> None:
    running = start_daemon(settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    try:
        r = httpx.post(running.url + "/v1/audio/speech", timeout=60,
                       json={"model": "tts-1", "input": ONE, "response_format": "wav"})
        assert r.status_code == 200
        assert r.headers["content-length"] == str(len(r.content))
        assert "transfer-encoding" not in r.headers
        expected = run_audio_seconds(running.url, r.headers["x-run-id"])
    finally:
        running.stop()
    data = r.content
    riff, data_size = struct.unpack_from("<I", data, 4)[0], struct.unpack_from("<I", data, 40)[0]
    assert riff == len(data) - 8 and data_size == len(data) - 44
    with wave.open(io.BytesIO(data)) as w:  # Python's wave reads the right duration
        assert w.getnframes() / w.getframerate() == pytest.approx(expected, abs=1e-3)
        assert w.getframerate() == int(r.headers["x-sample-rate"])


def test_one_segment_flac_states_its_total_samples(tmp_path: Path) -> None:
    running = start_daemon(settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    try:
        r = httpx.post(running.url + "/v1/audio/speech", timeout=60,
                       json={"model": "tts-1", "input": ONE, "response_format": "flac"})
        expected = run_audio_seconds(running.url, r.headers["x-run-id"])
    finally:
        running.stop()
    assert r.status_code == 200 and r.headers["content-length"] == str(len(r.content))
    rate, channels, total = streaminfo(r.content)
    assert (rate, channels) == (22050, 1)
    assert total / rate == pytest.approx(expected, abs=1e-3)
    assert ffprobe_seconds(r.content, tmp_path, "one.flac") == pytest.approx(expected, abs=0.01)


@pytest.mark.parametrize("fmt", ["wav", "flac"])
def test_a_streamed_body_declares_an_unknown_length(tmp_path: Path, fmt: str) -> None:
    running = start_daemon(settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    try:
        with httpx.stream("POST", running.url + "/v1/audio/speech", timeout=60,
                          json={"model": "tts-1", "input": MANY, "response_format": fmt}) as r:
            assert r.headers.get("transfer-encoding") == "chunked"
            run_id = r.headers["x-run-id"]
            data = b"".join(r.iter_bytes())
        expected = run_audio_seconds(running.url, run_id)
    finally:
        running.stop()
    if fmt == "wav":  # the documented convention: 0xFFFFFFFF = "read to the end"
        assert struct.unpack_from("<I", data, 4)[0] == 0xFFFFFFFF
        assert struct.unpack_from("<I", data, 40)[0] == 0xFFFFFFFF
        assert (len(data) - 44) / 2 / 22050 == pytest.approx(expected, abs=1e-3)
    else:  # FLAC: total_samples 0 = unknown (RFC 9639)
        assert streaminfo(data)[2] == 0
        decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-"],
                                 input=data, capture_output=True, check=True).stdout
        assert len(decoded) / 2 / 22050 == pytest.approx(expected, abs=0.01)


class HeldEngine(StreamingFakeEngine):
    """Streams its first call in 3 chunks and holds after the first chunk until
    ``release`` (a threading.Event: the daemon runs on its own event loop)."""

    def __init__(self) -> None:
        super().__init__(pieces=3)
        self.release = threading.Event()
        self.first_out = threading.Event()

    async def _stream(  # type: ignore[override]
        self, text: str, **kwargs: object
    ) -> AsyncIterator[AudioChunk | SynthesizedAudio]:
        first_call = not self.calls
        n = 0
        async for item in super()._stream(text, **kwargs):  # type: ignore[arg-type]
            yield item
            n += 1
            if first_call and n == 1:
                self.first_out.set()
                while not self.release.is_set():
                    await asyncio.to_thread(self.release.wait, 0.5)


@pytest.mark.parametrize("fmt", ["pcm", "mp3"])
def test_the_body_starts_with_the_first_chunk_of_the_first_segment(
    tmp_path: Path, fmt: str
) -> None:
    engine = HeldEngine()
    running = start_daemon(settings(tmp_path), llm=ScriptedLLM(["x"]), engine=engine)
    try:
        with httpx.stream("POST", running.url + "/v1/audio/speech", timeout=60,
                          json={"model": "tts-1", "input": MANY, "response_format": fmt}) as r:
            chunks = r.iter_bytes()
            first = next(chunks)
            # bytes arrived while the engine is still inside segment 0 ...
            assert first and engine.first_out.is_set() and not engine.release.is_set()
            # ... and before any segment file exists
            assert not list(Path(tmp_path).rglob("segment_0000.wav"))
            engine.release.set()
            rest = b"".join(chunks)
        assert len(first) + len(rest) > len(first)
    finally:
        engine.release.set()
        running.stop()


def test_without_ffmpeg_encoded_formats_are_refused_and_pcm_still_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no ffmpeg, not even for the start-up spares
    running = start_daemon(settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    try:
        r = httpx.post(running.url + "/v1/audio/speech", timeout=60,
                       json={"model": "tts-1", "input": MANY, "response_format": "mp3"})
        assert r.status_code == 503
        assert r.json()["error"]["type"] == "encoder_unavailable"
        assert r.json()["error"]["param"] == "response_format"
        r = httpx.post(running.url + "/v1/audio/speech", timeout=60,
                       json={"model": "tts-1", "input": MANY, "response_format": "pcm"})
        assert r.status_code == 200 and len(r.content) > 0
    finally:
        monkeypatch.undo()
        running.stop()
