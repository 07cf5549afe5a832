from __future__ import annotations

import dataclasses
import json
import typing

import pytest

from pipeline import (
    AudioReady,
    ProgressEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    SegmentQueued,
    TextDelta,
    event_to_dict,
)

COMMON = {"run_id": "r1", "t": 0.5, "audio_files_generated": 1}

SAMPLES: list[ProgressEvent] = [
    RunStarted(**COMMON, llm_provider="ollama", model="m", tts="espeak", output_dir="/o"),
    TextDelta(**COMMON, text="Hel"),
    SegmentQueued(
        **COMMON, index=0, text="**Hi.** ", spoken_text="Hi.", start=0, end=8, reason="sentences"
    ),
    AudioReady(
        **COMMON,
        index=0,
        path="/o/segment_0000.wav",
        format="wav",
        duration_s=1.25,
        engine="espeak",
        voice=None,
        synth_s=0.02,
        text="Hi.",
    ),
    RunFailed(
        **COMMON, error_type="LLMStreamError", message="dropped", retryable=False, partial_text="Hi"
    ),
    RunCancelled(**COMMON, reason="closed"),
    RunCompleted(
        **COMMON,
        audio_files=["/o/segment_0000.wav"],
        complete_text="Hi.",
        ttft_s=0.1,
        ttfa_s=0.3,
        total_s=0.5,
        audio_s=1.25,
        rtf=0.016,
        output_dir="/o",
        manifest_path="/o/manifest.jsonl",
    ),
]

EXPECTED_STATUS = ["started", "text", "segment", "audio", "error", "cancelled", "completed"]


def test_union_covers_every_kind_once() -> None:
    assert [type(e) for e in SAMPLES] == list(typing.get_args(ProgressEvent))
    assert [type(e).status for e in SAMPLES] == EXPECTED_STATUS


@pytest.mark.parametrize("event", SAMPLES, ids=EXPECTED_STATUS)
def test_event_to_dict_is_status_plus_fields_and_json_ready(event: ProgressEvent) -> None:
    data = event_to_dict(event)
    names = [f.name for f in dataclasses.fields(event)]
    assert list(data) == ["status", *names]
    assert data["status"] == event.status
    assert data["run_id"] == "r1" and data["t"] == 0.5 and data["audio_files_generated"] == 1
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize("event", SAMPLES, ids=EXPECTED_STATUS)
def test_events_are_frozen(event: ProgressEvent) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.run_id = "other"  # type: ignore[misc]


def test_status_is_not_a_constructor_field() -> None:
    with pytest.raises(TypeError):
        TextDelta(**COMMON, text="x", status="y")  # type: ignore[call-arg]


def test_completed_defaults_and_dict_copy() -> None:
    done = typing.cast(RunCompleted, SAMPLES[-1])
    assert done.merged_path is None and done.error is None and done.subtitles_path is None
    data = event_to_dict(done)
    data["audio_files"].append("x")
    assert done.audio_files == ["/o/segment_0000.wav"]
