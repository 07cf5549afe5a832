"""``speakstream``: the command line, a thin layer over the library.

Subcommands: ``ask`` (``--daemon URL``: the work done by a running daemon,
see :mod:`pipeline._client`), ``chat``, ``narrate``, ``voices``, ``config``,
``serve`` (:mod:`pipeline._daemon._serve`). Each parses its flags, resolves
settings with the one resolver (flag > config file > environment > default,
see :mod:`pipeline._settings`) and calls the same public functions a Python
user calls. ``--json`` prints one progress event per line on stdout (NDJSON,
built by :func:`pipeline.event_to_dict`); otherwise the answer's text streams
to stdout and status lines go to stderr (plain text when it is not a terminal).

Errors of ours (``SpeakStreamError``) and OS errors are one line on stderr,
never a traceback (:func:`main`). Exit codes: 0 done, 1 the run ended with an
error (its files are kept) or a service failed, 2 bad usage or configuration,
130 interrupted (Ctrl-C / SIGINT), 143 terminated (SIGTERM: stopped the same way).
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TextColumn
from rich.table import Column
from rich.text import Text

import llm
import output
import tts

from ._daemon._serve import add_serve_arguments, run_from_args
from ._errors import ConfigError, PipelineError, SpeakStreamError
from ._events import (
    AudioReady,
    ProgressEvent,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
    SegmentQueued,
    TextDelta,
    event_to_dict,
)
from ._flags import add_llm_arguments, positive_int
from ._job import ItemDone, anarrate_job, job_fingerprint
from ._job_pipelines import JobPipelines, engine_options, item_size, usable_cpus
from ._jobfile import JobItem, is_job_file, iter_job_items
from ._narrate import Chapter
from ._pipeline import StreamingPipeline, create_streaming_pipeline
from ._progress import NarrationProgress
from ._settings import Settings, resolve_settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_stderr = Console(stderr=True, highlight=False)


# -- Ctrl-C ----------------------------------------------------------------------


class Interrupts:
    """SIGINT (Ctrl-C) and SIGTERM handling inside the event loop.

    The first signal sets the current run's stop event (the run ends cleanly
    with ``cancelled`` + ``completed``, files kept); with no run in progress,
    or on a second signal, the main task is cancelled. ``signum`` is the last
    signal received: the exit code is ``128 + signum`` (130 for SIGINT, 143
    for SIGTERM), as a shell reports a process the signal ended.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.count = 0
        self.signum: int | None = None
        self.current: asyncio.Event | None = None
        self._task: asyncio.Task[Any] | None = None

    def install(self) -> None:
        self._task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signum in self.SIGNALS:
            loop.add_signal_handler(signum, self._on_signal, signum)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in self.SIGNALS:
            loop.remove_signal_handler(signum)

    def new_run(self) -> asyncio.Event:
        self.current = asyncio.Event()
        return self.current

    def _on_signal(self, signum: int) -> None:
        self.count += 1
        self.signum = signum
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
        code = EXIT_INTERRUPTED
    if code == EXIT_INTERRUPTED and interrupts.signum is not None:
        return 128 + interrupts.signum
    return code


# -- output views ----------------------------------------------------------------


class JsonView:
    """NDJSON: one ``event_to_dict`` object per line on stdout."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout

    def follow(self, choice: EngineChoice) -> None:
        """Say the engine choice on stderr as soon as it is known."""
        choice.say_when_known()

    def show(self, event: ProgressEvent, **extra: Any) -> None:
        self._out.write(json.dumps({**event_to_dict(event), **extra}, ensure_ascii=False) + "\n")
        self._out.flush()


class LiveView:
    """The answer's text on stdout as it streams; errors and a summary on stderr."""

    def __init__(self, out: TextIO | None = None) -> None:
        self._out = out or sys.stdout
        self._llm = True
        self._choice: EngineChoice | None = None
        self._mid_line = False

    def follow(self, choice: EngineChoice) -> None:
        """Say the engine choice where it does not cut the answer's text."""
        self._choice = choice

    def show(self, event: ProgressEvent, **extra: Any) -> None:
        if isinstance(event, RunStarted):
            self._llm = event.llm_provider != "text"
        elif isinstance(event, TextDelta):
            if not self._mid_line and self._choice is not None:
                self._choice.say()
            self._mid_line = True
            self._out.write(event.text)
            self._out.flush()
        elif isinstance(event, RunFailed):
            where = f" (segment {event.segment_index})" if event.segment_index is not None else ""
            _stderr.print(f"\nerror{where}: {event.error_type}: {event.message}", style="red",
                          markup=False, soft_wrap=True)
        elif isinstance(event, RunCancelled):
            _stderr.print(f"\ncancelled ({event.reason})", style="yellow", markup=False)
        elif isinstance(event, RunCompleted):
            self._out.write("\n")
            self._out.flush()
            self._mid_line = False
            if self._choice is not None:
                self._choice.say()
            cut = llm.explain_finish_reason(event.finish_reason)
            if cut is not None:  # a cut-off answer must never look complete
                _stderr.print(f"warning: {cut}", style="yellow", markup=False, soft_wrap=True)
            status_line(_summary_parts(event, ttft=self._llm))


