"""Running the daemon: :func:`serve` (uvicorn) and the ``speakstream serve`` arguments.

``speakstream serve`` resolves its settings like every other command
(:mod:`pipeline._settings`: flag > config file > environment > default, the
same keys and defaults), checks that its default LLM and engine can be built,
and prints one line at start-up saying what it serves and why, e.g.::

    speakstream serve: http://127.0.0.1:8765 · llm local:SmolLM2-135M-Instruct.Q4_1.gguf
    (default) · tts auto (default) → piper: edge unavailable (edge-tts service unreachable)
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from .._errors import ConfigError
from .._flags import add_llm_arguments
from .._settings import DEFAULTS, SERVE_OUTPUT_DIR, flag_name, resolve_settings
from ._settings import DaemonSettings


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``serve``'s options to ``parser``; each ``dest`` is a settings key, unset
    flags are ``None`` (so the config file and environment apply)."""
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1; others need a token)")
    parser.add_argument("--port", type=int, help=f"TCP port (default {DEFAULTS['port']})")
    parser.add_argument("--token", help="require 'Authorization: Bearer TOKEN' "
                        "(default: the 'token' setting, $SPEAKSTREAM_TOKEN)")
    parser.add_argument("-o", "--output-dir", dest="output_dir",
                        help=f"where audio and the narration database go "
                        f"(default {SERVE_OUTPUT_DIR})")
    add_llm_arguments(parser)
    parser.add_argument("--tts", help="default TTS engine: auto (default), espeak, pyttsx3, "
                        "edge, piper")
    parser.add_argument("--voice", help="default voice of the engine")
    parser.add_argument("--format", choices=["wav", "mp3", "ogg", "opus", "flac"],
                        help="default audio file format")
    parser.add_argument("--cors-origin", dest="cors_origins", action="append", metavar="ORIGIN",
                        help="allow this origin by CORS (repeatable; default: CORS off)")
    for key in ("max_body_bytes", "max_message_chars", "max_speech_chars",
                "max_narration_chars", "max_llm_clients"):
        parser.add_argument(flag_name(key), dest=key, type=int, metavar="N",
                            help=f"limit (default {DEFAULTS[key]})")


def settings_from_args(args: argparse.Namespace) -> DaemonSettings:
    """The :class:`DaemonSettings` of parsed ``serve`` arguments, the config files
    and the environment (notes on dropped settings go to stderr).

    Raises:
        ConfigError: invalid options (e.g. a non-loopback host without a token).
    """
    flags = {key: getattr(args, key, None) for key in DEFAULTS}
    settings = resolve_settings(flags)
    for note in settings.notes:
        print(f"speakstream serve: note: {note}", file=sys.stderr)
    return settings.daemon_settings()


def check_providers(settings: DaemonSettings) -> None:
    """Build (and close) the default LLM client and engine once, so a missing API
    key, model file or unknown engine stops ``serve`` at start-up with one line.

    Raises:
        ConfigError: unknown provider or engine, or a bad option.
        LLMError: e.g. ``LLMAuthError`` (no API key), ``ModelNotFoundError``.
    """
    import llm
    import tts

    try:
        client = llm.create_client(settings.llm_provider, **dict(settings.llm_config or {}))
        engine = tts.create_engine(settings.tts_provider, **dict(settings.tts_config or {}))
    except ValueError as exc:
        if isinstance(exc, ConfigError) or isinstance(exc, llm.LLMError):
            raise
        raise ConfigError(str(exc)) from exc

    async def close() -> None:
        try:
            await client.aclose()
        finally:
            await engine.aclose()

    asyncio.run(close())


def serve(
    settings: DaemonSettings,
    *,
    sock: socket.socket | None = None,
    announce: Callable[[str], Any] | None = None,
) -> None:
    """Run the daemon until SIGINT/SIGTERM (blocking).

    Args:
        settings: the daemon's options.
        sock: an already bound socket to serve on instead of
            ``settings.host``/``settings.port`` (``speakstream serve`` binds it
            first, so a taken port is one line, not a server error).
        announce: called once at start-up with the line saying what the
            daemon serves and why (``speakstream serve`` prints it on stderr).

    The event loop is uvloop's where it is installed (a dependency except on
    Windows): the daemon's CPU goes to its event loop (every token is a
    network read, a parse and a write), and uvloop's costs less per callback.
    """
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        runner.run(aserve(settings, sock=sock, announce=announce))


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """``uvloop.new_event_loop`` when uvloop is installed, else ``None`` (asyncio's own)."""
    try:
        import uvloop
    except ImportError:  # Windows: no uvloop
        return None
    return uvloop.new_event_loop


async def aserve(
    settings: DaemonSettings,
    *,
    sock: socket.socket | None = None,
    announce: Callable[[str], Any] | None = None,
) -> None:
    """The async twin of :func:`serve`."""
    import uvicorn

    from ._app import create_app

    if sock is not None:
        host, port = sock.getsockname()[:2]
    else:
        host, port = settings.host, settings.port
    address = f"http://{host}:{port}" if ":" not in host else f"http://[{host}]:{port}"
    config = uvicorn.Config(
        create_app(settings, announce=announce, address=address, freeze_gc=True),
        host=settings.host,
        port=settings.port, log_level="info", ws_ping_interval=settings.ws_ping_s,
        lifespan="on",
    )
    await uvicorn.Server(config).serve(sockets=[sock] if sock is not None else None)


def run_from_args(args: argparse.Namespace) -> int:
    """``speakstream serve``: resolve the settings, check the providers, serve.

    Raises:
        ConfigError, LLMError: invalid settings or providers (the CLI prints
            one line and exits 2).
    """
    settings = settings_from_args(args)
    check_providers(settings)
    settings.runs_dir.mkdir(parents=True, exist_ok=True)  # OSError: one line, not a traceback
    settings.narrations_dir.mkdir(parents=True, exist_ok=True)
    sock = listen(settings)
    serve(settings, sock=sock, announce=lambda line: print(line, file=sys.stderr, flush=True))
    return 0


def listen(settings: DaemonSettings) -> socket.socket:
    """The daemon's listening socket, bound before anything starts.

    Raises:
        ConfigError: the address cannot be used (port taken, unknown host...).
    """
    try:
        return socket.create_server((settings.host.strip("[]"), settings.port),
                                    family=_family(settings.host), backlog=2048)
    except OSError as exc:
        raise ConfigError(f"cannot listen on {settings.host}:{settings.port}: "
                          f"{exc.strerror or exc} (choose another --host/--port)",
                          key="port") from exc


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def main(argv: Sequence[str] | None = None) -> int:
    """``speakstream serve [OPTIONS]`` as a stand-alone entry; returns the exit status
    (2 on invalid options, one line on stderr, as the ``speakstream`` CLI)."""
    from .._cli import main as cli_main

    return cli_main(["serve", *(sys.argv[1:] if argv is None else argv)])
