"""Narration jobs on a real Ray cluster: same files as a local run, nothing lost to a kill.

A local 2-CPU cluster (``ray.init``) and a two-node cluster on this machine
(``ray.cluster_utils.Cluster``) narrate the 12 chapters of the corpus with
espeak-ng; the segment texts and audio bytes must equal the in-process job's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from output import read_manifest  # noqa: E402
from pipeline._job import RESULTS_NAME, anarrate_job  # noqa: E402
from pipeline._job_pipelines import JobPipelines  # noqa: E402
from pipeline._jobfile import JobItem, iter_job_items  # noqa: E402
from pipeline._narrate import Chapter  # noqa: E402
from pipeline._pipeline import create_streaming_pipeline  # noqa: E402
from pipeline._ray import NarrationWorker, run_job_on_ray, start_workers  # noqa: E402
from pipeline._settings import Settings, resolve_settings  # noqa: E402

pytestmark = pytest.mark.slow

ALICE = Path(__file__).resolve().parents[1] / "data" / "alice_in_wonderland.txt"


def job_settings(out: Path) -> Settings:
    return resolve_settings(
        {"tts": "espeak", "format": "wav", "workers": 2, "output_dir": str(out), "play": False},
        files=[], env={},
    )


def snapshot(out: Path) -> dict[str, list[tuple[int, str, bytes]]]:
    """Per chapter: (index, text, audio bytes) of each segment line, in manifest order."""
    chapters = {}
    for manifest in sorted(out.rglob("manifest.jsonl")):
        records = [r for r in read_manifest(manifest) if r["type"] == "segment"]
        chapters[str(manifest.parent.relative_to(out))] = [
            (r["index"], r["text"], (manifest.parent / r["path"]).read_bytes()) for r in records
        ]
    return chapters


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / RESULTS_NAME).read_text().splitlines()]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[int, str, bytes]]]:
    """The in-process job's chapters."""
    out = tmp_path_factory.mktemp("local")
    settings = job_settings(out)

    async def main() -> None:
        pipe = create_streaming_pipeline(None, "espeak", settings.streaming_config())
        async with pipe, JobPipelines(pipe, settings) as pipelines:
            async for _ in anarrate_job(iter_job_items([str(ALICE)]), pipeline_for=pipelines.get,
                                        output_dir=out):
                pass

    asyncio.run(main())
    snap = snapshot(out)
    assert len(snap) == 12 and all(snap.values())
    return snap


@pytest.fixture
def local_cluster() -> Iterator[None]:
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def test_local_cluster_gives_the_local_files(
    tmp_path: Path, reference: dict[str, Any], local_cluster: None
) -> None:
    out = tmp_path / "job"
    done = run_job_on_ray(iter_job_items([str(ALICE)]), settings=job_settings(out),
                          output_dir=out, actors_per_node=2)
    assert snapshot(out) == reference
    [line] = results(out)
    assert line["status"] == "completed" and line["chapters"] == 12
    assert line["audio_files"] == [f for c, segs in reference.items() for f in
                                   (f"{c}/segment_{i:04d}.wav" for i, _, _ in segs)]
    assert [r.to_record() for r in done] == [line]

    # One actor, two items: the last item's line is written once its chapters are done.
    small = tmp_path / "small"
    items = [JobItem(id="item_0001", text="One line."), JobItem(id="item_0002", text="Two.")]
    run_job_on_ray(items, settings=job_settings(small), output_dir=small, actors_per_node=1)
    lines = results(small)
    assert [(r["item"], r["status"], r["chunks"]) for r in lines] == [
        ("item_0001", "completed", 0), ("item_0002", "completed", 0)]

    # A bad item fails alone on Ray too: a missing document, an unknown LLM.
    mixed = tmp_path / "mixed"
    items = [JobItem(id="item_0001", path=str(tmp_path / "missing.txt")),
             JobItem(id="item_0002", prompt="Who?", llm="no-such-llm"),
             JobItem(id="item_0003", text="Still narrated.")]
    run_job_on_ray(items, settings=job_settings(mixed), output_dir=mixed, actors_per_node=1)
    lines = results(mixed)
    assert [(r["item"], r["status"]) for r in lines] == [
        ("item_0001", "failed"), ("item_0002", "failed"), ("item_0003", "completed")]
    assert lines[0]["errors"][0].startswith("FileNotFoundError")
    assert "no-such-llm" in lines[1]["errors"][0]
    assert all(r["digest"] for r in lines[1:])

    # A streamed chapter's actor is handed on (or killed) only once its task has
    # ended, never while it is still finishing after its record: killing it then
    # made Ray retry the task and print so on stdout, inside `narrate --json`.
    class Lingering(NarrationWorker):  # defined here: Ray ships it to the actor by value
        async def chapter_events(self, job_dir: str, item: JobItem,
                                 chapter: Any) -> AsyncGenerator[tuple[str, Any], None]:
            async for part in super().chapter_events(job_dir, item, chapter):
                yield part
            await asyncio.sleep(1.0)
            (Path(job_dir) / f"ended_{chapter.number}").touch()

    lingering = tmp_path / "lingering"
    settings = job_settings(lingering)
    actor = ray.remote(Lingering).options(num_cpus=1, max_concurrency=1).remote(
        "espeak", settings.streaming_config())
    try:
        run_job_on_ray([JobItem(id="item_0001", text="# One\n\nA.\n\n# Two\n\nB.\n")],
                       settings=settings, output_dir=lingering, workers=[actor],
                       on_event=lambda *_: None)
        assert sorted(p.name for p in lingering.glob("ended_*")) == ["ended_1", "ended_2"]
    finally:
        ray.kill(actor)


