"""POST /v1/audio/speech, driven by the official ``openai`` package, with real espeak-ng."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from pipeline._daemon import DaemonSettings
from tests.fakes.engine import FakeEngine
from tts import EspeakEngine

from .conftest import Daemon, ScriptedLLM, start_daemon

TEXT = (
    "The daemon speaks like the OpenAI API. Long input is cut into sentences. "
    "Each sentence is synthesized while the next one waits. The response streams "
    "as segments finish, so the first bytes arrive early."
)

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None or
                                shutil.which("espeak-ng") is None,
                                reason="needs ffmpeg and espeak-ng")


@pytest.fixture(scope="module")
def espeak_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    settings = DaemonSettings(output_dir=tmp_path_factory.mktemp("speech"))
    running = start_daemon(settings, llm=ScriptedLLM(["unused"]), engine=EspeakEngine())
    yield running
    running.stop()


def _probe(data: bytes, tmp_path: Path, name: str) -> dict:
    path = tmp_path / name
    path.write_bytes(data)
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=format_name,duration:"
         "stream=codec_name,sample_rate", "-of", "json", str(path)],
        capture_output=True, check=True, text=True,
    )
    return json.loads(out.stdout)


@pytest.mark.parametrize(
    ("fmt", "codec", "container"),
    [("mp3", "mp3", "mp3"), ("opus", "opus", "ogg"), ("flac", "flac", "flac"),
     ("wav", "pcm_s16le", "wav"), ("aac", "aac", "aac")],
)
def test_openai_sdk_streams_real_audio(espeak_daemon: Daemon, tmp_path: Path, fmt: str,
                                       codec: str, container: str) -> None:
    with OpenAI(base_url=espeak_daemon.url + "/v1", api_key="not-needed") as client, \
            client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=fmt  # type: ignore[arg-type]
    ) as response:
        assert response.headers.get("transfer-encoding") == "chunked"
        run_id = response.headers["x-run-id"]
        data = b"".join(response.iter_bytes())
    magic = {"mp3": (b"ID3", b"\xff"), "opus": (b"OggS",), "flac": (b"fLaC",),
             "wav": (b"RIFF",), "aac": (b"\xff",)}[fmt]
    assert data.startswith(magic)
    info = _probe(data, tmp_path, f"speech.{fmt}")
    assert info["streams"][0]["codec_name"] == codec
    assert container in info["format"]["format_name"]
    # Every segment made it into the ONE stream: decoded length == sum of the segments.
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(tmp_path / f"speech.{fmt}"), "-f", "s16le",
         "-ac", "1", "-ar", "22050", "-"], capture_output=True, check=True,
    ).stdout
    run = httpx.get(f"{espeak_daemon.url}/v1/runs/{run_id}").json()
    assert len(run["audio"]) >= 2
    expected = sum(a["duration_s"] for a in run["audio"])
    assert len(decoded) / 2 / 22050 == pytest.approx(expected, abs=0.15)


def test_pcm_is_raw_samples_of_every_segment(espeak_daemon: Daemon) -> None:
    with OpenAI(base_url=espeak_daemon.url + "/v1", api_key="x") as client, \
            client.audio.speech.with_streaming_response.create(
        model="espeak", voice="en-us", input=TEXT, response_format="pcm", speed=1.5
    ) as response:
        rate = int(response.headers["x-sample-rate"])
        run_id = response.headers["x-run-id"]
        data = b"".join(response.iter_bytes())
    run = httpx.get(f"{espeak_daemon.url}/v1/runs/{run_id}").json()
    total = sum(a["duration_s"] for a in run["audio"])
    assert len(run["audio"]) >= 2
    assert len(data) % 2 == 0
    assert len(data) / 2 / rate == pytest.approx(total, abs=0.01)
    assert not data.startswith(b"RIFF")


def test_errors_are_openai_shaped(espeak_daemon: Daemon) -> None:
    r = httpx.post(espeak_daemon.url + "/v1/audio/speech",
                   json={"model": "tts-1", "input": "hi", "response_format": "exe"})
    assert r.status_code == 422 and "response_format" in r.json()["error"]["message"]
    r = httpx.post(espeak_daemon.url + "/v1/audio/speech",
                   json={"model": "tts-1", "input": "x" * 5000})
    assert r.status_code == 413 and r.json()["error"]["param"] == "input"
    r = httpx.post(espeak_daemon.url + "/v1/audio/speech",
                   json={"model": "tts-1", "input": "hi", "speed": 9})
    assert r.status_code == 422


class GatedEngine(FakeEngine):
    """FakeEngine whose calls from ``hold_from`` on wait for a threading.Event."""

    def __init__(self, hold_from: int) -> None:
        super().__init__()
        self.hold_from = hold_from
        self.release = threading.Event()
        self.holding = threading.Event()

    async def _synthesize(self, text: str, **kwargs):  # type: ignore[no-untyped-def]
        if len(self.calls) >= self.hold_from:
            self.holding.set()
            while not self.release.is_set():
                await asyncio.to_thread(self.release.wait, 0.5)
        return await super()._synthesize(text, **kwargs)


def test_first_bytes_arrive_before_later_segments_are_synthesized(tmp_path: Path) -> None:
    engine = GatedEngine(hold_from=2)
    settings = DaemonSettings(
        output_dir=tmp_path,
        streaming_config=DaemonSettings().streaming_config.replace(
            sentence_buffer_size=1, min_chunk_length=5, workers=1),
    )
    running = start_daemon(settings, llm=ScriptedLLM(["x"]), engine=engine)
    try:
        with httpx.stream("POST", running.url + "/v1/audio/speech",
                          json={"model": "tts-1", "input": TEXT, "response_format": "pcm"},
                          timeout=60) as response:
            chunks = response.iter_bytes()
            first = next(chunks)
            assert first  # audio of the first segment(s)...
            assert engine.holding.wait(30)  # ...while a later segment is still held
            assert not engine.release.is_set()
            engine.release.set()
            rest = b"".join(chunks)
        assert len(first) + len(rest) > len(first)
    finally:
        engine.release.set()
        running.stop()


def _failing_daemon(tmp_path: Path, fail: str) -> Daemon:
    from tts import SynthesisError

    boom = SynthesisError("boom", engine="fake")
    engine = FakeEngine(fail_on={(lambda text: fail in text): boom})
    settings = DaemonSettings(
        output_dir=tmp_path,
        streaming_config=DaemonSettings().streaming_config.replace(
            sentence_buffer_size=1, min_chunk_length=5, workers=1),
    )
    return start_daemon(settings, llm=ScriptedLLM(["x"]), engine=engine)


def test_a_failed_later_segment_breaks_the_stream_instead_of_skipping_it(
    tmp_path: Path,
) -> None:
    running = _failing_daemon(tmp_path, "Each sentence")  # the third sentence fails
    try:
        with pytest.raises(httpx.HTTPError), httpx.stream(
            "POST", running.url + "/v1/audio/speech",
            json={"model": "tts-1", "input": TEXT, "response_format": "pcm"}, timeout=60,
        ) as response:
            assert response.status_code == 200
            b"".join(response.iter_bytes())  # ends in a broken body, not a silent gap
    finally:
        running.stop()


def test_a_failed_first_segment_is_a_502(tmp_path: Path) -> None:
    running = _failing_daemon(tmp_path, "The daemon speaks")
    try:
        response = httpx.post(running.url + "/v1/audio/speech", timeout=60,
                              json={"model": "tts-1", "input": TEXT, "response_format": "pcm"})
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "synthesis_failed"
    finally:
        running.stop()
