"""The daemon with the real Ollama client against the fake LLM server and real espeak-ng;
``speakstream serve`` as a real process (``ask --daemon``: test_ask_daemon.py)."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import llm
import tts
from pipeline._daemon import DaemonSettings
from tests.fakes.llm_server import FakeLLMServer, Reply

from .conftest import read_sse, start_daemon

TOKENS = ["Hello ", "from ", "the ", "daemon. ", "It ", "speaks ", "every ", "sentence. ",
          "Then ", "it ", "stops."]

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def test_ollama_client_and_espeak_behind_the_daemon(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        client = llm.create_client("ollama", model="fake-model", base_url=server.url)
        running = start_daemon(DaemonSettings(output_dir=tmp_path), llm=client,
                               engine=tts.EspeakEngine())
        try:
            with httpx.stream("POST", running.url + "/v1/speak",
                              json={"message": "Say hello"}, timeout=60) as response:
                events = list(read_sse(response))
            assert server.requests[0].json["messages"][-1]["content"] == "Say hello"
            done = events[-1][1]
            assert events[-1][0] == "done" and done["error"] is None
            assert "".join(d["text"] for k, d in events if k == "token") == "".join(TOKENS)
            wav = httpx.get(running.url + done["audio_urls"][0]).content
            assert wav[:4] == b"RIFF" and len(wav) > 10_000  # real speech

        finally:
            running.stop()
            asyncio.run(client.aclose())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not hasattr(tts, "create_engine"), reason="tts.create_engine not built yet")
def test_speakstream_serve_process(tmp_path: Path) -> None:
    port = _free_port()
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline._cli", "serve", "--port", str(port),
             "--output-dir", str(tmp_path), "--llm", "ollama", "--model", "m",
             "--base-url", server.url, "--tts", "espeak"],
            env={**os.environ, "SPEAKSTREAM_TOKEN": "process-token-1"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(400):  # wait for the socket (bounded; no time asserted)
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.ConnectError:
                    time.sleep(0.05)
            headers = {"Authorization": "Bearer process-token-1"}
            assert httpx.post(url + "/v1/speak", json={"message": "x"}).status_code == 401
            with httpx.stream("POST", url + "/v1/speak", json={"message": "hi"},
                              headers=headers, timeout=60) as response:
                events = list(read_sse(response))
            assert events[-1][0] == "done" and events[-1][1]["error"] is None
        finally:
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=30)
            assert proc.stdout is not None
            proc.stdout.close()
