"""Narration jobs on a Ray cluster: chapters and prompts as tasks of warm actors.

Needs the ``ray`` extra (``pip install 'speakstream[ray]'``); nothing else of
speakstream imports this module unless ``ray_address`` is set.

Shape of a run (:func:`run_job_on_ray`):

* the driver (this process) reads the job lazily, locks the job's output
  directory, and holds only the chapters in flight;
* each node runs ``actors_per_node`` :class:`NarrationWorker` actors (one CPU
  each). An actor builds its pipeline once, so the TTS engine stays warm
  (piper's model is loaded once per actor, not per segment);
* a chapter (or a prompt) is one actor task, written straight to the shared
  output directory (every node must see the same path: NFS, a bind mount...;
  the ``job_dir`` string is the seam where an object-store URL could come);
* a killed actor is restarted and its task retried (``max_restarts``,
  ``max_task_retries``): the retry resumes the chapter, keeping its finished
  segments (the atomic writes and the resumable manifest of
  :class:`output.SegmentWriter`), so nothing is lost or duplicated;
* the driver shows one progress bar and writes ``results.jsonl`` in item order.

What stays serial in the driver: reading the job and cutting chapters
(cheap), the bookkeeping per finished chapter, and the results file; the
synthesis and all audio writing happen on the nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import threading
from collections import deque
from collections.abc import AsyncGenerator, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from output import (
    MANIFEST_NAME,
    ManifestWriter,
    OutputExistsError,
    lock_directory,
    rewrite_manifest,
)

from ._config import StreamingConfig
from ._errors import ConfigError, PipelineError, RayJobError
from ._events import ProgressEvent
from ._job import (
    RESULTS_NAME,
    ItemResult,
    ItemTally,
    compact_results,
    is_changed,
    is_unchanged,
    item_digest,
    job_fingerprint,
    read_results,
    set_aside,
    set_aside_item,
)
from ._job_pipelines import engine_options, job_size, prompt_settings, usable_cpus
from ._jobfile import JobItem, iter_job_items
from ._narrate import Chapter, finished_chapter, iter_chapters
from ._pipeline import StreamingPipeline, create_streaming_pipeline
from ._settings import Settings
from ._spill import SpilledStrings


class NarrationWorker:
    """One warm pipeline on one node (a Ray actor, see :func:`start_workers`)."""

    def __init__(self, tts: str, streaming: StreamingConfig) -> None:
        self._tts = tts
        self._streaming = streaming
        self._pipe: StreamingPipeline | None = None
        self._llm_pipes: dict[tuple[Any, ...], StreamingPipeline] = {}

    def pid(self) -> int:
        """The actor's process id."""
        return os.getpid()

    def _text_pipe(self) -> StreamingPipeline:
        if self._pipe is None:
            # The engine's threads sized to this actor's CPUs (its num_cpus), not the node's.
            cpus = ray.get_runtime_context().get_assigned_resources().get("CPU")
            sized = engine_options(self._tts, cpus=max(1, int(cpus or usable_cpus())),
                                   workers=self._streaming.workers)
            self._pipe = create_streaming_pipeline(None, self._tts, tts_config=sized,
                                                   streaming_config=self._streaming)
        return self._pipe

    async def chapter(self, job_dir: str, item: JobItem, chapter: Chapter) -> dict[str, Any]:
        """Narrate one chapter into ``<job_dir>/<item.id>/<chapter.run_id>/``
        (resuming whatever an earlier attempt finished); its result record."""
        return await _record(self.chapter_events(job_dir, item, chapter))

    async def chapter_events(self, job_dir: str, item: JobItem,
                             chapter: Chapter) -> AsyncGenerator[tuple[str, Any], None]:
        """:meth:`chapter` as a stream (a Ray generator task): ``("event", ProgressEvent)``
        for each run event, then ``("result", record)``."""
        base = Path(job_dir) / item.id if item.id else Path(job_dir)
        tally = ItemTally(item, Path(job_dir))
        done = await asyncio.to_thread(finished_chapter, base / chapter.run_id, chapter)
        if done is not None:
            tally.see(done)
            yield "event", done
        else:
            async with contextlib.aclosing(self._text_pipe().astream_text_to_audio(
                chapter.text, run_id=chapter.run_id, output_dir=base, resume=True,
            )) as events:
                async for event in events:
                    tally.see(event)
                    yield "event", event
        yield "result", tally.result().to_record()

    async def prompt(self, job_dir: str, item: JobItem, llm_provider: str,
                     llm_config: dict[str, Any]) -> dict[str, Any]:
        """Ask ``item.prompt`` and narrate the answer into ``<job_dir>/<item.id>/``
        (an earlier, unfinished attempt is set aside); its result record."""
        return await _record(self.prompt_events(job_dir, item, llm_provider, llm_config))

    async def prompt_events(self, job_dir: str, item: JobItem, llm_provider: str,
                            llm_config: dict[str, Any]) -> AsyncGenerator[tuple[str, Any], None]:
        """:meth:`prompt` as a stream, like :meth:`chapter_events`."""
        run_dir = Path(job_dir) / item.id
        if run_dir.exists():
            await asyncio.to_thread(set_aside, run_dir)
        key = (llm_provider, *sorted(llm_config.items()))
        tally = ItemTally(item, Path(job_dir))
        pipe = self._llm_pipes.get(key)
        if pipe is None:
            try:
                pipe = create_streaming_pipeline(
                    llm_provider, streaming_config=self._streaming, llm_config=llm_config,
                    tts_engine=self._text_pipe().engine,
                )
            except ValueError as exc:  # an unknown provider or bad option: this item fails
                tally.fail(exc)
                yield "result", tally.result().to_record()
                return
            self._llm_pipes[key] = pipe
        async with contextlib.aclosing(pipe.astream_chat_to_audio(
            item.prompt or "", system=item.system, run_id=item.id, output_dir=job_dir,
        )) as events:
            async for event in events:
                tally.see(event)
                yield "event", event
        yield "result", tally.result().to_record()


