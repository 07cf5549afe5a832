"""Spare encoders: started before the request, used once, replaced, reaped at shutdown;
what they encode still decodes."""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from pipeline._daemon._spares import SpareEncoders
from tests.fakes.engine import FakeEngine

from .conftest import ScriptedLLM, start_daemon
from .test_speech_sink import MANY, run_audio_seconds, settings

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs ffmpeg")

MONO = (22050, 1)


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (a reaped child no longer exists)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def ffmpeg_children() -> set[int]:
    """Process ids of this process's ffmpeg children."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if name == "ffmpeg" and ppid == os.getpid() and alive(int(entry)):
            found.add(int(entry))
    return found


def tone(seconds: float, rate: int = 22050) -> bytes:
    n = int(seconds * rate)
    return struct.pack(f"<{n}h", *(int(8000 * math.sin(i * 0.05)) for i in range(n)))


def decoded_seconds(data: bytes, rate: int = 22050) -> float:
    pcm = subprocess.run(["ffmpeg", "-v", "error", "-i", "pipe:0", "-f", "s16le", "-ar", str(rate),
                          "-ac", "1", "-"], input=data, capture_output=True, check=True).stdout
    return len(pcm) / 2 / rate


async def wait_for_spare(spares: SpareEncoders, key: tuple[str, int, int], not_pid: int = 0) -> int:
    for _ in range(600):  # a bounded wait for the background start, not a timing assertion
        pid = spares.pids.get(key)
        if pid is not None and pid != not_pid:
            return pid
        await asyncio.sleep(0.05)
    raise AssertionError(f"no new spare for {key}")


async def encode(spares: SpareEncoders, fmt: str, pcm: bytes) -> tuple[int | None, bytes]:
    pipe = await spares.take(fmt, MONO)
    out = bytearray()

    async def read() -> None:
        while data := await pipe.read():
            if not out:
                spares.replenish(fmt, MONO)  # as the speech sink does after its first byte
            out.extend(data)

    reader = asyncio.create_task(read())
    await pipe.write(pcm)
    await pipe.close_input()
    await reader
    await pipe.wait()
    return pipe.pid, bytes(out)


async def test_a_spare_is_used_once_replaced_and_what_it_encodes_decodes() -> None:
    spares = SpareEncoders()
    try:
        await spares.start()
        key = ("mp3", *MONO)
        first = spares.pids[key]
        taken = await spares.take("mp3", MONO)
        assert taken.pid == first and key not in spares.pids  # no replacement yet
        spares.replenish("mp3", MONO)
        await taken.aclose()
        first = await wait_for_spare(spares, key, not_pid=first)
        used, data = await encode(spares, "mp3", tone(1.0))
        assert used == first  # the request got the started process
        second = await wait_for_spare(spares, key, not_pid=first)
        assert second != first and alive(second)
        assert decoded_seconds(data) == pytest.approx(1.0, abs=0.1)
        used, _ = await encode(spares, "mp3", tone(0.2))
        assert used == second
    finally:
        await spares.aclose()
    assert not spares.pids


async def test_a_new_layout_gets_its_own_spare_after_its_first_use() -> None:
    spares = SpareEncoders()
    try:
        await spares.start(())
        assert not spares.pids
        used, data = await encode(spares, "opus", tone(0.5))
        spare = await wait_for_spare(spares, ("opus", *MONO))
        assert spare != used
        assert decoded_seconds(data) == pytest.approx(0.5, abs=0.1)
    finally:
        await spares.aclose()


async def test_closing_reaps_every_spare_and_the_least_recently_used_goes_first() -> None:
    spares = SpareEncoders(max_spares=1)
    await spares.start((("mp3", *MONO),))
    dropped = spares.pids[("mp3", *MONO)]
    pipe = await spares.take("flac", MONO)  # a second key: one spare kept at most
    spares.replenish("flac", MONO)
    await pipe.aclose()
    kept = await wait_for_spare(spares, ("flac", *MONO))
    assert list(spares.pids) == [("flac", *MONO)]
    for _ in range(200):  # reaped right after the new spare was kept
        if not alive(dropped):
            break
        await asyncio.sleep(0.05)
    assert not alive(dropped)
    await spares.aclose()
    assert not alive(kept) and not spares.pids
    with pytest.raises(RuntimeError):
        await spares.take("mp3", MONO)


async def test_a_spare_that_died_while_waiting_is_replaced_by_a_new_process() -> None:
    spares = SpareEncoders()
    try:
        await spares.start()
        key = ("mp3", *MONO)
        dead = spares.pids[key]
        os.kill(dead, 9)
        for _ in range(1000):  # until the daemon's loop has seen it die (its child watcher)
            if spares.pids.get(key) != dead:
                break
            await asyncio.sleep(0.01)
        assert not alive(dead) and key not in spares.pids
        used, data = await encode(spares, "mp3", tone(0.3))
        assert used != dead
        assert decoded_seconds(data) == pytest.approx(0.3, abs=0.1)
    finally:
        await spares.aclose()


def test_the_daemon_serves_from_its_spare_and_reaps_the_spares_at_shutdown(
    tmp_path: Path,
) -> None:
    others = ffmpeg_children()  # of other tests' daemons, if any still runs
    running = start_daemon(settings(tmp_path), llm=ScriptedLLM(["x"]), engine=FakeEngine())
    spares: SpareEncoders = running.server.config.app.state.daemon.encoders
    try:
        key = ("mp3", *MONO)
        for _ in range(600):
            if key in spares.pids:
                break
            time.sleep(0.05)
        first = spares.pids[key]  # started with the daemon, before any request
        r = httpx.post(running.url + "/v1/audio/speech", timeout=60,
                       json={"model": "tts-1", "input": MANY, "response_format": "mp3"})
        assert r.status_code == 200
        expected = run_audio_seconds(running.url, r.headers["x-run-id"])
        for _ in range(600):
            if spares.pids.get(key, first) != first:
                break
            time.sleep(0.05)
        assert spares.pids[key] != first and not alive(first)  # used up, replaced
        assert decoded_seconds(r.content) == pytest.approx(expected, abs=0.1)
        assert spares.pids[key] in ffmpeg_children() - others
    finally:
        running.stop()
    assert not ffmpeg_children() - others
