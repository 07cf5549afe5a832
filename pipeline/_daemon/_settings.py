"""Options of the daemon: :class:`DaemonSettings`, validated once.

``speakstream serve`` builds them with the project's one settings resolver
(:func:`pipeline._settings.resolve_settings` then ``Settings.daemon_settings()``):
flag > config file > environment > default, the same keys and defaults as the CLI.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._config import StreamingConfig

#: Environment variable read by ``speakstream serve`` when ``--token`` is not given.
TOKEN_ENV = "SPEAKSTREAM_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an IP literal or ``"localhost"``) only accepts local connections."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: may resolve to anything


@dataclass(frozen=True, kw_only=True)
class DaemonSettings:
    """How the daemon listens, authenticates, limits and runs pipelines.

    Attributes:
        host: interface to bind (default ``127.0.0.1``). Any non-loopback host
            requires ``token``.
        port: TCP port, 0–65535 (0 picks a free port).
        token: when set, every ``/v1/*`` and ``/metrics`` request needs
            ``Authorization: Bearer <token>`` (WebSockets may pass
            ``?token=`` since browsers cannot set headers on them).
        output_dir: where run and narration audio goes: ``<output_dir>/runs/<run_id>/``
            and ``<output_dir>/narrations/<job_id>/``.
        db_path: SQLite file of the narration jobs; ``None`` means
            ``<output_dir>/narrations.sqlite3``.
        llm_provider / tts_provider: defaults of ``/v1/speak`` (a request may
            name others); the embedded ``local`` model and ``auto``, like the CLI.
        llm_config: options of :func:`llm.create_client` for ``llm_provider``
            (``model``, ``base_url``, timeouts). A request naming another
            provider gets only the timeouts (a model name or server URL belongs
            to one provider).
        tts_config: options of :func:`tts.create_engine`.
        streaming_config: the default options of every run; a request's
            ``streaming_config`` object overrides single keys.
        max_body_bytes: largest request body accepted (bytes, 1 KiB–1 GiB);
            larger bodies get ``413`` with a JSON error.
        max_message_chars: largest ``message`` of ``/v1/speak`` and WebSocket
            ``speak`` (characters, 1–1,000,000); ``413`` when exceeded.
        max_speech_chars: largest ``input`` of ``/v1/audio/speech``
            (characters; OpenAI's limit is 4096).
        max_narration_chars: largest narration text (characters).
        cors_origins: origins allowed by CORS; empty (default) means no CORS
            headers at all.
        coalesce_ms: SSE/WebSocket text deltas arriving within this window
            (milliseconds, 0–1000) are sent as one ``token``/``chunk`` message.
        ws_ping_s: seconds between server pings on idle WebSockets (> 0).
        sse_ping_s: seconds between SSE keep-alive comments (> 0).
        reconnect_grace_s: a run no client follows any more is stopped after
            this many seconds (0–3600; 0: at once), so a client can reconnect
            and read on (``Last-Event-ID`` / WebSocket ``resume``).
        event_log_bytes: bound of one run's event log (bytes, 64 KiB–64 MiB;
            the oldest messages are dropped past it). Logs are kept as long as
            the run's record (the last 1,000 runs, 64 MiB of logs in all).
        pause_hold_s: longest time a paused run holds its LLM stream (seconds,
            > 0); then the stream is closed and the text so far kept.
        max_llm_clients: LLM clients kept warm (one per provider/model a
            request names, least recently used closed first; 1-1024).
        ray_address: run narration jobs on the Ray cluster at this address
            (``"auto"``, ``"HOST:PORT"``, or ``"local"`` for a cluster started
            in the daemon's process; needs the ``ray`` extra); ``None``
            (default): in the daemon's process. The same setting as
            ``speakstream narrate --ray``.
        sources: where each setting came from (``"flag"``, ``"file ..."``,
            ``"env ..."``, ``"default"``), for the start-up line; informative only.

    Raises:
        ValueError: an option is out of range, or a non-loopback ``host`` has
            no ``token``; the message names the option, value and allowed range.
    """

    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    output_dir: str | Path = "speakstream-daemon"
    db_path: str | Path | None = None
    llm_provider: str = "local"
    tts_provider: str = "auto"
    llm_config: Mapping[str, Any] | None = None
    tts_config: Mapping[str, Any] | None = None
    streaming_config: StreamingConfig = field(default_factory=StreamingConfig)
    max_body_bytes: int = 2 * 1024 * 1024
    max_message_chars: int = 20_000
    max_speech_chars: int = 4096
    max_narration_chars: int = 1_000_000
    cors_origins: tuple[str, ...] = ()
    coalesce_ms: int = 20
    ws_ping_s: float = 20.0
    sse_ping_s: float = 15.0
    reconnect_grace_s: float = 30.0
    event_log_bytes: int = 1 << 20
    pause_hold_s: float = 60.0
    max_llm_clients: int = 16
    ray_address: str | None = None
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.host, str) or not self.host:
            raise ValueError(f"host must be a non-empty string, got {self.host!r}")
        _int("port", self.port, 0, 65535)
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 8):
            raise ValueError("token must be a string of at least 8 characters")
        if self.token is None and not is_loopback(self.host):
            raise ValueError(
                f"host {self.host!r} is not a loopback address: refusing to listen on it "
                f"without a token (set --token, token in the config file, or {TOKEN_ENV})"
            )
        _int("max_body_bytes", self.max_body_bytes, 1024, 1 << 30)
        _int("max_message_chars", self.max_message_chars, 1, 1_000_000)
        _int("max_speech_chars", self.max_speech_chars, 1, 1_000_000)
        _int("max_narration_chars", self.max_narration_chars, 1, 100_000_000)
        _int("coalesce_ms", self.coalesce_ms, 0, 1000)
        _int("max_llm_clients", self.max_llm_clients, 1, 1024)
        _int("event_log_bytes", self.event_log_bytes, 64 << 10, 64 << 20)
        grace = self.reconnect_grace_s
        if isinstance(grace, bool) or not isinstance(grace, (int, float)) or not (
            0 <= grace <= 3600
        ):
            raise ValueError(f"reconnect_grace_s must be a number in [0, 3600], got {grace!r}")
        for name in ("ws_ping_s", "sse_ping_s", "pause_hold_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if self.ray_address is not None and (
            not isinstance(self.ray_address, str) or not self.ray_address
        ):
            raise ValueError(f"ray_address must be a non-empty string, got {self.ray_address!r}")
        if not isinstance(self.streaming_config, StreamingConfig):
            raise ValueError(
                f"streaming_config must be a StreamingConfig, got {type(self.streaming_config)}"
            )
        if isinstance(self.cors_origins, str) or not all(
            isinstance(o, str) for o in self.cors_origins
        ):
            raise ValueError(f"cors_origins must be a tuple of strings, got {self.cors_origins!r}")
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))

    @property
    def root(self) -> Path:
        """``output_dir`` as an absolute path."""
        return Path(os.path.abspath(self.output_dir))

    @property
    def runs_dir(self) -> Path:
        """Directory holding one subdirectory per run (``<output_dir>/runs``)."""
        return self.root / "runs"

    @property
    def narrations_dir(self) -> Path:
        """Directory holding one subdirectory per narration job."""
        return self.root / "narrations"

    @property
    def database(self) -> Path:
        """The SQLite file of the narration jobs."""
        if self.db_path is not None:
            return Path(os.path.abspath(self.db_path))
        return self.root / "narrations.sqlite3"


def _int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
