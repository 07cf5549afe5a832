"""POST /v1/speak (SSE), GET/DELETE /v1/runs/{id}, audio routes, coalescing, metrics."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import httpx
import pytest

from tests.fakes.engine import FakeEngine

from .conftest import LONG_ANSWER, Daemon, ScriptedLLM, read_sse, start_daemon


def _speak(daemon: Daemon, **body: object) -> list[tuple[str, dict]]:
    body = {"message": "Tell me", **body}
    with httpx.stream("POST", daemon.url + "/v1/speak", json=body,
                      timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return list(read_sse(response))


def test_speak_streams_tokens_segments_audio_and_done(daemon: Daemon) -> None:
    events = _speak(daemon)
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "started" and kinds[-1] == "done"
    assert {"token", "segment", "audio"} <= set(kinds)
    text = "".join(data["text"] for kind, data in events if kind == "token")
    assert text == "".join(LONG_ANSWER)
    audio = [data for kind, data in events if kind == "audio"]
    segments = [data for kind, data in events if kind == "segment"]
    assert [a["index"] for a in audio] == [s["index"] for s in segments] == list(range(len(audio)))
    assert len(audio) >= 3
    run_id = events[0][1]["run_id"]
    done = events[-1][1]
    assert done["error"] is None and done["ttft_s"] is not None and done["ttfa_s"] is not None
    assert done["audio_urls"] == [a["url"] for a in audio]
    assert all("path" not in a for a in audio)  # no server paths leak
    for item in audio:
        wav = httpx.get(daemon.url + item["url"])
        assert wav.status_code == 200
        assert wav.headers["content-type"] == "audio/wav"
        assert wav.content[:4] == b"RIFF" and wav.content[8:12] == b"WAVE"
    run = httpx.get(f"{daemon.url}/v1/runs/{run_id}").json()
    assert run["status"] == "completed"
    assert [m["index"] for m in run["manifest"] if m["type"] == "segment"] == \
        [a["index"] for a in audio]
    assert run["manifest"][-1]["type"] == "summary"
    assert httpx.get(f"{daemon.url}/v1/runs/{run_id}/audio/99").status_code == 404
    assert httpx.get(f"{daemon.url}/v1/runs/{run_id}/audio/merged").status_code == 404
    metrics = httpx.get(daemon.url + "/metrics").text
    assert 'speakstream_ttfa_seconds_count{endpoint="speak"} 1.0' in metrics
    assert f'speakstream_audio_files_total{{endpoint="speak"}} {float(len(audio))}' in metrics
    assert 'speakstream_runs_total{endpoint="speak",outcome="completed"} 1.0' in metrics


def test_audio_arrives_while_the_llm_is_still_talking(settings) -> None:
    llm = ScriptedLLM(LONG_ANSWER, gate_after=9)  # holds after "... soon. "
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    try:
        with httpx.stream("POST", running.url + "/v1/speak", json={"message": "go"},
                          timeout=60) as response:
            stream = read_sse(response)
            before = []
            for kind, _data in stream:
                before.append(kind)
                if kind == "audio":
                    break
            assert not llm.gate.is_set()  # the LLM is still waiting at its gate
            llm.gate.set()
            after = [kind for kind, _ in stream]
        assert "token" in after and after[-1] == "done"
    finally:
        llm.gate.set()
        running.stop()


def test_merged_file_and_format_options(daemon: Daemon) -> None:
    events = _speak(daemon, format="mp3", streaming_config={"merge": True})
    done = events[-1][1]
    assert done["merged_url"].endswith("/audio/merged")
    merged = httpx.get(daemon.url + done["merged_url"])
    assert merged.status_code == 200 and merged.headers["content-type"] == "audio/mpeg"
    assert merged.content[:3] == b"ID3" or merged.content[0] == 0xFF
    first = httpx.get(daemon.url + done["audio_urls"][0])
    assert first.headers["content-type"] == "audio/mpeg"


def test_bad_options_are_422_json(daemon: Daemon) -> None:
    for body in ({"message": "x", "streaming_config": {"output_dir": "/etc"}},
                 {"message": "x", "streaming_config": {"nope": 1}},
                 {"message": "x", "format": "exe"},
                 {"message": "   "},
                 {"message": "x", "surprise": True},
                 {}):
        r = httpx.post(daemon.url + "/v1/speak", json=body)
        assert r.status_code == 422, body
        assert r.json()["error"]["type"] == "invalid_request_error"


def test_token_events_are_coalesced(tmp_path: Path, settings) -> None:
    deltas = [f"w{i} " for i in range(400)] + ["end."]
    running = start_daemon(settings, llm=ScriptedLLM(deltas), engine=FakeEngine())
    try:
        events = _speak(running)
    finally:
        running.stop()
    tokens = [data["text"] for kind, data in events if kind == "token"]
    assert "".join(tokens) == "".join(deltas)
    assert len(tokens) < len(deltas) / 4, len(tokens)


def test_delete_cancels_the_llm_request(settings) -> None:
    llm = ScriptedLLM(LONG_ANSWER, gate_after=6)
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    try:
        with httpx.stream("POST", running.url + "/v1/speak", json={"message": "go"},
                          timeout=60) as response:
            run_id = response.headers["x-run-id"]
            stream = read_sse(response)
            assert next(stream)[0] == "started"
            assert llm.reached_gate.wait(30)
            status = httpx.get(f"{running.url}/v1/runs/{run_id}").json()["status"]
            assert status == "running"
            r = httpx.delete(f"{running.url}/v1/runs/{run_id}")
            assert r.status_code == 202
            rest = [kind for kind, _ in stream]
        assert rest[-2:] == ["cancelled", "done"]
        assert llm.cancelled.is_set()
        assert httpx.get(f"{running.url}/v1/runs/{run_id}").json()["status"] == "cancelled"
        assert httpx.delete(f"{running.url}/v1/runs/{run_id}").status_code == 409
        assert httpx.delete(f"{running.url}/v1/runs/nope").status_code == 404
    finally:
        llm.gate.set()
        running.stop()


def test_client_disconnect_cancels_the_run_after_the_grace(settings) -> None:
    """With ``reconnect_grace_s=0`` nobody may reconnect: the run stops at once."""
    llm = ScriptedLLM(LONG_ANSWER, gate_after=4)
    running = start_daemon(dataclasses.replace(settings, reconnect_grace_s=0), llm=llm,
                           engine=FakeEngine())
    try:
        with httpx.stream("POST", running.url + "/v1/speak", json={"message": "go"},
                          timeout=60) as response:
            assert next(read_sse(response))[0] == "started"
            assert llm.reached_gate.wait(30)
        # The response is closed while the LLM is still talking.
        assert llm.closed.wait(30)
        assert llm.cancelled.is_set()
    finally:
        llm.gate.set()
        running.stop()


def test_llm_failure_gives_error_then_done_and_keeps_audio(settings) -> None:
    llm = ScriptedLLM(LONG_ANSWER, fail_after=10)
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    try:
        events = _speak(running)
        kinds = [k for k, _ in events]
        assert kinds[-2:] == ["error", "done"]
        error = events[-2][1]
        assert error["error_type"] == "LLMStreamError"
        assert error["partial_text"] == "".join(LONG_ANSWER[:10])
        done = events[-1][1]
        assert done["error"].startswith("LLMStreamError")
        assert done["audio_urls"], "audio of the text received before the failure is kept"
        for url in done["audio_urls"]:
            assert httpx.get(running.url + url).status_code == 200
        metrics = httpx.get(running.url + "/metrics").text
        assert 'speakstream_errors_total{endpoint="speak",error_type="LLMStreamError"} 1.0' \
            in metrics
        run_id = events[0][1]["run_id"]
        health = httpx.get(running.url + f"/v1/runs/{run_id}").json()["health"]
        assert health["errors"] == {"LLMStreamError": 1} and health["tokens"] == 10
    finally:
        running.stop()


def test_conversation_id_keeps_history(daemon: Daemon) -> None:
    first = _speak(daemon, conversation_id="chat-1")
    assert first[-1][1]["error"] is None
    _speak(daemon, conversation_id="chat-1", message="And then?")
    _speak(daemon, message="Unrelated")
    requests = daemon.llm.requests
    assert requests[1] == [
        {"role": "user", "content": "Tell me"},
        {"role": "assistant", "content": "".join(LONG_ANSWER)},
        {"role": "user", "content": "And then?"},
    ]
    assert requests[2] == [{"role": "user", "content": "Unrelated"}]
    bad = httpx.post(daemon.url + "/v1/speak", json={"message": "x", "conversation_id": "../x"})
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "conversation_id"


def test_an_announced_file_whose_sync_fails_leaves_the_run(
    daemon: Daemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Segment 1's `audio` event goes out, then its sync fails (EIO): an `error`
    for segment 1 follows, and the run's record, its URLs and `done` drop it."""
    from tests.output.conftest import fail_syncs_of

    fail_syncs_of(monkeypatch, "segment_0001")
    events = _speak(daemon)
    kinds = [(kind, data.get("index", data.get("segment_index"))) for kind, data in events
             if kind in ("audio", "error")]
    assert kinds[:3] == [("audio", 0), ("audio", 1), ("error", 1)]
    done = events[-1][1]
    assert done["failed_indices"] == [1] and 1 not in done["audio_indices"]
    run_id = events[0][1]["run_id"]
    run = httpx.get(f"{daemon.url}/v1/runs/{run_id}").json()
    assert [a["index"] for a in run["audio"]] == done["audio_indices"]
    assert httpx.get(f"{daemon.url}/v1/runs/{run_id}/audio/1").status_code == 404
    assert httpx.get(f"{daemon.url}/v1/runs/{run_id}/audio/0").status_code == 200
