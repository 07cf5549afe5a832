"""Merging segment files into one file, with optional chapter markers."""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydub import AudioSegment
from pydub.exceptions import PydubException

from tts import AUDIO_FORMATS

from ._atomic import atomic_path, atomic_write_text, temp_name
from ._errors import FormatError
from ._formats import CHAPTER_FORMATS, check_format, encode


def _escape_ffmetadata(value: str) -> str:
    # FFMETADATA: '=', ';', '#', '\' and newlines are escaped with a backslash.
    out = value
    for ch in ("\\", "=", ";", "#"):
        out = out.replace(ch, "\\" + ch)
    return out.replace("\n", "\\\n")


def ffmetadata_chapters(chapters: Sequence[tuple[str, float]], total_s: float) -> str:
    """An FFMETADATA1 document with one ``[CHAPTER]`` per ``(title, start_s)``.

    Each chapter ends where the next starts; the last ends at ``total_s``.
    Times are written in milliseconds (``TIMEBASE=1/1000``). Format:
    https://ffmpeg.org/ffmpeg-formats.html#Metadata-1

    Raises:
        ValueError: starts not finite, negative, not strictly increasing, or
            not before ``total_s``; or an empty title.
    """
    lines = [";FFMETADATA1"]
    previous = -math.inf
    for title, start in chapters:
        if not isinstance(title, str) or not title.strip():
            raise ValueError(f"chapters: every title must be non-empty text, got {title!r}")
        if not math.isfinite(start) or not previous < start < total_s or start < 0:
            raise ValueError(
                "chapters: starts must be finite, >= 0, strictly increasing and before the end "
                f"({total_s:.3f} s), got {start!r} for {title!r}"
            )
        previous = start
    bounds = [start for _, start in chapters] + [total_s]
    for (title, _), start, end in zip(chapters, bounds, bounds[1:], strict=False):
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={round(start * 1000)}",
            f"END={round(end * 1000)}",
            f"title={_escape_ffmetadata(title)}",
        ]
    return "\n".join(lines) + "\n"


def merge(
    paths: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    *,
    format: str | None = None,
    silence_ms: int = 0,
    chapters: list[tuple[str, float]] | None = None,
    overwrite: bool = True,
) -> Path:
    """Concatenate audio files into ``out_path`` and return its path.

    Files are decoded with pydub (any format ffmpeg reads, mixed sample rates
    and channel counts are matched to the highest), joined with ``silence_ms``
    milliseconds of silence *between* consecutive files (none before the first
    or after the last), and encoded in ``format`` (default: from the
    extension of ``out_path``). The result's length is the sum of the inputs'
    plus ``(n - 1) * silence_ms``.

    ``chapters`` are ``(title, start_s)`` pairs in seconds of the merged
    timeline, stored via an ffmpeg FFMETADATA file; only containers that keep
    chapters (mp3 as ID3 CHAP frames, opus as Ogg chapter comments) accept them.

    The file appears atomically (temp file + rename). The whole audio is held
    in memory (16-bit PCM: about 10 MB per minute at 44.1 kHz stereo).

    Raises:
        ValueError: no paths; unknown format; negative ``silence_ms``;
            ``chapters`` given for a format that cannot hold them, or invalid.
        FileNotFoundError: an input file is missing.
        FormatError: ffmpeg could not decode an input or encode the output.
        OutputExistsError: ``out_path`` exists and ``overwrite`` is false.
    """
    files = [Path(p) for p in paths]
    out = Path(out_path)
    if not files:
        raise ValueError("paths must name at least one audio file")
    fmt = check_format(format or out.suffix.lstrip("."), option="format")
    if isinstance(silence_ms, bool) or not isinstance(silence_ms, int) or silence_ms < 0:
        raise ValueError(f"silence_ms must be an int >= 0, got {silence_ms!r}")
    if chapters and fmt not in CHAPTER_FORMATS:
        raise ValueError(
            f"chapters need a format that stores them ({', '.join(CHAPTER_FORMATS)}), got {fmt!r}"
        )
    combined = _join(files, silence_ms)
    total_s = combined.frame_count() / combined.frame_rate
    with atomic_path(out, overwrite=overwrite) as tmp:
        if chapters:
            meta = temp_name(out.with_suffix(".ffmeta"))
            try:
                atomic_write_text(meta, ffmetadata_chapters(chapters, total_s), overwrite=False)
                params = ["-map", "0:a", "-map_metadata", "1", "-map_chapters", "1"]
                data = encode(combined, fmt, inputs=["-i", str(meta)], parameters=params)
                tmp.write_bytes(data)
            finally:
                meta.unlink(missing_ok=True)
        else:
            tmp.write_bytes(encode(combined, fmt))
    return out


def _join(files: list[Path], silence_ms: int) -> AudioSegment:
    """Decode every file and join them once (``combined += part`` copies the whole
    buffer each time: quadratic, 22 s for 400 five-second files)."""
    parts: list[AudioSegment] = []
    for file in files:
        if not file.is_file():
            raise FileNotFoundError(f"merge input {file} does not exist")
        try:
            with open(file, "rb") as f:  # pydub leaves files it opens unclosed
                part = AudioSegment.from_file(f, format=_demuxer(file))
        except (PydubException, OSError, IndexError) as exc:
            raise FormatError(f"ffmpeg could not decode {file}: {exc}", path=file) from exc
        if parts:  # the first part's layout wins, as with `+`
            first = parts[0]
            part = (
                part.set_frame_rate(first.frame_rate)
                .set_channels(first.channels)
                .set_sample_width(first.sample_width)
            )
        parts.append(part)
    first = parts[0]
    gap = b""
    if silence_ms:
        gap = (
            AudioSegment.silent(silence_ms, frame_rate=first.frame_rate)
            .set_channels(first.channels)
            .set_sample_width(first.sample_width)
            .raw_data
        )
    return AudioSegment(
        data=gap.join(part.raw_data for part in parts),
        sample_width=first.sample_width,
        frame_rate=first.frame_rate,
        channels=first.channels,
    )


def _demuxer(file: Path) -> str | None:
    known = AUDIO_FORMATS.get(file.suffix.lstrip(".").lower())
    return known.demuxer if known and known.muxer else None