def status_line(parts: Sequence[str], *, style: str = "dim", console: Console | None = None
                ) -> None:
    """Print ``parts`` on stderr (``console``) joined by `` · ``, as plain text when
    stderr is not a terminal. On a terminal, lines break only between parts, so a
    value is never split from its unit ("TTFA 2.43 s" stays whole)."""
    out = console or _stderr
    width = out.width if out.is_terminal else 0
    lines: list[str] = []
    line = ""
    for part in parts:
        joined = f"{line} · {part}" if line else part
        if width and line and len(joined) > width:
            lines.append(line)
            line = part
        else:
            line = joined
    lines.append(line)
    for text in lines:
        out.print(text, style=style, markup=False, highlight=False, soft_wrap=True)


def _summary_parts(done: RunCompleted, *, ttft: bool = True) -> list[str]:
    """The summary of a run, one part per figure; ``ttft=False`` for runs without an
    LLM (narration), where a time to first token means nothing."""

    def secs(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f} s"

    where = f"{len(done.audio_files)} audio file(s) in {done.output_dir}"
    if done.merged_path:
        where += f", merged {done.merged_path}"
    parts = [where]
    if ttft:
        parts.append(f"TTFT {secs(done.ttft_s)}")
    parts += [f"TTFA {secs(done.ttfa_s)}", f"audio {done.audio_s:.1f} s"]
    parts.append("RTF -" if done.rtf is None else f"RTF {done.rtf:.3f}")
    parts.append(f"total {secs(done.total_s)}")
    return parts


def _summary(done: RunCompleted, *, ttft: bool = True) -> str:
    """:func:`_summary_parts` on one line."""
    return " · ".join(_summary_parts(done, ttft=ttft))


# -- settings ----------------------------------------------------------------------

#: Settings keys set by flags (argparse ``dest`` = key); ``merge``/``play`` are switches.
_FLAG_KEYS = ("llm", "model", "base_url", "tts", "voice", "rate", "output_dir", "format",
              "workers", "subtitles", "first_token_timeout", "idle_timeout", "ray_address")


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    flags = {name: getattr(args, name, None) for name in _FLAG_KEYS}
    flags["merge"] = True if getattr(args, "merge", False) else None
    flags["play"] = False if getattr(args, "no_play", False) else None
    return {k: v for k, v in flags.items() if v is not None}


def _settings(flags: dict[str, Any]) -> Settings:
    """Resolve the settings and say which ones were dropped (and why)."""
    settings = resolve_settings(flags)
    for note in settings.notes:
        _stderr.print(f"speakstream: note: {note}", style="yellow", markup=False,
                      soft_wrap=True)
    return settings


def _pipeline(settings: Settings, *, llm_provider: str | None,
              tts_config: dict[str, Any] | None = None) -> StreamingPipeline:
    """The pipeline of ``settings``; a bad provider or engine name is a ConfigError."""
    streaming = settings.streaming_config()
    llm_config = settings.llm_config() if llm_provider else None
    try:
        return create_streaming_pipeline(
            llm_provider, settings.values["tts"], streaming, llm_config=llm_config,
            tts_config=tts_config,
        )
    except ValueError as exc:  # an unknown provider, engine or option, from the factories
        if isinstance(exc, SpeakStreamError):
            raise
        raise ConfigError(str(exc)) from exc


