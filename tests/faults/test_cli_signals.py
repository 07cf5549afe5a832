"""Signals to the real CLI: SIGINT / SIGTERM to ``ask`` and ``narrate``, and
``kill -9`` during ``narrate`` followed by ``narrate --resume``."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline._narrate import split_chapters
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply
from tests.pipeline.clirun import cli, run

from .conftest import TOKENS
from .invariants import check_files, check_text, completed, of
from .table import fault

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

ALICE = Path(__file__).resolve().parents[1] / "data" / "alice_in_wonderland.txt"
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
SIGNALS = pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM],
                                  ids=["SIGINT", "SIGTERM"])


def book() -> str:
    """Two chapters of Alice, about 2,500 characters each (15-20 segments apiece)."""
    chapters = split_chapters(ALICE.read_text(encoding="utf-8"))[:2]
    return "".join(f"# {c.title}\n\n{c.text[len(c.title):2500].strip()}\n\n" for c in chapters)


def read_until(proc: subprocess.Popen[str], audio: int) -> list[dict[str, Any]]:
    """Read ``--json`` events until the ``audio``-th audio event (bounded by the output)."""
    assert proc.stdout is not None
    events: list[dict[str, Any]] = []
    for line in proc.stdout:
        events.append(json.loads(line))
        if len(of(events, "audio")) == audio:
            return events
    raise AssertionError(f"the run ended before {audio} audio files: {events[-1:]}")


@fault("cli-signal")
@SIGNALS
def test_a_signal_to_ask_stops_it_keeping_text_and_files(tmp_path: Path,
                                                          signum: signal.Signals) -> None:
    gate = Gate()
    gate.release(30)  # the rest is never sent: the model is still talking
    with FakeLLMServer(Reply(tokens=TOKENS, gate=gate)) as server:
        proc = cli(tmp_path, "ask", "Why?", "--llm", "ollama", "--base-url", server.url,
                   "--model", "fake", "--tts", "espeak", "--no-play", "--json")
        events = read_until(proc, audio=1)
        proc.send_signal(signum)
        rest, err = proc.communicate(timeout=60)
        assert server.requests[0].disconnected.wait(10), "the LLM request was not cancelled"
        sent = "".join(TOKENS[: server.requests[0].tokens_sent])
    events += [json.loads(line) for line in rest.splitlines()]
    assert proc.returncode == EXIT[signum], err
    assert "Traceback" not in err
    assert [e["status"] for e in events[-2:]] == ["cancelled", "completed"]
    done = completed(events)
    check_text(events, sent, stopped=True)
    records = check_files(Path(done["output_dir"]), events)
    assert records[-1]["status"] == "cancelled"


@fault("cli-signal")
@SIGNALS
def test_a_signal_to_narrate_stops_it_and_resume_finishes_the_job(
    tmp_path: Path, signum: signal.Signals
) -> None:
    (tmp_path / "book.md").write_text(book(), encoding="utf-8")
    args = ["narrate", "book.md", "-o", "job", "--tts", "espeak", "--workers", "1", "--json"]
    proc = cli(tmp_path, *args)
    read_until(proc, audio=3)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == EXIT[signum], err
    assert "Traceback" not in err
    first = tmp_path / "job" / "chapter_01"
    records = check_files(first)  # closed: a summary line, files == manifest
    assert records[-1]["status"] == "cancelled"
    assert_resume_finishes(tmp_path, args)


def kept(root: Path) -> dict[Path, bytes]:
    """Each segment file under ``root`` and its bytes."""
    return {p: p.read_bytes() for p in root.rglob("segment_*")}


def assert_resume_finishes(tmp_path: Path, args: list[str]) -> None:
    """``narrate --resume`` completes the job: every chapter's text is in its
    segments once, in order, every file decodes, the manifests agree, and the
    files written before the stop are unchanged."""
    before = kept(tmp_path / "job")
    status, out, err = run(tmp_path, *args, "--resume")
    assert status == 0, err
    assert {p: kept(tmp_path / "job")[p] for p in before} == before, "a finished file changed"
    events = [json.loads(line) for line in out.splitlines()]
    for chapter in split_chapters(book()):
        mine = [e for e in events if e["chapter"] == chapter.number]
        check_text(mine, chapter.text)
        records = check_files(tmp_path / "job" / chapter.run_id, mine)
        assert records[-1]["status"] == "completed"


@fault("narrate-kill")
def test_kill_9_during_narrate_then_resume_loses_nothing(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(book(), encoding="utf-8")
    args = ["narrate", "book.md", "-o", "job", "--tts", "espeak", "--workers", "1", "--json"]
    proc = cli(tmp_path, *args)
    read_until(proc, audio=3)
    proc.kill()
    proc.communicate(timeout=60)
    first = tmp_path / "job" / "chapter_01"
    written = check_files(first, expect_summary=False)  # no summary: it was killed
    # An `audio` event goes out when its file is complete; its manifest line
    # follows the sync, so the third may be unlisted yet (check_files allows it).
    assert len([r for r in written if r["type"] == "segment"]) >= 2
    assert_resume_finishes(tmp_path, args)
