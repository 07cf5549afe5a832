"""The one table of audio formats speakstream knows.

Every other list of formats is derived from :data:`AUDIO_FORMATS`: the file
formats segments can be written in (``output.FILE_FORMATS``), the formats that
keep chapter markers, the OpenAI-compatible ``response_format`` values of the
daemon's speech route, media types of served files, ffmpeg arguments and the
CLI's ``--format`` choices. ``tts`` is the lowest layer that names formats
(an engine labels its audio with one), so the table lives here; it holds plain
data only and ``tts`` still runs no ffmpeg for it.

Sources: ffmpeg's muxer/encoder names (``ffmpeg -muxers``, ``ffmpeg -encoders``),
IANA media types (RFC 3003 ``audio/mpeg``, RFC 7845 ``audio/ogg`` for Ogg Opus,
RFC 9639 ``audio/flac``), and OpenAI's ``audio/speech`` ``response_format``
list (mp3, opus, aac, flac, wav, pcm).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class AudioFormat:
    """What speakstream knows about one audio format.

    Attributes:
        name: the format's name, also the file extension (``"mp3"``).
        media_type: IANA media type for HTTP responses (``"audio/mpeg"``).
        demuxer: ffmpeg input format to read it (``-f``), ``"s16le"`` for raw PCM.
        muxer: ffmpeg output format to write it (``-f``), ``None`` for raw PCM.
        codec: ffmpeg audio encoder (``-c:a``), ``None`` for raw PCM.
        stream_bitrate: bitrate of the daemon's streamed encoding (``"64k"``), or
            ``None`` for lossless/raw formats. Files use ffmpeg's defaults.
        sample_rate: the rate the codec always outputs (Opus: 48000 Hz), or
            ``None`` when the input rate is kept.
        file: speakstream writes segment and merged files in it.
        speech: an OpenAI ``response_format`` of ``POST /v1/audio/speech``.
        chapters: its ffmpeg muxer stores chapter markers that ffprobe reads back.
        length_in_header: the container declares its length up front (WAV's
            RIFF/data sizes, FLAC's STREAMINFO total samples): a streamed body
            cannot know it.
    """

    name: str
    media_type: str
    demuxer: str
    muxer: str | None
    codec: str | None
    stream_bitrate: str | None = None
    sample_rate: int | None = None
    file: bool = False
    speech: bool = False
    chapters: bool = False
    length_in_header: bool = False


_TABLE = (
    AudioFormat("wav", "audio/wav", "wav", "wav", "pcm_s16le",
                file=True, speech=True, length_in_header=True),
    AudioFormat("mp3", "audio/mpeg", "mp3", "mp3", "libmp3lame", stream_bitrate="64k",
                file=True, speech=True, chapters=True),
    AudioFormat("ogg", "audio/ogg", "ogg", "ogg", "libvorbis", file=True),
    AudioFormat("opus", "audio/ogg", "ogg", "opus", "libopus", stream_bitrate="32k",
                sample_rate=48000, file=True, speech=True, chapters=True),
    AudioFormat("flac", "audio/flac", "flac", "flac", "flac",
                file=True, speech=True, length_in_header=True),
    AudioFormat("aac", "audio/aac", "aac", "adts", "aac", stream_bitrate="64k", speech=True),
    AudioFormat("pcm", "audio/pcm", "s16le", None, None, speech=True),
)

#: Every format by name (read-only). ``"pcm"`` is raw 16-bit little-endian samples.
AUDIO_FORMATS: Mapping[str, AudioFormat] = MappingProxyType({f.name: f for f in _TABLE})
