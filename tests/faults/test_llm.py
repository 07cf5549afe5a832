"""LLM faults per provider (real wire formats from tests/fakes/llm_server.py):
a dropped connection, a stall, 404 and 401. In process for all four providers,
and through the real CLI once per fault (a different provider each time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.llm.conftest import HTTP_PROVIDERS
from tests.pipeline.clirun import run

from .conftest import TOKENS, collect, llm_pipeline
from .invariants import check_cli_error, check_files, check_text, completed, of
from .table import fault

CUT = 24  # tokens sent before the fault: two sentences and a part of the third


async def run_with(provider: str, reply: Reply, out: Path,
                   **llm_options: Any) -> tuple[list[dict[str, Any]], str, FakeLLMServer]:
    with FakeLLMServer(reply) as server:
        async with llm_pipeline(provider, server.url, out, **llm_options) as pipe:
            events = await collect(pipe.astream_chat_to_audio("Why is the sky blue?"))
        sent = "".join(TOKENS[: server.requests[-1].tokens_sent])
    return events, sent, server


def assert_partial_answer_kept(events: list[dict[str, Any]], sent: str, out: Path,
                               error_type: str) -> None:
    assert sent and len(sent) < len("".join(TOKENS))
    check_text(events, sent)
    done = completed(events)
    assert done["error"] is not None and done["error"].startswith(error_type)
    errors = [e for e in of(events, "error") if e["segment_index"] is None]
    assert [e["error_type"] for e in errors] == [error_type]
    assert errors[0]["partial_text"] == sent
    assert len(done["audio_indices"]) >= 2  # the two whole sentences at least
    check_files(Path(done["output_dir"]), events)


@fault("llm-drop")
@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_a_dropped_connection_keeps_the_text_received(provider: str,
                                                            tmp_path: Path) -> None:
    events, sent, _ = await run_with(provider, Reply(tokens=TOKENS, drop_after=CUT), tmp_path)
    assert_partial_answer_kept(events, sent, tmp_path, "LLMStreamError")


@fault("llm-stall")
@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_a_stalled_stream_times_out_and_keeps_the_text_received(
    provider: str, tmp_path: Path
) -> None:
    events, sent, server = await run_with(
        provider, Reply(tokens=TOKENS, stall_after=CUT), tmp_path, idle_timeout=1.0
    )
    assert_partial_answer_kept(events, sent, tmp_path, "LLMTimeoutError")
    assert server.requests[-1].disconnected.is_set()  # the request was closed, not leaked


@fault("llm-404")
@fault("llm-401")
@pytest.mark.parametrize("status", [404, 401])
@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_a_refused_request_is_one_clear_error_and_no_segment(
    provider: str, status: int, tmp_path: Path
) -> None:
    events, sent, server = await run_with(provider, Reply(status=status), tmp_path)
    assert sent == "" and len(server.requests) == 1  # not retried
    check_text(events, sent)
    done = completed(events)
    expected = {404: "ModelNotFoundError", 401: "LLMAuthError"}[status]
    assert [e["error_type"] for e in of(events, "error")] == [expected]
    assert done["error"].startswith(expected) and done["audio_files"] == []
    if status == 404:
        assert "fake-model" in of(events, "error")[0]["message"]
    check_files(Path(done["output_dir"]), events)


# -- the same faults through the CLI: one line, the documented exit code ---------------

CLI_CASES = [  # (fault, provider, reply, exit code, error class or message part)
    ("llm-drop", "ollama", Reply(tokens=TOKENS, drop_after=CUT), 1, "LLMStreamError"),
    ("llm-stall", "openai", Reply(tokens=TOKENS, stall_after=CUT), 1, "LLMTimeoutError"),
    ("llm-404", "anthropic", Reply(status=404), 2, "fake-model"),
    ("llm-401", "gemini", Reply(status=401), 2, "LLMAuthError"),
]


def cli_flags(provider: str, url: str) -> list[str]:
    base = {"ollama": url, "openai": url + "/v1", "anthropic": url, "gemini": url + "/v1beta"}
    return ["--llm", provider, "--base-url", base[provider], "--model", "fake-model",
            "--tts", "espeak", "--no-play", "--idle-timeout", "1", "--format", "wav"]


@fault("llm-drop")
@fault("llm-stall")
@fault("llm-404")
@fault("llm-401")
@pytest.mark.parametrize(("name", "provider", "reply", "code", "expect"), CLI_CASES,
                         ids=[c[0] for c in CLI_CASES])
def test_the_cli_says_an_llm_failure_in_one_line_and_keeps_the_files(
    tmp_path: Path, name: str, provider: str, reply: Reply, code: int, expect: str | None
) -> None:
    keys = {"OPENAI_API_KEY": "sk-test", "ANTHROPIC_API_KEY": "sk-ant-test",
            "GEMINI_API_KEY": "g-test"}
    with FakeLLMServer(reply) as server:
        # --json for the events; a second run without it for the human error line
        status, out, err = run(tmp_path, "ask", "Why?", *cli_flags(provider, server.url),
                               "--json", "-o", "json", env=keys)
        sent = "".join(TOKENS[: server.requests[0].tokens_sent])
        server.push(reply)
        human_status, _, human_err = run(tmp_path, "ask", "Why?",
                                         *cli_flags(provider, server.url), "-o", "human",
                                         env=keys)
    assert status == human_status == code, err
    events = [json.loads(line) for line in out.splitlines()]
    check_text(events, sent)
    done = completed(events)
    assert done["error"] is not None
    check_files(Path(done["output_dir"]), events)
    assert "Traceback" not in err
    check_cli_error(human_err, expect=expect)
