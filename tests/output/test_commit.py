"""Group commit: many segment writes made durable by one sync per round."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
from collections.abc import Generator, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

import output._commit as commit_mod
from output import SegmentWriter, WriteError, WrittenSegment, read_manifest
from output._commit import COMMITTER, commit, sync_descriptors
from output._manifest import ManifestWriter, last_per_index
from tests.output.conftest import tone_audio


def _jobs(writers: list[SegmentWriter], per_writer: int) -> list[tuple[Any, Future[Any]]]:
    jobs: list[tuple[Any, Future[Any]]] = []
    for writer in writers:
        for index in range(per_writer):
            audio = tone_audio(300 + 50 * index, 0.1)
            steps = writer._steps(index, audio, audio, f"s{index}", None)
            jobs.append((steps, Future()))
    return jobs


def test_a_batch_of_writes_shares_one_sync_per_round(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve writes of three runs: one sync for the files, one for the manifest lines."""
    rounds: list[list[int]] = []

    def recording(fds: list[int]) -> dict[int, OSError]:
        rounds.append(list(fds))
        return sync_descriptors(fds)

    monkeypatch.setattr(commit_mod, "sync_descriptors", recording)
    writers = [SegmentWriter(tmp_path / f"run{n}", run_subdir=False) for n in range(3)]
    jobs = _jobs(writers, per_writer=4)
    commit(jobs)
    assert [len(fds) for fds in rounds] == [12, 12]  # not 24 fsyncs, two syncs
    for writer in writers:
        writer.close()
    assert [future.result().index for _, future in jobs] == [0, 1, 2, 3] * 3
    for writer in writers:
        records = read_manifest(writer.directory)
        assert [r["index"] for r in records if r["type"] == "segment"] == [0, 1, 2, 3]
        assert records[-1]["segments"] == 4
        assert all(writer.path_for(i).is_file() for i in range(4))


