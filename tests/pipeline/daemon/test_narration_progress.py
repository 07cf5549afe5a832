"""Narration jobs report progress over HTTP (issue 10 item 4): characters done of the
total, percent, phase and ETA (``None`` while measuring), on a job and in the paged list."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.engine import FakeEngine

from .conftest import Daemon, ScriptedLLM, start_daemon
from .test_narrations import BOOK, _settings, _wait_status
from .test_openai_speech import GatedEngine


def _progress(daemon: Daemon, job_id: str) -> dict[str, Any]:
    body = httpx.get(f"{daemon.url}/v1/narrations/{job_id}").json()
    progress: dict[str, Any] = body["progress"]
    return progress


def test_a_running_job_reports_chars_percent_and_measuring_eta(tmp_path: Path) -> None:
    gated = GatedEngine(hold_from=1)  # segment 0 is synthesised, then the engine waits
    running = start_daemon(_settings(tmp_path), llm=ScriptedLLM(["x"]), engine=gated)
    try:
        job_id = httpx.post(running.url + "/v1/narrations", json={"text": BOOK}).json()["id"]
        assert gated.holding.wait(60)
        for _ in range(600):  # bounded wait until segment 0's file is recorded
            progress = _progress(running, job_id)
            if progress["chars_done"] > 0:
                break
            time.sleep(0.05)
        assert progress["phase"] == "narrating"
        assert progress["chars_total"] == len(BOOK)
        assert 0 < progress["chars_done"] < len(BOOK)
        assert progress["percent"] == round(100 * progress["chars_done"] / len(BOOK), 1)
        assert progress["segments_done"] == 1
        assert progress["chapter"] == "Chapter One"
        # One segment is not enough to measure a speed: no ETA is made up.
        assert progress["eta_s"] is None and progress["rate_cps"] is None
        listed = httpx.get(running.url + "/v1/narrations").json()["narrations"]
        assert [(j["id"], j["status"], j["progress"]["chars_done"]) for j in listed] == [
            (job_id, "running", progress["chars_done"])]
    finally:
        gated.release.set()
    try:
        job = _wait_status(running, job_id, ("completed", "failed"))
        assert job["status"] == "completed", job
        done = job["progress"]
        assert (done["phase"], done["percent"], done["eta_s"]) == ("done", 100.0, 0.0)
        assert done["chars_done"] == done["chars_total"] == len(BOOK)
        assert done["segments_done"] == job["segments"]
    finally:
        running.stop()


def test_the_list_is_paged_newest_first_with_progress(tmp_path: Path) -> None:
    running = start_daemon(_settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    try:
        texts = ["One short text. It ends.", "Another text here. Done.", "A third one. Bye."]
        ids = []
        for text in texts:
            ids.append(httpx.post(running.url + "/v1/narrations", json={"text": text})
                       .json()["id"])
            _wait_status(running, ids[-1], ("completed",))
        page = httpx.get(running.url + "/v1/narrations", params={"limit": 2}).json()
        assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
        assert [j["id"] for j in page["narrations"]] == ids[::-1][:2]
        assert page["next"] == "/v1/narrations?limit=2&offset=2"
        rest = httpx.get(running.url + page["next"]).json()
        assert [j["id"] for j in rest["narrations"]] == ids[:1] and rest["next"] is None
        for job, text in zip(page["narrations"] + rest["narrations"], texts[::-1], strict=True):
            assert job["url"] == f"/v1/narrations/{job['id']}" and "files" not in job
            assert job["progress"]["chars_total"] == len(text)
            assert job["progress"]["percent"] == 100.0
        for bad in ({"limit": 0}, {"limit": 101}, {"offset": -1}, {"limit": "x"}):
            r = httpx.get(running.url + "/v1/narrations", params=bad)
            assert r.status_code == 422 and "error" in r.json(), (bad, r.text)
    finally:
        running.stop()
