"""POST /v1/narrations {"items": [...]}: job items through the CLI's job code, per-item
results, a bad item failing alone, the store's migration from schema 0, bounded memory."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

import pipeline._daemon._jobs as jobs_module
from pipeline._daemon import DaemonSettings
from pipeline._daemon._jobs import JobStore, NarrationJobs
from pipeline._daemon._metrics import DaemonMetrics
from pipeline._daemon._source import PipelineSource
from pipeline._narrate import split_chapters
from pipeline._settings import resolve_settings
from tests.fakes.engine import FakeEngine
from tests.fakes.llm_server import FakeLLMServer, Reply

from .conftest import Daemon, start_daemon
from .test_narrations import BOOK

ANSWER = "Tides follow the moon. Twice a day the sea rises."
TOKENS = [ANSWER[:10], ANSWER[10:30], ANSWER[30:]]
FAST = DaemonSettings().streaming_config.replace(sentence_buffer_size=1, min_chunk_length=5,
                                                 workers=1)


def _wait(daemon: Daemon, job_id: str) -> dict[str, Any]:
    """Poll the job until it ended (bounded; no time asserted)."""
    for _ in range(1200):
        job = httpx.get(f"{daemon.url}/v1/narrations/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} stuck in {job['status']}")


def test_items_run_with_the_daemons_llm_settings_and_a_bad_item_fails_alone(
    tmp_path: Path,
) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS), Reply(tokens=TOKENS),
                       Reply(tokens=TOKENS, error_after=1)) as server:
        settings = DaemonSettings(output_dir=tmp_path / "out", streaming_config=FAST,
                                  llm_provider="ollama",
                                  llm_config={"base_url": server.url, "model": "daemon-model"})
        running = start_daemon(settings, engine=FakeEngine())  # a real ollama client
        try:
            items = [
                {"text": BOOK},
                {"prompt": "Why tides?", "system": "Be brief."},  # the daemon's llm and model
                {"prompt": "And waves?", "model": "item-model"},
                {"prompt": "Who?", "llm": "no-such-llm"},
                {"prompt": "Breaks?"},  # the server sends an error after one token
            ]
            r = httpx.post(running.url + "/v1/narrations", json={"items": items})
            assert r.status_code == 202, r.text
            job = _wait(running, r.json()["id"])
            listed = httpx.get(running.url + "/v1/narrations").json()["narrations"][0]
            audio = [httpx.get(running.url + f["url"]) for f in job["files"]]
        finally:
            running.stop()
    assert job["status"] == "failed" and job["error"].startswith("2 of 5 items failed")
    results = job["items"]
    assert [(r["item"], r["status"]) for r in results] == [
        ("item_0001", "completed"), ("item_0002", "completed"), ("item_0003", "completed"),
        ("item_0004", "failed"), ("item_0005", "failed")]
    text, tides, waves, unknown, broken = results
    assert (text["kind"], text["provider"], text["chapters"], text["response"]) == (
        "narrate", "text", 2, None)
    for answer, model in ((tides, "daemon-model"), (waves, "item-model")):
        assert (answer["provider"], answer["model"], answer["response"]) == (
            "ollama", model, ANSWER)
        assert answer["streamed"] is True and answer["chunks"] == len(TOKENS)
        assert answer["audio_files"] and answer["duration_s"] > 0
    assert "no-such-llm" in unknown["errors"][0] and not unknown["audio_files"]
    assert broken["response"] == TOKENS[0] and broken["errors"]
    assert [q.json["model"] for q in server.requests] == ["daemon-model", "item-model",
                                                          "daemon-model"]
    assert server.requests[0].json["messages"][0] == {"role": "system", "content": "Be brief."}
    # Every file written is listed once, under its item, and served.
    names = {f["name"] for f in job["files"]}
    assert names == {n for r in results for n in r["audio_files"]}
    assert {f["item"] for f in job["files"]} == {"item_0001", "item_0002", "item_0003",
                                                  "item_0005"}
    assert all(a.status_code == 200 and a.content[:4] == b"RIFF" for a in audio)
    assert job["segments"] == len(job["files"])
    chars = sum(len(c.text) for c in split_chapters(BOOK))
    assert listed["progress"]["chars_total"] == chars and listed["progress"]["phase"] == "failed"


def test_bad_item_requests_get_the_documented_error(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("Not for clients.")
    running = start_daemon(DaemonSettings(output_dir=tmp_path / "out", streaming_config=FAST,
                                          max_narration_chars=100), engine=FakeEngine())
    try:
        def post(body: dict[str, Any]) -> httpx.Response:
            return httpx.post(running.url + "/v1/narrations", json=body)

        refused = post({"items": [{"text": "Fine."}, {"path": str(tmp_path / "secret.txt")}]})
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["param"] == "items" and "items[1]" in error["message"]
        assert "path" in error["message"] and "Not for clients" not in refused.text
        for body in ({"items": []}, {"text": "x", "items": [{"text": "y"}]}, {},
                     {"items": [{"text": "a", "prompt": "b"}]}, {"items": [{"txt": "a"}]},
                     {"items": ["a"]}):
            r = post(body)
            assert r.status_code == 422 and r.json()["error"]["type"] == "invalid_request_error", (
                body, r.text)
        assert post({"items": [{"text": "x" * 60}, {"prompt": "y" * 60}]}).status_code == 413
        listed = httpx.get(running.url + "/v1/narrations").json()
        assert listed["total"] == 0  # nothing was queued
    finally:
        running.stop()


def test_a_prompt_item_cannot_choose_a_local_model_or_a_server(tmp_path: Path) -> None:
    """As on /v1/speak: with llm local, a model is a file on the daemon's disk; and
    no item may name a server URL."""
    own = tmp_path / "own.gguf"
    running = start_daemon(DaemonSettings(output_dir=tmp_path / "out", streaming_config=FAST,
                                          llm_provider="local", llm_config={"model": str(own)}),
                           engine=FakeEngine())
    try:
        for model in ("/etc/passwd", "other.gguf"):
            r = httpx.post(running.url + "/v1/narrations",
                           json={"items": [{"prompt": "Hi", "llm": "local", "model": model}]})
            assert r.status_code == 422, r.text
            error = r.json()["error"]
            assert error["param"] == "items" and "items[0]" in error["message"]
            assert "cannot choose" in error["message"] and str(own) not in r.text
        # A server URL is the operator's: the daemon's API keys would go to it.
        r = httpx.post(running.url + "/v1/narrations", json={"items": [
            {"text": "Fine."}, {"prompt": "Hi", "llm": "openai", "base_url": "http://x.test/v1"}]})
        assert r.status_code == 422 and "items[1]: 'base_url'" in r.json()["error"]["message"]
        assert httpx.get(running.url + "/v1/narrations").json()["total"] == 0
    finally:
        running.stop()


# The schema of a database made before items (main before schema version 1).
SCHEMA_0 = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY, status TEXT NOT NULL, text TEXT NOT NULL, voice TEXT, tts TEXT,
    format TEXT, options TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    chapters INTEGER NOT NULL DEFAULT 0, segments INTEGER NOT NULL DEFAULT 0,
    audio_s REAL NOT NULL DEFAULT 0, error TEXT, attempts INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE files (
    job_id TEXT NOT NULL, chapter INTEGER NOT NULL, idx INTEGER NOT NULL, name TEXT NOT NULL,
    format TEXT NOT NULL, duration_s REAL NOT NULL, PRIMARY KEY (job_id, chapter, idx)
);
"""