class EngineChoice:
    """For ``tts auto``: which engine will speak and why, said once it is known.

    The choice needs the engines warmed up (loading piper takes a second or
    two), which the run does anyway while the LLM works on its first token;
    waiting for it before starting would delay the first audio. So it is
    found concurrently and said at the first point where a status line does
    not cut the streamed answer (:class:`LiveView`: before the answer's first
    text, or with the summary; ``--json``: as soon as it is known, on stderr).
    """

    def __init__(self, engine: tts.TTSEngine, voice: str | None, label: str) -> None:
        self._label = label
        self._task: asyncio.Task[str] | None = None
        if isinstance(engine, tts.FallbackEngine):
            self._task = asyncio.get_running_loop().create_task(
                engine.choose(voice), name="speakstream-engine-choice")

    async def result(self) -> str | None:
        """Wait for the choice and take it (it is then not said again)."""
        task, self._task = self._task, None
        if task is None:
            return None
        await asyncio.wait({task})
        return _choice_of(task)

    def say(self) -> None:
        """Say the choice if it is known and was not said yet."""
        task = self._task
        if task is None or not task.done():
            return
        self._task = None
        text = _choice_of(task)
        if text is not None:
            _stderr.print(f"speakstream: {self._label} → {text}", style="dim",
                          markup=False, highlight=False, soft_wrap=True)

    def say_when_known(self) -> None:
        if self._task is not None:
            self._task.add_done_callback(lambda _: self.say())

    def cancel(self) -> None:
        """Stop looking (the pipeline is closing)."""
        if self._task is not None:
            self._task.cancel()

    def __enter__(self) -> EngineChoice:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


def _choice_of(task: asyncio.Task[str]) -> str | None:
    if task.cancelled() or task.exception() is not None:
        return None  # a failing engine is reported by the run itself, per segment
    return task.result()


async def _announce(pipe: StreamingPipeline, settings: Settings, *,
                    wait: bool = True) -> EngineChoice:
    """The line saying which model and engine are used, and why (flag / file / env /
    default); for ``tts auto`` also the engine picked and why, in the same line
    (``wait``) or when known (see :class:`EngineChoice`)."""
    parts = []
    if pipe.llm_client is not None:
        client = pipe.llm_client
        parts.append(
            f"model {client.provider}:{Path(client.model).name or client.model} "
            f"({settings.sources['llm']})"
        )
    label = f"tts {settings.values['tts']} ({settings.sources['tts']})"
    choice = EngineChoice(pipe.engine, pipe.config.voice, label)
    if wait:
        text = await choice.result()
        if text is not None:
            label += f" → {text}"
    parts.append(label)
    _stderr.print("speakstream: " + ", ".join(parts), style="dim", markup=False,
                  highlight=False, soft_wrap=True)
    return choice


async def _check_playback(pipe: StreamingPipeline) -> None:
    note = await pipe.check_playback()
    if note:
        _stderr.print(f"speakstream: {note}; writing files only", style="yellow",
                      markup=False, soft_wrap=True)


# -- commands ----------------------------------------------------------------------


def _cmd_ask(args: argparse.Namespace) -> int:
    settings = _settings(_flags(args))
    view = JsonView() if args.json else LiveView()
    if args.daemon:  # the same command, its work done by a running daemon
        return _ask_daemon(args, settings, view)

    async def main(interrupts: Interrupts) -> int:
        async with _pipeline(settings, llm_provider=settings.values["llm"]) as pipe:
            with await _announce(pipe, settings, wait=False) as choice:
                view.follow(choice)
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
        return _exit_code(done)

    return _run(main)


def _ask_daemon(args: argparse.Namespace, settings: Settings, view: JsonView | LiveView) -> int:
    from ._client import ask_daemon

    def note(text: str) -> None:
        _stderr.print(f"speakstream: {text}", style="dim", markup=False, soft_wrap=True)

    async def main(interrupts: Interrupts) -> int:
        done = await ask_daemon(
            args.daemon, args.question, settings, view=view, stop_event=interrupts.new_run(),
            system=args.system, max_tokens=args.max_tokens, note=note,
        )
        if interrupts.count:
            return EXIT_INTERRUPTED
        return _exit_code(done)

    return _run(main)


