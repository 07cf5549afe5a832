"""Resume: what an earlier, interrupted run in the same directory already finished."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from output import MANIFEST_NAME, read_manifest
from tts import SynthesizedAudio, WordBoundary


@dataclass(frozen=True)
class ReusableSegment:
    """A segment an earlier, interrupted run finished: its manifest record and file.

    The audio is read only when the segment comes up again (:meth:`load`), so a
    resume never holds a whole run's audio in memory.
    """

    path: Path
    record: Mapping[str, Any]

    @property
    def text(self) -> str:
        """The spoken text it was made from (a changed input is synthesized anew)."""
        return str(self.record["text"])

    def load(self) -> SynthesizedAudio:
        """The file's audio with the manifest's metadata (blocking: call off the loop).

        Raises:
            OSError: the file can no longer be read.
        """
        record = self.record
        return SynthesizedAudio(
            data=self.path.read_bytes(),
            format=str(record["format"]),
            sample_rate=int(record.get("sample_rate") or 0),
            channels=int(record.get("channels") or 0),
            duration_s=float(record["duration_s"]),
            words=tuple(
                WordBoundary(w["text"], float(w["offset_s"]), float(w["duration_s"]))
                for w in record.get("words") or ()
            ),
            engine=str(record.get("engine") or ""),
            voice=record.get("voice"),
            text=self.text,
        )


def load_reusable(run_dir: Path) -> dict[int, ReusableSegment]:
    """The segments an earlier run in ``run_dir`` finished (for resume), by index.

    Reads ``manifest.jsonl`` (a torn last line is tolerated) and keeps the
    segment records whose file still exists. Returns ``{}`` when there is no
    manifest.
    """
    manifest = run_dir / MANIFEST_NAME
    if not manifest.is_file():
        return {}
    reusable: dict[int, ReusableSegment] = {}
    for record in read_manifest(manifest):
        if record.get("type") != "segment":
            continue
        path = run_dir / str(record["path"])
        if path.is_file():
            reusable[int(record["index"])] = ReusableSegment(path, record)
    return reusable
