"""Smoke test of the accuracy scenario (bench/accuracy.py): shapes, not speed."""

from __future__ import annotations

from bench import accuracy


def test_accuracy_scenario_scores_every_tool_side_by_side() -> None:
    result = accuracy.run(quick=True)
    golden = result["sets"]["golden_rules"]
    assert golden["speakstream"]["total"] == 48
    assert golden["speakstream"]["passed"] >= 44
    assert 0 < golden["stream2sentence"]["passed"] < 48  # a real peer, really run
    assert 0 < golden["plain_punkt"]["passed"] < 48
    assert ("pysbd" in golden) != ("pysbd" in result["skipped"])  # run, or said why not
    assert result["sets"]["stress"]["speakstream"] == {
        "passed": 12, "total": 12, "segments": 12, "exact": True
    }
    equal = result["streamed_equals_batch"]
    assert equal["equal"] == equal["total"] > 600
