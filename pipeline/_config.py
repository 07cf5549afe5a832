"""Options of a streaming run: :class:`StreamingConfig`, validated once."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from output import FILE_FORMATS

from ._cleanup import Mode
from ._sentence_buffer import (
    DEFAULT_FIRST_SEGMENT_MIN_LENGTH,
    DEFAULT_MAX_SEGMENT_LENGTH,
    MIN_MAX_SEGMENT_LENGTH,
)

_CLEAN_MODES = ("placeholder", "drop")
_SUBTITLES = ("srt", "vtt")


@dataclass(frozen=True, kw_only=True)
class StreamingConfig:
    """How text is cut, synthesized, saved and played. Keyword-only, immutable.

    Attributes:
        sentence_buffer_size: complete sentences per segment (integer >= 1).
        min_chunk_length: minimum segment length in characters (integer >= 0).
        max_buffer_time: seconds after which buffered text is released even
            without a sentence boundary (float > 0, or ``None`` to disable).
        first_segment_min_length: characters after which the first segment
            may be released early at a clause boundary, so speech starts sooner
            (integer >= 1; default: the sentence buffer's default, 40), or
            ``None`` to disable the early release.
        max_segment_length: the hard cap on a segment in characters (integer
            80-100000, default 600): text that reaches it without a sentence
            boundary (no punctuation, a poem without periods) is cut at the
            best break (clause punctuation, line break, blank), so the buffer
            stays bounded even with ``max_buffer_time=None``.
        output_dir: base directory for audio files; each run writes into its
            own subfolder (str or path).
        format: audio file format, one of ``wav mp3 ogg opus flac``.
        workers: segments synthesized in parallel (integer 1–32).
        play: play the audio while it is produced (the library default is
            ``False``; the CLI turns it on).
        merge: also write one merged file of the whole run.
        merge_silence_ms: silence inserted between segments in the merged file
            (integer milliseconds, 0–10000).
        subtitles: ``None``, ``"srt"`` or ``"vtt"``: write a subtitle file for
            the merged timeline.
        voice: engine voice id, ``None`` for the engine default.
        rate: speech rate multiplier 0.25–4.0, ``None`` for the default.
        volume: 0.0–1.0, ``None`` for the default.
        pitch: pitch multiplier 0.5–2.0, ``None`` for the default.
        clean_code: what ``clean_for_speech`` does with code blocks:
            ``"placeholder"`` or ``"drop"``.
        clean_urls: what it does with URLs: ``"placeholder"`` or ``"drop"``.

    Raises:
        ValueError: an option has a wrong type or is out of range; the message
            names the option, the value and the allowed range.
    """

    sentence_buffer_size: int = 2
    min_chunk_length: int = 20
    max_buffer_time: float | None = 3.0
    first_segment_min_length: int | None = DEFAULT_FIRST_SEGMENT_MIN_LENGTH
    max_segment_length: int = DEFAULT_MAX_SEGMENT_LENGTH
    output_dir: str | Path = "speakstream-out"
    format: str = "wav"
    workers: int = 2
    play: bool = False
    merge: bool = False
    merge_silence_ms: int = 0
    subtitles: str | None = None
    voice: str | None = None
    rate: float | None = None
    volume: float | None = None
    pitch: float | None = None
    clean_code: Mode = "placeholder"
    clean_urls: Mode = "placeholder"

    def __post_init__(self) -> None:
        _int("sentence_buffer_size", self.sentence_buffer_size, 1, 1000)
        _int("min_chunk_length", self.min_chunk_length, 0, 100_000)
        if self.max_buffer_time is not None:
            _number("max_buffer_time", self.max_buffer_time, 0.0, 3600.0, low_open=True)
        if self.first_segment_min_length is not None:
            _int("first_segment_min_length", self.first_segment_min_length, 1, 100_000)
        _int("max_segment_length", self.max_segment_length, MIN_MAX_SEGMENT_LENGTH, 100_000)
        if not isinstance(self.output_dir, (str, Path)) or not str(self.output_dir):
            raise ValueError(
                f"output_dir must be a non-empty path string, got {self.output_dir!r}"
            )
        _choice("format", self.format, FILE_FORMATS)
        _int("workers", self.workers, 1, 32)
        _bool("play", self.play)
        _bool("merge", self.merge)
        _int("merge_silence_ms", self.merge_silence_ms, 0, 10_000)
        if self.subtitles is not None:
            _choice("subtitles", self.subtitles, _SUBTITLES)
        if self.voice is not None and (not isinstance(self.voice, str) or not self.voice):
            raise ValueError(f"voice must be a non-empty string or None, got {self.voice!r}")
        for name, low, high in (("rate", 0.25, 4.0), ("volume", 0.0, 1.0), ("pitch", 0.5, 2.0)):
            value = getattr(self, name)
            if value is not None:
                _number(name, value, low, high)
        _choice("clean_code", self.clean_code, _CLEAN_MODES)
        _choice("clean_urls", self.clean_urls, _CLEAN_MODES)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The option names, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls, options: Mapping[str, Any] | None = None) -> StreamingConfig:
        """Build a config from a dict (e.g. a TOML table or JSON body).

        Raises:
            ValueError: a key is unknown (the message names it and lists the
                known keys) or a value is invalid.
        """
        options = dict(options or {})
        unknown = sorted(set(options) - set(cls.keys()))
        if unknown:
            raise ValueError(
                f"unknown streaming_config key(s) {', '.join(map(repr, unknown))}; "
                f"known keys: {', '.join(cls.keys())}"
            )
        return cls(**options)

    def replace(self, **changes: Any) -> StreamingConfig:
        """A copy with ``changes`` applied (validated like the constructor;
        unknown keys raise ``ValueError``)."""
        return type(self).from_mapping({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """The options as a plain dict (``output_dir`` as ``str``)."""
        data = dataclasses.asdict(self)
        data["output_dir"] = str(self.output_dir)
        return data


def _int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def _number(name: str, value: object, low: float, high: float, *, low_open: bool = False) -> None:
    ok = (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (low < value if low_open else low <= value)
        and value <= high
    )
    if not ok:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")


def _bool(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")


def _choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
