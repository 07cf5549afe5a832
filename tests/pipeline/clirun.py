"""Run the real ``speakstream`` console script of this checkout's virtualenv.

Every run gets a clean environment: HOME and XDG dirs inside the test's
temp dir (no user config file), no ``SPEAKSTREAM_*`` variable but those
given, no PulseAudio server (files only), and edge-tts pointed at a closed
loopback port through the proxy variables it honours, so ``tts auto`` never
reaches the internet (edge is then "unavailable", as offline).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
#: The entry point pip installed next to the interpreter running the tests.
SPEAKSTREAM = Path(sys.executable).with_name("speakstream")
#: A loopback port nothing listens on (discard): proxied edge-tts requests fail at once.
_DEAD_PROXY = "http://127.0.0.1:9"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run in ``tmp_path`` (see the module docstring)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SPEAKSTREAM_") and "PROXY" not in k.upper()}
    env.update({
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_RUNTIME_DIR": str(tmp_path / "run"),
        "PULSE_SERVER": "unix:" + str(tmp_path / "no-pulse"),
        "HTTPS_PROXY": _DEAD_PROXY,
        "WSS_PROXY": _DEAD_PROXY,
        "NO_PROXY": "127.0.0.1,localhost",
        "COLUMNS": "60",
    })
    env.update(extra)
    return env


def cli(tmp_path: Path, *args: str, env: dict[str, str] | None = None,
        **kw: Any) -> subprocess.Popen[str]:
    """Start ``speakstream ARGS`` in ``tmp_path`` (stdout/stderr piped, text)."""
    assert SPEAKSTREAM.is_file(), f"{SPEAKSTREAM} missing: run ./setup.sh --dev"
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **kw}
    return subprocess.Popen(
        [str(SPEAKSTREAM), *args],
        cwd=tmp_path,
        env=cli_env(tmp_path, **(env or {})),
        text=True,
        **options,
    )


def run(tmp_path: Path, *args: str, input: str | None = None, timeout: float = 120,
        env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run ``speakstream ARGS`` to the end: ``(exit code, stdout, stderr)``."""
    proc = cli(tmp_path, *args, env=env,
               stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL)
    out, err = proc.communicate(input, timeout=timeout)
    return proc.returncode, out, err
