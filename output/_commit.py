"""Group commit: many writes made durable by one filesystem sync.

A write that must be durable before it is listed and returned (a segment
file, then its manifest line) is given as *steps*: a generator that does its writing, yields
a file descriptor whenever what it wrote must reach the disk, and returns its
result. One thread per process runs the steps of every writer, a batch at a
time (every job waiting when it wakes)::

    jobs ──▶ [advance each to its yield] ──▶ one sync per filesystem ──▶ [advance again] ...

A batch of 100 segment writes costs two syncs (the files, then their names and
manifest lines) instead of 200 ``fsync`` calls that the journal serialises,
and one thread instead of one per write competes with the event loop for the
GIL. The durability order of each write is unchanged: its bytes are on disk
before its manifest line, its manifest line before it returns.

A write whose first part ran on an event loop (a segment file moved into
place there, to be announced before it is durable) is finished there too
(:meth:`GroupCommit.drive`): only its syncs go to the thread, batched with
the others'. Each step between syncs is a few system calls, cheaper on the
loop than the hand-offs of the GIL between the thread and a busy loop.

The sync is ``syncfs(2)`` on Linux 5.8 or later (one call per filesystem in
the batch; it also flushes other programs' dirty data on that filesystem, and
fails for an error anywhere on it: then each descriptor is fsynced on its own
to find the writes that really failed), else ``fsync(2)`` of each descriptor.
A failed sync is thrown into the step that waited on it, as the ``OSError``
that ``fsync`` would have raised. The idea is a database
log's group commit (e.g. PostgreSQL's ``commit_delay``; ext4's jbd2 batches
``fsync`` calls the same way inside one journal commit).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import queue
import threading
from collections.abc import Generator
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

#: The steps of one durable write: yields descriptors to sync, returns the result.
Steps = Generator[int, None, T]

#: Most jobs in one batch.
BATCH_MAX = 256


def _find_syncfs() -> Any:
    release = os.uname().release if hasattr(os, "uname") else ""
    try:
        major, minor = (int(part) for part in release.split(".")[:2])
    except ValueError:
        return None
    if (major, minor) < (5, 8):  # syncfs reports write-back errors from Linux 5.8 on
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):  # not Linux (or no libc symbol): fsync each descriptor
        return None


_SYNCFS = _find_syncfs()


def sync_descriptors(fds: list[int]) -> dict[int, OSError]:
    """Make what was written through ``fds`` durable: one ``syncfs`` per filesystem
    where the system has it (Linux 5.8 or later), else ``fsync`` of each. Returns
    the descriptors whose sync failed, with the error (empty: all durable).

    ``syncfs`` reports an error of the whole filesystem (another program's file
    too); when it fails, each descriptor of that filesystem is fsynced on its
    own, so only the writes that really failed fail."""
    failed: dict[int, OSError] = {}
    unique = list(dict.fromkeys(fds))  # each descriptor once (lines of one manifest)
    if _SYNCFS is None:
        _fsync_each(unique, failed)
        return failed
    by_device: dict[int, list[int]] = {}
    for fd in unique:
        try:
            by_device.setdefault(os.fstat(fd).st_dev, []).append(fd)
        except OSError as exc:
            failed[fd] = exc
    for group in by_device.values():
        if _SYNCFS(group[0]) != 0:
            _fsync_each(group, failed)  # it failed: find out which really did
    return failed


def _fsync_each(fds: list[int], failed: dict[int, OSError]) -> None:
    for fd in fds:
        try:
            os.fsync(fd)
        except OSError as exc:
            failed[fd] = exc


def run_inline(steps: Steps[T]) -> T:
    """Run ``steps`` in this thread, with ``fsync`` of each descriptor it yields
    (no batching: for callers that write one file at a time)."""
    try:
        fd = next(steps)
    except StopIteration as done:
        result: T = done.value
        return result
    return _fsync_inline(steps, fd)


def _resume_inline(steps: Steps[T], error: OSError | None) -> T:
    """Resume ``steps`` after their sync (``error``: it failed, thrown in) and run
    the rest here, as :func:`run_inline` does."""
    try:
        fd = steps.send(None) if error is None else steps.throw(error)
    except StopIteration as done:
        result: T = done.value
        return result
    return _fsync_inline(steps, fd)


def _finish_cancelled(steps: Steps[T], fd: int, job: Future[None]) -> T:
    """The rest of a driven write whose loop is closing, here: the sync of ``fd``
    the thread was asked for is used if it ran (a write-back error is reported
    once, so a second ``fsync`` could miss it), else ``fd`` is fsynced here."""
    if job.cancel():
        return _fsync_inline(steps, fd)
    try:
        job.result()  # running or done: wait for its outcome
    except OSError as exc:
        return _resume_inline(steps, exc)
    return _resume_inline(steps, None)


def _fsync_inline(steps: Steps[T], fd: int) -> T:
    """``fsync`` the descriptor ``steps`` yielded and resume them, until they return."""
    try:
        while True:
            try:
                os.fsync(fd)
            except OSError as exc:
                fd = steps.throw(exc)
            else:
                fd = steps.send(None)
    except StopIteration as done:
        result: T = done.value
        return result


class GroupCommit:
    """One thread that runs the :data:`Steps` of many writes, syncing them together.

    Thread-safe; the thread starts with the first job and lives as long as the
    process (a daemon thread; a forked child starts its own).
    """

    def __init__(self, name: str = "speakstream-commit") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[tuple[Steps[Any], Future[Any]]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, steps: Steps[T]) -> Future[T]:
        """Run ``steps`` in the commit thread; the future holds its result or error."""
        future: Future[T] = Future()
        self._jobs.put((steps, future))
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
        return future

    async def run(self, steps: Steps[T]) -> T:
        """:meth:`submit` and await the result. Cancelling the wait drops a write
        the thread has not started (nothing of it is on disk); one it has started
        runs to its end (a write half done is never abandoned)."""
        return await asyncio.wrap_future(self.submit(steps))

    def drive(self, steps: Steps[T], fd: int) -> asyncio.Future[T]:
        """Finish ``steps``, which yielded ``fd`` already, on this event loop: each
        sync goes to the commit thread (batched with every other write waiting
        there), the steps between the syncs run here. For a write whose first
        part ran on the loop (a file moved into place before it is durable):
        its remaining steps are a few system calls, cheaper here than the
        thread's hand-offs of the GIL with a busy loop.

        Returns a future of the steps' result (or their error, as with
        :meth:`run`); the write has started, and runs to its end even if the
        caller stops waiting (it is under way: its file may be announced).
        Call it from a coroutine."""
        task = asyncio.get_running_loop().create_task(self._drive(steps, fd))
        _DRIVEN.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(_DRIVEN.discard)
        return asyncio.shield(task)

    async def _drive(self, steps: Steps[T], fd: int) -> T:
        while True:
            job = self.submit(_sync_one(fd))
            try:
                await asyncio.wrap_future(job)
            except OSError as exc:  # its failure path syncs a "failed" line: not on the loop
                return await asyncio.to_thread(_resume_inline, steps, exc)
            except asyncio.CancelledError:  # the loop is closing: finish here, never half
                return _finish_cancelled(steps, fd, job)
            try:
                fd = steps.send(None)
            except StopIteration as done:
                result: T = done.value
                return result

    def _after_fork(self) -> None:
        self._jobs = queue.SimpleQueue()  # the parent's jobs are the parent's
        self._lock = threading.Lock()
        self._thread = None

    def _run(self) -> None:
        while True:
            batch = [self._jobs.get()]
            while len(batch) < BATCH_MAX:
                try:
                    batch.append(self._jobs.get_nowait())
                except queue.Empty:
                    break
            try:
                commit(batch)
            except BaseException as exc:  # a bug of ours: its writes fail, the thread goes on
                for steps, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                        with contextlib.suppress(Exception):
                            steps.close()


def commit(batch: list[tuple[Steps[Any], Future[Any]]]) -> None:
    """Run each job's steps to the end, one sync per round of yields."""
    waiting: list[tuple[Steps[Any], Future[Any], int]] = []
    for steps, future in batch:
        if future.set_running_or_notify_cancel():
            _advance(steps, future, None, waiting)
        else:
            steps.close()
    while waiting:
        fds = [fd for _, _, fd in waiting]
        failed = sync_descriptors(fds)
        round_, waiting = waiting, []
        for steps, future, fd in round_:
            _advance(steps, future, failed.get(fd), waiting)


def _advance(steps: Steps[Any], future: Future[Any], error: OSError | None,
             waiting: list[tuple[Steps[Any], Future[Any], int]]) -> None:
    try:
        fd = steps.send(None) if error is None else steps.throw(error)
    except StopIteration as done:
        future.set_result(done.value)
    except BaseException as exc:  # the job's own error: its caller gets it
        future.set_exception(exc)
    else:
        if isinstance(fd, int) and not isinstance(fd, bool):
            waiting.append((steps, future, fd))
            return
        steps.close()  # a bug in the steps: this write fails, not its batch
        future.set_exception(TypeError(f"a write's steps yielded {fd!r}, not a descriptor"))


def _sync_one(fd: int) -> Steps[None]:
    """A job that only syncs ``fd`` (its error, if any, is the job's)."""
    yield fd


#: Writes driven on an event loop (:meth:`GroupCommit.drive`) until they end.
_DRIVEN: set[asyncio.Task[Any]] = set()

#: The process's commit thread.
COMMITTER = GroupCommit()
os.register_at_fork(after_in_child=COMMITTER._after_fork)
