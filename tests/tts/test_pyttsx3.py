"""Pyttsx3Engine against the real pyttsx3 + espeak-ng, in its isolated worker process."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import threading
from pathlib import Path

import pytest

from tts import EngineUnavailableError, Pyttsx3Engine, RetryPolicy, SynthesisError

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pyttsx3") is None, reason="pyttsx3 is not installed"
)

SHORT = "Hi."
LONG = "This sentence is very much longer than the short one, so its audio lasts longer."


@pytest.fixture
async def engine():  # type: ignore[no-untyped-def]
    async with Pyttsx3Engine(timeout_s=20) as engine:
        yield engine


async def test_real_wav_with_measured_duration(engine, probe, capfd) -> None:  # type: ignore[no-untyped-def]
    audio = await engine.synthesize("Hello there. This is speakstream.")
    judged = probe(audio.data, ".wav")
    assert audio.format == "wav" and judged["codec"] == "pcm_s16le"
    assert (audio.sample_rate, audio.channels) == (judged["sample_rate"], judged["channels"])
    assert audio.duration_s == pytest.approx(judged["duration_s"], abs=1e-3)
    assert audio.duration_s > 1.0 and audio.engine == "pyttsx3"
    assert [w.text for w in audio.words] == ["Hello", "there.", "This", "is", "speakstream."]
    out = capfd.readouterr().out
    assert "Audio saved" not in out  # pyttsx3's print stays in the worker


async def test_200_consecutive_calls_each_write_their_own_audio(engine) -> None:  # type: ignore[no-untyped-def]
    """Alternating short/long text: a stale or "last file only" write would break the pattern."""
    durations = []
    for i in range(200):
        text = SHORT if i % 2 == 0 else LONG
        audio = await engine.synthesize(text)
        assert audio.text == text
        durations.append(audio.duration_s)
    shorts, longs = durations[0::2], durations[1::2]
    assert max(shorts) < min(longs)
    # same text, (nearly) the same audio every time: espeak's trailing pause varies a little
    assert max(shorts) < 1.2 * min(shorts) and max(longs) < 1.05 * min(longs)
    assert not list(engine._dir.glob("*.wav"))  # temp files removed


async def test_concurrent_tasks_get_their_own_audio(engine) -> None:  # type: ignore[no-untyped-def]
    texts = [("word " * n).strip() + "." for n in (1, 12, 3, 20, 6, 9, 2, 15)]
    results = await asyncio.gather(*(engine.synthesize(t) for t in texts))
    assert [r.text for r in results] == texts
    by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    by_duration = sorted(range(len(texts)), key=lambda i: results[i].duration_s)
    assert by_length == by_duration


def test_callers_from_several_threads_and_event_loops(tmp_path: Path) -> None:
    """Pipeline workers in their own threads share one engine without crashing it."""
    engine = Pyttsx3Engine(timeout_s=20)
    loop = asyncio.new_event_loop()
    results: dict[tuple[int, int], float] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def worker(n: int) -> None:
        async def run() -> None:
            for k in range(5):
                text = SHORT if (n + k) % 2 else LONG
                audio = await engine.synthesize(text)
                results[(n, k)] = audio.duration_s

        barrier.wait()
        try:
            asyncio.run(run())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    loop.run_until_complete(engine.aclose())
    loop.close()
    assert errors == []
    shorts = [d for (n, k), d in results.items() if (n + k) % 2]
    longs = [d for (n, k), d in results.items() if not (n + k) % 2]
    assert len(results) == 20 and max(shorts) < min(longs)


async def test_hung_worker_times_out_and_is_replaced() -> None:
    once = RetryPolicy(attempts=1)  # the engine's own error, before the base class retries
    async with Pyttsx3Engine(timeout_s=1, start_timeout_s=30, retry=once) as engine:
        await engine.synthesize(SHORT)
        pid = engine.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # a real hang: the worker stops answering
        with pytest.raises(SynthesisError) as info:
            await engine.synthesize(SHORT)
        assert info.value.retryable and "no answer" in str(info.value)
        audio = await engine.synthesize(LONG)  # a new worker serves the next call
        assert audio.text == LONG and engine.worker_pid not in (None, pid)


async def test_a_hung_worker_is_retried_within_the_same_call() -> None:
    """The base class's retry policy: the timeout kills the hung worker and the
    retry, on a fresh worker, gives the segment's audio in the same call."""
    async with Pyttsx3Engine(timeout_s=1, start_timeout_s=30,
                             retry=RetryPolicy(attempts=2, backoff_s=0)) as engine:
        await engine.synthesize(SHORT)
        pid = engine.worker_pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        audio = await engine.synthesize(LONG)
        assert audio.text == LONG and engine.worker_pid not in (None, pid)


