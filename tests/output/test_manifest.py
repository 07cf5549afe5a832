"""read_manifest: JSON Lines, torn last line tolerated, corruption elsewhere reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from output import MANIFEST_NAME, ManifestError, read_manifest

LINES = [
    {"type": "segment", "index": 0, "text": "Hello.", "path": "segment_0000.wav"},
    {"type": "segment", "index": 1, "text": "Wörld — ünicode.", "path": "segment_0001.wav"},
]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / MANIFEST_NAME
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_all_lines_from_file_or_directory(tmp_path: Path) -> None:
    path = _write(tmp_path, "".join(json.dumps(r) + "\n" for r in LINES))
    assert read_manifest(path) == LINES
    assert read_manifest(tmp_path) == LINES


@pytest.mark.parametrize("cut", [1, 10, 25, -2])
def test_torn_last_line_is_dropped(tmp_path: Path, cut: int) -> None:
    full = json.dumps(LINES[0]) + "\n" + json.dumps(LINES[1]) + "\n"
    torn = full[: len(json.dumps(LINES[0])) + 1 + cut] if cut > 0 else full[:cut]
    path = _write(tmp_path, torn)
    assert read_manifest(path) == [LINES[0]]


def test_last_line_without_newline_but_complete_is_kept(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps(LINES[0]) + "\n" + json.dumps(LINES[1]))
    assert read_manifest(path) == LINES


def test_corrupt_middle_line_raises_with_line_number(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps(LINES[0]) + "\n{oops\n" + json.dumps(LINES[1]) + "\n")
    with pytest.raises(ManifestError, match=r":2: not valid JSON") as info:
        read_manifest(path)
    assert info.value.line == 2 and info.value.path == path


def test_non_object_line_raises(tmp_path: Path) -> None:
    path = _write(tmp_path, "[1, 2]\n" + json.dumps(LINES[0]) + "\n")
    with pytest.raises(ManifestError, match="expected a JSON object"):
        read_manifest(path)


def test_missing_manifest(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_manifest(tmp_path)
