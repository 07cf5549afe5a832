"""Why the LLM stopped reaches the run's result: ``RunCompleted.finish_reason``, the
manifest summary, the event dicts, and a warning line in the CLI.

A cut-off answer (token limit, content filter, refusal) must never look complete.
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from output import read_manifest
from pipeline import RunCompleted, RunFailed, create_streaming_pipeline, event_to_dict
from pipeline._cli import LiveView
from tests.fakes.engine import FakeEngine
from tests.fakes.llm_server import FakeLLMServer, Reply

GUARD = 60
ANSWER = ["The sky is blue", " because air", " scatters blue light", " more than red", "."]


async def _run(server: FakeLLMServer, tmp_path: Path, provider: str = "ollama") -> list[Any]:
    base_url = server.url + {"openai": "/v1", "gemini": "/v1beta"}.get(provider, "")
    llm_config: dict[str, Any] = {"model": "fake-model", "base_url": base_url}
    if provider in ("anthropic", "gemini"):
        llm_config["api_key"] = "k"
    async with create_streaming_pipeline(
        provider,
        streaming_config={"output_dir": str(tmp_path), "sentence_buffer_size": 1},
        llm_config=llm_config,
        tts_engine=FakeEngine(),
    ) as pipe:
        async with asyncio.timeout(GUARD):
            return [e async for e in pipe.astream_chat_to_audio("Why is the sky blue?")]


@pytest.mark.parametrize(
    ("provider", "raw", "ours"),
    [
        ("ollama", "length", "length"),
        ("openai", "content_filter", "content_filter"),
        ("anthropic", "refusal", "refusal"),
        ("gemini", "MAX_TOKENS", "length"),
        ("ollama", None, "stop"),
    ],
)
async def test_finish_reason_reaches_the_completed_event_and_the_manifest(
    provider: str, raw: str | None, ours: str, tmp_path: Path
) -> None:
    with FakeLLMServer(Reply(tokens=ANSWER, finish=raw, thinking=["Hmm, the sky."])) as server:
        events = await _run(server, tmp_path, provider)
    done = events[-1]
    assert isinstance(done, RunCompleted)
    assert done.finish_reason == ours and done.error is None
    assert done.complete_text == "".join(ANSWER)  # the reasoning is never part of it
    assert event_to_dict(done)["finish_reason"] == ours
    summary = read_manifest(done.manifest_path)[-1]
    assert summary["type"] == "summary" and summary["finish_reason"] == ours


async def test_no_finish_reason_after_an_llm_failure(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=ANSWER, finish="length", drop_after=2)) as server:
        events = await _run(server, tmp_path)
    assert any(isinstance(e, RunFailed) for e in events)
    assert events[-1].finish_reason is None and events[-1].error is not None


async def test_given_text_has_no_finish_reason(tmp_path: Path) -> None:
    async with create_streaming_pipeline(
        None, streaming_config={"output_dir": str(tmp_path)}, tts_engine=FakeEngine()
    ) as pipe:
        events = [e async for e in pipe.astream_text_to_audio("Hello there. Bye now.")]
    assert isinstance(events[-1], RunCompleted) and events[-1].finish_reason is None


def _completed(finish_reason: str | None) -> RunCompleted:
    return RunCompleted(
        run_id="r", t=1.0, audio_files_generated=0, complete_text="The answer is",
        ttft_s=0.1, ttfa_s=None, total_s=1.0, audio_s=0.0, rtf=None, output_dir="o",
        manifest_path="o/manifest.jsonl", finish_reason=finish_reason,
    )


@pytest.mark.parametrize(
    ("reason", "warning"),
    [
        ("length", "warning: the answer was cut off: max tokens reached"),
        ("content_filter", "warning: the answer was stopped by the provider's content filter"),
        ("refusal", "warning: the model refused to answer"),
        ("stop", None),
        (None, None),
    ],
)
def test_live_view_warns_when_the_answer_was_cut_off(
    reason: str | None, warning: str | None, capsys: pytest.CaptureFixture[str]
) -> None:
    LiveView(io.StringIO()).show(_completed(reason))
    err = capsys.readouterr().err
    if warning is None:
        assert "warning" not in err
    else:
        assert warning in err
    assert "audio file(s) in" in err  # the summary line still follows


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
def test_cli_ask_prints_the_warning(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "PULSE_SERVER": "unix:" + str(tmp_path / "no-pulse"),
        "PYTHONPATH": str(repo),
    }
    env = {k: v for k, v in env.items() if not k.startswith("SPEAKSTREAM_")}
    with FakeLLMServer(Reply(tokens=ANSWER, finish="length")) as server:
        done = subprocess.run(
            [sys.executable, "-m", "pipeline._cli", "ask", "Why?", "--llm", "ollama",
             "--base-url", server.url, "--model", "fake", "--tts", "espeak", "--no-play"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
        )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "".join(ANSWER)
    assert "warning: the answer was cut off: max tokens reached" in done.stderr
    assert "Traceback" not in done.stderr
