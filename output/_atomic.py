"""Atomic file creation: write a temp file in the same directory, then rename.

A crash at any point leaves either no file or the complete file under the final
name, never a partial one (:func:`placed_write_steps` trades that, for a power
loss only, for a name given before the sync: see there). A hard crash
(SIGKILL, power loss) may leave a temp file named
``.<final name>.<random>.tmp`` behind; it never has the final name. On any
exception the temp file is removed.

:func:`atomic_write_steps` is the same write in steps, for a group commit
(:mod:`._commit`): it stops once, when the bytes are written, for the caller
to make them durable, then moves the file to its final name.
:func:`placed_write_steps` moves it first and stops after, for a caller that
announces a complete file before it is durable.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

from ._commit import run_inline
from ._errors import OutputExistsError


def temp_name(final: Path) -> Path:
    """A fresh temp path next to ``final`` (same directory, so rename is atomic)."""
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_path(final: Path, *, overwrite: bool, sync: bool = True) -> Iterator[Path]:
    """Yield a temp path to fill; on success move it to ``final`` atomically.

    With ``overwrite=False`` the move is a hard link, which fails if ``final``
    exists (no check-then-replace race), so nothing is ever replaced. With
    ``sync=False`` the temp file is not fsynced before the move: the caller
    made it durable already (see :func:`atomic_write_steps`).

    Raises:
        OutputExistsError: ``final`` exists and ``overwrite`` is false (the
            existing file is untouched, the temp file removed).
    """
    tmp = temp_name(final)
    try:
        yield tmp
        if sync:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        if overwrite:
            os.replace(tmp, final)
        else:
            try:
                os.link(tmp, final)
            except FileExistsError as exc:
                raise OutputExistsError(
                    f"{final} already exists; pass overwrite=True to replace it", path=final
                ) from exc
            tmp.unlink()
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(final: Path, data: bytes, *, overwrite: bool) -> None:
    """Write ``data`` to ``final`` atomically (see :func:`atomic_path`)."""
    run_inline(atomic_write_steps(final, data, overwrite=overwrite))


def atomic_write_steps(final: Path, data: bytes, *, overwrite: bool) -> Generator[int, None, None]:
    """:func:`atomic_write_bytes` in steps: writes ``data`` to the temp file, yields
    its file descriptor once, and after resuming moves the file to ``final``.

    The caller makes the bytes durable while the generator waits (``os.fsync``
    of the descriptor, or one ``syncfs`` for many files); an ``OSError`` thrown
    in there removes the temp file and propagates. Closing the generator early
    removes the temp file too.

    Raises:
        OSError: the temp file could not be written, or what was thrown in.
        OutputExistsError: as :func:`atomic_path`.
    """
    with atomic_path(final, overwrite=overwrite, sync=False) as tmp:
        # os-level calls, not a buffered file: three system calls (each lets the
        # GIL go and must win it back, which is slow next to a busy event loop).
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            write_all(fd, data)
            yield fd
        finally:
            os.close(fd)


def placed_write_steps(final: Path, data: bytes, *, overwrite: bool) -> Generator[int, None, None]:
    """The file under its name first, durable after: writes ``data`` to a temp file,
    moves it to ``final`` (atomically, as :func:`atomic_path`: a reader sees all of
    it or nothing), then yields its descriptor once for the caller to make the
    bytes durable (and the name: ``syncfs`` does, ``fsync`` of the file alone
    does not).

    For a caller that announces the file as soon as it is complete and records
    it durably (a manifest line) once the sync is done: a crash before the sync
    may leave ``final`` without its bytes, so nothing durable may name it before
    then. An ``OSError`` thrown in (the sync failed), or closing the generator
    early, removes ``final`` again and propagates.

    Raises:
        OSError: the temp file could not be written or moved, or what was thrown in.
        OutputExistsError: as :func:`atomic_path`.
    """
    fd = -1
    try:
        with atomic_path(final, overwrite=overwrite, sync=False) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            write_all(fd, data)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
    try:
        yield fd
    except BaseException as exc:
        try:
            final.unlink(missing_ok=True)
        except OSError as also:  # e.g. remounted read-only: the first error stays the one
            exc.add_note(f"{final.name} could not be removed either: {also}")
        raise
    finally:
        os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is written (a write may take part of it).

    Raises:
        OSError: as ``os.write`` (what was written before stays).
    """
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def atomic_write_text(final: Path, text: str, *, overwrite: bool) -> None:
    """Write ``text`` (UTF-8) to ``final`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(final, text.encode("utf-8"), overwrite=overwrite)
