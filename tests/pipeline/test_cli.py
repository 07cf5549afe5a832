"""The ``speakstream`` CLI, run as a real subprocess against the fake LLM server
and real espeak-ng (no sound device: files only)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from output import read_manifest
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

ANSWER = (
    "Paris is the capital of France. It sits on the river Seine. "
    "About two million people live in the city itself."
)
TOKENS = [ANSWER.split(" ")[0]] + [" " + w for w in ANSWER.split(" ")[1:]]
REPO = Path(__file__).resolve().parents[2]


def cli(tmp_path: Path, *args: str, **kw: Any) -> subprocess.Popen[str]:
    """Start ``python -m pipeline._cli`` in ``tmp_path`` with a clean config and no
    sound server reachable (HOME/XDG point into tmp_path)."""
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "PULSE_SERVER": "unix:" + str(tmp_path / "no-pulse"),
        "PYTHONPATH": str(REPO),
    }
    env = {k: v for k, v in env.items() if not k.startswith("SPEAKSTREAM_")}
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline._cli", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def llm_flags(server: FakeLLMServer) -> list[str]:
    return ["--llm", "ollama", "--base-url", server.url, "--model", "fake", "--tts", "espeak"]


def test_ask_json_prints_parseable_ndjson_and_saves_files(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        proc = cli(tmp_path, "ask", "Capital of France?", *llm_flags(server), "--json",
                   "--no-play", "-o", "out", "--format", "mp3")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    statuses = [e["status"] for e in events]
    assert statuses[0] == "started" and statuses[-1] == "completed"
    assert {"text", "segment", "audio"} <= set(statuses)
    done = events[-1]
    assert done["complete_text"] == ANSWER and done["error"] is None
    assert all(p.endswith(".mp3") and Path(p).is_file() for p in done["audio_files"])
    assert Path(done["output_dir"]).parent == tmp_path / "out"
    assert "model ollama:fake (flag), tts espeak (flag)" in err
    records = read_manifest(done["manifest_path"])
    assert records[-1]["type"] == "summary" and records[-1]["status"] == "completed"


def test_ask_live_view_streams_text_and_says_once_there_is_no_device(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        proc = cli(tmp_path, "ask", "Capital?", *llm_flags(server))
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() == ANSWER
    assert err.count("no audio output found") == 1 and err.count("writing files only") == 1
    assert "audio file(s) in" in err and "TTFA" in err
    assert len(list((tmp_path / "speakstream-out").glob("*/segment_*.wav"))) >= 2


def test_sigint_stops_the_answer_keeps_files_and_exits_130(tmp_path: Path) -> None:
    gate = Gate()
    gate.release(len(TOKENS) // 2)  # the rest is never sent: the model is "still talking"
    with FakeLLMServer(Reply(tokens=TOKENS, gate=gate)) as server:
        proc = cli(tmp_path, "ask", "Capital?", *llm_flags(server), "--json", "--no-play")
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(json.loads(line))
            if seen[-1]["status"] == "audio":
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
        assert server.requests[0].disconnected.wait(10), "the LLM request was not cancelled"
    assert proc.returncode == 130, err
    statuses = [json.loads(line)["status"] for line in rest.splitlines()]
    assert statuses[-2:] == ["cancelled", "completed"]
    assert "Traceback" not in err
    files = list((tmp_path / "speakstream-out").glob("*/segment_*.wav"))
    assert len(files) >= 1


def test_chat_keeps_history_and_quits(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        proc = cli(tmp_path, "chat", *llm_flags(server), "--json", "--no-play",
                   stdin=subprocess.PIPE)
        out, err = proc.communicate("Capital of France?\n\nAnd of Italy?\n/quit\n", timeout=120)
        requests = [r.json for r in server.requests]
    assert proc.returncode == 0, err
    completed = [json.loads(line) for line in out.splitlines() if '"completed"' in line]
    assert len(completed) == 2
    assert [m["role"] for m in requests[1]["messages"]][-3:] == ["user", "assistant", "user"]
    assert requests[1]["messages"][-2]["content"] == ANSWER


def test_narrate_markdown_chapters_to_merged_files(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(
        "# One\n\nThe first chapter is short. It has two sentences.\n\n"
        "# Two\n\nThe second chapter is shorter.\n",
        encoding="utf-8",
    )
    proc = cli(tmp_path, "narrate", "book.md", "--tts", "espeak", "-o", "book", "--merge",
               "--format", "mp3", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    done = [json.loads(line) for line in out.splitlines() if '"completed"' in line]
    assert [(d["chapter"], d["chapter_title"]) for d in done] == [(1, "One"), (2, "Two")]
    assert [Path(d["merged_path"]).relative_to(tmp_path) for d in done] == [
        Path("book/chapter_01/merged.mp3"),
        Path("book/chapter_02/merged.mp3"),
    ]


def test_bad_option_value_exits_2_naming_it(tmp_path: Path) -> None:
    proc = cli(tmp_path, "narrate", "-", "--workers", "0", "--tts", "espeak",
               stdin=subprocess.PIPE)
    _, err = proc.communicate("Hello.\n", timeout=60)
    assert proc.returncode == 2
    assert "workers must be an integer in [1, 32], got 0" in err
