"""Errors of the ``output`` package.

``output`` may import :mod:`tts` types but nothing else of speakstream, so its
root is ``OutputError`` (``pipeline.SpeakStreamError`` groups it with the other
roots). The tree::

    OutputError                 any failure to put audio on disk or on speakers
    ├── FormatError             decode/encode/probe failed (pydub, ffmpeg, ffprobe),
    │                           or bytes are not what their format label claims
    ├── OutputExistsError       writing would replace a previous run's file
    ├── OutputLockedError       another writer holds the output directory's lock
    ├── WriteError              the disk refused a write (full, read-only, gone);
    │                           also an OSError
    ├── ManifestError           a manifest line is corrupt (not just a torn tail)
    ├── NoAudioDeviceError      no PulseAudio server and no ALSA card: use files only
    └── PlaybackError           the player process failed while playing

Foreign errors (``pydub.exceptions.*``, ``subprocess`` and ``OSError`` from
ffmpeg/ffprobe/pacat/aplay, ``OSError`` from writing segment files and the
manifest) are translated once, where they are raised, with ``raise ... from exc``.
"""

from __future__ import annotations

from pathlib import Path


class OutputError(Exception):
    """Root of every error raised by :mod:`output`."""


class FormatError(OutputError):
    """Audio could not be decoded, encoded or probed, or its bytes lie about its format.

    Attributes:
        format: the format being produced or checked (``"mp3"``...), ``""`` if unknown.
        path: the file concerned, when there is one.
    """

    def __init__(self, message: str, *, format: str = "", path: Path | None = None) -> None:
        super().__init__(message)
        self.format = format
        self.path = path


class OutputExistsError(OutputError):
    """A file of a previous run is in the way and ``overwrite`` was not given.

    Attributes:
        path: the existing file or directory.
    """

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class OutputLockedError(OutputError):
    """Another writer (a run, a narration, a resume) holds the directory's lock.

    One writer per output directory: the second one is refused at once and
    writes nothing.

    Attributes:
        path: the locked directory.
    """

    def __init__(self, message: str, *, path: Path) -> None:
        super().__init__(message)
        self.path = path


class WriteError(OutputError, OSError):
    """A file could not be written: the disk is full (``ENOSPC``), read-only, or gone.

    Whatever was being written is not left half-done: no partial segment file
    under its final name, no torn manifest line. It is also an ``OSError``, so
    code that caught the operating system's error before still catches it.

    Attributes:
        path: the file that could not be written.
        errno: the operating system's error number (``errno.ENOSPC`` = 28...),
            ``None`` when unknown.
    """

    def __init__(self, message: str, *, path: Path, errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class ManifestError(OutputError):
    """A manifest line other than a torn last line does not parse.

    Attributes:
        path: the manifest file.
        line: 1-based line number of the bad line.
    """

    def __init__(self, message: str, *, path: Path, line: int) -> None:
        super().__init__(message)
        self.path = path
        self.line = line


class NoAudioDeviceError(OutputError):
    """No audio output was found; the caller should fall back to files only.

    Attributes:
        checked: what was tried and why each failed, in order, human readable.
    """

    def __init__(self, message: str, *, checked: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.checked = checked


class PlaybackError(OutputError):
    """The player subprocess (decoder or sound server client) failed.

    Attributes:
        path: the file being played when it failed, when known.
        returncode: the failed process's exit status, when known.
    """

    def __init__(
        self, message: str, *, path: Path | None = None, returncode: int | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.returncode = returncode
