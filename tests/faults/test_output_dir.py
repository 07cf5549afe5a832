"""Bad input files and a second writer: refused in one line before anything is
written, and never at the cost of what the first writer is making."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.fakes.engine import FakeEngine
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply
from tests.pipeline.clirun import SPEAKSTREAM, cli, cli_env, run
from tests.pipeline.daemon.conftest import LONG_ANSWER, ScriptedLLM, start_daemon

from .conftest import TOKENS
from .invariants import check_cli_error, check_error_shape, check_files, check_text, completed
from .table import fault
from .test_cli_signals import read_until
from .test_daemon import assert_still_serves, daemon_settings

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")


@fault("two-writers")
def test_a_second_narrate_into_a_busy_directory_is_refused_and_the_first_finishes(
    tmp_path: Path,
) -> None:
    """The first writer is held mid-answer by a gated LLM, so it is surely still
    writing while a second ``narrate`` (plain, then ``--resume``) is refused."""
    gate = Gate()
    gate.release(30)  # the first segments are spoken; the rest waits for the gate
    with FakeLLMServer(Reply(tokens=TOKENS, gate=gate)) as server:
        job = {"id": "q", "prompt": "Why?", "llm": "ollama", "base_url": server.url,
               "model": "fake"}
        (tmp_path / "jobs.jsonl").write_text(json.dumps(job) + "\n", encoding="utf-8")
        args = ["narrate", "jobs.jsonl", "-o", "job", "--tts", "espeak", "--json"]
        first = cli(tmp_path, *args)
        try:
            events = read_until(first, audio=1)
            for second in (args, [*args, "--resume"]):
                code, out, err = run(tmp_path, *second)
                assert code == 2 and out == "", err  # README: output directory in use
                check_cli_error(err, expect="in use by another writer (process")
            gate.release_all()
            rest, err = first.communicate(timeout=120)
        finally:
            if first.poll() is None:
                first.kill()
                first.communicate()
    assert first.returncode == 0, err
    events += [json.loads(line) for line in rest.splitlines()]
    check_text(events, "".join(TOKENS))
    done = completed(events)
    records = check_files(Path(done["output_dir"]), events)
    assert records[-1]["status"] == "completed"
    results = (tmp_path / "job" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["status"] for line in results] == ["completed"]


@fault("bad-utf8")
def test_text_that_is_not_utf8_is_one_line_naming_where_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    (tmp_path / "bad.txt").write_bytes("Fine. Then h\xe9llo.".encode("latin-1"))
    code, _, err = run(tmp_path, "narrate", "bad.txt", "--tts", "espeak", "-o", "out")
    assert code == 2
    check_cli_error(err, expect="bad.txt is not UTF-8")
    assert "byte offset 12" in err
    proc = subprocess.run(
        [str(SPEAKSTREAM), "narrate", "-", "--tts", "espeak", "-o", "out"], cwd=tmp_path,
        input=b"Fine text. Then \xff\xfe bad bytes.\n", capture_output=True, timeout=120,
        env=cli_env(tmp_path),
    )
    assert proc.returncode == 2
    check_cli_error(proc.stderr.decode(), expect="stdin is not UTF-8")
    assert "byte offset 16" in proc.stderr.decode()
    assert not (tmp_path / "out").exists()
    # A plain re-run with good text into the same directory works.
    code, _, err = run(tmp_path, "narrate", "-", "--tts", "espeak", "-o", "out",
                       "--format", "wav", input="Fine text. Now good.\n")
    assert code == 0, err
    assert list((tmp_path / "out").rglob("segment_*.wav"))


@fault("bad-utf8")
def test_a_request_body_that_is_not_utf8_is_a_400_in_the_documented_shape(
    tmp_path: Path,
) -> None:
    running = start_daemon(daemon_settings(tmp_path / "out"), llm=ScriptedLLM(LONG_ANSWER),
                           engine=FakeEngine())
    try:
        for route, body in (("/v1/speak", b'{"message": "h\xe9llo"}'),
                            ("/v1/narrations", b'{"text": "h\xe9llo"}'),
                            ("/v1/audio/speech", b'{"model": "tts-1", "input": "h\xe9llo"}')):
            response = httpx.post(running.url + route, content=body, timeout=30,
                                  headers={"content-type": "application/json"})
            assert response.status_code == 400, (route, response.text)
            check_error_shape(response.json())
        assert_still_serves(running, {})
    finally:
        running.stop()