def _cmd_chat(args: argparse.Namespace) -> int:
    settings = _settings(_flags(args))
    view = JsonView() if args.json else LiveView()

    async def main(interrupts: Interrupts) -> int:
        reader = await _stdin_reader()
        async with _pipeline(settings, llm_provider=settings.values["llm"]) as pipe:
            with await _announce(pipe, settings, wait=False) as choice:
                view.follow(choice)
                await _check_playback(pipe)
                assert pipe.llm_client is not None
                conversation = llm.Conversation(pipe.llm_client, system=args.system)
                _stderr.print("Type a message; /quit to leave, Ctrl-C stops an answer.",
                              style="dim")
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
                        message, conversation=conversation, max_tokens=args.max_tokens,
                        stop_event=interrupts.new_run(),
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


def _check_inputs(files: Sequence[str]) -> tuple[str | None, dict[str, int]]:
    """Check every document in ``files`` before anything is created: UTF-8 (read in
    1 MiB pieces, not held) and not blank.

    Returns:
        stdin's text when ``-`` is among them (stdin is read once), and each
        document's length in characters (the progress total).

    Raises:
        ConfigError: a document is not UTF-8 (the message names the byte offset),
            holds nothing to say, or ``-`` is given twice.
        OSError: a file cannot be read.
    """
    stdin_text, chars = None, {}
    for name in files:
        if is_job_file(name):
            continue
        if name == "-":
            if stdin_text is not None:
                raise ConfigError("'-' (stdin) can be given once")
            raw = sys.stdin.buffer.read()
            try:
                stdin_text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _not_utf8("stdin", raw[exc.start:exc.end], exc, 0) from exc
            count, blank = len(stdin_text), not stdin_text.strip()
        else:
            count, blank = _check_file(name)
        if blank:
            where = "stdin" if name == "-" else name
            raise ConfigError(f"{where}: nothing to narrate (empty input)")
        chars[name] = count
    return stdin_text, chars


