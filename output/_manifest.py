"""The run manifest: ``manifest.jsonl``, one JSON object per line (JSON Lines).

Segment records (``"type": "segment"``) are appended and flushed to disk as
each segment file lands, so a crashed or stopped run still tells which indices
are done; a final ``{"type": "summary", ...}`` line closes a finished run.
:func:`read_manifest` tolerates a torn last line (a crash mid-append).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import threading
from collections.abc import Generator, Iterable
from pathlib import Path
from typing import Any

from ._atomic import atomic_write_text, write_all
from ._errors import ManifestError, WriteError

MANIFEST_NAME = "manifest.jsonl"
_BLOCK = 1 << 16


class ManifestWriter:
    """Appends JSON records to a manifest file, one line each, written and fsynced.

    Thread-safe. ``overwrite`` truncates an existing file, otherwise lines are
    appended after its content. Each line is written with unbuffered
    ``os.write`` calls: a line that cannot be written whole (disk full) is cut
    off again (``ftruncate`` to where it began), so the file never holds a torn
    line in the middle and nothing stays buffered for ``close`` to fail on.
    """

    def __init__(self, path: Path, *, overwrite: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._synced = threading.Condition(self._lock)  # notified when a step ends
        self._pending = 0  # lines of append_steps written but not yet synced
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | (os.O_TRUNC if overwrite else 0)
        self._fd: int | None = os.open(path, flags, 0o644)

    def append(self, record: dict[str, Any]) -> None:
        """Append ``record`` as one line.

        Raises:
            WriteError: the line could not be written and synced (the file is
                left as it was before the call).
            RuntimeError: the manifest is closed.
        """
        self.append_pieces([json.dumps(record, ensure_ascii=False, allow_nan=False)])

    def append_pieces(self, pieces: Iterable[str]) -> None:
        """Append one line given in pieces (JSON text without its newline), written
        as they come in blocks of about 64 KiB, so a long line is never whole in memory.

        Raises:
            WriteError: the line could not be written and synced (the file is
                left as it was before the call).
            RuntimeError: the manifest is closed.
            Whatever iterating ``pieces`` raises (the line is cut off again).
        """
        with self._lock:
            fd = self._fd
            if fd is None:
                raise RuntimeError(f"manifest {self.path} is closed")
            start = self._write_line(fd, pieces)
            try:
                os.fsync(fd)
            except OSError as exc:
                raise self._cut(fd, start, exc) from exc

    def append_steps(self, record: dict[str, Any]) -> Generator[int, None, None]:
        """:meth:`append` in steps, for a group commit: writes the line, yields the
        file's descriptor once for the caller to make it durable (``os.fsync``,
        or one ``syncfs`` for many files), and returns when resumed.

        An ``OSError`` thrown in at the yield cuts the line off again when it is
        still the file's last, and raises :class:`WriteError`. When other lines
        were appended after it meanwhile (each durable on its own), it stays:
        they are never cut with it; the error's note says so, and the caller
        supersedes it (a later line for the same index wins, see
        :func:`last_per_index`).

        Raises:
            WriteError: the line could not be written, or its sync failed.
            RuntimeError: the manifest is closed.
        """
        with self._lock:
            fd = self._fd
            if fd is None:
                raise RuntimeError(f"manifest {self.path} is closed")
            line = json.dumps(record, ensure_ascii=False, allow_nan=False)
            start = self._write_line(fd, [line])
            end = start + len(line.encode("utf-8")) + 1
            self._pending += 1  # close() waits: the descriptor stays valid for the sync
        try:
            yield fd  # not under the lock: other lines may join the same sync
        except OSError as exc:
            with self._lock:
                try:
                    last = os.fstat(fd).st_size == end
                except OSError:
                    last = False
                if last:  # still the file's last line: cut it off
                    raise self._cut(fd, start, exc) from exc
                exc.add_note("its line stays in the manifest: lines written after it "
                             "are kept")
                raise self._error(exc) from exc
        finally:
            with self._lock:
                self._pending -= 1
                self._synced.notify_all()

    def _write_line(self, fd: int, pieces: Iterable[str]) -> int:
        """Write ``pieces`` and a newline at the end of the file (the lock held);
        returns where the line began. A failed write is cut off again."""
        start = os.lseek(fd, 0, os.SEEK_END)
        try:
            _write_blocks(fd, itertools.chain(pieces, ["\n"]))
        except OSError as exc:
            raise self._cut(fd, start, exc) from exc
        except BaseException:  # from ``pieces``: the half line must not stay
            with contextlib.suppress(OSError):
                os.ftruncate(fd, start)
            raise
        return start

    def _cut(self, fd: int, start: int, exc: OSError) -> WriteError:
        """Cut the file back to ``start`` (when it reaches past it) after ``exc``;
        the :class:`WriteError` to raise."""
        try:
            if os.fstat(fd).st_size > start:  # never extend: an earlier cut came first
                os.ftruncate(fd, start)
        except OSError as undo:  # the line may stay torn; read_manifest says where
            exc.add_note(f"could not cut the torn line off again: {undo}")
        return self._error(exc)

    def _error(self, exc: OSError) -> WriteError:
        return WriteError(
            f"cannot append to {self.path.name}: {exc.strerror or exc}",
            path=self.path, errno=exc.errno,
        )

    def close(self) -> None:
        """Close the file, once the lines of :meth:`append_steps` in progress are
        synced. Idempotent; never raises for a full disk (nothing is buffered)."""
        with self._lock:
            while self._pending:
                self._synced.wait()
            if self._fd is not None:
                fd, self._fd = self._fd, None
                os.close(fd)


def _write_blocks(fd: int, pieces: Iterable[str]) -> None:
    block: list[bytes] = []
    size = 0
    for piece in itertools.chain(pieces, [None]):
        if piece is not None:
            data = piece.encode("utf-8")
            block.append(data)
            size += len(data)
        if block and (piece is None or size >= _BLOCK):
            write_all(fd, b"".join(block))
            block, size = [], 0


def rewrite_manifest(path: Path, records: list[dict[str, Any]]) -> None:
    """Replace the manifest at ``path`` by ``records`` atomically (temp file + rename).

    A crash leaves either the old manifest or the new one, never a mix.

    Raises:
        WriteError: the new manifest could not be written (the old one stays).
    """
    text = "".join(json.dumps(r, ensure_ascii=False, allow_nan=False) + "\n" for r in records)
    try:
        atomic_write_text(path, text, overwrite=True)
    except OSError as exc:
        raise WriteError(
            f"cannot rewrite {path.name}: {exc.strerror or exc}", path=path, errno=exc.errno
        ) from exc


def last_per_index(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """The last ``segment`` or ``failed`` record of each index (a later line wins)."""
    latest: dict[int, dict[str, Any]] = {}
    for record in records:
        if record.get("type") in ("segment", "failed"):
            latest[int(record["index"])] = record
    return latest


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
