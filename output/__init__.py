"""Audio to disk and to speakers: segment files, format conversion, manifest,
merging, subtitles, playback, and the sink seam a run delivers its audio
through (:class:`AudioSink`). Knows nothing of LLMs."""

from __future__ import annotations

from ._errors import (
    FormatError,
    ManifestError,
    NoAudioDeviceError,
    OutputError,
    OutputExistsError,
    OutputLockedError,
    PlaybackError,
    WriteError,
)
from ._formats import CHAPTER_FORMATS, FILE_FORMATS, convert, probe_duration, sniff_format
from ._lock import LOCK_NAME, DirectoryLock, lock_directory
from ._manifest import MANIFEST_NAME, ManifestWriter, read_manifest, rewrite_manifest
from ._merge import merge
from ._player import AudioOutput, Player, find_audio_output
from ._sink import AudioSink, RunSummary, SegmentInfo
from ._sinks import FileSink, MergeSink, PlayerSink, SubtitleSink, resample_pcm
from ._stream import FFmpegPipe, PcmDecoder, encoder_args, pcm_input_args
from ._subtitles import Cue, cues_from_segments, format_srt, format_vtt, write_srt, write_vtt
from ._writer import SegmentWriter, WrittenSegment

__all__ = [
    "AudioOutput",
    "AudioSink",
    "CHAPTER_FORMATS",
    "Cue",
    "DirectoryLock",
    "FFmpegPipe",
    "FILE_FORMATS",
    "FileSink",
    "FormatError",
    "LOCK_NAME",
    "MANIFEST_NAME",
    "ManifestError",
    "ManifestWriter",
    "MergeSink",
    "NoAudioDeviceError",
    "OutputError",
    "OutputExistsError",
    "OutputLockedError",
    "PcmDecoder",
    "PlaybackError",
    "Player",
    "PlayerSink",
    "RunSummary",
    "SegmentInfo",
    "SegmentWriter",
    "SubtitleSink",
    "WriteError",
    "WrittenSegment",
    "convert",
    "cues_from_segments",
    "encoder_args",
    "find_audio_output",
    "format_srt",
    "format_vtt",
    "lock_directory",
    "merge",
    "pcm_input_args",
    "probe_duration",
    "read_manifest",
    "resample_pcm",
    "rewrite_manifest",
    "sniff_format",
    "write_srt",
    "write_vtt",
]
