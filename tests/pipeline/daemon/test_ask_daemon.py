"""``speakstream ask --daemon URL`` is ``ask`` whose work runs in the daemon (issue 10
item 2): options are sent or refused, audio is saved under ``-o`` like a local run and
played through the same player, ``--json`` prints the events of a local run.

The CLI is the real console script in a subprocess; the daemon a real uvicorn on
127.0.0.1 with the real Ollama client (against the fake server) and real espeak-ng.
"""

from __future__ import annotations

import json
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from output import read_manifest
from pipeline._daemon import DaemonSettings
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply
from tests.fakes.pulse import PulseServer, pulse_available

from ..clirun import cli, run
from .conftest import Daemon, start_daemon

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

ANSWER = ("Paris is the capital of France. It sits on the river Seine. "
          "About two million people live in the city itself. It has many bridges.")
TOKENS = [ANSWER.split(" ")[0]] + [" " + w for w in ANSWER.split(" ")[1:]]


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(Reply(tokens=TOKENS)) as fake:
        yield fake


@pytest.fixture
def daemon(tmp_path: Path, server: FakeLLMServer) -> Iterator[Daemon]:
    settings = DaemonSettings(output_dir=tmp_path / "daemon", llm_provider="ollama",
                              llm_config={"base_url": server.url, "model": "fake"},
                              tts_provider="espeak")
    running = start_daemon(settings)
    try:
        yield running
    finally:
        running.stop()


def _events(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _layout(run_dir: Path) -> list[str]:
    """The run's files (not the hidden lock file a local run's directory holds)."""
    return sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))


OUTPUT_FLAGS = ["--tts", "espeak", "--format", "mp3", "--merge", "--subtitles", "vtt", "--json"]


def test_ask_daemon_saves_and_reports_like_a_local_run(
    tmp_path: Path, server: FakeLLMServer, daemon: Daemon
) -> None:
    code, out, err = run(tmp_path, "ask", "Capital of France?", "--llm", "ollama",
                         "--base-url", server.url, "--model", "fake", "-o", "local",
                         *OUTPUT_FLAGS)
    assert code == 0, err
    local = _events(out)
    code, out, err = run(tmp_path, "ask", "--daemon", daemon.url, "Capital of France?",
                         "-o", "remote", *OUTPUT_FLAGS)
    assert code == 0, err
    assert "Traceback" not in err
    remote = _events(out)

    # The same events: the same status names, each with the same fields.
    assert remote[0]["status"] == "started"
    assert remote[-1]["status"] == "completed"
    fields = {e["status"]: set(e) for e in local}
    assert {e["status"]: set(e) for e in remote} == fields
    assert [e["status"] for e in remote if e["status"] != "text"] == \
        [e["status"] for e in local if e["status"] != "text"]
    assert "".join(e["text"] for e in remote if e["status"] == "text") == ANSWER
    assert [e["text"] for e in remote if e["status"] == "segment"] == \
        [e["text"] for e in local if e["status"] == "segment"]

    # The same files, in the same layout, under -o (not on the daemon's side only).
    done_local, done_remote = local[-1], remote[-1]
    assert done_remote["error"] is None and done_remote["complete_text"] == ANSWER
    run_dir = Path(done_remote["output_dir"])
    assert run_dir.parent == tmp_path / "remote" and run_dir.name == done_remote["run_id"]
    assert _layout(run_dir) == _layout(Path(done_local["output_dir"]))
    assert _layout(run_dir) == ["manifest.jsonl", "merged.mp3", "merged.vtt",
                                *[f"segment_{i:04d}.mp3" for i in range(len(
                                    done_remote["audio_files"]))]]
    audio = [e for e in remote if e["status"] == "audio"]
    assert [e["path"] for e in audio] == done_remote["audio_files"]
    for event in audio:
        served = httpx.get(f"{daemon.url}/v1/runs/{done_remote['run_id']}/audio/"
                           f"{event['index']}").content
        assert Path(event["path"]).read_bytes() == served  # the daemon's bytes, as they are
    assert Path(done_remote["merged_path"]).read_bytes()[:3] in (b"ID3", b"\xff\xfb")
    assert Path(done_remote["subtitles_path"]).read_text().startswith("WEBVTT")

    manifest, local_manifest = read_manifest(run_dir), read_manifest(done_local["output_dir"])
    assert [set(r) for r in manifest] == [set(r) for r in local_manifest]
    segments = [r for r in manifest if r["type"] == "segment"]
    assert [r["sample_rate"] for r in segments] == [22050] * len(segments)
    assert manifest[-1]["status"] == "completed"
    assert manifest[-1]["merged_path"] == "merged.mp3"