async def _record(stream: AsyncGenerator[tuple[str, Any], None]) -> dict[str, Any]:
    """The result record at the end of a worker's stream (its events dropped)."""
    async with contextlib.aclosing(stream):
        async for kind, value in stream:
            if kind == "result":
                return dict(value)
    raise AssertionError("a worker stream ends with its result")


@dataclass
class _ItemState:
    item: JobItem
    parts: dict[int, dict[str, Any]] = field(default_factory=dict)
    submitted: int = 0
    all_submitted: bool = False
    digest: str = ""
    #: The parts' files, in order, spilled as soon as the parts before have come.
    files: SpilledStrings = field(default_factory=SpilledStrings)
    spilled: int = 0  # parts spilled so far (a prompt is part 0, chapters 1, 2...)

    def add(self, number: int, record: dict[str, Any]) -> None:
        self.parts[number] = record
        first = 0 if self.item.prompt is not None else 1
        while first + self.spilled in self.parts:
            self.files.extend(self.parts[first + self.spilled].pop("audio_files", []))
            self.spilled += 1

    def complete(self) -> bool:
        return self.all_submitted and len(self.parts) == self.submitted

    def result(self) -> ItemResult:
        for n in sorted(self.parts):  # parts put in directly (a failed read) after the spilled
            self.files.extend(self.parts[n].pop("audio_files", []))
        parts = [ItemResult(**self.parts[n]) for n in sorted(self.parts)]
        if not parts:
            return ItemResult(item=self.item.id, kind=self.item.kind, status="completed",
                              digest=self.digest)
        statuses = {p.status for p in parts}
        status = next((s for s in ("failed", "cancelled") if s in statuses), "completed")
        return replace(
            parts[0], status=status, digest=self.digest,
            audio_files=self.files,
            duration_s=round(sum(p.duration_s for p in parts), 6),
            chapters=sum(p.chapters for p in parts),
            errors=[e for p in parts for e in p.errors],
        )


def start_workers(tts: str, streaming: StreamingConfig, *, actors_per_node: int = 1) -> list[Any]:
    """Start ``actors_per_node`` warm :class:`NarrationWorker` actors on each alive node
    with a CPU (soft node affinity: a restarted actor may land elsewhere)."""
    nodes = [n for n in ray.nodes() if n.get("Alive") and n["Resources"].get("CPU", 0) >= 1]
    actor: Any = ray.remote(NarrationWorker)
    return [
        actor.options(
            num_cpus=1,
            max_concurrency=1,  # one chapter at a time: its segments already run in parallel
            max_restarts=-1,  # a killed actor comes back (with a fresh, warm pipeline)...
            max_task_retries=-1,  # ...and its task is run again, resuming the chapter
            scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=True),
        ).remote(tts, streaming)
        for n in nodes
        for _ in range(actors_per_node)
    ]


