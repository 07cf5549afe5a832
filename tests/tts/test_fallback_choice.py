"""FallbackEngine (``tts auto``): a voice goes to the engines that have it, and
``choose()`` says in one line which engine will speak and why."""

from __future__ import annotations

import shutil

import pytest

from tests.fakes.engine import FakeEngine
from tts import EngineUnavailableError, EspeakEngine, FallbackEngine, Voice


def _engine(name: str, *voices: str, unavailable: bool = False) -> FakeEngine:
    fail = {lambda t: True: EngineUnavailableError(f"{name} service unreachable: no route",
                                                   engine=name)} if unavailable else None
    engine = FakeEngine(name=name, voices=[Voice(v, v, engine=name) for v in voices],
                        fail_on=fail)
    if unavailable:
        async def gone() -> list[Voice]:
            raise EngineUnavailableError(f"{name} service unreachable: no route", engine=name)
        async def cold() -> None:  # as EdgeEngine.warm_up says when its host does not resolve
            raise EngineUnavailableError(f"{name} service unreachable: no route", engine=name)
        engine.list_voices = gone  # type: ignore[method-assign]
        engine.warm_up = cold  # type: ignore[method-assign]
    return engine


async def test_choose_names_the_first_available_engine_and_why_the_others_were_skipped() -> None:
    edge = _engine("edge", "en-US-AriaNeural", unavailable=True)
    piper = _engine("piper", "en_US-joe-medium")
    async with FallbackEngine([edge, piper, _engine("espeak", "en-us")]) as chain:
        assert await chain.choose() == "piper: edge unavailable (edge service unreachable)"
        audio = await chain.synthesize("Hello there.")
    assert audio.engine == "piper"


async def test_a_voice_only_one_engine_has_picks_that_engine_and_says_so() -> None:
    piper = _engine("piper", "en_US-joe-medium")
    espeak = _engine("espeak", "en-us", "fr")
    async with FallbackEngine([piper, espeak]) as chain:
        assert await chain.choose("en-us") == "espeak: voice en-us is an espeak voice"
        audio = await chain.synthesize("Hello there.", voice="EN-US")
    assert audio.engine == "espeak" and audio.voice == "en-us"  # the engine's own spelling
    assert piper.calls == []  # never tried with a voice it does not have


async def test_a_voice_no_engine_lists_tries_every_engine_as_before() -> None:
    first, second = _engine("first"), _engine("second")
    async with FallbackEngine([first, second]) as chain:
        assert await chain.choose("xx") == "first: no available engine lists voice xx"
        audio = await chain.synthesize("Hello.", voice="xx")
    assert audio.engine == "first" and first.calls[0].voice == "xx"


async def test_no_engine_at_all_is_said_too() -> None:
    async with FallbackEngine([_engine("edge", unavailable=True)]) as chain:
        assert await chain.choose() == "none: edge unavailable (edge service unreachable)"


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="needs espeak-ng")
async def test_real_espeak_voice_lookup_is_asked_once() -> None:
    espeak = EspeakEngine()
    calls = 0
    original = espeak.list_voices

    async def counting() -> list[Voice]:
        nonlocal calls
        calls += 1
        return await original()

    espeak.list_voices = counting  # type: ignore[method-assign]
    async with FallbackEngine([_engine("piper", "en_US-joe-medium"), espeak]) as chain:
        assert (await chain.choose("en-us")).startswith("espeak: voice en-us is an espeak voice")
        for _ in range(3):
            assert (await chain.synthesize("Hi there.", voice="en-us")).engine == "espeak"
    assert calls == 1
