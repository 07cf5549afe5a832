"""``kill -9`` of a real ``speakstream serve`` process during a narration job,
then a restart: the job resumes from SQLite and loses nothing."""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline import create_streaming_pipeline, event_to_dict
from pipeline._narrate import anarrate, split_chapters
from tests.fakes.engine import FakeEngine
from tests.pipeline.clirun import cli

from .invariants import check_files, check_text
from .table import fault
from .test_cli_signals import book, kept

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(tmp_path: Path, port: int) -> Iterator[subprocess.Popen[str]]:
    """``speakstream serve`` on ``port`` (espeak-ng; the LLM is never asked), ready."""
    proc = cli(tmp_path, "serve", "--port", str(port), "-o", "daemon", "--tts", "espeak",
               "--format", "wav", "--llm", "ollama", "--model", "unused",
               "--base-url", "http://127.0.0.1:9", stdout=subprocess.DEVNULL)
    try:
        for _ in range(600):  # bounded: up to ~60 s for the start-up
            assert proc.poll() is None, proc.communicate()[1]
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=30)


def poll(url: str, until: Any) -> dict[str, Any]:
    """GET ``url`` until ``until(job)`` (bounded in count; no time asserted)."""
    for _ in range(2400):
        job = httpx.get(url).json()
        if until(job):
            return job
        time.sleep(0.05)
    raise AssertionError(f"stuck: {job}")


async def reference(tmp_path: Path) -> dict[str, list[str]]:
    """The book narrated in process (a fake engine, default settings): each chapter's
    spoken segment texts, after checking its raw segments tile the chapter's text."""
    pipe = create_streaming_pipeline(None, streaming_config={"format": "wav"},
                                     tts_engine=FakeEngine())
    chapters: dict[int, list[dict[str, Any]]] = {}
    async with pipe:
        async for chapter, event in anarrate(pipe, book(), output_dir=tmp_path / "ref"):
            chapters.setdefault(chapter.number, []).append(event_to_dict(event))
    spoken = {}
    for chapter in split_chapters(book()):
        segments = check_text(chapters[chapter.number], chapter.text)
        spoken[chapter.run_id] = [s["spoken_text"] for s in segments]
    return spoken


@fault("daemon-kill")
def test_kill_9_of_the_daemon_mid_job_then_restart_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve(tmp_path, port) as first:
        job_id = httpx.post(base + "/v1/narrations", json={"text": book()}).json()["id"]
        poll(f"{base}/v1/narrations/{job_id}", lambda job: job["segments"] >= 3)
        first.kill()
        first.wait(30)
    job_dir = tmp_path / "daemon" / "narrations" / job_id
    before = kept(job_dir)
    assert before
    for chapter_dir in sorted(job_dir.glob("chapter_*")):
        check_files(chapter_dir, expect_summary=False)  # killed: whole files, no summary
    expected = asyncio.run(reference(tmp_path))
    with serve(tmp_path, port):
        job = poll(f"{base}/v1/narrations/{job_id}",
                   lambda job: job["status"] in ("completed", "failed"))
    assert job["status"] == "completed" and job["error"] is None, job
    assert job["attempts"] == 2
    assert {p: kept(job_dir)[p] for p in before} == before, "a finished file changed"
    for run_id, texts in expected.items():
        records = check_files(job_dir / run_id)
        segments = sorted((r for r in records if r["type"] == "segment"),
                          key=lambda r: r["index"])
        assert [r["text"] for r in segments] == texts  # each segment once, in order
    assert job["segments"] == len(job["files"]) == len(list(job_dir.rglob("segment_*")))