def test_two_nodes_and_a_killed_worker_lose_and_duplicate_nothing(
    tmp_path: Path, reference: dict[str, Any]
) -> None:
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        cluster.add_node(num_cpus=1)
        ray.init(address=cluster.address, log_to_driver=False)
        out = tmp_path / "job"
        settings = job_settings(out)
        workers = start_workers("espeak", settings.streaming_config())
        assert len(workers) == 2  # one warm actor per node
        pids = ray.get([w.pid.remote() for w in workers], timeout=120)
        failure: list[BaseException] = []

        def drive() -> None:
            try:
                run_job_on_ray(iter_job_items([str(ALICE)]), settings=settings, output_dir=out,
                               workers=workers)
            except BaseException as exc:  # re-raised in the test thread below
                failure.append(exc)

        driver = threading.Thread(target=drive)
        driver.start()
        # Kill the first actor's process once some of its work is on disk (mid-run).
        for _ in range(1200):
            if len(list(out.rglob("segment_*.wav"))) >= 40 or not driver.is_alive():
                break
            driver.join(0.1)
        assert driver.is_alive(), "the job ended before the kill"
        os.kill(pids[0], signal.SIGKILL)
        driver.join(600)
        assert not driver.is_alive()
        assert not failure, failure
        assert ray.get(workers[0].pid.remote(), timeout=120) != pids[0]  # it was restarted
        assert snapshot(out) == reference  # same texts and audio, each index once, in order
        assert not list(out.rglob("*.tmp"))
        [line] = results(out)
        assert line["status"] == "completed" and line["chapters"] == 12
    finally:
        ray.shutdown()
        cluster.shutdown()


def test_cli_narrate_ray_local(tmp_path: Path) -> None:
    from .clirun import run

    (tmp_path / "a.txt").write_text("Alpha. Two sentences here.")
    (tmp_path / "b.md").write_text("# One\n\nBeta.\n\n# Two\n\nGamma.\n")
    code, _, err = run(tmp_path, "narrate", "a.txt", "b.md", "-o", "out", "--tts", "espeak",
                       "--ray", "local", timeout=300)
    assert code == 0, err
    lines = results(tmp_path / "out")
    assert [(r["item"], r["status"], r["chapters"]) for r in lines] == [
        ("item_0001", "completed", 1), ("item_0002", "completed", 2)]
    assert "2 item(s) narrated" in err
    # An item that fails in the driver (its document is missing) fails the job: exit 1, one line.
    (tmp_path / "jobs.jsonl").write_text('{"text": "Fine."}\n{"path": "missing.md"}\n')
    code, _, err = run(tmp_path, "narrate", "jobs.jsonl", "-o", "out3", "--tts", "espeak",
                       "--ray", "local", timeout=300)
    assert code == 1, err
    assert [line for line in err.splitlines() if "failed" in line] == [
        next(line for line in err.splitlines() if line.startswith("item_0002: failed: "))]
    assert "missing.md" in err and "Traceback" not in err
    code, _, err = run(tmp_path, "narrate", "-", "-o", "out2", "--ray", "local", input="Hi.")
    assert code == 1 and "stdin" in err and len(err.strip().splitlines()) == 1


def test_cli_narrate_json_on_ray_prints_the_local_events(tmp_path: Path) -> None:
    from .clirun import run

    (tmp_path / "a.txt").write_text("Alpha. Two sentences here.")
    (tmp_path / "b.md").write_text("# One\n\nBeta.\n\n# Two\n\nGamma.\n")

    def events(*extra: str) -> dict[tuple[str, int], list[tuple[Any, ...]]]:
        out = f"out{len(extra)}"
        code, stdout, err = run(tmp_path, "narrate", "a.txt", "b.md", "-o", out, "--tts",
                                "espeak", "--json", *extra, timeout=300)
        assert code == 0, err
        runs: dict[tuple[str, int], list[tuple[Any, ...]]] = {}
        for line in stdout.splitlines():
            e = json.loads(line)
            runs.setdefault((e["item"], e["chapter"]), []).append(
                (e["status"], e.get("index"), e.get("text"), e["chapter_title"],
                 e.get("audio_files_generated")))
        # Within a run the order of segment and audio events depends on timing.
        return {key: sorted(seq, key=repr) for key, seq in runs.items()}

    local, on_ray = events(), events("--ray", "local")
    assert on_ray == local
    assert sorted(local) == [("item_0001", 1), ("item_0002", 1), ("item_0002", 2)]
    assert all({s[0] for s in seq} >= {"started", "segment", "audio", "completed"}
               for seq in local.values())


def test_the_longest_unit_of_the_window_goes_first() -> None:
    from pipeline._ray import _Lookahead

    def units(*sizes: int | None) -> Iterator[Any]:
        for n, size in enumerate(sizes):
            chapter = None if size is None else Chapter(number=n, title=str(n), text="x" * size)
            read.append(n)
            yield object(), n, chapter

    def order(window: int, *sizes: int | None) -> list[int]:
        ahead = _Lookahead(units(*sizes), size=window)
        taken = []
        while (unit := ahead.take_longest()) is not None:
            taken.append(unit[1])
            assert len(read) - len(taken) <= window  # never more than the window read ahead
        return taken

    read: list[int] = []
    # The bench's two items: chapters of 1,425 and 1,575, then one of 3,000 characters.
    assert order(4, 1425, 1575, 3000) == [2, 1, 0]
    read = []
    assert order(1, 1425, 1575, 3000) == [0, 1, 2]  # a window of one: job order
    read = []
    assert order(2, 5, 5, None, 5) == [0, 2, 1, 3]  # a prompt first; ties in job order
