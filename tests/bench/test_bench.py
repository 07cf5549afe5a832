"""Smoke tests of the benchmark machinery (no timing is asserted: speed lives in bench/)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from bench.__main__ import main
from bench.baseline import BaselineBuffer, split_baseline
from bench.common import LONG_ANSWER, TimedLLMServer, complete_at, llm_reply, tokenize
from pipeline import split_sentences

REQUIRED_KEYS = (
    "ttfa_overhead_ms_median", "ttfa_overhead_ms_p95", "overlap_efficiency",
    "baseline_overlap_efficiency", "first_segment_s_speakstream",
    "first_segment_s_stream2sentence", "segmenter_chars_per_s",
    "segmenter_speedup_vs_stream2sentence", "narration_peak_rss_mb_1mb",
    "narration_peak_rss_mb_10mb", "narration_speedup_2_workers", "daemon_errors",
    "daemon_ttfa_overhead_ms_p99", "local_ttft_s", "local_ttfa_s", "machine", "timestamp",
)  # fmt: skip


def test_tokenize_is_lossless_and_llm_sized() -> None:
    tokens = tokenize(LONG_ANSWER)
    assert "".join(tokens) == LONG_ANSWER
    assert 3.0 < len(LONG_ANSWER) / len(tokens) < 5.0  # ~4 characters per token
    assert " bike" in tokens  # a word keeps its leading space
    assert len(split_sentences(LONG_ANSWER)) >= 40  # the long answer of scenario 2


def test_baseline_has_no_lookahead_and_groups_two_sentences() -> None:
    buffer = BaselineBuffer()
    out = []
    for chunk in ["It is warm. Pi is about 3.", "14 today. It is", " round."]:
        out += buffer.push(chunk)
    out += buffer.flush()
    assert "".join(out) == "It is warm. Pi is about 3.14 today. It is round."  # raw, lossless
    assert out[0] == "It is warm. Pi is about 3."  # "3." ended a sentence: no lookahead
    assert split_baseline("Dr. Smith is here.") == ["Dr.", "Smith is here."]
    short = BaselineBuffer()
    assert short.push("Hi. Ok. ") == []  # two sentences, but under 20 characters
    assert short.push("That is all for now. ") == ["Hi. Ok. That is all for now. "]


def test_timed_server_records_each_token_send_time() -> None:
    tokens = tokenize("Hello there. How are you today?")
    with TimedLLMServer(llm_reply("Hello there. How are you today?", ttft_s=0.0,
                                  tokens_per_s=1000.0)) as server:  # fmt: skip
        body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        lines = httpx.post(server.url + "/api/chat", json=body).text.splitlines()
        times = server.token_times(server.requests[0])
    assert [text for _, text in times] == tokens
    assert len(lines) == len(tokens) + 1  # one NDJSON record per token, then "done"
    assert [t for t, _ in times] == sorted(t for t, _ in times)
    assert complete_at(times, len("Hello there.")) == times[tokens.index(".")][0]


def test_python_m_bench_writes_json_table_and_plot(tmp_path: Path, capsys) -> None:
    assert main(["--quick", "--only", "first_segment", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "latest.json").read_text())
    assert set(REQUIRED_KEYS) <= set(data)
    assert data["first_segment_s_speakstream"] > 0
    assert data["first_segment_s_stream2sentence"] > 0
    assert data["ttfa_overhead_ms_median"] is None  # not run: no made-up number
    assert data["scenarios"]["first_segment"]["accuracy"]["speakstream"]["total"] >= 60
    table = (tmp_path / "latest.md").read_text()
    assert "| # | Metric | Value | Target |" in table
    assert table in capsys.readouterr().out
    assert (tmp_path / "summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_unknown_scenario_is_refused(tmp_path: Path) -> None:
    import pytest

    with pytest.raises(SystemExit):
        main(["--only", "nope", "--out", str(tmp_path)])


def test_speech_scenario_input_and_report_keys(tmp_path: Path) -> None:
    from bench import report
    from bench.speech import first_texts, speech_input

    text = speech_input()
    assert 2500 < len(text) <= 3000 and text.rstrip().endswith((".", "!", "?", '"', "'"))
    sentence, segment0 = first_texts(text)
    assert text.startswith(sentence) and len(segment0) <= len(sentence)
    assert report.headline({})["speech_ttfb_ratio_piper_mp3"] is None  # not run: no number


def test_default_path_and_peers_report_keys_are_none_when_not_run() -> None:
    from bench import report

    head = report.headline({})
    keys = ["default_path_warm_ratio", "default_path_cold_vs_warm", "peers_piper_cpu_s",
            "peers_pyttsx3_first_audio_s", "peers_piper_vs_fragment_limit"]
    assert all(key in head and head[key] is None for key in keys)
    table = report.markdown({}, head)
    assert "TTFA ÷ physical limit" in table and "vs RealtimeTTS, piper" in table


def test_peers_is_skipped_with_a_message_without_realtimetts(monkeypatch) -> None:
    import sys

    from bench import peers

    monkeypatch.setitem(sys.modules, "RealtimeTTS", None)  # import fails
    result = peers.run(quick=True)
    assert "RealtimeTTS is not installed" in result["skipped"]


def test_peers_stream_replays_the_answer_losslessly() -> None:
    from bench.common import short_answer
    from bench.peers import _Stream

    stream = _Stream()
    stream.tokens = stream.tokens[:3]
    assert "".join(stream.sync()) == "".join(tokenize(short_answer())[:3])
    assert stream.complete_at(1) == stream.sent[0][0]


def test_the_relay_floor_delivers_every_token_and_the_disk_floor_times_every_write() -> None:
    from bench.common import short_answer
    from bench.daemon_floor import disk_floor, relay_floor

    relay = relay_floor(clients=3)
    assert relay["tokens_relayed"] == 3 * len(tokenize(short_answer()))
    assert relay["token_delivery_ms"]["n"] == relay["tokens_relayed"]  # each one arrived
    assert relay["cpu_s_per_1000_tokens"] > 0
    disk = disk_floor(writes=3, threads=(1, 3))
    assert [p["n"] for p in disk["write_done_ms_by_threads"].values()] == [3, 3]
    assert disk["last_write_ms"] == min(p["max"] for p in disk["write_done_ms_by_threads"].values())
    assert disk["group_commit_ms"]["n"] == 3
    assert disk["group_commit_last_ms"] == disk["group_commit_ms"]["max"] > 0