def test_a_database_from_before_items_is_migrated_and_its_jobs_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = DaemonSettings(output_dir=tmp_path / "out", streaming_config=FAST)
    settings.database.parent.mkdir(parents=True)
    now = time.time()
    with sqlite3.connect(settings.database) as db:
        db.executescript(SCHEMA_0)
        db.execute("INSERT INTO jobs (id, status, text, options, created, updated, segments)"
                   " VALUES ('olddone', 'completed', ?, '{}', ?, ?, 1)", ("Old text.", now, now))
        db.execute("INSERT INTO files VALUES ('olddone', 1, 0, 'chapter_01/segment_0000.wav',"
                   " 'wav', 0.5)")
        db.execute("INSERT INTO jobs (id, status, text, options, created, updated)"
                   " VALUES ('oldqueued', 'queued', ?, '{}', ?, ?)", (BOOK, now + 1, now + 1))
    running = start_daemon(settings, engine=FakeEngine())
    try:
        job = _wait(running, "oldqueued")
        old = httpx.get(running.url + "/v1/narrations/olddone").json()
        # Listing reads the stored character counts: no job's text is cut again.
        def boom(*_: Any) -> Any:
            raise AssertionError("the text was split again")
        monkeypatch.setattr(jobs_module, "text_chars", boom)
        monkeypatch.setattr(jobs_module, "iter_chapters", boom)
        monkeypatch.setattr(jobs_module, "split_chapters", boom, raising=False)
        listed = httpx.get(running.url + "/v1/narrations")
    finally:
        running.stop()
    assert job["status"] == "completed" and job["chapters"] == 2 and job["items"] == []
    assert job["files"] and all(f["item"] == "" for f in job["files"])
    assert all(f["url"].startswith("/v1/narrations/oldqueued/chapters/") for f in job["files"])
    assert old["files"] == [{"item": "", "chapter": 1, "idx": 0,
                             "name": "chapter_01/segment_0000.wav", "format": "wav",
                             "duration_s": 0.5,
                             "url": "/v1/narrations/olddone/chapters/1/audio/0"}]
    assert listed.status_code == 200, listed.text
    progress = {n["id"]: n["progress"] for n in listed.json()["narrations"]}
    assert progress["oldqueued"]["chars_total"] == sum(len(c.text) for c in split_chapters(BOOK))
    assert progress["olddone"]["chars_total"] == len("Old text.")
    with sqlite3.connect(settings.database) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == jobs_module.SCHEMA_VERSION
    JobStore(settings.database).close()  # opening a migrated database again changes nothing