def _check_file(name: str) -> tuple[int, bool]:
    """``(characters, blank)`` of UTF-8 file ``name``, read in 1 MiB pieces."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = count = 0  # bytes of the file before this piece; characters so far
    blank = True
    with open(name, "rb") as stream:
        while True:
            piece = stream.read(1 << 20)
            pending = len(decoder.getstate()[0])  # bytes of a character cut in two
            try:
                text = decoder.decode(piece, final=not piece)
            except UnicodeDecodeError as exc:
                raise _not_utf8(name, exc.object[exc.start:exc.end], exc,
                                offset - pending) from exc
            count += len(text)
            blank = blank and not text.strip()
            if not piece:
                return count, blank
            offset += len(piece)


def _not_utf8(where: str, bad: bytes, exc: UnicodeDecodeError, base: int) -> ConfigError:
    return ConfigError(f"{where} is not UTF-8 text: {exc.reason} (byte 0x{bad.hex(' ')}) at byte "
                       f"offset {base + exc.start}; nothing was narrated")


_BAR_WIDTH = 12


def _shorten(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in "…" when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


class _FiguresColumn(ProgressColumn):
    """The figures of a :class:`NarrationView` and (when it fits) the time elapsed,
    as one unbreakable text."""

    def __init__(self) -> None:
        super().__init__(table_column=Column(no_wrap=True))
        self.clock = True

    def render(self, task: Task) -> Text:
        text = task.fields["figures"]
        if self.clock:
            elapsed = int(task.elapsed or 0)
            text += f" · {elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        return Text(text, no_wrap=True)


class NarrationView:
    """What ``narrate`` shows while it works, read from one :class:`NarrationProgress`.

    On a terminal: a bar (chapter, phase, percent, characters done, ETA,
    elapsed; only the chapter title is shortened on a narrow terminal); when
    stderr is not a terminal: a plain line at most every
    ``interval`` seconds while progress is made, and at every phase change
    (``merging N files…``). ``--json`` shows nothing here (events go to stdout).
    """

    def __init__(self, progress: NarrationProgress, *, interval: float, enabled: bool) -> None:
        self._progress = progress
        self._interval = interval
        self._live = enabled and _stderr.is_terminal
        self._plain = enabled and not _stderr.is_terminal
        self._printed_at: float | None = None
        self._last_line: list[str] = []
        self._barcol = BarColumn(bar_width=_BAR_WIDTH)
        self._figures = _FiguresColumn()
        self._bar = Progress(
            TextColumn("{task.description}", table_column=Column(no_wrap=True)),
            self._barcol,
            self._figures,
            console=_stderr,
            disable=not self._live,
        )
        self._task = self._bar.add_task("", total=None, figures="")

    def __enter__(self) -> NarrationView:
        self._bar.__enter__()
        self._show(changed=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.__exit__(None, None, None)

    def observe(self, chapter: Chapter, event: ProgressEvent, *, key: Hashable = None) -> None:
        changed = self._progress.observe(chapter, event, key=key) is not None
        if changed or isinstance(event, (SegmentQueued, AudioReady, RunFailed, RunCompleted)):
            self._show(changed=changed)

    def refresh(self) -> None:
        """Show the figures now (e.g. after :meth:`NarrationProgress.finish`)."""
        self._show(changed=True)

    def print(self, parts: Sequence[str], *, style: str = "dim") -> None:
        """A status line above the bar (between parts only, never inside one)."""
        status_line(parts, style=style, console=self._bar.console)

    def _show(self, *, changed: bool) -> None:
        snap = self._progress.snapshot()
        parts = snap.parts()
        if self._live:
            figures = " · ".join([snap.phase_text, *parts[1:]])
            # On a narrow terminal the title gives way first, then the bar, then the
            # elapsed time: the figures stay whole.
            room = self._bar.console.width - len(figures) - 2  # column gaps
            self._figures.clock = room >= len(" · 0:00:00") + 4
            room -= len(" · 0:00:00") if self._figures.clock else 0
            self._barcol.bar_width = _BAR_WIDTH if room >= _BAR_WIDTH + 1 + 8 else 0
            room -= self._barcol.bar_width + 1 if self._barcol.bar_width else 0
            self._bar.update(self._task, description=_shorten(snap.chapter, max(room, 1)),
                             total=snap.chars_total, completed=snap.chars_done, figures=figures)
        elif self._plain:
            now = time.monotonic()
            due = self._printed_at is None or now - self._printed_at >= self._interval
            if (changed or due) and parts != self._last_line:
                self._printed_at, self._last_line = now, parts
                status_line(parts)


def _json_job_events(out: TextIO) -> Callable[[JobItem, Chapter | None, ProgressEvent], None]:
    """``narrate --json``: each event of a job's runs as an NDJSON line on
    ``out``, with its ``item``, ``chapter`` (number; 0 for a prompt) and
    ``chapter_title``."""
    view = JsonView(out)

    def show(item: JobItem, chapter: Chapter | None, event: ProgressEvent) -> None:
        chapter = chapter or Chapter(number=0, title=item.id, text="")
        view.show(event, item=item.id, chapter=chapter.number, chapter_title=chapter.title)

    return show


def _cmd_narrate(args: argparse.Namespace) -> int:
    flags = _flags(args)
    flags.setdefault("play", False)  # batch job: files only unless --play
    if args.play:
        flags["play"] = True
    settings = _settings(flags)
    # Checked before anything is created: bad input leaves no directory behind.
    stdin_text, chars = _check_inputs(args.files)
    if settings.values["ray_address"] is not None:
        from ._ray import disconnect, narrate_on_ray  # only with the `ray` extra

        on_event = _json_job_events(sys.stdout) if args.json else None
        # Ray's driver prints its own notices (a retried task, a dead worker) on
        # sys.stdout from a thread of its own; they go to stderr, so that
        # stdout holds only our NDJSON. Leaving the cluster inside stops them.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                return narrate_on_ray(args.files, settings, resume=args.resume,
                                      console=_stderr, on_event=on_event)
            finally:
                disconnect()

    def items() -> Iterator[JobItem]:
        for item in iter_job_items(args.files):
            stdin = item.path == "-" and stdin_text is not None
            yield JobItem(id=item.id, text=stdin_text) if stdin else item

    def size(item: JobItem) -> int:
        """Characters for documents named on the command line (as progress counts)."""
        return chars.get(item.path or "", 0) or item_size(item)

    total = sum(size(item) for item in items())
    show_json = _json_job_events(sys.stdout) if args.json else None

    async def main(interrupts: Interrupts) -> int:
        failed = False
        failed_runs: set[str] = set()  # items whose run errors were said
        # A batch job: the engine's threads sized to each worker's share of the cores.
        sized = engine_options(settings.values["tts"], cpus=usable_cpus(),
                               workers=settings.values["workers"])
        async with _pipeline(settings, llm_provider=None, tts_config=sized) as pipe, JobPipelines(
            pipe, settings
        ) as pipelines:
            await _announce(pipe, settings)
            await _check_playback(pipe)
            progress = NarrationProgress(total_chars=total, merge=bool(settings.values["merge"]))
            view = NarrationView(progress, interval=settings.values["progress_interval"],
                                 enabled=not args.json)
            with view:
                events = anarrate_job(
                    items(), pipeline_for=pipelines.get,
                    output_dir=settings.values["output_dir"], resume=args.resume,
                    stop_event=interrupts.new_run(), lock=lock,
                    ahead=0 if settings.values["play"] else 1,  # played: one at a time
                    fingerprint=job_fingerprint(pipe.config, tts=settings.values["tts"],
                                                llm=settings.values),
                )
                async with contextlib.aclosing(events):
                    async for job_event in events:
                        if isinstance(job_event, ItemDone):
                            result = job_event.result
                            if result.status == "failed":
                                failed = True
                                # The reason, in one line (unless a run's error said it).
                                said = job_event.item.id in failed_runs
                                if not args.json and result.errors and not said:
                                    view.print([f"{job_event.item.id or 'item'}: failed: "
                                                f"{result.errors[0]}"], style="red")
                            if job_event.skipped:
                                progress.skip(size(job_event.item))
                            continue
                        item, event = job_event.item, job_event.event
                        chapter = job_event.chapter or Chapter(number=0, title=item.id, text="")
                        if show_json is not None:
                            show_json(item, job_event.chapter, event)
                        view.observe(chapter, event, key=(item.id, chapter.number))
                        if isinstance(event, RunFailed):
                            failed = True
                            failed_runs.add(item.id)
                            if not args.json:  # names the item (its own line is not said)
                                named = not item.id or chapter.title == item.id
                                where = chapter.title if named else f"{item.id} · {chapter.title}"
                                line = f"{where}: {event.error_type}: {event.message}"
                                view.print([line], style="red")
                        elif isinstance(event, RunCompleted) and not args.json:
                            parts = _summary_parts(event, ttft=False)
                            view.print([f"{chapter.title}: {parts[0]}", *parts[1:]])
                if not interrupts.count:
                    progress.finish()
                    view.refresh()
        if interrupts.count:
            return EXIT_INTERRUPTED
        return EXIT_FAILED if failed else EXIT_OK

    # Taken before any work (one writer), released however the job ends.
    with output.lock_directory(settings.values["output_dir"]) as lock:
        return _run(main)


def _cmd_voices(args: argparse.Namespace) -> int:
    settings = _settings(_flags(args))

    async def main(interrupts: Interrupts) -> int:
        try:
            engine = tts.create_engine(settings.values["tts"])
        except ValueError as exc:
            raise ConfigError(str(exc), key="tts") from exc
        async with engine:
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
    settings = _settings({})
    settings.streaming_config()  # validate: a bad value exits 2 with its name
    settings.llm_config()
    values = settings.public_values()
    if args.json:
        print(json.dumps({"values": values, "sources": settings.sources,
                          "files": [str(p) for p in settings.files],
                          "notes": list(settings.notes)}))
        return EXIT_OK
    files = ", ".join(map(str, settings.files)) or "none found"
    print(f"# config files: {files}")
    width = max(map(len, values))
    for key, value in values.items():
        shown = list(value) if isinstance(value, tuple) else value
        print(f"{key:<{width}} = {json.dumps(shown)}  # {settings.sources[key]}")
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
    add_llm_arguments(p)
    p.add_argument("--system", help="system prompt")
    p.add_argument("--max-tokens", dest="max_tokens", type=positive_int,
                   help="cap each answer's tokens")
    p.add_argument("--no-play", action="store_true", help="write files only, do not play")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="speakstream",
        description="Stream an LLM's answer to speech: text as it streams, audio while the "
        "model still talks, every segment saved with a manifest.",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    ask = sub.add_parser("ask", help="ask one question and speak the answer")
    ask.add_argument("question", type=_question)
    _add_llm_options(ask)
    _add_output_options(ask)
    ask.add_argument("--daemon", metavar="URL",
                     help="let a running daemon (speakstream serve) at URL do the work; audio "
                     "is still played and saved here; token from the 'token' setting "
                     "($SPEAKSTREAM_TOKEN)")
    ask.set_defaults(func=_cmd_ask)

    chat = sub.add_parser("chat", help="interactive conversation, each reply spoken")
    _add_llm_options(chat)
    _add_output_options(chat)
    chat.set_defaults(func=_cmd_chat)

    narrate = sub.add_parser("narrate", help="narrate text/markdown files or a JSONL job, "
                             "chapter by chapter")
    narrate.add_argument("files", nargs="+", metavar="FILE",
                         help="text or markdown files, - for stdin, or .jsonl job files")
    narrate.add_argument("--resume", action="store_true",
                         help="continue an interrupted job in the same output directory")
    narrate.add_argument("--play", action="store_true", help="also play while narrating")
    add_llm_arguments(narrate)  # what a job's prompt items fall back to
    narrate.add_argument("--ray", dest="ray_address", nargs="?", const="auto", metavar="ADDRESS",
                         help="run the job's items and chapters as Ray tasks (ADDRESS of a "
                         "running cluster, default: auto); needs the `ray` extra")
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


def _question(text: str) -> str:
    """argparse type of ``ask``'s question: non-blank text (exit 2 with a usage line)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the question is empty")
    return text


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``speakstream`` console script; returns the exit code.

    Every error of ours (:data:`SpeakStreamError`) and every OS error (a file
    that cannot be read or written) ends as one line on stderr, never a
    traceback; anything else is a bug and keeps its traceback.
    """
    args = build_parser().parse_args(argv)
    # The CLI reports everything itself (events, the no-device note): keep the
    # library's log records off stderr unless the user configures logging.
    logging.getLogger("speakstream").addHandler(logging.NullHandler())
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # Whoever read stdout left (`speakstream ask ... | head`): nothing more to say, and
        # Python must not fail again flushing stdout at exit.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    except BaseExceptionGroup as group:
        leaf = _only_leaf(group)
        if not isinstance(leaf, _REPORTED):
            raise
        return _report(leaf, args.command)
    except _REPORTED as exc:
        return _report(exc, args.command)


#: What ends as one line instead of a traceback: our errors and OS errors.
_REPORTED: tuple[type[BaseException], ...] = (*SpeakStreamError, OSError, UnicodeDecodeError)


#: Errors that mean "fix the command or the configuration" (exit 2), not "the run failed".
_USAGE_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError, llm.LLMAuthError, llm.ModelNotFoundError, llm.LLMDependencyError,
    output.OutputExistsError, output.OutputLockedError, FileNotFoundError, IsADirectoryError,
    NotADirectoryError,
)


def _exit_code(done: RunCompleted | None) -> int:
    """A finished run's exit code: 0 without an error; 2 when the error is one that
    means "fix the command or the configuration" (a model the server does not
    have, a refused API key: the code they get when raised); else 1."""
    if done is not None and done.error is None:
        return EXIT_OK
    kind = (done.error or "").split(":", 1)[0] if done is not None else ""
    return EXIT_USAGE if kind in {cls.__name__ for cls in _USAGE_ERRORS} else EXIT_FAILED


def _report(exc: BaseException, command: str) -> int:
    """Print ``exc`` as one line on stderr; return its exit code (2 usage/config, else 1)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        message = f"{exc.filename}: {exc.strerror}"
    elif isinstance(exc, output.OutputExistsError):  # the library's advice is for callers
        where = exc.path.parent if exc.path.is_file() else exc.path
        hint = "--resume to continue it, or " if command == "narrate" else ""
        message = f"{where} already holds a run: use {hint}-o to choose another directory"
    else:
        message = " ".join(str(exc).split()) or type(exc).__name__
    _stderr.print(f"speakstream: {message}", style="red", markup=False, highlight=False,
                  soft_wrap=True)
    status = getattr(exc, "status_code", None)  # DaemonError: the daemon refused (4xx)
    if isinstance(exc, _USAGE_ERRORS) or (
        isinstance(exc, PipelineError) and isinstance(status, int) and 400 <= status < 500
    ):
        return EXIT_USAGE
    return EXIT_FAILED


def _only_leaf(group: BaseExceptionGroup) -> BaseException:
    """The single leaf of nested one-exception groups (else the group itself)."""
    exc: BaseException = group
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


if __name__ == "__main__":  # pragma: no cover
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
