"""Writing each segment's audio to its own file, atomically, with a manifest."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import re
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from tts import SynthesizedAudio, WordBoundary

from ._atomic import atomic_write_steps, placed_write_steps
from ._commit import COMMITTER, run_inline
from ._errors import FormatError, OutputExistsError, WriteError
from ._formats import check_format, convert
from ._manifest import (
    MANIFEST_NAME,
    ManifestWriter,
    last_per_index,
    read_manifest,
    rewrite_manifest,
)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a write's outcome as seen: its caller failed first (a failed write
    still leaves its "failed" manifest line)."""
    if not future.cancelled():
        future.exception()


_PREFIX_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class WrittenSegment:
    """One segment file on disk.

    Attributes:
        index: the segment's index in the run (0-based, as the pipeline numbers).
        path: absolute path of the file.
        format: its format, one of :data:`FILE_FORMATS` (also the extension).
        duration_s: length of the audio in seconds (decoded frames / sample rate).
        bytes: size of the file in bytes.
        engine: the TTS engine that made the audio.
        voice: the engine's voice, or ``None`` for its default.
        text: the segment's text (characters).
        words: word timings relative to the start of this file, where known.
        sample_rate: samples per second of the file (Hz).
        channels: 1 mono, 2 stereo.
    """

    index: int
    path: Path
    format: str
    duration_s: float
    bytes: int
    engine: str
    voice: str | None
    text: str
    words: tuple[WordBoundary, ...] = field(default=())
    sample_rate: int = 0
    channels: int = 0

    def to_record(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The manifest record of this segment (``"type": "segment"``).

        ``path`` is the file name relative to the manifest's directory, so a
        run directory can be moved. ``extra`` keys are added; they may not
        replace the standard keys.

        Raises:
            ValueError: an ``extra`` key collides with a standard key.
        """
        record: dict[str, Any] = {
            "type": "segment",
            "index": self.index,
            "text": self.text,
            "path": self.path.name,
            "format": self.format,
            "duration_s": round(self.duration_s, 6),
            "bytes": self.bytes,
            "sample_rate": self.sample_rate,
            "channels": self.channels,
            "engine": self.engine,
            "voice": self.voice,
            "words": [
                {"text": w.text, "offset_s": w.offset_s, "duration_s": w.duration_s}
                for w in self.words
            ],
        }
        clash = sorted(set(extra or {}) & set(record))
        if clash:
            raise ValueError(f"extra may not replace manifest keys {clash}")
        record.update(extra or {})
        return record


@dataclass(frozen=True)
class _WriterConfig:
    format: str
    prefix: str
    overwrite: bool
    run_subdir: bool

    def __post_init__(self) -> None:
        object.__setattr__(self, "format", check_format(self.format))
        if not isinstance(self.prefix, str) or not _PREFIX_RE.match(self.prefix):
            raise ValueError(
                "prefix must be 1-64 characters of letters, digits, '.', '_' or '-' "
                f"starting with a letter or digit, got {self.prefix!r}"
            )


class SegmentWriter:
    """Writes segment audio as ``<prefix>_<index:04d>.<format>`` plus ``manifest.jsonl``.

    Where files go: with ``run_subdir=True`` (default) every writer makes a new
    directory ``output_dir/run-YYYYmmdd-HHMMSS`` (``-2``, ``-3``... if taken),
    so a run never touches another run's files. With ``run_subdir=False`` the
    files go straight into ``output_dir`` (one run per directory, as there is
    one ``manifest.jsonl``); then an existing manifest or segment file of the
    same prefix raises :class:`OutputExistsError` unless
    ``overwrite=True`` (which truncates the manifest and replaces files as they
    are written). :attr:`directory` is where this run's files are.

    Each file is converted (pydub + ffmpeg) only when the engine's format
    differs, written to a temp file in the same directory and renamed, so the
    final name never holds a partial file (but see :meth:`awrite`'s ``placed``
    for a power loss). The manifest line for a segment is
    appended and fsynced right after its file lands, so the manifest only ever
    lists durable files. ``close(summary)`` writes the summary line; ``write``
    after ``close`` raises ``RuntimeError``.

    ``write`` is thread-safe and syncs in the calling thread; ``awrite`` hands
    the syncs to the process's group commit (:mod:`output._commit`) and
    converts formats in a worker thread, and with ``placed`` it announces
    the file before it is durable.

    With ``resume=True`` the writer continues an earlier, interrupted run in
    ``output_dir`` (implies ``run_subdir=False``): the manifest is first
    rewritten atomically to hold only the segment lines whose files still
    exist (one per index, in index order; the old summary and ``failed``
    lines go); a later :meth:`write` of such an index with the same text
    keeps the file and its line (nothing is written again), a different text
    replaces both. ``close`` rewrites the manifest atomically again when a
    line was replaced, so a finished manifest lists each index once, and a
    run killed at any point leaves every line it had. When the new input is
    shorter than the earlier one (:meth:`end_of_input`), the earlier lines
    and files past its end go at ``close``.

    With ``keep_records=False`` the writer keeps no per-segment records
    (:attr:`segments` stays empty; the manifest on disk has them all), so its
    memory stays flat however long the run: use it for long narrations.

    Raises (constructor):
        ValueError: bad ``format`` (allowed: wav, mp3, ogg, opus, flac) or ``prefix``.
        OutputExistsError: see above.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        *,
        format: str = "wav",
        prefix: str = "segment",
        overwrite: bool = False,
        run_subdir: bool = True,
        keep_records: bool = True,
        resume: bool = False,
    ) -> None:
        self._config = _WriterConfig(format, prefix, overwrite or resume, run_subdir and not resume)
        self._keep_records = keep_records
        self._count = 0
        self._duration_s = 0.0
        self.format: str = self._config.format
        self.prefix: str = prefix
        self.directory: Path = self._make_directory(Path(output_dir).resolve())
        self.manifest_path: Path = self.directory / MANIFEST_NAME
        self._kept: dict[int, dict[str, Any]] = {}
        self._replaced = False
        self._stale: list[dict[str, Any]] = []  # kept lines past the end of the new input
        if resume and self.manifest_path.exists():
            self._kept = self._compact()
        self._manifest = ManifestWriter(self.manifest_path, overwrite=overwrite and not resume)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a write ends
        self._pending = 0  # writes past their checks, not yet landed or failed
        self._segments: list[WrittenSegment] = []
        self._closed = False

    @property
    def segments(self) -> tuple[WrittenSegment, ...]:
        """The segments written so far, in the order they landed (empty with
        ``keep_records=False``)."""
        with self._lock:
            return tuple(self._segments)

    def _make_directory(self, output_dir: Path) -> Path:
        output_dir.mkdir(parents=True, exist_ok=True)
        if not self._config.run_subdir:
            if not self._config.overwrite:
                taken = (
                    [output_dir / MANIFEST_NAME] if (output_dir / MANIFEST_NAME).exists() else []
                )
                taken += sorted(output_dir.glob(f"{self._config.prefix}_[0-9][0-9][0-9][0-9]*.*"))
                if taken:
                    raise OutputExistsError(
                        f"{output_dir} already holds a run ({taken[0].name}); use run_subdir=True, "
                        "another prefix, or overwrite=True",
                        path=taken[0],
                    )
            return output_dir
        stamp = dt.datetime.now().strftime("run-%Y%m%d-%H%M%S")
        for n in range(1, 1000):
            candidate = output_dir / (stamp if n == 1 else f"{stamp}-{n}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate
        raise OutputExistsError(f"no free run directory {stamp}-N in {output_dir}", path=output_dir)

    def _compact(self) -> dict[int, dict[str, Any]]:
        """Rewrite the manifest (atomically) to its finished segments; return them."""
        kept = {
            index: record
            for index, record in sorted(last_per_index(read_manifest(self.manifest_path)).items())
            if record["type"] == "segment" and (self.directory / str(record["path"])).is_file()
        }
        rewrite_manifest(self.manifest_path, list(kept.values()))
        return kept

    def path_for(self, index: int) -> Path:
        """The final path of segment ``index``."""
        return self.directory / f"{self.prefix}_{index:04d}.{self.format}"

    def write(
        self,
        index: int,
        audio: SynthesizedAudio,
        *,
        text: str,
        extra: dict[str, Any] | None = None,
    ) -> WrittenSegment:
        """Write segment ``index`` and append its manifest line (each fsynced).

        ``extra`` holds JSON-serialisable fields added to the manifest record.

        Raises:
            ValueError: ``index`` is not an int >= 0, or ``extra`` clashes with
                the standard keys.
            FormatError: the audio is not what its format says, or conversion
                failed: no audio file is written, but the manifest gets a
                ``{"type": "failed", "index", "text", "engine", "error"}`` line,
                so the segment's text is never lost.
            WriteError: the disk refused the file or its manifest line (full,
                read-only, a failed sync): no file under the final name and no
                segment line that counts (the file is removed again when only
                its line failed; a line that other lines followed before its
                sync failed stays, superseded); a ``"failed"`` line is attempted.
            OutputExistsError: the file exists (same index twice, or a previous
                run with ``run_subdir=False``) and ``overwrite`` is false.
            RuntimeError: the writer is closed.
        """
        return run_inline(self._steps(index, self._convert(index, audio, text), audio, text,
                                      extra))

    async def awrite(
        self,
        index: int,
        audio: SynthesizedAudio,
        *,
        text: str,
        extra: dict[str, Any] | None = None,
        placed: Callable[[WrittenSegment], None] | None = None,
    ) -> WrittenSegment:
        """:meth:`write`, made durable by the process's group commit (see
        :mod:`output._commit`): one filesystem sync for every write waiting with
        it, in one thread; a format conversion runs in a worker thread first.
        Same arguments, result and errors as :meth:`write`.

        ``placed``: called (in this thread, before this returns) with the
        segment as soon as its file is complete under its final name, so a
        caller can announce it without waiting for the disk. The file is then
        written here, on the event loop (a few system calls into the page
        cache), moved into place, and only after that made durable, with its
        manifest line (the syncs in the commit thread, the steps between them
        on the loop: :meth:`GroupCommit.drive`); this returns once both are
        durable. A crash in between leaves a file that the manifest does not
        list (whole if only the process died, possibly empty after a power
        loss; a resume writes it again). A write that replaces a file (a kept
        index on resume, or any under ``overwrite``) is made durable before it
        takes the name, then ``placed`` is called. The rest of the write
        finishes on the event loop, so close the writer with :meth:`aclose`
        (or from another thread), not :meth:`close` on the loop's thread. If
        the sync fails, the file is removed again and the ``WriteError`` raised
        as usual: a caller that announced it must take that back. Cancelling
        the wait after ``placed`` does not stop the write: it lands whole.
        """
        self._check(index)
        try:
            if audio.format == self.format:  # no conversion: a header check only
                converted = convert(audio, self.format)
            else:
                converted = await asyncio.to_thread(convert, audio, self.format)
        except FormatError as exc:  # its "failed" line, fsynced, off the event loop
            await asyncio.to_thread(self._append_failed, index, text, audio, exc)
            raise
        if placed is None or self._replaces(index):
            # Replacing a file (resume, overwrite): its new bytes are durable before
            # they take the name, which a durable manifest line may still give.
            written = await COMMITTER.run(self._steps(index, converted, audio, text, extra))
            if placed is not None:
                placed(written)
            return written
        steps = self._steps(index, converted, audio, text, extra, place_first=True)
        fd = next(steps)  # the file is complete under its final name (nothing kept: see above)
        landing = COMMITTER.drive(steps, fd)  # under way whatever ``placed`` does
        try:
            placed(self._describe(index, converted, audio, text))
        except BaseException:
            landing.add_done_callback(_retrieve)  # it lands; its own error is not lost
            raise
        return await landing

    def _replaces(self, index: int) -> bool:
        """Whether writing ``index`` now would replace a file (one a resumed manifest
        lists, or any under ``overwrite``)."""
        with self._lock:
            kept = index in self._kept
        return kept or (self._config.overwrite and self.path_for(index).exists())

    def _check(self, index: int) -> None:
        if self._closed:
            raise RuntimeError("SegmentWriter is closed")
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"index must be an int >= 0, got {index!r}")

    def _convert(self, index: int, audio: SynthesizedAudio, text: str) -> SynthesizedAudio:
        """``audio`` in the writer's format (FormatError: a "failed" line, then raised)."""
        self._check(index)
        try:
            return convert(audio, self.format)
        except FormatError as exc:
            self._append_failed(index, text, audio, exc)
            raise

    def _steps(
        self,
        index: int,
        converted: SynthesizedAudio,
        audio: SynthesizedAudio,
        text: str,
        extra: dict[str, Any] | None,
        *,
        place_first: bool = False,
    ) -> Generator[int, None, WrittenSegment]:
        """The write of one segment, in steps (see :mod:`output._commit`): yields the
        file's descriptor, then the manifest's, each to be made durable.
        ``place_first``: the file is moved under its final name before its
        sync, not after (see :meth:`awrite`'s ``placed``)."""
        written = self._describe(index, converted, audio, text)
        path = written.path
        record = written.to_record(extra)
        with self._lock:
            if self._closed:
                raise RuntimeError("SegmentWriter is closed")
            kept = self._kept.pop(index, None)
            if kept is not None and kept["text"] == text and path.is_file():
                self._kept[index] = kept  # finished by the earlier run: file and line stay
                self._landed(written)
                return written
            self._replaced = self._replaced or kept is not None
            self._pending += 1  # close() waits for this write (see _in_progress)
        with self._in_progress(counted=True):
            try:
                file_steps = placed_write_steps if place_first else atomic_write_steps
                yield from file_steps(path, converted.data, overwrite=self._config.overwrite)
            except OSError as exc:
                error = WriteError(
                    f"cannot write {path.name}: {exc.strerror or exc}", path=path, errno=exc.errno
                )
                self._append_failed(index, text, audio, error)
                raise error from exc
            try:
                yield from self._manifest.append_steps(record)
            except WriteError as error:
                path.unlink(missing_ok=True)  # the manifest must agree with the files:
                # a line that could not be cut off (others came after it) is
                # superseded by a "failed" line for the same index.
                self._append_failed(index, text, audio, error)
                raise
            with self._lock:
                self._landed(written)
        return written

    def _describe(self, index: int, converted: SynthesizedAudio, audio: SynthesizedAudio,
                  text: str) -> WrittenSegment:
        """The segment as it will be on disk (``converted``: in the writer's format)."""
        return WrittenSegment(
            index=index,
            path=self.path_for(index),
            format=self.format,
            duration_s=converted.duration_s,
            bytes=len(converted.data),
            engine=audio.engine,
            voice=audio.voice,
            text=text,
            words=audio.words,
            sample_rate=converted.sample_rate,
            channels=converted.channels,
        )

    @contextlib.contextmanager
    def _in_progress(self, *, counted: bool = False) -> Iterator[None]:
        """A write or line in progress: :meth:`close` waits until it ends.

        ``counted``: the caller counted it already, under the lock, with its own
        checks. Else it is counted here.

        Raises:
            RuntimeError: the writer is closed (not counted).
        """
        if not counted:
            with self._lock:
                if self._closed:
                    raise RuntimeError("SegmentWriter is closed")
                self._pending += 1
        try:
            yield
        finally:
            with self._lock:
                self._pending -= 1
                self._idle.notify_all()

    def _landed(self, written: WrittenSegment) -> None:
        """Count a segment on disk (the lock held)."""
        self._count += 1
        self._duration_s += written.duration_s
        if self._keep_records:
            self._segments.append(written)

    def end_of_input(self, segments_total: int) -> None:
        """The run has exactly ``segments_total`` segments (indices below it).

        On resume, the lines an earlier run left for higher indices (its text
        was longer) are stale: :meth:`close` drops them from the manifest and
        then removes their files.
        """
        with self._lock:
            for index in [i for i in self._kept if i >= segments_total]:
                self._stale.append(self._kept.pop(index))
            self._replaced = self._replaced or bool(self._stale)

    def write_failed(
        self, index: int, *, text: str, error: str, extra: dict[str, Any] | None = None
    ) -> None:
        """Record that segment ``index`` has no file: a ``{"type": "failed", "index",
        "text", "error", **extra}`` manifest line, so its text is never lost.

        Raises:
            WriteError: the line could not be written.
            RuntimeError: the writer is closed.
        """
        record = {"type": "failed", "index": index, "text": text, "error": error, **(extra or {})}
        with self._lock:
            if self._closed:
                raise RuntimeError("SegmentWriter is closed")
            self._replaced = self._replaced or self._kept.pop(index, None) is not None
        self._append_unlocked(record)

    def _append_failed(
        self, index: int, text: str, audio: SynthesizedAudio, exc: Exception
    ) -> None:
        """Best effort "failed" line while ``exc`` is being raised (a second failure,
        e.g. the same full disk, is attached to ``exc`` as a note).

        On an event loop's thread (a placed write's steps run there) the line goes
        to the commit thread instead, in order with the others, its sync batched;
        :meth:`close` waits for it."""
        record = {
            "type": "failed", "index": index, "text": text, "engine": audio.engine,
            "voice": audio.voice, "error": f"{type(exc).__name__}: {exc}",
        }
        with self._lock:
            if self._closed:
                return  # the summary line is written already
            self._pending += 1

        def append() -> Generator[int, None, None]:
            with self._in_progress(counted=True):
                try:
                    yield from self._manifest.append_steps(record)
                except WriteError as also:
                    exc.add_note(f"its manifest line could not be written either: {also}")

        try:
            asyncio.get_running_loop()
        except RuntimeError:  # a worker or the commit thread: the line is written here
            run_inline(append())
        else:
            COMMITTER.submit(append())

    def _append_unlocked(self, record: dict[str, Any]) -> None:
        """Append a manifest line without holding the writer's lock through its
        fsync (the commit thread takes that lock for every run's writes): counted
        as a write in progress, so :meth:`close` waits for it.

        Raises:
            RuntimeError: the writer is closed.
            WriteError: as :meth:`ManifestWriter.append`.
        """
        with self._in_progress():
            self._manifest.append(record)

    def close(self, summary: dict[str, Any] | None = None) -> None:
        """Append the summary line and close the manifest. Idempotent.

        The line is ``{"type": "summary", "segments": N, "duration_s": total,
        **summary}`` (N segments written, total seconds of audio). The
        manifest is closed even when the line cannot be written.

        Raises:
            ValueError: ``summary`` tries to set ``"type"``.
            WriteError: the summary line could not be written (disk full).
        """
        if summary and "type" in summary:
            raise ValueError("summary may not set 'type'")
        with self._lock:
            if self._closed:
                return
            while self._pending:  # writes in progress land first (and are counted)
                self._idle.wait()
            if self._closed:  # closed by another thread meanwhile
                return
            self._closed = True
            try:
                self._manifest.append(
                    {
                        "type": "summary",
                        "segments": self._count,
                        "duration_s": round(self._duration_s, 6),
                        **(summary or {}),
                    }
                )
            finally:
                self._manifest.close()
            if self._replaced:  # one line per index again, the summary last
                records = read_manifest(self.manifest_path)
                stale = {int(r["index"]) for r in self._stale}
                latest = sorted(i_r for i_r in last_per_index(records).items()
                                if i_r[0] not in stale)
                summaries = [r for r in records if r.get("type") == "summary"][-1:]
                rewrite_manifest(self.manifest_path, [r for _, r in latest] + summaries)
            for record in self._stale:  # after the manifest stopped naming them
                (self.directory / str(record["path"])).unlink(missing_ok=True)

    async def aclose(self, summary: dict[str, Any] | None = None) -> None:
        """:meth:`close` in a worker thread."""
        await asyncio.to_thread(self.close, summary)

    def _exit_summary(self, exc: BaseException | None) -> dict[str, Any]:
        if exc is None:
            return {"complete": True}
        return {"complete": False, "error": f"{type(exc).__name__}: {exc}"}

    def __enter__(self) -> SegmentWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(self._exit_summary(exc))

    async def __aenter__(self) -> SegmentWriter:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose(self._exit_summary(exc))
