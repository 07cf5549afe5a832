"""Effective settings of every command (``ask``, ``chat``, ``narrate``, ``serve``)
and where each value came from: the one settings resolver of the project.

Precedence, highest first: an explicit command-line flag, the config file,
the environment, the built-in default. Config files (TOML, flat keys, the
names below) are read from the user config dir
(``$XDG_CONFIG_HOME/speakstream/config.toml``, default
``~/.config/speakstream/config.toml``) and then ``./speakstream.toml``, the
latter winning. Environment variables are ``SPEAKSTREAM_<KEY>`` in upper case
(``SPEAKSTREAM_LLM=ollama``, ``SPEAKSTREAM_PLAY=0``, ``SPEAKSTREAM_TOKEN=...``).

Keys (:data:`DEFAULTS` holds every one with its default):

* what every run uses: ``llm``, ``model``, ``base_url``, ``tts``, the LLM
  timeouts ``first_token_timeout`` and ``idle_timeout`` (seconds, or
  ``"none"``), and every :class:`~pipeline.StreamingConfig` key (``voice``,
  ``rate``, ``format``, ``output_dir``, ``workers``, ``play``, ``merge``,
  ``subtitles``, ``sentence_buffer_size``, ``min_chunk_length``,
  ``max_buffer_time``...). ``max_buffer_time = "none"`` disables the time rule;
* what only the CLI uses: ``progress_interval``, seconds between the plain
  progress lines ``narrate`` prints when stderr is not a terminal;
* ``ray_address``: run ``narrate`` jobs and the daemon's narration jobs on a
  Ray cluster (``"auto"``, an address such as ``"127.0.0.1:6379"``, or
  ``"local"`` for a new cluster in this process; unset: in this process);
* what only ``speakstream serve`` uses (:data:`SERVE_KEYS`): ``host``,
  ``port``, ``token``, ``cors_origins`` (a TOML list, or comma-separated in
  the environment), ``db_path`` and the limits of
  :class:`~pipeline.DaemonSettings` (``max_body_bytes``, ``max_message_chars``,
  ``coalesce_ms``...). Their defaults are DaemonSettings' own.

A setting that does not apply to the chosen LLM provider is dropped with a
note when it came from a file or the environment (``base_url`` with
``llm = "local"``; a ``model``/``base_url`` written next to another ``llm``
in the same file, which the flag ``--llm`` overrides) and is an error when it
was given as a flag (:class:`~pipeline.ConfigError`).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llm

from ._config import StreamingConfig
from ._daemon._settings import DaemonSettings
from ._errors import ConfigError

CONFIG_NAME = "speakstream.toml"

_CLIENT_DEFAULTS = {f.name: f.default for f in dataclasses.fields(llm.ClientOptions)}
_DAEMON_DEFAULTS = {
    f.name: f.default for f in dataclasses.fields(DaemonSettings)
    if f.default is not dataclasses.MISSING
}

#: Options of :func:`llm.create_client` that are settings.
LLM_OPTIONS = ("first_token_timeout", "idle_timeout")

#: Keys only ``speakstream serve`` uses (the daemon's own; defaults from DaemonSettings).
SERVE_KEYS = (
    "host", "port", "token", "cors_origins", "db_path", "max_body_bytes",
    "max_message_chars", "max_speech_chars", "max_narration_chars", "coalesce_ms",
    "ws_ping_s", "sse_ping_s", "max_llm_clients", "reconnect_grace_s",
    "event_log_bytes", "pause_hold_s",
)

#: Every key and its built-in default: the embedded local model, ``auto`` TTS
#: and playback on (the library's StreamingConfig plays nothing by default).
DEFAULTS: dict[str, Any] = {
    "llm": "local",
    "model": None,
    "base_url": None,
    "tts": "auto",
    **{name: _CLIENT_DEFAULTS[name] for name in LLM_OPTIONS},
    **{f.name: f.default for f in dataclasses.fields(StreamingConfig)},
    "play": True,
    "progress_interval": 5.0,
    "ray_address": None,
    **{name: _DAEMON_DEFAULTS[name] for name in SERVE_KEYS},
}

#: Where ``serve`` writes when ``output_dir`` is not set (runs, narrations, job database).
SERVE_OUTPUT_DIR = str(_DAEMON_DEFAULTS["output_dir"])

#: Options an LLM provider refuses (llm/_local.py: the embedded model has no server).
_NOT_FOR_PROVIDER: dict[str, tuple[str, ...]] = {"local": ("base_url",)}

_TYPES: dict[str, type] = {
    "sentence_buffer_size": int,
    "min_chunk_length": int,
    "first_segment_min_length": int,
    "max_segment_length": int,
    "workers": int,
    "merge_silence_ms": int,
    "max_buffer_time": float,
    "first_token_timeout": float,
    "idle_timeout": float,
    "progress_interval": float,
    "rate": float,
    "volume": float,
    "pitch": float,
    "play": bool,
    "merge": bool,
    "port": int,
    "max_body_bytes": int,
    "max_message_chars": int,
    "max_speech_chars": int,
    "max_narration_chars": int,
    "coalesce_ms": int,
    "max_llm_clients": int,
    "ws_ping_s": float,
    "sse_ping_s": float,
    "reconnect_grace_s": float,
    "event_log_bytes": int,
    "pause_hold_s": float,
    "cors_origins": tuple,
}
#: Keys that may be switched off with "none" although their default is a value.
_NULLABLE = frozenset({"max_buffer_time", "first_segment_min_length", *LLM_OPTIONS})
_NONE = ("none", "null", "off", "false", "")
_SECRET = frozenset({"token"})


def flag_name(key: str) -> str:
    """The command-line flag of ``key`` (``base_url`` -> ``--base-url``)."""
    return "--" + key.replace("_", "-")


@dataclass(frozen=True)
class Settings:
    """Resolved settings.

    Attributes:
        values: key -> value, for every key in :data:`DEFAULTS`.
        sources: key -> where it came from: ``"default"``, ``"flag"``,
            ``"env SPEAKSTREAM_X"`` or ``"file <path>"``.
        files: the config files read, lowest precedence first.
        notes: settings that were read but do not apply (dropped), one
            sentence each, for the user to see.
    """

    values: dict[str, Any]
    sources: dict[str, str]
    files: tuple[Path, ...] = field(default=())
    notes: tuple[str, ...] = field(default=())

    def given(self, key: str) -> bool:
        """Whether ``key`` was set by a flag, a file or the environment."""
        return self.sources[key] != "default"

    def streaming_config(self) -> StreamingConfig:
        """The :class:`StreamingConfig` part.

        Raises:
            ConfigError: a value is out of range (the message names the key,
                the value, the allowed range and where the value came from).
        """
        keys = StreamingConfig.keys()
        try:
            return StreamingConfig.from_mapping(
                {k: v for k, v in self.values.items() if k in keys}
            )
        except ValueError as exc:
            raise self._error(exc, keys) from exc

    def llm_config(self) -> dict[str, Any]:
        """Keyword arguments for :func:`llm.create_client`: ``model`` and
        ``base_url`` when set, and the timeouts.

        Raises:
            ConfigError: a timeout is not a number of seconds > 0.
        """
        config = {k: self.values[k] for k in ("model", "base_url") if self.values[k] is not None}
        options = {k: self.values[k] for k in LLM_OPTIONS}
        try:
            llm.ClientOptions(**options)
        except ValueError as exc:
            raise self._error(exc, LLM_OPTIONS) from exc
        return {**config, **options}

    def daemon_settings(self) -> DaemonSettings:
        """The :class:`DaemonSettings` of ``speakstream serve``.

        ``llm``/``tts`` become the daemon's default provider and engine,
        ``model``/``base_url``/timeouts its ``llm_config``, the StreamingConfig
        keys the default options of every run (the daemon never plays: ``play``
        is off), ``output_dir`` where it writes (default
        :data:`SERVE_OUTPUT_DIR`), the serve keys themselves.

        Raises:
            ConfigError: a value is out of range, or a non-loopback ``host``
                has no ``token``.
        """
        streaming = self.streaming_config()
        output_dir = self.values["output_dir"] if self.given("output_dir") else SERVE_OUTPUT_DIR
        serve = {k: self.values[k] for k in SERVE_KEYS}
        serve["cors_origins"] = tuple(serve["cors_origins"] or ())
        try:
            return DaemonSettings(
                llm_provider=self.values["llm"],
                tts_provider=self.values["tts"],
                llm_config=self.llm_config(),
                streaming_config=streaming.replace(play=False, output_dir=output_dir),
                output_dir=output_dir,
                ray_address=self.values["ray_address"],
                sources=dict(self.sources),
                **serve,
            )
        except ValueError as exc:
            if isinstance(exc, ConfigError):
                raise
            raise self._error(exc, SERVE_KEYS) from exc

    def public_values(self) -> dict[str, Any]:
        """:attr:`values` with secrets (the token) masked, for printing."""
        return {
            k: ("***" if k in _SECRET and v is not None else v) for k, v in self.values.items()
        }

    def _error(self, exc: ValueError, keys: tuple[str, ...]) -> ConfigError:
        """``exc`` as a ConfigError that also says where the offending value came from."""
        message = str(exc)
        for key in keys:
            if message.startswith(key) and self.given(key):
                return ConfigError(f"{message} (from {self.sources[key]})", key=key)
        return ConfigError(message)


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

    Then settings that do not apply to the chosen ``llm`` are dropped with a
    note (file/environment) or refused (flag); see the module docstring.

    Raises:
        ConfigError: an unknown key or an unparsable value in a file or the
            environment (the message names the key and where it came from),
            invalid TOML, or a flag that does not apply to the chosen ``llm``.
    """
    env = os.environ if env is None else env
    layers: list[tuple[str, dict[str, Any]]] = []
    from_env = {}
    for key in DEFAULTS:
        name = f"SPEAKSTREAM_{key.upper()}"
        if name in env:
            from_env[key] = _parse(key, env[name], f"environment variable {name}")
    layers.append(("env", from_env))
    found = config_files(cwd, env) if files is None else files
    for path in found:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc}") from exc
        unknown = sorted(set(data) - set(DEFAULTS))
        if unknown:
            raise ConfigError(
                f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; "
                f"known keys: {', '.join(DEFAULTS)}",
                key=unknown[0],
            )
        layers.append((f"file {path}", {k: _parse(k, v, str(path)) for k, v in data.items()}))
    given = {}
    for key, value in (flags or {}).items():
        if key not in DEFAULTS:
            raise ConfigError(f"unknown setting {key!r}", key=key)
        if value is not None:
            given[key] = _parse(key, value, "flag") if key in _TYPES else value
    layers.append(("flag", given))

    values = dict(DEFAULTS)
    sources = dict.fromkeys(values, "default")
    layer_of: dict[str, dict[str, Any]] = {}
    for source, layer in layers:
        for key, value in layer.items():
            values[key] = value
            sources[key] = source if source != "env" else f"env SPEAKSTREAM_{key.upper()}"
            layer_of[key] = layer
    notes = _drop_inapplicable(values, sources, layer_of)
    return Settings(values, sources, tuple(found), tuple(notes))


