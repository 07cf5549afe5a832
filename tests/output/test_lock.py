"""One writer per output directory: the flock, across real processes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from output import LOCK_NAME, OutputLockedError, lock_directory

HOLDER = textwrap.dedent(
    """
    import sys, time
    from output import lock_directory
    lock = lock_directory(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.readline()  # hold until told (or killed)
    """
)


def hold_in_child(directory: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(directory)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_is_refused_until_the_first_exits(tmp_path: Path) -> None:
    child = hold_in_child(tmp_path / "out")
    try:
        with pytest.raises(OutputLockedError) as info:
            lock_directory(tmp_path / "out")
        assert f"process {child.pid}" in str(info.value)
        assert info.value.path == (tmp_path / "out").resolve()
    finally:
        child.kill()  # kill -9: the OS drops the lock, no stale lock remains
        child.communicate()
    with lock_directory(tmp_path / "out") as lock:
        assert lock.held
    assert not lock.held


def test_a_second_lock_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with lock_directory(tmp_path):
        with pytest.raises(OutputLockedError):
            lock_directory(tmp_path)
    lock_directory(tmp_path).release()


def test_stale_temp_files_are_removed_when_the_lock_is_taken(tmp_path: Path) -> None:
    stale = tmp_path / ".segment_0003.wav.0badc0de.tmp"
    stale.write_bytes(b"half a file")
    keep = [tmp_path / "segment_0001.wav", tmp_path / "notes.tmp", tmp_path / ".hidden"]
    for path in keep:
        path.write_bytes(b"x")
    with lock_directory(tmp_path) as lock:
        assert lock.removed == (stale,)
    assert not stale.exists()
    assert all(p.exists() for p in keep)
    assert (tmp_path / LOCK_NAME).is_file()
