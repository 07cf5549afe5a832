"""Atomic file creation: write a temp file in the same directory, then rename.

A crash at any point leaves either no file or the complete file under the final
name, never a partial one. A hard crash (SIGKILL, power loss) may leave a temp
file named ``.<final name>.<random>.tmp`` behind; it never has the final name.
On any exception the temp file is removed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ._errors import OutputExistsError


def temp_name(final: Path) -> Path:
    """A fresh temp path next to ``final`` (same directory, so rename is atomic)."""
    return final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")


@contextmanager
def atomic_path(final: Path, *, overwrite: bool) -> Iterator[Path]:
    """Yield a temp path to fill; on success move it to ``final`` atomically.

    With ``overwrite=False`` the move is a hard link, which fails if ``final``
    exists (no check-then-replace race), so nothing is ever replaced.

    Raises:
        OutputExistsError: ``final`` exists and ``overwrite`` is false (the
            existing file is untouched, the temp file removed).
    """
    tmp = temp_name(final)
    try:
        yield tmp
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
    with atomic_path(final, overwrite=overwrite) as tmp, open(tmp, "xb") as f:
        f.write(data)


def atomic_write_text(final: Path, text: str, *, overwrite: bool) -> None:
    """Write ``text`` (UTF-8) to ``final`` atomically (see :func:`atomic_path`)."""
    atomic_write_bytes(final, text.encode("utf-8"), overwrite=overwrite)