#: Units (chapters, prompts) the driver reads ahead per actor to choose the
#: longest next (:class:`_Lookahead`): the chapter texts it holds stay bounded.
LOOKAHEAD = 2

_Unit = tuple["_ItemState", int, Chapter | None]


class _Lookahead:
    """Longest first over a window of the next ``size`` units.

    Handing the longest unit to the next free actor is the LPT rule (Graham,
    "Bounds on multiprocessing timing anomalies", SIAM J. Appl. Math. 17(2),
    1969; its 4/3 bound holds when all units are known, here within the
    window only); in job order instead, a job
    whose last chapter is its longest keeps one actor busy alone at the end
    (chapters of 1,425, 1,575 and 3,000 characters on 2 actors: 4,500
    characters' time instead of 3,000). A prompt counts as longest: its
    length is unknown and it waits for an LLM too. The window keeps the
    driver's memory bounded; results are still written in job order.
    """

    def __init__(self, units: Iterator[_Unit], *, size: int) -> None:
        self._units = units
        self._size = max(1, size)
        self._window: list[_Unit] = []

    def take_longest(self) -> _Unit | None:
        """The longest unit of the window, after filling it; None when all are taken."""
        while len(self._window) < self._size:
            unit = next(self._units, None)
            if unit is None:
                break
            self._window.append(unit)
        if not self._window:
            return None
        longest = max(range(len(self._window)), key=lambda i: _cost(self._window[i]))
        return self._window.pop(longest)


def _cost(unit: _Unit) -> float:
    chapter = unit[2]
    return float("inf") if chapter is None else len(chapter.text)


def _units(items: Iterable[tuple[JobItem, str]], states: dict[str, _ItemState],
           order: list[str]) -> Iterator[_Unit]:
    """(item state, part number, chapter or None for a prompt), lazily."""
    for item, digest in items:
        state = _ItemState(item, digest=digest)
        states[item.id] = state
        order.append(item.id)
        if item.prompt is not None:
            state.submitted = 1
            state.all_submitted = True
            yield state, 0, None
            continue
        try:
            if item.text is not None:
                chapters: Iterable[Chapter] = iter_chapters(io.StringIO(item.text))
                opened: Any = contextlib.nullcontext()
            else:
                assert item.path is not None and item.path != "-", "stdin cannot go to Ray"
                opened = open(item.path, encoding="utf-8")
                chapters = iter_chapters(opened)
            with opened:
                for chapter in chapters:
                    state.submitted += 1
                    yield state, state.submitted, chapter
        except (OSError, UnicodeDecodeError) as exc:  # fails this item only
            tally = ItemTally(item, Path())
            tally.fail(exc)
            state.submitted += 1
            state.parts[state.submitted] = tally.result().to_record()
        state.all_submitted = True


