"""POST/GET/DELETE /v1/narrations: SQLite-backed jobs that survive a restart and resume."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline._daemon import DaemonSettings
from tests.fakes.engine import FakeEngine

from .conftest import Daemon, ScriptedLLM, start_daemon
from .test_openai_speech import GatedEngine

BOOK = """# Chapter One

The first chapter starts here. It has a few sentences. Each one is short.

# Chapter Two

The second chapter follows. It also has sentences. The end is near. Goodbye.
"""


def _settings(tmp_path: Path) -> DaemonSettings:
    return DaemonSettings(
        output_dir=tmp_path / "out",
        streaming_config=DaemonSettings().streaming_config.replace(
            sentence_buffer_size=1, min_chunk_length=5, workers=1),
    )


def _wait_status(daemon: Daemon, job_id: str, statuses: tuple[str, ...]) -> dict[str, Any]:
    """Poll the job until its status is one of ``statuses`` (bounded; no time asserted)."""
    for _ in range(1200):
        job = httpx.get(f"{daemon.url}/v1/narrations/{job_id}").json()
        if job["status"] in statuses:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stuck in {job['status']}")


def test_json_narration_completes_with_file_urls(tmp_path: Path) -> None:
    running = start_daemon(_settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    try:
        r = httpx.post(running.url + "/v1/narrations", json={"text": BOOK})
        assert r.status_code == 202
        job_id = r.json()["id"]
        job = _wait_status(running, job_id, ("completed", "failed"))
        assert job["status"] == "completed" and job["error"] is None
        assert job["chapters"] == 2
        assert {f["chapter"] for f in job["files"]} == {1, 2}
        assert job["segments"] == len(job["files"]) >= 6
        for f in job["files"]:
            audio = httpx.get(running.url + f["url"])
            assert audio.status_code == 200 and audio.content[:4] == b"RIFF"
        assert httpx.get(f"{running.url}/v1/narrations/{job_id}/chapters/1/audio/99") \
            .status_code == 404
        assert httpx.get(f"{running.url}/v1/narrations/..%2Fx").status_code == 404
        assert httpx.delete(f"{running.url}/v1/narrations/{job_id}").status_code == 409
    finally:
        running.stop()


def test_uploaded_file_and_bad_requests(tmp_path: Path) -> None:
    running = start_daemon(_settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    try:
        r = httpx.post(running.url + "/v1/narrations",
                       files={"file": ("book.md", BOOK.encode(), "text/markdown")},
                       data={"format": "mp3"})
        assert r.status_code == 202, r.text
        job = _wait_status(running, r.json()["id"], ("completed", "failed"))
        assert job["status"] == "completed"
        assert all(f["format"] == "mp3" for f in job["files"])
        bad = httpx.post(running.url + "/v1/narrations",
                         files={"file": ("x.bin", b"\xff\xfe\x00bad", "application/x")})
        assert bad.status_code == 422 and bad.json()["error"]["param"] == "file"
        assert httpx.post(running.url + "/v1/narrations", json={"text": " "}).status_code == 422
        assert httpx.post(running.url + "/v1/narrations", content=b"{oops",
                          headers={"content-type": "application/json"}).status_code == 400
    finally:
        running.stop()


def test_job_survives_a_restart_and_resumes_where_it_stopped(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    gated = GatedEngine(hold_from=3)
    first = start_daemon(settings, llm=ScriptedLLM(["x"]), engine=gated)
    try:
        job_id = httpx.post(first.url + "/v1/narrations", json={"text": BOOK}).json()["id"]
        assert gated.holding.wait(60)  # 3 segments done, the 4th held in synthesis
        before = httpx.get(f"{first.url}/v1/narrations/{job_id}").json()
        assert before["status"] == "running" and before["segments"] == 3
    finally:
        first.stop()  # the daemon goes away mid-job
    with sqlite3.connect(settings.database) as db:
        (status,) = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert status == "running"
    done_texts = [c.text for c in gated.calls[:3]]

    fresh = FakeEngine()
    second = start_daemon(settings, llm=ScriptedLLM(["x"]), engine=fresh)
    try:
        job = _wait_status(second, job_id, ("completed", "failed"))
    finally:
        second.stop()
    assert job["status"] == "completed" and job["attempts"] == 2
    assert job["segments"] == len(job["files"]) == 3 + len(fresh.calls)
    assert not set(done_texts) & {c.text for c in fresh.calls}, "finished segments redone"
    for f in job["files"]:
        assert (settings.narrations_dir / job_id / f["name"]).is_file()


def test_delete_cancels_a_running_job(tmp_path: Path) -> None:
    gated = GatedEngine(hold_from=1)
    running = start_daemon(_settings(tmp_path), llm=ScriptedLLM(["x"]), engine=gated)
    try:
        job_id = httpx.post(running.url + "/v1/narrations", json={"text": BOOK}).json()["id"]
        assert gated.holding.wait(60)
        assert httpx.delete(f"{running.url}/v1/narrations/{job_id}").status_code == 202
        job = httpx.get(f"{running.url}/v1/narrations/{job_id}").json()
        assert job["status"] == "cancelled" and job["segments"] == 1
    finally:
        gated.release.set()
        running.stop()


def test_a_file_taken_back_leaves_the_jobs_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chapter one's segment 1 is announced, then its sync fails (EIO): the job
    neither lists nor counts it (the file is gone); every other file is there."""
    from tests.output.conftest import fail_syncs_of

    fail_syncs_of(monkeypatch, "chapter_01/", "segment_0001")
    running = start_daemon(_settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    try:
        job_id = httpx.post(running.url + "/v1/narrations", json={"text": BOOK}).json()["id"]
        job = _wait_status(running, job_id, ("completed", "failed"))
        listed = {(f["chapter"], f["idx"]) for f in job["files"]}
        assert (1, 1) not in listed and (1, 0) in listed and (2, 1) in listed
        assert job["segments"] == len(job["files"])
        for f in job["files"]:
            assert httpx.get(running.url + f["url"]).status_code == 200
    finally:
        running.stop()