async def test_worker_killed_between_calls_is_restarted(engine) -> None:  # type: ignore[no-untyped-def]
    await engine.synthesize(SHORT)
    pid = engine.worker_pid
    os.kill(pid, signal.SIGKILL)
    audio = await engine.synthesize(SHORT)
    assert audio.duration_s > 0 and engine.worker_pid != pid


def _fake_python(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake-python"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


async def test_worker_dying_mid_request_is_a_retryable_error(tmp_path: Path) -> None:
    python = _fake_python(tmp_path, 'echo \'{"ready": true}\'\nread line\necho boom >&2\nexit 3\n')
    async with Pyttsx3Engine(python=python, retry=RetryPolicy(attempts=1)) as engine:
        with pytest.raises(SynthesisError) as info:
            await engine.synthesize(SHORT)
    assert info.value.retryable and "status 3" in str(info.value) and "boom" in str(info.value)


async def test_missing_pyttsx3_is_engine_unavailable(tmp_path: Path) -> None:
    python = _fake_python(
        tmp_path,
        'echo \'{"ready": false, "kind": "import", "error": "No module named pyttsx3"}\'\n',
    )
    async with Pyttsx3Engine(python=python) as engine:
        with pytest.raises(EngineUnavailableError, match="No module named pyttsx3"):
            await engine.synthesize(SHORT)


async def test_missing_interpreter_is_engine_unavailable() -> None:
    async with Pyttsx3Engine(python="/nonexistent/python") as engine:
        with pytest.raises(EngineUnavailableError) as info:
            await engine.synthesize(SHORT)
    assert isinstance(info.value.__cause__, FileNotFoundError)


async def test_unknown_voice_is_a_permanent_synthesis_error(engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SynthesisError) as info:
        await engine.synthesize(SHORT, voice="nosuchvoice")
    assert not info.value.retryable and info.value.text == SHORT
    assert "unknown pyttsx3 voice" in str(info.value)
    assert (await engine.synthesize(SHORT)).duration_s > 0  # the worker survived


async def test_prosody_reaches_the_driver(engine) -> None:  # type: ignore[no-untyped-def]
    """Each call gets its own rate, never the previous call's: pyttsx3's espeak
    driver applied queued properties one call late about half the time."""
    normal = await engine.synthesize(LONG)
    for _ in range(3):
        fast = await engine.synthesize(LONG, rate=2.0)
        again = await engine.synthesize(LONG)  # settings do not leak into the next call
        assert fast.duration_s < 0.7 * normal.duration_s
        assert again.duration_s == pytest.approx(normal.duration_s, rel=0.05)


async def test_list_voices(engine) -> None:  # type: ignore[no-untyped-def]
    voices = await engine.list_voices()
    assert voices and all(v.engine == "pyttsx3" for v in voices)
    english = next(v for v in voices if v.language.startswith("en"))
    audio = await engine.synthesize(SHORT, voice=english.id)
    assert audio.voice == english.id


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        Pyttsx3Engine(timeout_s=0)