def run_job_on_ray(
    items: Iterable[JobItem],
    *,
    settings: Settings,
    output_dir: str | os.PathLike[str],
    resume: bool = False,
    actors_per_node: int = 1,
    workers: Sequence[Any] | None = None,
    on_part: Callable[[JobItem, Chapter | None, dict[str, Any]], None] | None = None,
    on_event: Callable[[JobItem, Chapter | None, ProgressEvent], None] | None = None,
    stop: threading.Event | None = None,
) -> list[ItemResult]:
    """Run a narration job on the connected Ray cluster (call ``ray.init`` first).

    Same output as :func:`pipeline._job.anarrate_job` (directories, manifests,
    ``results.jsonl``), made by warm actors (see the module docstring).
    ``on_part`` is called in the driver after each chapter or prompt;
    ``on_event`` (if given) with each run event as the actors make it
    (chapters in flight interleave; the tasks become Ray generator tasks, whose
    events a retried task sends again). Once ``stop`` is set no further
    chapter or prompt starts; those running end (a later resume continues the job).
    Returns the results of the items run now (skipped ones excluded).

    Raises:
        OutputLockedError: another writer holds ``output_dir``.
        OutputExistsError: an earlier job is there and ``resume`` is false.
        RayJobError: a task failed for a reason other than narration.
        ConfigError: a bad job line or item setting.
    """
    job_dir = Path(output_dir).resolve()
    with lock_directory(job_dir):
        results_path = job_dir / RESULTS_NAME
        done: dict[str, dict[str, Any]] = {}
        if resume:
            done = {k: r for k, r in read_results(job_dir).items() if r["status"] == "completed"}
            rewrite_manifest(results_path, list(done.values()))
        elif results_path.exists():
            raise OutputExistsError(f"{job_dir} already holds a job", path=results_path)
        pool = list(workers) if workers is not None else start_workers(
            settings.values["tts"], settings.streaming_config(), actors_per_node=actors_per_node)
        if not pool:
            raise RayJobError("the Ray cluster has no node with a free CPU", item="")
        free = deque(pool)
        pending: dict[Any, tuple[Any, _ItemState, int, Chapter | None]] = {}
        states: dict[str, _ItemState] = {}
        order: list[str] = []
        written: list[ItemResult] = []
        fingerprint = job_fingerprint(settings.streaming_config(), tts=settings.values["tts"],
                                      llm=settings.values)
        redone = False

        def todo() -> Iterator[tuple[JobItem, str]]:
            nonlocal redone
            for item in items:
                digest = _digest(item, fingerprint)
                if not is_unchanged(done.get(item.id), digest):
                    redone = redone or item.id in done
                    if is_changed(done.get(item.id), digest):  # never resumed from old audio
                        set_aside_item(job_dir, item)
                    yield item, digest

        units = _Lookahead(_units(todo(), states, order), size=LOOKAHEAD * len(pool))
        results = ManifestWriter(results_path)
        try:
            while True:
                while free and not (stop is not None and stop.is_set()):
                    unit = units.take_longest()
                    if unit is None:
                        break
                    state, number, chapter = unit
                    try:
                        task = _submit(free[0], job_dir, state.item, chapter, settings, resume,
                                       stream=on_event is not None)
                    except ConfigError as exc:  # a bad setting of one prompt: it fails alone
                        tally = ItemTally(state.item, job_dir)
                        tally.fail(exc)
                        state.parts[number] = tally.result().to_record()
                        continue
                    pending[task] = (free.popleft(), state, number, chapter)
                if not pending:
                    break
                ready, _ = ray.wait(list(pending), num_returns=1)
                actor, state, number, chapter = pending[ready[0]]
                try:
                    kind, value = _take(ready[0])
                except (ray.exceptions.RayError, StopIteration) as exc:
                    raise RayJobError(f"{state.item.id or 'the document'}: {exc}",
                                      item=state.item.id) from exc
                if kind == "event":
                    assert on_event is not None
                    on_event(state.item, chapter, value)
                    continue
                record = value
                del pending[ready[0]]
                _wait_ended(ready[0])
                free.append(actor)
                if on_part is not None:
                    on_part(state.item, chapter, record)
                state.add(number, record)
                written += _flush(order, states, results)
            written += _flush(order, states, results)  # the last item ends with its chapters
        finally:
            results.close()
            if redone:
                compact_results(job_dir)
            if workers is None:
                for actor in pool:
                    ray.kill(actor)
        return written


def _digest(item: JobItem, fingerprint: dict[str, Any]) -> str:
    try:
        return item_digest(item, fingerprint)
    except OSError:
        return ""  # the item's task meets the same error


def _flush(order: list[str], states: dict[str, _ItemState],
           results: ManifestWriter) -> list[ItemResult]:
    """Append the results lines of the finished items at the head of ``order``."""
    flushed = []
    while order and states[order[0]].complete():
        result = states.pop(order.pop(0)).result()
        results.append_pieces(result.iter_json())
        flushed.append(result)
    return flushed


def _take(task: Any) -> tuple[str, Any]:
    """The next ``("event", e)`` or ``("result", record)`` of a ready task (a
    generator task gives one item at a time; a plain one its record)."""
    if isinstance(task, ray.ObjectRefGenerator):
        kind, value = ray.get(next(task))
        return str(kind), value
    return "result", ray.get(task)


