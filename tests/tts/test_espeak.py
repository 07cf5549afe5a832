"""EspeakEngine runs the real espeak-ng; ffprobe judges what it returns."""

from __future__ import annotations

import asyncio
import os
import shutil

import pytest

from tts import (
    EngineUnavailableError,
    EspeakEngine,
    RetryPolicy,
    SynthesisError,
    SynthesizedAudio,
)
from tts._espeak import espeak_arguments, parse_voice_table

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")

TEXT = "Hello there. This is speakstream."


async def _whole(engine: EspeakEngine, text: str, **kw: object) -> SynthesizedAudio:
    return await engine.synthesize(text, **kw)  # type: ignore[arg-type]


async def _streamed(engine: EspeakEngine, text: str, **kw: object) -> SynthesizedAudio:
    return await engine.stream(text, **kw).collect()  # type: ignore[arg-type]


#: synthesize() runs espeak-ng in a worker thread, stream() on asyncio pipes: both.
both_paths = pytest.mark.parametrize("run", [_whole, _streamed], ids=["synthesize", "stream"])


def _gone(pid: int) -> bool:
    """Whether process ``pid`` has ended and been reaped."""
    return not os.path.exists(f"/proc/{pid}")


async def _until_gone(pid: int) -> bool:
    for _ in range(1000):  # at most ~10 s: a killed process is reaped at once
        if _gone(pid):
            return True
        await asyncio.sleep(0.01)
    return False


async def test_synthesizes_a_real_wav_whose_duration_is_measured(probe) -> None:  # type: ignore[no-untyped-def]
    async with EspeakEngine() as engine:
        audio = await engine.synthesize(TEXT)
    judged = probe(audio.data, ".wav")
    assert audio.format == "wav" and judged["codec"] == "pcm_s16le"
    assert (audio.sample_rate, audio.channels) == (judged["sample_rate"], judged["channels"])
    assert audio.duration_s == pytest.approx(judged["duration_s"], abs=1e-3)
    assert audio.duration_s > 1.0
    assert audio.engine == "espeak" and audio.text == TEXT


async def test_whole_and_streamed_audio_are_the_same() -> None:
    """synthesize() reads espeak-ng's output at once (a worker thread); stream()
    reads it piece by piece: the same program, so the same audio and words."""
    async with EspeakEngine() as engine:
        whole = await engine.synthesize(TEXT, rate=1.2)
        stream = engine.stream(TEXT, rate=1.2)
        pieces = [chunk async for chunk in stream]
    streamed = stream.audio
    assert len(pieces) > 1  # it did stream
    assert whole.data == streamed.data and whole.words == streamed.words
    assert (whole.duration_s, whole.sample_rate, whole.voice) == (
        streamed.duration_s, streamed.sample_rate, streamed.voice)


async def test_cancelling_synthesize_kills_the_program(tmp_path) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "pid"
    hang = tmp_path / "hang.sh"
    hang.write_text(f"#!/bin/sh\necho $$ > {pid_file}.tmp; mv {pid_file}.tmp {pid_file}\n"
                    "exec sleep 60\n")
    hang.chmod(0o755)
    async with EspeakEngine(executable=str(hang), timeout_s=120) as engine:
        task = asyncio.create_task(engine.synthesize("Hello."))
        for _ in range(1000):
            if pid_file.exists():
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert await _until_gone(int(pid_file.read_text()))  # killed and reaped


@both_paths
async def test_a_timeout_kills_a_wrappers_children_too(tmp_path, run) -> None:  # type: ignore[no-untyped-def]
    pid_file = tmp_path / "child"
    wrapper = tmp_path / "wrapper.sh"  # does not exec: its child holds stdout open
    wrapper.write_text(f"#!/bin/sh\nsleep 60 &\necho $! > {pid_file}\nwait\n")
    wrapper.chmod(0o755)
    once = RetryPolicy(attempts=1)
    async with EspeakEngine(executable=str(wrapper), timeout_s=0.5, retry=once) as engine:
        with pytest.raises(SynthesisError, match=r"longer than 0\.5 s"):
            await run(engine, "Hello.")
    assert await _until_gone(int(pid_file.read_text()))


async def test_word_timings_are_ordered_and_inside_the_audio() -> None:
    async with EspeakEngine() as engine:
        audio = await engine.synthesize(TEXT)
    assert [w.text for w in audio.words] == TEXT.split()
    ends = [w.offset_s + w.duration_s for w in audio.words]
    for word, next_word in zip(audio.words, audio.words[1:], strict=False):
        assert word.offset_s + word.duration_s <= next_word.offset_s
    assert audio.words[0].offset_s >= 0 and ends[-1] <= audio.duration_s + 1e-3


async def test_rate_changes_the_audio_length() -> None:
    async with EspeakEngine() as engine:
        slow = await engine.synthesize(TEXT, rate=0.5)
        fast = await engine.synthesize(TEXT, rate=2.0)
    assert slow.duration_s > 2 * fast.duration_s


@both_paths
async def test_text_starting_with_a_dash_is_spoken_not_parsed_as_option(run) -> None:  # type: ignore[no-untyped-def]
    async with EspeakEngine() as engine:
        audio = await run(engine, "-v is not an option here")
    assert audio.duration_s > 0.5


def test_prosody_mapping() -> None:
    assert espeak_arguments(voice="en-us", rate=2.0, volume=0.5, pitch=1.5) == [
        "-v", "en-us", "-s", "350", "-a", "50", "-p", "75"
    ]
    clamped = espeak_arguments(voice=None, rate=0.25, volume=None, pitch=2.0)
    assert clamped == ["-s", "80", "-p", "99"]
    assert espeak_arguments(voice=None, rate=None, volume=None, pitch=None) == []


