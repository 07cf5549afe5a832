"""Engine and disk faults under a streamed answer: an engine failing on one
segment (its own error, or any exception), an engine that is offline, a disk
that fills up (a real 200 KiB tmpfs when root, an injected ENOSPC writer
otherwise)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import edge_tts
import pytest

from tests.fakes.engine import FakeEngine
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.pipeline.test_pipeline_sinks import _fill_disk_from, small_disk
from tts import EdgeEngine, FallbackEngine, SynthesisError

from .conftest import ANSWER, TOKENS, collect, llm_pipeline
from .invariants import check_files, check_text, completed, of
from .table import fault

__all__ = ["small_disk"]  # a fixture, used by name


async def answer(out: Path, engine: Any) -> list[dict[str, Any]]:
    """The whole ANSWER streamed by the fake Ollama server into ``engine``."""
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        async with llm_pipeline("ollama", server.url, out, engine=engine) as pipe:
            return await collect(pipe.astream_chat_to_audio("Why is the sky blue?"))


@fault("engine-fails")
@pytest.mark.parametrize("failure", [
    SynthesisError("the voice crashed", engine="fake"),
    RuntimeError("a bug in the engine"),
    OSError(errno.EPIPE, "Broken pipe"),
], ids=["tts-error", "bug", "os-error"])
async def test_an_engine_failing_on_one_segment_costs_that_segment_only(
    tmp_path: Path, failure: BaseException
) -> None:
    engine = FakeEngine(fail_on={lambda text: "Rayleigh" in text: failure})
    events = await answer(tmp_path, engine)
    segments = check_text(events, ANSWER)
    bad = next(s["index"] for s in segments if "Rayleigh" in s["text"])
    done = completed(events)
    assert done["failed_indices"] == [bad]
    assert done["audio_indices"] == [s["index"] for s in segments if s["index"] != bad]
    error = next(e for e in of(events, "error") if e["segment_index"] == bad)
    assert "ExceptionGroup" not in error["error_type"] + error["message"]
    records = check_files(Path(done["output_dir"]), events)
    assert [r["index"] for r in records if r["type"] == "failed"] == [bad]


def edge_offline(monkeypatch: pytest.MonkeyPatch) -> EdgeEngine:
    """A real EdgeEngine whose service is a closed loopback port (as offline)."""
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", "ws://127.0.0.1:9/edge/v1?x=1")
    return EdgeEngine(attempts=1, backoff_s=0)


@fault("engine-offline")
async def test_an_offline_engine_in_a_chain_hands_every_segment_to_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = await answer(tmp_path, FallbackEngine([edge_offline(monkeypatch), FakeEngine()]))
    segments = check_text(events, ANSWER)
    done = completed(events)
    assert done["error"] is None and done["failed_indices"] == []
    assert {a["engine"] for a in of(events, "audio")} == {"fake"}
    assert len(done["audio_indices"]) == len(segments)
    check_files(Path(done["output_dir"]), events)


@fault("engine-offline")
async def test_a_lone_offline_engine_fails_each_segment_and_keeps_the_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    events = await answer(tmp_path, edge_offline(monkeypatch))
    segments = check_text(events, ANSWER)
    done = completed(events)
    assert done["audio_indices"] == []
    assert done["failed_indices"] == [s["index"] for s in segments]
    assert {e["error_type"] for e in of(events, "error")} == {"EngineUnavailableError"}
    records = check_files(Path(done["output_dir"]), events)
    assert " ".join(r["text"] for r in records if r["type"] == "failed").split() == \
        ANSWER.split()


@fault("disk-full")
async def test_a_disk_filling_up_fails_the_segments_that_do_not_fit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    refused = _fill_disk_from(monkeypatch, first=2)
    events = await answer(tmp_path, FakeEngine())
    segments = check_text(events, ANSWER)
    done = completed(events)
    assert done["audio_indices"] == [0, 1]
    assert done["failed_indices"] == list(range(2, len(segments)))
    for e in of(events, "error"):
        assert e["error_type"] == "WriteError" and "No space left" in e["message"]
        assert f"segment_{e['segment_index']:04d}" in e["message"]
    assert len(refused) == len(segments) - 2
    check_files(Path(done["output_dir"]), events)


@fault("disk-full")
async def test_a_real_full_disk_keeps_what_fits_and_a_whole_manifest(small_disk: Path) -> None:
    engine = FakeEngine(seconds_per_char=0.03)  # ~100 KB per segment: two fit in 200 KiB
    events = await answer(small_disk, engine)
    check_text(events, ANSWER)
    done = completed(events)
    assert done["failed_indices"], "the disk never filled up"
    assert {e["error_type"] for e in of(events, "error")} == {"WriteError"}
    check_files(Path(done["output_dir"]), events)
