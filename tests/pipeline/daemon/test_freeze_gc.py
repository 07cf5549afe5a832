"""``create_app(freeze_gc=True)``: once started, start-up's objects are out of the
cyclic collector's reach (a full collection under a burst then scans only what
runs made). Checked in a child process: freezing is process-wide."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

_CHILD = """
import gc, sys
from fastapi.testclient import TestClient
from pipeline.daemon import DaemonSettings, create_app
from tests.fakes.engine import FakeEngine

app = create_app(DaemonSettings(output_dir=sys.argv[1]), tts_engine=FakeEngine(),
                 freeze_gc=sys.argv[2] == "freeze")
before = gc.get_freeze_count()
with TestClient(app) as client:
    assert client.get("/healthz").status_code == 200
    print(before, gc.get_freeze_count())
"""


@pytest.mark.parametrize("mode", ["freeze", "default"])
def test_freeze_gc_freezes_what_start_up_made_and_only_when_asked(
    tmp_path: Path, mode: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "out"), mode],
        capture_output=True, text=True, timeout=120, check=False,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert before == 0
    if mode == "freeze":
        assert after > 10_000  # modules, the app, the engine: everything alive at start
    else:
        assert after == 0
