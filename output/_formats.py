"""Audio formats: sniffing, conversion (pydub + ffmpeg) and probing (ffprobe).

Conversion decodes the source once into PCM (pydub's ``AudioSegment``; WAV and
raw PCM are read in pure Python, everything else through ffmpeg) and encodes it
with ffmpeg. Nothing is converted when source and target formats are equal.
"""

from __future__ import annotations

import dataclasses
import io
import os
import shutil
import subprocess
from pathlib import Path

from pydub import AudioSegment
from pydub.exceptions import PydubException

from tts import AUDIO_FORMATS, SynthesizedAudio

from ._errors import FormatError

#: File formats speakstream writes (also the file extensions), from the one
#: table of formats, :data:`tts.AUDIO_FORMATS`.
FILE_FORMATS: tuple[str, ...] = tuple(f.name for f in AUDIO_FORMATS.values() if f.file)

#: Containers whose ffmpeg muxer stores chapter markers that ffprobe reads back.
CHAPTER_FORMATS: tuple[str, ...] = tuple(f.name for f in AUDIO_FORMATS.values() if f.chapters)


def check_format(format: str, *, option: str = "format") -> str:
    """Return ``format`` lower-cased, or raise ``ValueError`` naming ``option``."""
    fmt = format.lower() if isinstance(format, str) else format
    if fmt not in FILE_FORMATS:
        raise ValueError(f"{option} must be one of {', '.join(FILE_FORMATS)}, got {format!r}")
    return fmt


def sniff_format(data: bytes) -> str | None:
    """Name the container of ``data`` from its magic bytes, or ``None`` if unknown.

    Recognises RIFF/WAVE (``"wav"``), MP3 with an ID3v2 tag or a bare MPEG
    audio frame sync (``"mp3"``), Ogg with an Opus (``"opus"``) or Vorbis
    (``"ogg"``) first packet, and ``fLaC`` (``"flac"``). Raw PCM has no magic:
    ``None``.
    """
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3" or (len(data) >= 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[:4] == b"OggS":
        head = data[:128]
        if b"OpusHead" in head:
            return "opus"
        if b"\x01vorbis" in head:
            return "ogg"
        return None
    if data[:4] == b"fLaC":
        return "flac"
    return None


def _check_label(audio: SynthesizedAudio) -> None:
    if audio.format == "pcm":
        return
    actual = sniff_format(audio.data)
    if actual != audio.format:
        raise FormatError(
            f"audio from {audio.engine or 'engine'} is labelled {audio.format!r} "
            f"but its bytes are {actual or 'not a known format'}",
            format=audio.format,
        )


def decode(audio: SynthesizedAudio) -> AudioSegment:
    """Decode ``audio`` into a pydub ``AudioSegment`` (PCM in memory).

    Raises:
        FormatError: the bytes are not the format they claim, or ffmpeg cannot
            decode them (or is missing).
    """
    _check_label(audio)
    if audio.format == "pcm":
        return AudioSegment(
            data=audio.data, sample_width=2, frame_rate=audio.sample_rate, channels=audio.channels
        )
    known = AUDIO_FORMATS.get(audio.format)
    if known is None or known.muxer is None:
        raise FormatError(f"cannot decode format {audio.format!r}", format=audio.format)
    try:
        return AudioSegment.from_file(io.BytesIO(audio.data), format=known.demuxer)
    except (PydubException, OSError, IndexError) as exc:
        raise FormatError(
            f"ffmpeg could not decode {len(audio.data)} bytes of {audio.format}: {exc}",
            format=audio.format,
        ) from exc


def encode(
    segment: AudioSegment,
    format: str,
    *,
    inputs: list[str] | None = None,
    parameters: list[str] | None = None,
) -> bytes:
    """Encode a pydub ``AudioSegment`` into a whole file of ``format`` (bytes).

    ``inputs`` are extra ffmpeg input arguments (``["-i", "meta.txt"]``),
    placed before any output option; ``parameters`` are extra output options.
    Opus is resampled to 48 kHz (what every Opus decoder outputs).

    Raises:
        ValueError: unknown ``format``.
        FormatError: ffmpeg failed or is missing.
    """
    fmt = check_format(format)
    known = AUDIO_FORMATS[fmt]
    assert known.muxer is not None and known.codec is not None  # every file format has them
    params = list(inputs or [])
    params += ["-acodec", known.codec]
    if known.sample_rate:  # Opus always decodes at 48 kHz; say so honestly
        params += ["-ar", str(known.sample_rate)]
    params += parameters or []
    buf = io.BytesIO()
    try:
        segment.export(buf, format=known.muxer, parameters=params)
    except (PydubException, OSError) as exc:
        raise FormatError(f"ffmpeg could not encode {fmt}: {exc}", format=fmt) from exc
    return buf.getvalue()


def convert(audio: SynthesizedAudio, format: str) -> SynthesizedAudio:
    """Return ``audio`` in ``format`` (one of :data:`FILE_FORMATS` or ``"pcm"``).

    The same object is returned when the format already matches (after a magic
    bytes check). Otherwise the audio is decoded and re-encoded with pydub +
    ffmpeg; ``duration_s`` is the decoded audio's length (frames / sample rate,
    seconds), the same for every encoding of it; words, engine, voice and text
    are kept. ``"pcm"`` is 16-bit little-endian samples.

    Raises:
        ValueError: unknown target ``format``.
        FormatError: the source bytes are not what their label claims, or
            decoding/encoding failed.
    """
    fmt = "pcm" if format == "pcm" else check_format(format)
    if fmt == audio.format:
        _check_label(audio)
        return audio
    segment = decode(audio)
    if fmt == "pcm":
        segment = segment.set_sample_width(2)
        data, rate = segment.raw_data, segment.frame_rate
    else:
        data = encode(segment, fmt)
        rate = AUDIO_FORMATS[fmt].sample_rate or segment.frame_rate
    return dataclasses.replace(
        audio,
        data=data,
        format=fmt,
        sample_rate=rate,
        channels=segment.channels,
        duration_s=segment.frame_count() / segment.frame_rate,
    )


def probe_duration(path: str | os.PathLike[str]) -> float:
    """Length of the audio file at ``path`` in seconds, as ffprobe reports it.

    ffprobe reads the container's duration (for MP3 this includes the encoder's
    padding, typically 20-60 ms more than the decoded samples).

    Raises:
        FormatError: ffprobe is missing, fails, or reports no duration.
    """
    exe = shutil.which("ffprobe")
    if exe is None:
        raise FormatError("ffprobe not found on PATH (install ffmpeg)", path=Path(path))
    cmd = [exe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=60)
        return float(proc.stdout.strip())
    except subprocess.CalledProcessError as exc:
        raise FormatError(
            f"ffprobe failed on {path}: {exc.stderr.strip()}", path=Path(path)
        ) from exc
    except (ValueError, subprocess.TimeoutExpired) as exc:
        raise FormatError(f"ffprobe gave no duration for {path}: {exc}", path=Path(path)) from exc