def _wait_ended(task: Any) -> None:
    """Wait until a generator task that gave its record has ended on its actor,
    so that the actor is handed on (or killed) idle, never mid-task: a kill
    then would make Ray retry a finished task and say so."""
    if isinstance(task, ray.ObjectRefGenerator):
        with contextlib.suppress(ray.exceptions.RayError):  # the record is already ours
            ray.get(task.completed())


def _submit(actor: Any, job_dir: Path, item: JobItem, chapter: Chapter | None,
            settings: Settings, resume: bool, *, stream: bool) -> Any:
    """The task of one chapter or prompt: a Ray generator task with ``stream``
    (its events, then its record), else one whose value is the record."""
    if chapter is None:
        item_settings = prompt_settings(settings, item)
        method = actor.prompt_events.options(num_returns="streaming") if stream else actor.prompt
        return method.remote(str(job_dir), item, item_settings.values["llm"],
                             item_settings.llm_config())
    base = job_dir / item.id if item.id else job_dir
    if not resume and (base / chapter.run_id / MANIFEST_NAME).exists():
        raise OutputExistsError(f"{base / chapter.run_id} already holds a run",
                                path=base / chapter.run_id)
    method = actor.chapter_events.options(num_returns="streaming") if stream else actor.chapter
    return method.remote(str(job_dir), item, chapter)


#: connect/disconnect are called from worker threads (the daemon's jobs, resumed
#: together after a restart): one at a time, or two could both call ray.init.
_CONNECTING = threading.Lock()


def connect(address: str) -> None:
    """``ray.init`` for ``address``: ``"local"`` starts a cluster in this process,
    anything else (``"auto"``, ``"HOST:PORT"``) joins a running one. Thread-safe;
    a no-op when already connected."""
    with _CONNECTING:
        if ray.is_initialized():
            return
        # address="local" always starts a new cluster; None would join one that
        # /tmp/ray/ray_current_cluster names, even a dead one (then it hangs).
        local: dict[str, Any] = {"include_dashboard": False} if address == "local" else {}
        ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR, **local)


def disconnect() -> None:
    """``ray.shutdown``: leave the cluster (one :func:`connect` started stops with it)."""
    with _CONNECTING:
        ray.shutdown()


def narrate_on_ray(sources: Sequence[str], settings: Settings, *, resume: bool,
                   console: Console,
                   on_event: Callable[[JobItem, Chapter | None, ProgressEvent], None] | None = None,
                   ) -> int:
    """``speakstream narrate --ray``: run the job, one progress bar (none when
    ``on_event`` takes every run event: ``--json``); the exit code (0 every item
    completed, 1 otherwise)."""
    if "-" in sources:
        raise PipelineError("stdin ('-') cannot be narrated on Ray: give files")
    connect(str(settings.values["ray_address"]))
    finished = {k for k, r in read_results(settings.values["output_dir"]).items()
                if resume and r["status"] == "completed"}
    total = job_size(i for i in iter_job_items(sources) if i.id not in finished)
    progress = Progress(TextColumn("{task.description}"), BarColumn(),
                        TextColumn("{task.completed:,.0f} chars"), TimeElapsedColumn(),
                        TimeRemainingColumn(), console=console, disable=on_event is not None)

    def on_part(item: JobItem, chapter: Chapter | None, record: dict[str, Any]) -> None:
        size = len(chapter.text) if chapter is not None else 0
        progress.update(task, advance=size,
                        description=(chapter.title if chapter else item.id)[:30])

    with progress:
        task = progress.add_task("narrating on Ray", total=total or None)
        results = run_job_on_ray(iter_job_items(sources), settings=settings,
                                 output_dir=settings.values["output_dir"], resume=resume,
                                 on_part=on_part, on_event=on_event)
    # From the results, not the parts: an item that fails in the driver (a
    # missing or non-UTF-8 document) has no part.
    failed = [r for r in results if r.status != "completed"]
    if on_event is None:
        for result in failed:  # the reason, in one line each (as without --ray)
            reason = f": {result.errors[0]}" if result.errors else ""
            console.print(f"{result.item or 'item'}: {result.status}{reason}", style="red")
        console.print(f"{len(results)} item(s) narrated, results in "
                      f"{Path(settings.values['output_dir']) / RESULTS_NAME}", style="dim")
    return 1 if failed else 0

