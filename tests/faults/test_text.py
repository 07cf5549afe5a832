"""Hard answers from the LLM: cut off or blocked (per provider), no sentence
punctuation at all, control characters; and a daemon client that hangs up."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from llm import SSEDecoder
from tests.fakes.engine import FakeEngine
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.llm.conftest import HTTP_PROVIDERS
from tests.pipeline.daemon.conftest import LONG_ANSWER, ScriptedLLM, start_daemon
from tests.pipeline.test_e2e_fake_llm import tokens

from .conftest import ANSWER, TOKENS, collect, llm_pipeline
from .invariants import check_files, check_text, completed, from_daemon, of
from .table import fault
from .test_daemon import daemon_settings

ALICE = Path(__file__).resolve().parents[1] / "data" / "alice_in_wonderland.txt"
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
CAP = 600  # the default max_segment_length


async def answer(provider: str, reply: Reply, out: Path,
                 engine: Any = None) -> tuple[list[dict[str, Any]], FakeLLMServer]:
    with FakeLLMServer(reply) as server:
        async with llm_pipeline(provider, server.url, out, engine=engine) as pipe:
            events = await collect(pipe.astream_chat_to_audio("Go on."))
    return events, server


LENGTH = {"ollama": "length", "openai": "length", "anthropic": "max_tokens",
          "gemini": "MAX_TOKENS"}


@fault("llm-cut-off")
@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_a_cut_off_answer_is_all_spoken_and_never_looks_complete(
    provider: str, tmp_path: Path
) -> None:
    events, _ = await answer(provider, Reply(tokens=TOKENS, finish=LENGTH[provider]), tmp_path)
    check_text(events, ANSWER)
    done = completed(events)
    assert done["error"] is None and done["finish_reason"] == "length"
    records = check_files(Path(done["output_dir"]), events)
    assert records[-1]["finish_reason"] == "length"


@fault("llm-cut-off")
async def test_a_blocked_gemini_prompt_is_one_clear_error(tmp_path: Path) -> None:
    events, server = await answer("gemini", Reply(block_reason="SAFETY"), tmp_path)
    check_text(events, "")
    assert len(server.requests) == 1  # not retried
    assert [e["error_type"] for e in of(events, "error")] == ["PromptBlockedError"]
    assert "SAFETY" in of(events, "error")[0]["message"]
    check_files(Path(completed(events)["output_dir"]), events)


def unpunctuated(lines: bool) -> str:
    """About 20,000 characters of Alice without . ! ? ; : , (and, unless ``lines``,
    without line breaks)."""
    text = ALICE.read_text(encoding="utf-8")[2000:22000]
    text = re.sub(r"[.!?;:,]", "", text)
    if lines:
        return re.sub(r"\n{2,}", "\n", text)
    return " ".join(text.split())


@fault("no-punctuation")
@pytest.mark.parametrize("lines", [False, True], ids=["one-line", "poem"])
async def test_text_without_punctuation_still_gives_audio_in_bounded_segments(
    lines: bool, tmp_path: Path
) -> None:
    text = unpunctuated(lines)
    engine = FakeEngine(seconds_per_char=0.0005)
    events, _ = await answer("ollama", Reply(tokens=tokens(text)), tmp_path, engine)
    segments = check_text(events, text)
    assert len(segments) >= len(text) // CAP
    assert max(len(s["text"]) for s in segments) <= CAP
    done = completed(events)
    assert done["error"] is None and done["failed_indices"] == []
    check_files(Path(done["output_dir"]), events)


@fault("control-chars")
async def test_control_characters_are_kept_in_the_text_and_never_spoken(
    tmp_path: Path
) -> None:
    dirty = ["Hello", "\x00", " there", ".\x07", " The", " \x1b[31mred\x1b[0m", " part",
             " ends", " here\x00", " too.", " Tabs\tand", " feeds\x0c", " stay", " calm."]
    engine = FakeEngine()
    events, _ = await answer("openai", Reply(tokens=dirty), tmp_path, engine)
    segments = check_text(events, "".join(dirty))
    assert any(CONTROL.search(s["text"]) for s in segments)  # the raw text is kept
    for s in segments:
        assert not CONTROL.search(s["spoken_text"])
    assert engine.calls and not [c for c in engine.calls if CONTROL.search(c.text)]
    records = check_files(Path(completed(events)["output_dir"]), events)
    assert not [r for r in records if CONTROL.search(r.get("text", ""))]


@fault("client-disconnect")
def test_a_client_hanging_up_mid_answer_ends_its_run_and_keeps_its_files(
    tmp_path: Path,
) -> None:
    llm = ScriptedLLM(LONG_ANSWER, gate_after=10)
    # A short grace: nobody reconnects here (tests/pipeline/daemon/test_reconnect.py does).
    settings = daemon_settings(tmp_path / "out", reconnect_grace_s=0.5)
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    try:
        decoder, messages = SSEDecoder(), []
        with httpx.stream("POST", running.url + "/v1/speak", json={"message": "Go"},
                          timeout=60) as r:
            for text in r.iter_text():
                messages += [(e.event, json.loads(e.data)) for e in decoder.feed(text)]
                if any(kind == "audio" for kind, _ in messages):
                    break  # hang up while the LLM is still talking
        events = from_daemon(messages)
        run_id = events[0]["run_id"]
        for _ in range(400):  # bounded; no time asserted
            status = httpx.get(f"{running.url}/v1/runs/{run_id}").json()["status"]
            if status != "running":
                break
            time.sleep(0.05)
        assert status == "cancelled"
        assert llm.cancelled.wait(30), "the LLM request was not cancelled"
    finally:
        llm.gate.set()
        running.stop()
    run_dir = running.settings.runs_dir / run_id
    records = check_files(run_dir)
    assert records[-1]["status"] == "cancelled"
    written = [r["index"] for r in records if r["type"] == "segment"]
    assert written and written == list(range(len(written)))  # a prefix, in order
    by_index = {e["index"]: e for e in of(events, "segment")}
    for r in records:
        if r["type"] == "segment" and r["index"] in by_index:
            assert r["text"] == by_index[r["index"]]["spoken_text"]
