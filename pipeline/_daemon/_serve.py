"""Running the daemon: :func:`serve` (uvicorn) and the ``speakstream serve`` arguments."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from collections.abc import Sequence

from ._settings import TOKEN_ENV, DaemonSettings


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``serve``'s options (``--host --port --token --output-dir ...``) to ``parser``."""
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to bind (default 127.0.0.1; others need a token)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port (default 8765)")
    parser.add_argument("--token", default=None,
                        help=f"require 'Authorization: Bearer TOKEN' (default: ${TOKEN_ENV})")
    parser.add_argument("--output-dir", default="speakstream-daemon",
                        help="where audio and the narration database go")
    parser.add_argument("--llm", dest="llm_provider", default="ollama",
                        help="default LLM provider of /v1/speak (default ollama)")
    parser.add_argument("--model", default=None, help="default model of the LLM provider")
    parser.add_argument("--llm-url", default=None, help="base URL of the LLM server")
    parser.add_argument("--tts", dest="tts_provider", default="auto",
                        help="default TTS engine (default auto)")
    parser.add_argument("--cors-origin", action="append", default=[],
                        help="allow this origin by CORS (repeatable; default: CORS off)")


def settings_from_args(args: argparse.Namespace) -> DaemonSettings:
    """The :class:`DaemonSettings` of parsed ``serve`` arguments.

    Raises:
        ValueError: invalid options (e.g. a non-loopback host without a token).
    """
    llm_config: dict[str, object] = {}
    if args.model:
        llm_config["model"] = args.model
    if args.llm_url:
        llm_config["base_url"] = args.llm_url
    return DaemonSettings(
        host=args.host,
        port=args.port,
        token=args.token or os.environ.get(TOKEN_ENV) or None,
        output_dir=args.output_dir,
        llm_provider=args.llm_provider,
        tts_provider=args.tts_provider,
        llm_config=llm_config or None,
        cors_origins=tuple(args.cors_origin),
    )


def serve(settings: DaemonSettings, *, sock: socket.socket | None = None) -> None:
    """Run the daemon until SIGINT/SIGTERM (blocking).

    Args:
        settings: the daemon's options.
        sock: an already bound socket to serve on instead of
            ``settings.host``/``settings.port`` (tests bind port 0).
    """
    asyncio.run(aserve(settings, sock=sock))


async def aserve(settings: DaemonSettings, *, sock: socket.socket | None = None) -> None:
    """The async twin of :func:`serve`."""
    import uvicorn

    from ._app import create_app

    config = uvicorn.Config(
        create_app(settings), host=settings.host, port=settings.port,
        log_level="info", ws_ping_interval=settings.ws_ping_s, lifespan="on",
    )
    await uvicorn.Server(config).serve(sockets=[sock] if sock is not None else None)


def run_from_args(args: argparse.Namespace) -> int:
    """``speakstream serve``: serve with the parsed arguments; 2 on invalid options."""
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        print(f"speakstream serve: {exc}", file=sys.stderr)
        return 2
    serve(settings)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``speakstream serve`` as a stand-alone entry: parse ``argv``, serve, return 0.

    Exit status 2 on invalid options.
    """
    parser = argparse.ArgumentParser(prog="speakstream serve",
                                     description="Run the speakstream daemon.")
    add_serve_arguments(parser)
    args = parser.parse_args(argv)
    try:
        settings = settings_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    serve(settings)
    return 0
