"""``speakstream narrate`` jobs, as real processes: several files, JSONL job files with
text, path and prompt items, results.jsonl, resume, and one writer per directory."""

from __future__ import annotations

import json
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from output import LOCK_NAME, read_manifest
from tests.fakes.llm_server import FakeLLMServer, Reply

from .clirun import cli, run

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

ALICE = Path(__file__).resolve().parents[1] / "data" / "alice_in_wonderland.txt"
ANSWER = "Tides follow the moon. Twice a day the sea rises."
TOKENS = [ANSWER[:10], ANSWER[10:30], ANSWER[30:]]
FLAGS = ["--tts", "espeak", "--format", "wav"]


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def finished(run_dir: Path) -> bool:
    records = read_manifest(run_dir) if (run_dir / "manifest.jsonl").exists() else []
    return bool(records) and records[-1].get("status") == "completed"


def segment_indices(run_dir: Path) -> list[int]:
    return [r["index"] for r in read_manifest(run_dir) if r["type"] == "segment"]


def test_jsonl_job_with_text_path_and_prompt_items(tmp_path: Path) -> None:
    (tmp_path / "doc.md").write_text("# One\n\nFirst part. It talks.\n\n# Two\n\nSecond part.\n")
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        lines = [
            {"text": "Just a line of text."},
            {"path": "doc.md"},  # relative to the job file
            {"prompt": "Why tides?", "llm": "ollama", "model": "fake", "base_url": server.url},
            {"prompt": "Again?"},  # llm settings from the command's flags
        ]
        (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
        code, _, err = run(tmp_path, "narrate", "jobs.jsonl", "-o", "out", *FLAGS,
                           "--llm", "ollama", "--base-url", server.url, "--model", "other")
    assert code == 0, err
    out = tmp_path / "out"
    items = results(out)
    assert [r["item"] for r in items] == ["item_0001", "item_0002", "item_0003", "item_0004"]
    assert all(r["status"] == "completed" and not r["errors"] for r in items)
    text, doc, prompt, again = items
    assert (text["kind"], text["provider"], text["response"], text["chapters"]) == (
        "narrate", "text", None, 1)
    assert doc["chapters"] == 2 and doc["source"] == {"path": "doc.md"}
    assert doc["audio_files"][0] == "item_0002/chapter_01/segment_0000.wav"
    for answer, model in ((prompt, "fake"), (again, "other")):
        assert answer["kind"] == "prompt" and answer["response"] == ANSWER
        assert (answer["provider"], answer["model"]) == ("ollama", model)
        assert answer["streamed"] is True and answer["chunks"] == len(TOKENS)
        assert answer["duration_s"] > 0
        assert all((out / f).is_file() for f in answer["audio_files"])
    assert [r.json["model"] for r in server.requests] == ["fake", "other"]


def test_several_files_and_a_bad_job_line(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_text("Alpha text. Two sentences.")
    (tmp_path / "b.txt").write_text("Beta text.")
    code, _, err = run(tmp_path, "narrate", "a.txt", "b.txt", "-o", "out", *FLAGS)
    assert code == 0, err
    out = tmp_path / "out"
    assert [r["item"] for r in results(out)] == ["item_0001", "item_0002"]
    assert segment_indices(out / "item_0002" / "chapter_01") == [0]

    (tmp_path / "bad.jsonl").write_text('{"text": "ok."}\n{"text": "x", "prompt": "y"}\n')
    code, _, err = run(tmp_path, "narrate", "bad.jsonl", "-o", "out2", *FLAGS)
    assert code == 2
    assert err.strip().count("\n") == 0 and "bad.jsonl:2" in err and "exactly one" in err


def test_second_writer_is_refused_and_resume_after_kill_skips_finished_work(
    tmp_path: Path,
) -> None:
    first = cli(tmp_path, "narrate", str(ALICE), "-o", "out", *FLAGS, "--workers", "1")
    out = tmp_path / "out"
    try:
        # Wait until chapter 1 is finished and chapter 2 is being written.
        for _ in range(1200):
            writing_2 = (out / "chapter_02" / "segment_0002.wav").exists()
            if (finished(out / "chapter_01") and writing_2) or first.poll() is not None:
                break
            time.sleep(0.1)
        assert first.poll() is None, "the job ended too early"
        for args in ((), ("--resume",)):
            code, _, err = run(tmp_path, "narrate", str(ALICE), "-o", "out", *FLAGS, *args)
            assert code == 2  # output directory in use
            assert len(err.strip().splitlines()) == 1 and "in use by another writer" in err
            assert f"process {first.pid}" in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate()
    done_before = read_manifest(out / "chapter_01")
    assert done_before[-1]["status"] == "completed"
    unfinished = next(c for c in sorted(out.glob("chapter_*")) if not finished(c))
    stale = unfinished / ".segment_0099.wav.deadbeef.tmp"
    stale.write_bytes(b"left by a kill")

    code, _, err = run(tmp_path, "narrate", str(ALICE), "-o", "out", *FLAGS, "--resume",
                       timeout=600)
    assert code == 0, err
    assert read_manifest(out / "chapter_01") == done_before  # finished: not run again
    assert not stale.exists()
    for chapter in sorted(out.glob("chapter_*")):
        records = read_manifest(chapter)
        indices = segment_indices(chapter)
        assert indices == list(range(len(indices))), chapter  # each index once, in order
        assert records[-1]["status"] == "completed"
        assert (chapter / LOCK_NAME).exists()
    [line] = results(out)
    assert line["status"] == "completed" and line["chapters"] == 12


def test_a_bad_item_fails_alone_and_the_job_goes_on(tmp_path: Path) -> None:
    (tmp_path / "latin1.txt").write_bytes("Caf\xe9 au lait. Bon.".encode("latin-1"))
    with FakeLLMServer(Reply(tokens=TOKENS, error_after=1), Reply(tokens=TOKENS)) as server:
        lines = [
            {"path": "missing.txt"},
            {"path": "latin1.txt"},
            {"prompt": "Breaks?"},  # the server sends an error after one token
            {"prompt": "Who?", "llm": "no-such-llm"},
            {"text": "Still narrated."},
            {"prompt": "Fine?"},
        ]
        (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
        code, _, err = run(tmp_path, "narrate", "jobs.jsonl", "-o", "out", *FLAGS,
                           "--llm", "ollama", "--base-url", server.url, "--model", "fake")
    assert code == 1, err  # some items failed
    assert "Traceback" not in err
    for n in (1, 2, 4):  # each failed item is said, with its reason, in one line
        said = [line for line in err.splitlines() if line.startswith(f"item_000{n}: failed: ")]
        assert len(said) == 1, err
    # An LLM error is said by the run (with its type), not a second time for the item.
    assert "item_0003: failed" not in err
    assert len([line for line in err.splitlines() if "LLMStreamError" in line]) == 1, err
    assert "item_0005: failed" not in err and "item_0006: failed" not in err
    items = results(tmp_path / "out")
    assert [(r["item"], r["status"]) for r in items] == [
        ("item_0001", "failed"), ("item_0002", "failed"), ("item_0003", "failed"),
        ("item_0004", "failed"), ("item_0005", "completed"), ("item_0006", "completed")]
    missing, latin1, broken, unknown, text, fine = items
    assert missing["errors"][0].startswith("FileNotFoundError") and "missing.txt" in \
        missing["errors"][0]
    assert latin1["errors"][0].startswith("UnicodeDecodeError")
    assert broken["response"] == TOKENS[0] and broken["errors"]  # the text so far is kept
    assert "no-such-llm" in unknown["errors"][0] and unknown["chunks"] == 0
    assert text["audio_files"] and all((tmp_path / "out" / f).is_file()
                                       for f in text["audio_files"])
    assert fine["response"] == ANSWER
    assert len(server.requests) == 2  # the unknown LLM was never asked


def test_resume_redoes_a_changed_item_and_skips_an_unchanged_one(tmp_path: Path) -> None:
    def write_job(second: str) -> None:
        lines = [{"prompt": "First question?"}, {"prompt": second}]
        (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")

    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        flags = [*FLAGS, "--llm", "ollama", "--base-url", server.url, "--model", "fake"]
        write_job("Second question?")
        code, _, err = run(tmp_path, "narrate", "jobs.jsonl", "-o", "out", *flags)
        assert code == 0, err
        before = results(tmp_path / "out")
        write_job("Second question, changed?")
        code, _, err = run(tmp_path, "narrate", "jobs.jsonl", "-o", "out", *flags, "--resume")
        assert code == 0, err
        asked = [r.json["messages"][-1]["content"] for r in server.requests]
        # A different model for the same items: every one is redone.
        code, _, err = run(tmp_path, "narrate", "jobs.jsonl", "-o", "out", *flags[:-1],
                           "other", "--resume")
        assert code == 0, err
        asked_again = [r.json["messages"][-1]["content"] for r in server.requests]
    assert asked == ["First question?", "Second question?", "Second question, changed?"]
    assert asked_again[3:] == ["First question?", "Second question, changed?"]
    after = results(tmp_path / "out")
    assert [r["item"] for r in after] == ["item_0001", "item_0002"]  # one line per item
    assert after[0]["model"] == "other" and after[1]["source"]["prompt"].endswith("changed?")
    assert before[0]["digest"] and before[0]["digest"] != after[0]["digest"]


def test_resume_with_changed_settings_makes_the_audio_anew_and_keeps_the_old_aside(
    tmp_path: Path,
) -> None:
    """The same document resumed in another format: no chapter may stand on the
    earlier run's files (they are set aside, not deleted)."""
    (tmp_path / "book.md").write_text("# One\n\nA first chapter. It is short.\n\n"
                                      "# Two\n\nThe second one. Also short.\n", encoding="utf-8")
    code, _, err = run(tmp_path, "narrate", "book.md", "-o", "out", "--tts", "espeak",
                       "--format", "wav")
    assert code == 0, err
    old = sorted(p.relative_to(tmp_path / "out") for p in (tmp_path / "out").rglob("segment_*"))
    assert old and all(p.suffix == ".wav" for p in old)
    code, _, err = run(tmp_path, "narrate", "book.md", "-o", "out", "--tts", "espeak",
                       "--format", "mp3", "--resume")
    assert code == 0, err
    chapters = sorted(p for p in (tmp_path / "out").iterdir() if p.name.startswith("chapter_"))
    assert [p.name for p in chapters] == ["chapter_01", "chapter_01.partial",
                                          "chapter_02", "chapter_02.partial"]
    for chapter in ("chapter_01", "chapter_02"):
        records = read_manifest(tmp_path / "out" / chapter)
        segments = [r for r in records if r["type"] == "segment"]
        assert segments and all(r["path"].endswith(".mp3") for r in segments)
        assert records[-1]["status"] == "completed"
        kept = sorted((tmp_path / "out" / f"{chapter}.partial").glob("segment_*"))
        assert kept and all(p.suffix == ".wav" for p in kept)  # the old audio, untouched
    (line,) = results(tmp_path / "out")
    assert line["status"] == "completed" and all(f.endswith(".mp3") for f in line["audio_files"])


@pytest.mark.parametrize(("tts", "cpus", "workers", "expected"), [
    ("piper", 2, 2, {"threads": 1, "parallel": 2}),
    ("piper", 4, 1, {"threads": 4, "parallel": 1}),
    ("piper", 1, 3, {"threads": 1, "parallel": 3}),
    ("auto", 4, 2, {"edge": {"parallel": 2}, "piper": {"threads": 2, "parallel": 2},
                    "espeak": {"parallel": 2}}),
    ("espeak", 2, 2, {"parallel": 2}),
    ("edge", 2, 3, {"parallel": 3}),
    ("pyttsx3", 2, 2, {}),
])
def test_a_job_engine_gets_its_workers_share_of_the_cpus(
    tts: str, cpus: int, workers: int, expected: dict[str, object]
) -> None:
    from pipeline.jobs import engine_options

    assert engine_options(tts, cpus=cpus, workers=workers) == expected


def test_a_prompt_naming_another_llm_does_not_inherit_the_commands_model_or_server(
    tmp_path: Path,
) -> None:
    """A model and a server URL belong to one provider (as the daemon's do)."""
    from pipeline._job_pipelines import prompt_settings
    from pipeline._jobfile import JobItem
    from pipeline._settings import resolve_settings

    command = resolve_settings({"llm": "ollama", "model": "llama3",
                                "base_url": "http://127.0.0.1:11434"}, env={}, files=[])
    same = prompt_settings(command, JobItem(id="a", prompt="Hi"))
    assert (same.values["llm"], same.values["model"], same.values["base_url"]) == (
        "ollama", "llama3", "http://127.0.0.1:11434")
    other = prompt_settings(command, JobItem(id="b", prompt="Hi", llm="openai"))
    assert other.values["llm"] == "openai"
    assert other.values["model"] != "llama3" and other.values["base_url"] != (
        "http://127.0.0.1:11434")
    own = prompt_settings(command, JobItem(id="c", prompt="Hi", llm="openai", model="gpt-x"))
    assert own.values["model"] == "gpt-x"