def _drop_inapplicable(
    values: dict[str, Any], sources: dict[str, str], layer_of: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Reset (with a note) or refuse the LLM settings that do not go with ``values["llm"]``."""
    provider = values["llm"]
    notes: list[str] = []

    def drop(key: str, why: str) -> None:
        notes.append(f"{key} = {values[key]!r} from {sources[key]} is ignored: {why}")
        values[key] = DEFAULTS[key]
        sources[key] = "default"

    for key in ("model", "base_url"):
        if values[key] is None or sources[key] in ("default", "flag"):
            continue
        written_with = layer_of[key].get("llm")
        if written_with is not None and written_with != provider:
            drop(key, f"it goes with llm = {written_with!r} there, and llm is {provider!r} "
                      f"(from {sources['llm']})")
    for key in _NOT_FOR_PROVIDER.get(provider, ()):
        if values[key] is None:
            continue
        if sources[key] == "flag":
            raise ConfigError(f"{flag_name(key)} does not apply to llm {provider!r}", key=key)
        drop(key, f"llm {provider!r} takes no {key}")
    return notes


def _parse(key: str, raw: Any, origin: str) -> Any:
    """Turn a TOML or environment value into the key's type.

    Raises:
        ConfigError: the value cannot be read as the key's type.
    """
    kind = _TYPES.get(key)
    nullable = DEFAULTS[key] is None or key in _NULLABLE
    if nullable and (raw is False or (isinstance(raw, str) and raw.strip().lower() in _NONE)):
        return None
    if kind is tuple:
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(raw, list) and all(isinstance(item, str) for item in raw):
            return tuple(raw)
        raise ConfigError(f"{key} from {origin}: expected a list of strings, got {raw!r}", key=key)
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
        raise ConfigError(
            f"{key} from {origin}: cannot read {raw!r} as {kind.__name__}", key=key
        ) from None
