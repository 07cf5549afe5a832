"""``speakstream narrate``: honest progress (issue 10 item 4) and bad input (issue 11 item 8;
text that is not UTF-8 is a fault of tests/faults/test_output_dir.py).

The CLI runs as a subprocess; the figures themselves (speed window, ETA) are
unit-tested on a fake clock in test_progress.py.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

from .clirun import SPEAKSTREAM, cli_env, run

BOOK = (
    "# One\n\nThe first chapter is short. It has three sentences. This is the third.\n\n"
    "# Two\n\nThe second chapter is shorter. It ends.\n"
)
PROGRESS = re.compile(r"^(narration|One|Two): (.+?) · (\d+)% · ([\d,]+)/([\d,]+) chars · (ETA .+)$")


def progress_lines(err: str) -> list[re.Match[str]]:
    return [m for line in err.splitlines() if (m := PROGRESS.match(line))]


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(BOOK, encoding="utf-8")
    code, _, err = run(tmp_path, "narrate", "book.md", "--tts", "espeak", "--merge",
                       "--format", "wav", env={"SPEAKSTREAM_PROGRESS_INTERVAL": "0"})
    assert code == 0, err
    lines = progress_lines(err)
    assert lines, err
    total = len(BOOK)
    assert {int(m[5].replace(",", "")) for m in lines} == {total}
    done = [int(m[4].replace(",", "")) for m in lines]
    assert done == sorted(done) and done[0] == 0 and done[-1] == total
    assert lines[0][6] == "ETA measuring…"
    # Merging each chapter is said while it happens, with the number of files.
    merging = [(m[1], m[2]) for m in lines if m[2].startswith("merging")]
    assert [c for c, _ in merging] == ["One", "Two"], err
    assert all(re.fullmatch(r"merging [1-9]\d* files…", what) for _, what in merging)
    assert lines[-1][2] == "done" and lines[-1][3] == "100"
    assert "TTFT" not in err


def test_plain_progress_lines_are_spaced_by_the_configured_interval(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(BOOK, encoding="utf-8")
    (tmp_path / "speakstream.toml").write_text("progress_interval = 3600\n", encoding="utf-8")
    code, _, err = run(tmp_path, "narrate", "book.md", "--tts", "espeak", "--format", "wav")
    assert code == 0, err
    # Only the phase changes print within an hour: start, finishing / next chapter, done.
    phases = [m[2] for m in progress_lines(err)]
    assert phases == ["narrating", "finishing…", "narrating", "finishing…", "done"], err


def test_terminal_bar_keeps_values_with_their_units(tmp_path: Path) -> None:
    (tmp_path / "book.md").write_text(BOOK, encoding="utf-8")
    master, slave = pty.openpty()
    width = 60
    proc = subprocess.Popen(
        [str(SPEAKSTREAM), "narrate", "book.md", "--tts", "espeak", "--merge", "--format", "wav"],
        cwd=tmp_path, env=cli_env(tmp_path, COLUMNS=str(width), TERM="xterm"),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", b"".join(chunks).decode("utf-8"))
    frames = [f.strip() for f in re.split(r"[\r\n]", screen) if " chars · " in f]
    assert frames, screen
    for frame in frames:
        # Figures never cut: "N%", "done/total chars", "ETA ...", elapsed h:mm:ss when
        # it fits (on a narrow terminal the title, the bar, then the elapsed time give way).
        assert re.search(r"\d+% · [\d,]+/[\d,]+ chars · ETA (measuring…|\d+:\d\d)"
                         r"( · \d:\d\d:\d\d)?$", frame), frame
        assert len(frame) <= width, frame
    assert any("merging" in f for f in frames) or any("done" in f for f in frames)


def test_blank_documents_and_stdin_twice_are_one_line_and_leave_nothing(tmp_path: Path) -> None:
    (tmp_path / "blank.txt").write_text("\n \n\t\n", encoding="utf-8")
    (tmp_path / "book.md").write_text(BOOK, encoding="utf-8")
    for argv in (["blank.txt"], ["book.md", "blank.txt"], ["-", "-"]):
        code, _, err = run(tmp_path, "narrate", *argv, "--tts", "espeak", "-o", "out")
        assert code == 2, err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()