def test_every_option_reaches_the_daemon(
    tmp_path: Path, server: FakeLLMServer, daemon: Daemon
) -> None:
    code, out, err = run(tmp_path, "ask", "--daemon", daemon.url, "Capital?", "--voice", "en-us",
                         "--rate", "2", "--workers", "1", "--max-tokens", "9", "--system",
                         "Be brief.", "--format", "ogg", "--llm", "ollama", "--model", "other",
                         "--json")
    assert code == 0, err
    request = server.requests[-1].json
    assert request["model"] == "other" and request["options"]["num_predict"] == 9
    assert request["messages"][0] == {"role": "system", "content": "Be brief."}
    done = _events(out)[-1]
    record = httpx.get(f"{daemon.url}/v1/runs/{done['run_id']}").json()
    segments = [r for r in record["manifest"] if r["type"] == "segment"]
    assert {r["voice"] for r in segments} == {"en-us"}
    assert {r["format"] for r in segments} == {"ogg"}
    slow_code, slow_out, _ = run(tmp_path, "ask", "--daemon", daemon.url, "Capital?", "--json")
    assert slow_code == 0
    assert done["audio_s"] < _events(slow_out)[-1]["audio_s"] * 0.75  # --rate 2 was applied


@pytest.mark.parametrize(
    ("flag", "value"), [("--base-url", "http://127.0.0.1:1"), ("--idle-timeout", "5"),
                        ("--first-token-timeout", "5")])
def test_options_the_daemon_owns_are_refused(
    tmp_path: Path, daemon: Daemon, flag: str, value: str
) -> None:
    code, _, err = run(tmp_path, "ask", "--daemon", daemon.url, "--llm", "ollama", flag, value,
                       "hi")
    assert code == 2
    assert f"speakstream: {flag} cannot be used with --daemon" in err and "Traceback" not in err


def test_daemon_errors_are_one_line(tmp_path: Path, daemon: Daemon) -> None:
    code, _, err = run(tmp_path, "ask", "--daemon", "http://127.0.0.1:9", "hi", "--no-play")
    assert code == 1 and err.count("\n") == 1 and "ConnectError" in err, err
    code, _, err = run(tmp_path, "ask", "--daemon", daemon.url, "--tts", "nope", "hi")
    assert code == 2 and "HTTP 422" in err and "Traceback" not in err


def test_ask_daemon_needs_the_token_and_reads_it_from_the_settings(
    tmp_path: Path, server: FakeLLMServer
) -> None:
    settings = DaemonSettings(output_dir=tmp_path / "d", token="right-token-1",
                              llm_provider="ollama",
                              llm_config={"base_url": server.url, "model": "fake"},
                              tts_provider="espeak")
    running = start_daemon(settings)
    try:
        code, _, err = run(tmp_path, "ask", "--daemon", running.url, "hi")
        assert code == 2 and "HTTP 401" in err
        (tmp_path / "speakstream.toml").write_text('token = "right-token-1"\n')
        code, _, err = run(tmp_path, "ask", "--daemon", running.url, "hi", "--json")
        assert code == 0, err
    finally:
        running.stop()


def test_ctrl_c_cancels_the_run_on_the_daemon_and_keeps_the_files(tmp_path: Path) -> None:
    gate = Gate()
    gate.release(len(TOKENS) // 2)  # the rest never comes: the model is "still talking"
    with FakeLLMServer(Reply(tokens=TOKENS, gate=gate)) as server:
        settings = DaemonSettings(output_dir=tmp_path / "d", llm_provider="ollama",
                                  llm_config={"base_url": server.url, "model": "fake"},
                                  tts_provider="espeak")
        daemon = start_daemon(settings)
        try:
            proc = cli(tmp_path, "ask", "--daemon", daemon.url, "Capital?", "--json",
                       "-o", "out")
            assert proc.stdout is not None
            seen = []
            for line in proc.stdout:
                seen.append(json.loads(line))
                if seen[-1]["status"] == "audio":
                    break
            proc.send_signal(signal.SIGINT)
            rest, err = proc.communicate(timeout=60)
            assert proc.returncode == 130, err
            events = seen + _events(rest)
            assert [e["status"] for e in events][-2:] == ["cancelled", "completed"]
            run_id = events[0]["run_id"]
            assert httpx.get(f"{daemon.url}/v1/runs/{run_id}").json()["status"] == "cancelled"
            assert server.requests[-1].disconnected.wait(10), "the LLM request was not cancelled"
        finally:
            gate.release_all()
            daemon.stop()
    manifest = read_manifest(tmp_path / "out" / run_id)
    assert manifest[-1]["type"] == "summary" and manifest[-1]["status"] == "cancelled"
    assert (tmp_path / "out" / run_id / "segment_0000.wav").is_file()


@pytest.mark.skipif(not pulse_available(), reason="needs pulseaudio-utils")
def test_ask_daemon_plays_the_audio_here(tmp_path: Path, daemon: Daemon) -> None:
    with PulseServer() as pulse, pulse.record() as rec:
        code, _, err = run(tmp_path, "ask", "--daemon", daemon.url, "Capital?", env=pulse.env)
        assert code == 0, err
        assert "writing files only" not in err
        assert rec.wait_until(lambda pcm: any(pcm[i] not in (0, 255)
                                              for i in range(0, len(pcm), 97)), timeout=30)
