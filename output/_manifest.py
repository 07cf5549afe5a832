"""The run manifest: ``manifest.jsonl``, one JSON object per line (JSON Lines).

Segment records (``"type": "segment"``) are appended and flushed to disk as
each segment file lands, so a crashed or stopped run still tells which indices
are done; a final ``{"type": "summary", ...}`` line closes a finished run.
:func:`read_manifest` tolerates a torn last line (a crash mid-append).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, TextIO

from ._errors import ManifestError

MANIFEST_NAME = "manifest.jsonl"


class ManifestWriter:
    """Appends JSON records to a manifest file, one line each, flushed and fsynced.

    Thread-safe. ``overwrite`` truncates an existing file, otherwise lines are
    appended after its content.
    """

    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: TextIO | None = open(path, "w" if overwrite else "a", encoding="utf-8")

    def append(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line. Raises ``RuntimeError`` after close."""
        line = json.dumps(record, ensure_ascii=False, allow_nan=False) + "\n"
        with self._lock:
            if self._file is None:
                raise RuntimeError(f"manifest {self.path} is closed")
            self._file.write(line)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the file. Idempotent."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def read_manifest(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Read a manifest (the file, or a run directory holding ``manifest.jsonl``).

    Returns the records in file order (segment records and the summary, if
    any). A last line that does not parse is a torn write from a crash: it is
    dropped. Blank lines are skipped.

    Raises:
        FileNotFoundError: no manifest there.
        ManifestError: a line before the last one is not a JSON object.
    """
    file = Path(path)
    if file.is_dir():
        file = file / MANIFEST_NAME
    lines = file.read_text(encoding="utf-8", errors="replace").split("\n")
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    records: list[dict[str, Any]] = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == last:
                break
            raise ManifestError(
                f"{file}:{number + 1}: not valid JSON ({exc.msg})", path=file, line=number + 1
            ) from exc
        if not isinstance(record, dict):
            raise ManifestError(
                f"{file}:{number + 1}: expected a JSON object, got {type(record).__name__}",
                path=file,
                line=number + 1,
            )
        records.append(record)
    return records
