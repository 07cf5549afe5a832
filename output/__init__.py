"""Audio to disk and to speakers: segment files, format conversion, manifest,
merging, subtitles and playback. Knows nothing of LLMs."""

from __future__ import annotations

from ._errors import (
    FormatError,
    ManifestError,
    NoAudioDeviceError,
    OutputError,
    OutputExistsError,
    PlaybackError,
)
from ._formats import CHAPTER_FORMATS, FILE_FORMATS, convert, probe_duration, sniff_format
from ._manifest import MANIFEST_NAME, read_manifest
from ._merge import merge
from ._player import AudioOutput, Player, find_audio_output
from ._subtitles import Cue, cues_from_segments, format_srt, format_vtt, write_srt, write_vtt
from ._writer import SegmentWriter, WrittenSegment

__all__ = [
    "AudioOutput",
    "CHAPTER_FORMATS",
    "Cue",
    "FILE_FORMATS",
    "FormatError",
    "MANIFEST_NAME",
    "ManifestError",
    "NoAudioDeviceError",
    "OutputError",
    "OutputExistsError",
    "PlaybackError",
    "Player",
    "SegmentWriter",
    "WrittenSegment",
    "convert",
    "cues_from_segments",
    "find_audio_output",
    "format_srt",
    "format_vtt",
    "merge",
    "probe_duration",
    "read_manifest",
    "sniff_format",
    "write_srt",
    "write_vtt",
]