def test_a_failed_sync_fails_every_write_that_waited_on_it_and_keeps_their_text(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest lines' sync fails (EIO): no segment file stays, each write's
    caller gets a WriteError, and the manifest says each index failed (with its
    text); a later write works again."""
    calls = 0

    def second_round_fails(fds: list[int]) -> dict[int, OSError]:
        nonlocal calls
        calls += 1
        if calls == 2:
            return {fd: OSError(errno.EIO, "Input/output error") for fd in fds}
        return sync_descriptors(fds)

    monkeypatch.setattr(commit_mod, "sync_descriptors", second_round_fails)
    writer = SegmentWriter(tmp_path, run_subdir=False)
    jobs = _jobs([writer], per_writer=3)
    commit(jobs)
    for _, future in jobs:
        with pytest.raises(WriteError, match="Input/output error"):
            future.result()
    assert not list(tmp_path.glob("segment_*")) and not list(tmp_path.glob(".*.tmp"))
    final = last_per_index(read_manifest(tmp_path))
    assert {i: (r["type"], r["text"]) for i, r in final.items()} == {
        0: ("failed", "s0"), 1: ("failed", "s1"), 2: ("failed", "s2")}
    monkeypatch.undo()
    writer.write(5, tone_audio(440, 0.1), text="later")
    writer.close()
    assert read_manifest(tmp_path)[-2]["index"] == 5


def test_a_failed_line_never_takes_a_later_durable_line_with_it(tmp_path: Path) -> None:
    """A write waits for its line's sync; meanwhile another thread's "failed" line
    for segment 1 is appended and fsynced; then the first sync fails. Segment 1's
    line (its text) must stay."""
    writer = SegmentWriter(tmp_path, run_subdir=False)
    audio = tone_audio(440, 0.1)
    steps = writer._steps(0, audio, audio, "s0", None)
    next(steps)  # the file's bytes written
    steps.send(None)  # linked; its manifest line written, waiting for its sync
    writer.write_failed(1, text="segment one's text", error="TTSError: boom")
    with pytest.raises(WriteError, match="Input/output error"):
        steps.throw(OSError(errno.EIO, "Input/output error"))
    writer.close()
    final = last_per_index(read_manifest(tmp_path))
    assert (final[1]["type"], final[1]["text"]) == ("failed", "segment one's text")
    assert (final[0]["type"], final[0]["text"]) == ("failed", "s0")
    assert not writer.path_for(0).exists()


def test_a_failed_file_sync_removes_the_temp_file_and_says_so_in_the_manifest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_mod, "sync_descriptors",
                        lambda fds: {fd: OSError(errno.EIO, "Input/output error") for fd in fds})
    writer = SegmentWriter(tmp_path, run_subdir=False)
    [(steps, future)] = _jobs([writer], per_writer=1)
    commit([(steps, future)])
    with pytest.raises(WriteError, match=r"segment_0000\.wav"):
        future.result()
    monkeypatch.undo()
    writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.jsonl"]
    assert [r["type"] for r in read_manifest(tmp_path)] == ["failed", "summary"]


def test_sync_descriptors_reports_the_descriptor_it_could_not_sync(tmp_path: Path) -> None:
    with open(tmp_path / "a", "wb") as good:
        good.write(b"x")
        bad = os.open(tmp_path / "b", os.O_WRONLY | os.O_CREAT)
        os.close(bad)  # a closed descriptor: EBADF
        failed = sync_descriptors([good.fileno(), bad])
    assert list(failed) == [bad] and failed[bad].errno == errno.EBADF


async def test_writes_from_many_tasks_land_through_the_commit_thread(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, run_subdir=False)
    results = await asyncio.gather(*(
        writer.awrite(i, tone_audio(300 + 10 * i, 0.05), text=f"s{i}") for i in range(40)
    ))
    await writer.aclose()
    assert [r.index for r in results] == list(range(40))
    assert sorted(r["index"] for r in read_manifest(tmp_path) if r["type"] == "segment") \
        == list(range(40))


def _nothing() -> Generator[int, None, None]:
    yield from ()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_forked_child_gets_its_own_commit_thread(tmp_path: Path) -> None:
    """The parent's commit thread does not exist in a forked child: the child
    must start one of its own, or its writes would wait forever."""
    COMMITTER.submit(_nothing()).result(timeout=30)  # the parent's thread is running
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit code
        try:
            writer = SegmentWriter(tmp_path, run_subdir=False)
            future = COMMITTER.submit(
                writer._steps(0, tone_audio(440, 0.1), tone_audio(440, 0.1), "child", None))
            future.result(timeout=30)
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert (tmp_path / "segment_0000.wav").is_file()


def test_a_step_that_yields_no_descriptor_fails_its_write_and_the_thread_goes_on() -> None:
    """A bug in a write's steps is its caller's error: the commit thread (which
    would otherwise die, and every later write wait forever) returns."""
    def bad() -> Generator[int, None, None]:
        yield "not a descriptor"  # type: ignore[misc]

    future: Future[None] = Future()
    commit([(bad(), future)])
    assert isinstance(future.exception(timeout=0), TypeError)


async def test_a_cancelled_write_lands_whole_or_not_at_all(tmp_path: Path) -> None:
    """Writes cancelled at every stage: each is either whole (file and line) or
    absent (neither), never a temp file or a line without its file; close()
    does not hang on them."""
    writer = SegmentWriter(tmp_path, run_subdir=False)
    tasks = [asyncio.create_task(writer.awrite(i, tone_audio(440, 0.05), text=f"s{i}"))
             for i in range(30)]
    for n, task in enumerate(tasks):
        for _ in range(n % 4):
            await asyncio.sleep(0)
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.wait_for(writer.aclose(), timeout=30)
    lines, files, temps = _on_disk(tmp_path)
    assert lines == files and not temps


def _on_disk(directory: Path) -> tuple[set[int], set[int], list[Path]]:
    """Indices with a manifest line, indices with a file, temp files left."""
    lines = {r["index"] for r in read_manifest(directory) if r["type"] == "segment"}
    files = {int(p.stem.split("_")[1]) for p in directory.glob("segment_*.wav")}
    return lines, files, list(directory.glob(".*.tmp"))


def test_a_failed_syncfs_falls_back_to_fsync_each_descriptor(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """syncfs fails for an error anywhere on the filesystem (another program's
    file): each descriptor is then fsynced on its own, and a healthy one passes."""
    monkeypatch.setattr(commit_mod, "_SYNCFS", lambda fd: -1)
    with open(tmp_path / "a", "wb") as good:
        good.write(b"x")
        assert sync_descriptors([good.fileno(), good.fileno()]) == {}


async def test_a_slow_failed_line_does_not_hold_up_writes_through_the_commit_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one thread's "failed" line waits on the disk (its append held here),
    writes of the same run still land through the commit thread: the writer's
    lock is not held through a manifest fsync."""
    writer = SegmentWriter(tmp_path, run_subdir=False)
    in_append, release = threading.Event(), threading.Event()
    real_append = ManifestWriter.append

    def slow_append(self: ManifestWriter, record: dict[str, object]) -> None:
        in_append.set()
        release.wait(30)
        real_append(self, record)

    monkeypatch.setattr(ManifestWriter, "append", slow_append)
    failing = asyncio.ensure_future(asyncio.to_thread(
        writer.write_failed, 0, text="no audio", error="TTSError: boom"))
    await asyncio.to_thread(in_append.wait, 30)
    try:
        written = await asyncio.wait_for(
            writer.awrite(1, tone_audio(440, 0.1), text="lands"), timeout=20)
    finally:
        release.set()
    await failing
    monkeypatch.undo()
    await writer.aclose()
    assert written.index == 1
    final = last_per_index(read_manifest(tmp_path))
    assert [(i, r["type"]) for i, r in sorted(final.items())] == [(0, "failed"), (1, "segment")]


# -- placed first: announced when complete, durable after ---------------------------


@pytest.fixture
def held_sync(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """The commit thread's syncs wait until the event is set (set at teardown)."""
    gate = threading.Event()
    real = commit_mod.sync_descriptors

    def held(fds: list[int]) -> dict[int, OSError]:
        gate.wait(30)
        return real(fds)

    monkeypatch.setattr(commit_mod, "sync_descriptors", held)
    try:
        yield gate
    finally:
        gate.set()


async def test_a_placed_write_is_announced_whole_before_its_sync_then_listed(
    tmp_path: Path, held_sync: threading.Event
) -> None:
    writer = SegmentWriter(tmp_path, run_subdir=False)
    audio = tone_audio(440, 0.2)
    seen: list[tuple[WrittenSegment, bytes, list[Any]]] = []
    announced = asyncio.Event()

    def placed(written: WrittenSegment) -> None:
        seen.append((written, written.path.read_bytes(), read_manifest(tmp_path)))
        announced.set()

    task = asyncio.create_task(writer.awrite(0, audio, text="s0", placed=placed))
    await announced.wait()
    [(written, data, lines)] = seen
    assert written.path == writer.path_for(0) and data == audio.data  # whole, in place
    assert lines == []  # not listed before it is durable
    assert not task.done()  # the sync is still held
    held_sync.set()
    assert await task == written
    await writer.aclose()
    records = read_manifest(tmp_path)
    assert [(r["type"], r.get("index")) for r in records] == [("segment", 0), ("summary", None)]
    assert _on_disk(tmp_path) == ({0}, {0}, [])


async def test_placed_writes_from_many_runs_share_their_syncs(
    tmp_path: Path, held_sync: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Twelve writes placed while the first sync is held: the rest wait for the
    thread together, so they take one sync per round, not one each."""
    rounds: list[int] = []
    held = commit_mod.sync_descriptors

    def recording(fds: list[int]) -> dict[int, OSError]:
        rounds.append(len(fds))
        return held(fds)

    monkeypatch.setattr(commit_mod, "sync_descriptors", recording)
    submitted = 0
    all_submitted = asyncio.Event()
    real_submit = COMMITTER.submit

    def counting(steps: Any) -> Future[Any]:
        nonlocal submitted
        submitted += 1
        if submitted == 12:
            all_submitted.set()
        return real_submit(steps)

    monkeypatch.setattr(COMMITTER, "submit", counting)
    writers = [SegmentWriter(tmp_path / f"run{n}", run_subdir=False) for n in range(12)]
    placed = [asyncio.Event() for _ in writers]
    tasks = [asyncio.create_task(writer.awrite(0, tone_audio(440, 0.05), text="s0",
                                               placed=lambda _, e=event: e.set()))
             for writer, event in zip(writers, placed, strict=True)]
    for event in placed:
        await event.wait()
    await all_submitted.wait()  # every file's sync is queued behind the held one
    held_sync.set()
    await asyncio.gather(*tasks)
    for writer in writers:
        await writer.aclose()
    assert sum(rounds) == 24  # each file, then each line
    assert rounds[0] + rounds[1] >= 12  # the files that waited went in one round
    assert all(_on_disk(w.directory) == ({0}, {0}, []) for w in writers)


async def test_a_placed_write_whose_sync_fails_is_removed_and_its_text_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(commit_mod, "sync_descriptors",
                        lambda fds: {fd: OSError(errno.EIO, "Input/output error") for fd in fds})
    writer = SegmentWriter(tmp_path, run_subdir=False)
    was_there: list[bool] = []
    with pytest.raises(WriteError, match=r"segment_0000\.wav.*Input/output error"):
        await writer.awrite(0, tone_audio(440, 0.1), text="s0",
                            placed=lambda written: was_there.append(written.path.is_file()))
    monkeypatch.undo()
    writer.close()
    assert was_there == [True]
    assert _on_disk(tmp_path) == (set(), set(), [])  # removed again, no temp file
    assert [(r["type"], r.get("text")) for r in read_manifest(tmp_path)] == [
        ("failed", "s0"), ("summary", None)]


async def test_a_placed_write_cancelled_while_it_syncs_still_lands_whole(
    tmp_path: Path, held_sync: threading.Event
) -> None:
    writer = SegmentWriter(tmp_path, run_subdir=False)
    announced = asyncio.Event()
    task = asyncio.create_task(writer.awrite(0, tone_audio(440, 0.1), text="s0",
                                             placed=lambda written: announced.set()))
    await announced.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    held_sync.set()
    await asyncio.wait_for(writer.aclose(), timeout=30)  # waits for the write in flight
    assert _on_disk(tmp_path) == ({0}, {0}, [])


async def test_a_placed_write_that_replaces_a_file_is_durable_before_it_is_announced(
    tmp_path: Path,
) -> None:
    """Over a file a durable line still names (``overwrite``; resume alike), the new
    bytes take the name only once durable: ``placed`` sees the new line listed."""
    writer = SegmentWriter(tmp_path, run_subdir=False, overwrite=True)
    writer.write(0, tone_audio(440, 0.1), text="old")
    lines_at_placed: list[list[str]] = []
    new = tone_audio(880, 0.1)
    written = await writer.awrite(0, new, text="new", placed=lambda written: lines_at_placed.append(
        [r["text"] for r in read_manifest(tmp_path) if r["type"] == "segment"]))
    await writer.aclose()
    assert lines_at_placed == [["old", "new"]]
    assert written.path.read_bytes() == new.data


async def test_a_placed_callback_that_raises_still_lets_the_write_land(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, run_subdir=False)

    def broken(written: WrittenSegment) -> None:
        raise RuntimeError("a bug in the caller")

    with pytest.raises(RuntimeError, match="a bug in the caller"):
        await writer.awrite(0, tone_audio(440, 0.1), text="s0", placed=broken)
    await asyncio.wait_for(writer.aclose(), timeout=30)  # the write in flight lands first
    assert _on_disk(tmp_path) == ({0}, {0}, [])


@pytest.mark.parametrize("outcome", ["not started", "synced", "failed"])
def test_a_drive_whose_loop_closes_finishes_with_what_the_thread_did(
    tmp_path: Path, outcome: str
) -> None:
    """The loop closes while a placed write waits for its sync: the write ends here,
    whole or failed (text kept), using the thread's sync if it ran: a write-back
    error is reported once, so syncing again could hide it."""
    writer = SegmentWriter(tmp_path, run_subdir=False)
    steps = writer._steps(0, tone_audio(440, 0.1), tone_audio(440, 0.1), "s0", None,
                          place_first=True)
    fd = next(steps)  # placed
    job: Future[None] = Future()
    if outcome != "not started":
        job.set_running_or_notify_cancel()
        if outcome == "synced":
            job.set_result(None)
        else:
            job.set_exception(OSError(errno.EIO, "Input/output error"))
    if outcome == "failed":
        with pytest.raises(WriteError, match="Input/output error"):
            commit_mod._finish_cancelled(steps, fd, job)
    else:
        assert commit_mod._finish_cancelled(steps, fd, job).index == 0
    writer.close()
    lines, files, temps = _on_disk(tmp_path)
    expected = set() if outcome == "failed" else {0}
    assert lines == files == expected and not temps
    if outcome == "failed":
        assert read_manifest(tmp_path)[0]["type"] == "failed"


async def test_a_placed_write_that_fails_on_the_loop_syncs_its_failed_line_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's own write fails (ENOSPC) in the part that runs on the event loop:
    the "failed" line, with its sync, is written by the commit thread, not the loop."""
    import output._atomic as atomic_mod

    def full(fd: int, data: bytes) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    appended_on: list[threading.Thread] = []
    real_append = ManifestWriter.append_steps

    def recording(self: ManifestWriter, record: dict[str, Any]) -> Generator[int, None, None]:
        appended_on.append(threading.current_thread())
        yield from real_append(self, record)

    monkeypatch.setattr(atomic_mod, "write_all", full)
    monkeypatch.setattr(ManifestWriter, "append_steps", recording)
    writer = SegmentWriter(tmp_path, run_subdir=False)
    with pytest.raises(WriteError, match="No space left"):
        await writer.awrite(0, tone_audio(440, 0.1), text="s0", placed=lambda written: None)
    await writer.aclose()  # waits for the failed line
    assert appended_on[0] is not threading.current_thread()  # not the loop's thread
    assert [(r["type"], r.get("text")) for r in read_manifest(tmp_path)] == [
        ("failed", "s0"), ("summary", None)]
    assert _on_disk(tmp_path) == (set(), set(), [])
