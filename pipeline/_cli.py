"""``speakstream``: the command line, a thin layer over the library.

Subcommands: ``ask``, ``chat``, ``narrate``, ``voices``, ``config``. Each
parses its flags, resolves settings (flag > config file > environment >
default, see :mod:`pipeline._settings`) and calls the same public functions a
Python user calls. ``--json`` prints one progress event per line on stdout
(NDJSON, built by :func:`pipeline.event_to_dict`); otherwise the answer's
text streams to stdout and status lines go to stderr.

Exit codes: 0 done, 1 the run ended with an error (its files are kept),
2 bad usage or configuration, 130 interrupted (Ctrl-C / SIGINT).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

import llm
import output
import tts

from ._daemon._serve import add_serve_arguments, run_from_args
from ._events import (
    AudioReady,
    ProgressEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    SegmentQueued,
    TextDelta,
    event_to_dict,
)
from ._narrate import anarrate, split_chapters
from ._pipeline import StreamingPipeline, create_streaming_pipeline
from ._settings import Settings, resolve_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_stderr = Console(stderr=True, highlight=False)


# -- Ctrl-C ----------------------------------------------------------------------


class Interrupts:
    """SIGINT handling inside the event loop.

    The first Ctrl-C sets the current run's stop event (the run ends cleanly
    with ``cancelled`` + ``completed``, files kept); with no run in progress,
    or on a second Ctrl-C, the main task is cancelled.
    """

    def __init__(self) -> None:
        self.count = 0
        self.current: asyncio.Event | None = None
        self._task: asyncio.Task[Any] | None = None

    def install(self) -> None:
        self._task = asyncio.current_task()
        asyncio.get_running_loop().add_signal_handler(signal.SIGINT, self._on_sigint)

    def uninstall(self) -> None:
        asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)

    def new_run(self) -> asyncio.Event:
        self.current = asyncio.Event()
        return self.current

    def _on_sigint(self) -> None:
        self.count += 1
        if self.current is not None and not self.current.is_set():
            self.current.set()
        elif self._task is not None:
            self._task.cancel()


def _run(main: Callable[[Interrupts], Awaitable[int]]) -> int:
    interrupts = Interrupts()

    async def runner() -> int:
        interrupts.install()
        try:
            return await main(interrupts)
        finally:
            interrupts.uninstall()

    try:
        code = asyncio.run(runner())
    except (KeyboardInterrupt, asyncio.CancelledError):
        return EXIT_INTERRUPTED
    return code


# -- output views ----------------------------------------------------------------


class JsonView:
    """NDJSON: one ``event_to_dict`` object per line on stdout."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    def show(self, event: ProgressEvent, **extra: Any) -> None:
        self._out.write(json.dumps({**event_to_dict(event), **extra}, ensure_ascii=False) + "\n")
        self._out.flush()


