"""One writer per output directory: an exclusive ``flock`` on a lock file inside it.

:func:`lock_directory` takes the lock (creating the directory when needed) or
raises :class:`OutputLockedError` at once, naming the process that holds it.
The operating system drops the lock when its holder exits, however it exits
(``kill -9`` included), so a lock is never stale. Once the lock is taken, temp
files (``.<name>.<hex>.tmp``, see :mod:`output._atomic`) that a killed writer
left behind are removed: nobody else can be writing them.

The lock file (:data:`LOCK_NAME`) stays in the directory; removing it would
race with the next writer.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
from pathlib import Path
from types import TracebackType

from ._errors import OutputLockedError

#: Name of the lock file inside a locked directory.
LOCK_NAME = ".speakstream.lock"

_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")


class DirectoryLock:
    """The held lock of one directory (from :func:`lock_directory`).

    A context manager; :meth:`release` is idempotent. Not shared between
    processes: a forked child does not hold it.

    Attributes:
        directory: the locked directory (absolute).
        removed: the stale temp files removed when the lock was taken.
    """

    def __init__(self, directory: Path, fd: int, removed: tuple[Path, ...]) -> None:
        self.directory = directory
        self.removed = removed
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        """Whether this object still holds the lock."""
        return self._fd is not None

    def release(self) -> None:
        """Release the lock (closing the lock file). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> DirectoryLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_directory(directory: str | os.PathLike[str]) -> DirectoryLock:
    """Take the exclusive lock of ``directory`` without waiting.

    Creates the directory (and its parents) when missing, then removes the
    stale temp files directly inside it.

    Raises:
        OutputLockedError: another writer (another process, or another
            :class:`DirectoryLock` in this one) holds it.
        OSError: the directory or its lock file cannot be created.
    """
    path = Path(directory).resolve()
    path.mkdir(parents=True, exist_ok=True)
    fd = os.open(path / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
        os.close(fd)
        who = f" (process {holder})" if holder.isdigit() else ""
        raise OutputLockedError(
            f"{path} is in use by another writer{who}: wait for it to finish "
            "or choose another output directory",
            path=path,
        ) from exc
    except BaseException:
        os.close(fd)
        raise
    try:  # who holds it, for the refusal message; the lock holds without it
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError as exc:  # a full disk must not stop a run that can still report
        if exc.errno != errno.ENOSPC:
            os.close(fd)
            raise
    removed = []
    for entry in path.iterdir():
        if _TEMP_RE.match(entry.name) and entry.is_file():
            entry.unlink(missing_ok=True)
            removed.append(entry)
    return DirectoryLock(path, fd, tuple(removed))