async def test_ended_jobs_keep_a_bounded_number_of_progress_snapshots(tmp_path: Path) -> None:
    settings = DaemonSettings(output_dir=tmp_path / "out", streaming_config=FAST)
    store = await asyncio.to_thread(JobStore, settings.database)
    source = PipelineSource(settings, tts_engine=FakeEngine())
    jobs = NarrationJobs(store, source, settings.narrations_dir, DaemonMetrics(), last_kept=2)
    try:
        for n in range(4):
            store.create(f"job{n}", text=f"Job number {n}.", voice=None, tts=None, format=None,
                         options={})
            job = store.get(f"job{n}")
            assert job is not None
            jobs.start(job)
        running = [t for t in asyncio.all_tasks() if t.get_name().startswith("narration-")]
        assert len(running) == 4
        async with asyncio.timeout(120):
            await asyncio.gather(*running)
        assert store.counts() == {"completed": 4}
        assert jobs.snapshots_kept == 2
        oldest = store.get("job0")
        assert oldest is not None  # its snapshot is gone: rebuilt from the row
        assert jobs.progress(oldest)["phase"] == "done"
        assert jobs.progress(oldest)["chars_total"] == len("Job number 0.")
    finally:
        await jobs.aclose()
        await source.aclose()


def test_ray_address_is_a_daemon_setting_of_the_one_resolver(tmp_path: Path) -> None:
    env = {"SPEAKSTREAM_RAY_ADDRESS": "127.0.0.1:6379"}
    assert resolve_settings({}, env=env, files=[]).daemon_settings().ray_address == \
        "127.0.0.1:6379"
    toml = tmp_path / "speakstream.toml"
    toml.write_text('ray_address = "local"\n')
    assert resolve_settings({}, env={}, files=[toml]).daemon_settings().ray_address == "local"
    assert resolve_settings({}, env={}, files=[]).daemon_settings().ray_address is None
    with pytest.raises(ValueError, match="ray_address"):
        DaemonSettings(ray_address="")