class LiveView:
    """The answer's text on stdout as it streams; errors and a summary on stderr."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    def show(self, event: ProgressEvent, **extra: Any) -> None:
        if isinstance(event, TextDelta):
            self._out.write(event.text)
            self._out.flush()
        elif isinstance(event, RunFailed):
            where = f" (segment {event.segment_index})" if event.segment_index is not None else ""
            _stderr.print(f"\n[red]error{where}: {event.error_type}: {event.message}[/red]")
        elif isinstance(event, RunCancelled):
            _stderr.print(f"\n[yellow]cancelled ({event.reason})[/yellow]")
        elif isinstance(event, RunCompleted):
            self._out.write("\n")
            self._out.flush()
            cut = llm.explain_finish_reason(event.finish_reason)
            if cut is not None:  # a cut-off answer must never look complete
                _stderr.print(f"[yellow]warning: {cut}[/yellow]")
            _stderr.print(_summary(event), style="dim")


def _summary(done: RunCompleted) -> str:
    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    rtf = "-" if done.rtf is None else f"{done.rtf:.3f}"
    merged = f", merged {done.merged_path}" if done.merged_path else ""
    return (
        f"{len(done.audio_files)} audio file(s) in {done.output_dir}{merged} · "
        f"TTFT {secs(done.ttft_s)} · TTFA {secs(done.ttfa_s)} · audio {done.audio_s:.1f} s · "
        f"RTF {rtf} · total {secs(done.total_s)}"
    )


# -- settings ----------------------------------------------------------------------


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    names = ("llm", "model", "base_url", "tts", "voice", "rate", "output_dir", "format")
    flags = {name: getattr(args, name, None) for name in names}
    flags["workers"] = getattr(args, "workers", None)
    flags["subtitles"] = getattr(args, "subtitles", None)
    flags["merge"] = True if getattr(args, "merge", False) else None
    flags["play"] = False if getattr(args, "no_play", False) else None
    return {k: v for k, v in flags.items() if v is not None}


def _pipeline(settings: Settings, *, llm_provider: str | None) -> StreamingPipeline:
    return create_streaming_pipeline(
        llm_provider,
        settings.values["tts"],
        settings.streaming_config(),
        llm_config=settings.llm_config() if llm_provider else None,
    )


def _announce(pipe: StreamingPipeline, settings: Settings) -> None:
    """The one line saying which model and engine are used, and why."""
    parts = []
    if pipe.llm_client is not None:
        client = pipe.llm_client
        parts.append(
            f"model {client.provider}:{Path(client.model).name or client.model} "
            f"({settings.sources['llm']})"
        )
    parts.append(f"tts {settings.values['tts']} ({settings.sources['tts']})")
    _stderr.print("speakstream: " + ", ".join(parts), style="dim")


async def _check_playback(pipe: StreamingPipeline) -> None:
    note = await pipe.check_playback()
    if note:
        _stderr.print(f"speakstream: {note}; writing files only", style="yellow")


# -- commands ----------------------------------------------------------------------


def _cmd_ask(args: argparse.Namespace) -> int:
    if args.daemon:  # issue 6: a running daemon instead of the in-process pipeline
        from ._client import ask_daemon

        return ask_daemon(args)
    settings = resolve_settings(_flags(args))
    view = JsonView() if args.json else LiveView()

    async def main(interrupts: Interrupts) -> int:
        async with _pipeline(settings, llm_provider=settings.values["llm"]) as pipe:
            _announce(pipe, settings)
            await _check_playback(pipe)
            done = None
            events = pipe.astream_chat_to_audio(
                args.question,
                system=args.system,
                max_tokens=args.max_tokens,
                stop_event=interrupts.new_run(),
            )
            async for event in events:
                view.show(event)
                if isinstance(event, RunCompleted):
                    done = event
        if interrupts.count:
            return EXIT_INTERRUPTED
        return EXIT_OK if done is not None and done.error is None else EXIT_FAILED

    return _run(main)


def _cmd_chat(args: argparse.Namespace) -> int:
    settings = resolve_settings(_flags(args))
    view = JsonView() if args.json else LiveView()

    async def main(interrupts: Interrupts) -> int:
        reader = await _stdin_reader()
        async with _pipeline(settings, llm_provider=settings.values["llm"]) as pipe:
            _announce(pipe, settings)
            await _check_playback(pipe)
            assert pipe.llm_client is not None
            conversation = llm.Conversation(pipe.llm_client, system=args.system)
            _stderr.print("Type a message; /quit to leave, Ctrl-C stops an answer.", style="dim")
            while True:
                interrupts.current = None
                if not args.json:
                    _stderr.print("[bold]you>[/bold] ", end="")
                line = await reader.readline()
                if not line:
                    return EXIT_OK
                message = line.decode("utf-8", "replace").strip()
                if message in ("/quit", "/exit"):
                    return EXIT_OK
                if not message:
                    continue
                async for event in pipe.astream_chat_to_audio(
                    message, conversation=conversation, stop_event=interrupts.new_run()
                ):
                    view.show(event)

    return _run(main)


async def _stdin_reader() -> asyncio.StreamReader:
    """Lines from stdin without blocking the loop (a thread blocked in input() would
    keep the process alive after Ctrl-C)."""
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _cmd_narrate(args: argparse.Namespace) -> int:
    flags = _flags(args)
    flags.setdefault("play", False)  # batch job: files only unless --play
    if args.play:
        flags["play"] = True
    settings = resolve_settings(flags)
    source = sys.stdin.read() if args.file == "-" else Path(args.file).read_text(encoding="utf-8")
    chapters = split_chapters(source)
    if not chapters:
        _stderr.print("speakstream: nothing to narrate (empty input)", style="red")
        return EXIT_USAGE
    total = sum(len(c.text) for c in chapters)

    async def main(interrupts: Interrupts) -> int:
        failed = False
        async with _pipeline(settings, llm_provider=None) as pipe:
            _announce(pipe, settings)
            await _check_playback(pipe)
            progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("chars"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=_stderr,
                disable=args.json,
            )
            lengths: dict[tuple[int, int], int] = {}
            with progress:
                task = progress.add_task("narrating", total=total)
                events = anarrate(
                    pipe, source, output_dir=settings.values["output_dir"], resume=args.resume
                )
                async for chapter, event in events:
                    if args.json:
                        JsonView().show(event, chapter=chapter.number, chapter_title=chapter.title)
                    key = (chapter.number, getattr(event, "index", -1))
                    if isinstance(event, SegmentQueued):
                        progress.update(task, description=f"{chapter.title[:30]}")
                        lengths[key] = len(event.text)
                        if not event.spoken_text:
                            progress.advance(task, lengths.pop(key))
                    elif isinstance(event, AudioReady):
                        progress.advance(task, lengths.pop(key, 0))
                    elif isinstance(event, RunFailed):
                        failed = True
                        index = -1 if event.segment_index is None else event.segment_index
                        progress.advance(task, lengths.pop((chapter.number, index), 0))
                        if not args.json:
                            _stderr.print(f"[red]{chapter.title}: {event.error_type}: "
                                          f"{event.message}[/red]")
                    elif isinstance(event, RunCompleted) and not args.json:
                        progress.console.print(f"{chapter.title}: {_summary(event)}", style="dim")
        return EXIT_FAILED if failed else EXIT_OK

    return _run(main)


def _cmd_voices(args: argparse.Namespace) -> int:
    settings = resolve_settings(_flags(args))

    async def main(interrupts: Interrupts) -> int:
        async with tts.create_engine(settings.values["tts"]) as engine:
            voices = await engine.list_voices()
        for voice in voices:
            if args.json:
                print(json.dumps({"id": voice.id, "name": voice.name, "language": voice.language,
                                  "gender": voice.gender, "engine": voice.engine}))
            else:
                print(f"{voice.id}\t{voice.name}\t{voice.language}\t{voice.engine}")
        if not voices and not args.json:
            _stderr.print(f"speakstream: {settings.values['tts']} lists no voices", style="yellow")
        return EXIT_OK

    return _run(main)


def _cmd_config(args: argparse.Namespace) -> int:
    settings = resolve_settings()
    settings.streaming_config()  # validate: a bad value exits 2 with its name
    if args.json:
        print(json.dumps({"values": settings.values, "sources": settings.sources,
                          "files": [str(p) for p in settings.files]}))
        return EXIT_OK
    files = ", ".join(map(str, settings.files)) or "none found"
    print(f"# config files: {files}")
    width = max(map(len, settings.values))
    for key, value in settings.values.items():
        print(f"{key:<{width}} = {json.dumps(value)}  # {settings.sources[key]}")
    return EXIT_OK


# -- parser ----------------------------------------------------------------------


def _add_output_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tts", help="TTS engine: auto, espeak, pyttsx3, edge, piper")
    p.add_argument("--voice", help="engine voice id (see `speakstream voices`)")
    p.add_argument("--rate", type=float, help="speech rate multiplier, 0.25-4.0")
    p.add_argument("-o", "--output-dir", dest="output_dir", help="base directory for audio")
    p.add_argument("--format", choices=output.FILE_FORMATS)
    p.add_argument("--workers", type=int, help="segments synthesized in parallel")
    p.add_argument("--merge", action="store_true", help="also write one merged file")
    p.add_argument("--subtitles", choices=["srt", "vtt"], help="write subtitles too")
    p.add_argument("--json", action="store_true", help="NDJSON progress events on stdout")


def _add_llm_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--llm", help="LLM provider: local (default), ollama, openai, anthropic, gemini")
    p.add_argument("--model", help="model name (or GGUF path for --llm local)")
    p.add_argument("--base-url", dest="base_url", help="server URL (ollama/openai)")
    p.add_argument("--system", help="system prompt")
    p.add_argument("--no-play", action="store_true", help="write files only, do not play")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speakstream",
        description="Stream an LLM's answer to speech: text as it streams, audio while the "
        "model still talks, every segment saved with a manifest.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="ask one question and speak the answer")
    ask.add_argument("question")
    ask.add_argument("--max-tokens", dest="max_tokens", type=int, help="cap the answer's tokens")
    _add_llm_options(ask)
    _add_output_options(ask)
    ask.add_argument("--daemon", metavar="URL",
                     help="use a running daemon (speakstream serve) at URL; token from "
                     "$SPEAKSTREAM_TOKEN")
    ask.set_defaults(func=_cmd_ask)

    chat = sub.add_parser("chat", help="interactive conversation, each reply spoken")
    _add_llm_options(chat)
    _add_output_options(chat)
    chat.set_defaults(func=_cmd_chat)

    narrate = sub.add_parser("narrate", help="narrate a text/markdown file, chapter by chapter")
    narrate.add_argument("file", help="a text or markdown file, or - for stdin")
    narrate.add_argument("--resume", action="store_true",
                         help="continue an interrupted job in the same output directory")
    narrate.add_argument("--play", action="store_true", help="also play while narrating")
    _add_output_options(narrate)
    narrate.set_defaults(func=_cmd_narrate)

    voices = sub.add_parser("voices", help="list the voices of a TTS engine")
    voices.add_argument("--tts", help="engine (default: from settings)")
    voices.add_argument("--json", action="store_true")
    voices.set_defaults(func=_cmd_voices)

    serve = sub.add_parser("serve", help="run the HTTP daemon (SSE, WebSocket, OpenAI speech)")
    add_serve_arguments(serve)
    serve.set_defaults(func=run_from_args)

    config = sub.add_parser("config", help="print the effective configuration and its sources")
    config.add_argument("--json", action="store_true")
    config.set_defaults(func=_cmd_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``speakstream`` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    # The CLI reports everything itself (events, the no-device note): keep the
    # library's log records off stderr unless the user configures logging.
    logging.getLogger("speakstream").addHandler(logging.NullHandler())
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError) as exc:
        _stderr.print(f"speakstream: {exc}", style="red")
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