@both_paths
async def test_unknown_voice_is_a_synthesis_error_naming_the_text(run) -> None:  # type: ignore[no-untyped-def]
    async with EspeakEngine() as engine:
        with pytest.raises(SynthesisError) as info:
            await run(engine, "Hello.", voice="nosuchvoice")
    assert info.value.engine == "espeak" and info.value.text == "Hello."
    assert "does not exist" in str(info.value)


@both_paths
async def test_missing_executable_is_engine_unavailable(run) -> None:  # type: ignore[no-untyped-def]
    async with EspeakEngine(executable="/nonexistent/espeak-ng") as engine:
        with pytest.raises(EngineUnavailableError) as info:
            await run(engine, "Hello.")
    assert isinstance(info.value.__cause__, FileNotFoundError)


@both_paths
async def test_hung_process_times_out_into_a_retryable_error(tmp_path, run) -> None:  # type: ignore[no-untyped-def]
    hang = tmp_path / "hang.sh"
    hang.write_text("#!/bin/sh\nexec sleep 60\n")
    hang.chmod(0o755)
    once = RetryPolicy(attempts=1)  # the engine's own error, before the base class retries
    async with EspeakEngine(executable=str(hang), timeout_s=0.5, retry=once) as engine:
        with pytest.raises(SynthesisError) as info:
            await run(engine, "Hello.")
    assert info.value.retryable and isinstance(info.value.__cause__, TimeoutError)
    retried = RetryPolicy(attempts=2, backoff_s=0)
    async with EspeakEngine(executable=str(hang), timeout_s=0.3, retry=retried) as engine:
        with pytest.raises(SynthesisError, match="failed 2 times") as info:
            await run(engine, "Hello.")
    assert not info.value.retryable and isinstance(info.value.__cause__, TimeoutError)


@both_paths
async def test_a_failing_program_is_a_synthesis_error_with_its_stderr(tmp_path, run) -> None:  # type: ignore[no-untyped-def]
    failing = tmp_path / "fail.sh"
    failing.write_text("#!/bin/sh\necho 'no voice here' >&2\nexit 3\n")
    failing.chmod(0o755)
    async with EspeakEngine(executable=str(failing)) as engine:
        with pytest.raises(SynthesisError, match="status 3: no voice here"):
            await run(engine, "Hello.")


@both_paths
async def test_concurrent_calls_do_not_block_each_other_or_the_loop(run) -> None:  # type: ignore[no-untyped-def]
    texts = [f"Sentence number {i}." for i in range(6)]
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    tick_task = asyncio.create_task(ticker())
    async with EspeakEngine() as engine:
        results = await asyncio.gather(*(run(engine, t) for t in texts))
    tick_task.cancel()
    assert [r.text for r in results] == texts
    assert ticks > len(texts)  # the loop kept running while espeak-ng worked


@pytest.mark.parametrize("parallel", [1, 2])
async def test_parallel_bounds_the_processes_running_at_once(tmp_path, parallel) -> None:  # type: ignore[no-untyped-def]
    # A wrapper around the real espeak-ng that records how many copies of it run at once.
    wrapper = tmp_path / "espeak.sh"
    wrapper.write_text(
        "#!/bin/sh\n"
        f"d={tmp_path}/running; mkdir -p $d; touch $d/$$\n"
        f"ls $d | wc -l >> {tmp_path}/counts\n"
        "sleep 0.2\n"  # long enough for the other calls to start if they may
        "espeak-ng \"$@\"; code=$?\n"
        "rm $d/$$; exit $code\n"
    )
    wrapper.chmod(0o755)
    texts = [f"Sentence number {i}." for i in range(5)]
    async with EspeakEngine(executable=str(wrapper), parallel=parallel) as engine:
        results = await asyncio.gather(*(engine.synthesize(t) for t in texts))
    assert [r.text for r in results] == texts
    counts = [int(n) for n in (tmp_path / "counts").read_text().split()]
    assert len(counts) == len(texts) and max(counts) <= parallel
    with pytest.raises(ValueError, match="parallel"):
        EspeakEngine(parallel=0)


def test_parallel_engine_serves_one_event_loop_after_another() -> None:
    engine = EspeakEngine(parallel=1)

    async def both() -> list[str]:  # two calls: the second waits for the slot
        done = await asyncio.gather(engine.synthesize("One."), engine.synthesize("Two."))
        return [d.text for d in done]

    assert asyncio.run(both()) == asyncio.run(both()) == ["One.", "Two."]
    asyncio.run(engine.aclose())


async def test_list_voices_has_english() -> None:
    async with EspeakEngine() as engine:
        voices = await engine.list_voices()
    assert any(v.id == "en-us" for v in voices)
    assert all(v.engine == "espeak" for v in voices)


def test_voice_table_parsing() -> None:
    table = (
        "Pty Language       Age/Gender VoiceName          File                 Other Languages\n"
        " 2  en-us           --/M      English_(America)  gmw/en-US            (en 3)\n"
        " 5  fr-fr           --/F      French             roa/fr               \n"
    )
    voices = parse_voice_table(table)
    assert [(v.id, v.name, v.gender) for v in voices] == [
        ("en-us", "English (America)", "male"), ("fr-fr", "French", "female")
    ]


async def test_closed_engine_refuses_work() -> None:
    engine = EspeakEngine()
    await engine.aclose()
    with pytest.raises(RuntimeError):
        await engine.synthesize("Hello.")


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        EspeakEngine(timeout_s=0)
