"""Effective CLI settings and where each value came from.

Precedence, highest first: an explicit command-line flag, the config file,
the environment, the built-in default. Config files (TOML, flat keys, the
same names as below) are read from the user config dir
(``$XDG_CONFIG_HOME/speakstream/config.toml``, default
``~/.config/speakstream/config.toml``) and then ``./speakstream.toml``, the
latter winning. Environment variables are ``SPEAKSTREAM_<KEY>`` in upper case
(``SPEAKSTREAM_LLM=ollama``, ``SPEAKSTREAM_PLAY=0``).

Keys: ``llm``, ``model``, ``base_url``, ``tts`` and every
:class:`~pipeline.StreamingConfig` key (``voice``, ``rate``, ``format``,
``output_dir``, ``workers``, ``play``, ``merge``, ``subtitles``,
``sentence_buffer_size``, ``min_chunk_length``, ``max_buffer_time``...).
``max_buffer_time = "none"`` (or ``false``) disables the time rule.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._config import StreamingConfig

CONFIG_NAME = "speakstream.toml"

#: Defaults of the CLI (the library's are in StreamingConfig): the embedded
#: local model, ``auto`` TTS, and playback on.
CLI_DEFAULTS: dict[str, Any] = {
    "llm": "local",
    "model": None,
    "base_url": None,
    "tts": "auto",
    **{f.name: f.default for f in dataclasses.fields(StreamingConfig)},
    "play": True,
}
_TYPES: dict[str, type] = {
    "sentence_buffer_size": int,
    "min_chunk_length": int,
    "first_segment_min_length": int,
    "max_segment_length": int,
    "workers": int,
    "merge_silence_ms": int,
    "max_buffer_time": float,
    "rate": float,
    "volume": float,
    "pitch": float,
    "play": bool,
    "merge": bool,
}
_NONE = ("none", "null", "off", "false", "")


@dataclass(frozen=True)
class Settings:
    """Resolved settings.

    Attributes:
        values: key -> value, for every key in :data:`CLI_DEFAULTS`.
        sources: key -> where it came from: ``"default"``, ``"flag"``,
            ``"env SPEAKSTREAM_X"`` or ``"file <path>"``.
        files: the config files read, lowest precedence first.
    """

    values: dict[str, Any]
    sources: dict[str, str]
    files: tuple[Path, ...] = field(default=())

    def streaming_config(self) -> StreamingConfig:
        """The :class:`StreamingConfig` part (validated; ``ValueError`` names the key)."""
        keys = StreamingConfig.keys()
        return StreamingConfig.from_mapping({k: v for k, v in self.values.items() if k in keys})

    def llm_config(self) -> dict[str, Any]:
        """Keyword arguments for :func:`llm.create_client` (only those set)."""
        return {k: self.values[k] for k in ("model", "base_url") if self.values[k] is not None}


def config_files(cwd: Path | None = None, env: Mapping[str, str] | None = None) -> list[Path]:
    """The config files that exist, lowest precedence first (user dir, then cwd)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME", "~")).expanduser() / ".config")
    candidates = [Path(base) / "speakstream" / "config.toml", (cwd or Path.cwd()) / CONFIG_NAME]
    return [p for p in candidates if p.is_file()]


def resolve_settings(
    flags: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    files: list[Path] | None = None,
) -> Settings:
    """Merge defaults < environment < config files < flags (``None`` flags are unset).

    Raises:
        ValueError: an unknown key or an unparsable value in a file or the
            environment (the message names the key and where it came from),
            or invalid TOML.
    """
    env = os.environ if env is None else env
    values = dict(CLI_DEFAULTS)
    sources = dict.fromkeys(values, "default")
    for key in CLI_DEFAULTS:
        name = f"SPEAKSTREAM_{key.upper()}"
        if name in env:
            values[key] = _parse(key, env[name], f"environment variable {name}")
            sources[key] = f"env {name}"
    found = config_files(cwd, env) if files is None else files
    for path in found:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ValueError(f"{path}: invalid TOML: {exc}") from exc
        unknown = sorted(set(data) - set(CLI_DEFAULTS))
        if unknown:
            raise ValueError(
                f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known keys: {', '.join(CLI_DEFAULTS)}"
            )
        for key, raw in data.items():
            values[key] = _parse(key, raw, str(path))
            sources[key] = f"file {path}"
    for key, value in (flags or {}).items():
        if key not in CLI_DEFAULTS:
            raise ValueError(f"unknown setting {key!r}")
        if value is not None:
            values[key] = value
            sources[key] = "flag"
    return Settings(values, sources, tuple(found))


def _parse(key: str, raw: Any, origin: str) -> Any:
    """Turn a TOML or environment value into the key's type."""
    kind = _TYPES.get(key)
    if isinstance(raw, str) and raw.strip().lower() in _NONE and CLI_DEFAULTS[key] is None:
        return None
    if key == "max_buffer_time" and (raw is False or str(raw).strip().lower() in _NONE):
        return None
    if kind is None or not isinstance(raw, str):
        return raw
    text = raw.strip().lower()
    try:
        if kind is bool:
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        return kind(text)
    except ValueError:
        raise ValueError(f"{key} from {origin}: cannot read {raw!r} as {kind.__name__}") from None
