"""FallbackEngine and create_engine: order kept, retries, skipping unavailable engines."""

from __future__ import annotations

import pytest

from tests.fakes.engine import FakeEngine
from tts import (
    AllEnginesFailedError,
    EdgeEngine,
    EngineUnavailableError,
    EspeakEngine,
    FallbackEngine,
    PiperEngine,
    Pyttsx3Engine,
    RetryPolicy,
    SynthesisError,
    SynthesizedAudio,
    TTSEngine,
    Voice,
    create_engine,
)

SEGMENTS = ["One.", "Two.", "Three.", "Four."]


async def _whole(engine: TTSEngine, text: str, **kw: object) -> SynthesizedAudio:
    return await engine.synthesize(text, **kw)  # type: ignore[arg-type]


async def _streamed(engine: TTSEngine, text: str, **kw: object) -> SynthesizedAudio:
    return await engine.stream(text, **kw).collect()  # type: ignore[arg-type]


#: Both ways through the chain: synthesize() (whole requests down the chain) and
#: a drained stream (what playback and the speech route use).
@pytest.fixture(params=[_whole, _streamed], ids=["synthesize", "stream"])
def speak(request: pytest.FixtureRequest) -> object:
    return request.param


async def test_first_engine_fails_on_segment_2_next_engine_used_order_kept(speak) -> None:  # type: ignore[no-untyped-def]
    first = FakeEngine(name="first", fail_on={1: SynthesisError("boom", engine="first")})
    second = FakeEngine(name="second")
    async with FallbackEngine([first, second]) as chain:
        results = [await speak(chain, s) for s in SEGMENTS]
    assert [r.text for r in results] == SEGMENTS
    assert [r.engine for r in results] == ["first", "second", "first", "first"]
    assert [c.text for c in second.calls] == ["Two."]  # not retried: the error was permanent
    assert [c.text for c in first.calls] == SEGMENTS


async def test_retryable_failure_is_retried_on_the_same_engine(speak) -> None:  # type: ignore[no-untyped-def]
    first = FakeEngine(name="first", fail_on={0: SynthesisError("flaky", retryable=True)},
                       retry=RetryPolicy(attempts=2, backoff_s=0))
    second = FakeEngine(name="second")
    async with FallbackEngine([first, second]) as chain:
        audio = await speak(chain, "Hello.")
    assert audio.engine == "first" and [c.outcome for c in first.calls] == ["error", "ok"]
    assert second.calls == []


async def test_retries_exhausted_then_next_engine(speak) -> None:  # type: ignore[no-untyped-def]
    always = FakeEngine(name="first", fail_on={lambda t: True: SynthesisError("x", retryable=True)},
                        retry=RetryPolicy(attempts=3, backoff_s=0))
    second = FakeEngine(name="second")
    async with FallbackEngine([always, second]) as chain:
        audio = await speak(chain, "Hello.")
    assert audio.engine == "second" and len(always.calls) == 3


async def test_unavailable_engine_costs_one_attempt_per_run(speak) -> None:  # type: ignore[no-untyped-def]
    offline = FakeEngine(name="edge", fail_on={lambda t: True: EngineUnavailableError("offline")})
    local = FakeEngine(name="espeak")
    async with FallbackEngine([offline, local]) as chain:
        results = [await speak(chain, s) for s in SEGMENTS]
        assert list(chain.unavailable) == ["edge"]
    assert len(offline.calls) == 1
    assert [r.engine for r in results] == ["espeak"] * 4


async def test_every_engine_failing_raises_with_all_failures(speak) -> None:  # type: ignore[no-untyped-def]
    a = FakeEngine(name="a", fail_on={0: SynthesisError("a broke", engine="a")})
    b = FakeEngine(name="b", fail_on={0: EngineUnavailableError("b missing", engine="b")})
    async with FallbackEngine([a, b]) as chain:
        with pytest.raises(AllEnginesFailedError) as info:
            await speak(chain, "Hello.")
    assert [name for name, _ in info.value.failures] == ["a", "b"]
    assert info.value.text == "Hello." and isinstance(info.value.__cause__, EngineUnavailableError)
    assert isinstance(info.value, SynthesisError)


async def test_all_unavailable_is_engine_unavailable(speak) -> None:  # type: ignore[no-untyped-def]
    a = FakeEngine(name="a", fail_on={0: EngineUnavailableError("a missing")})
    async with FallbackEngine([a]) as chain:
        with pytest.raises(EngineUnavailableError):
            await speak(chain, "Hello.")
        with pytest.raises(EngineUnavailableError, match="ruled out earlier"):
            await speak(chain, "Again.")
    assert len(a.calls) == 1


async def test_non_tts_errors_are_not_hidden(speak) -> None:  # type: ignore[no-untyped-def]
    a = FakeEngine(name="a", fail_on={0: KeyError("bug")})
    b = FakeEngine(name="b")
    async with FallbackEngine([a, b]) as chain:
        with pytest.raises(KeyError):
            await speak(chain, "Hello.")
    assert b.calls == []


async def test_aclose_closes_every_engine_and_prosody_passes_through(speak) -> None:  # type: ignore[no-untyped-def]
    a, b = FakeEngine(name="a"), FakeEngine(name="b")
    chain = FallbackEngine([a, b])
    await speak(chain, "Hello.", rate=1.5, volume=0.5, pitch=1.1, voice="v")
    call = a.calls[0]
    assert (call.rate, call.volume, call.pitch, call.voice) == (1.5, 0.5, 1.1, "v")
    await chain.aclose()
    await chain.aclose()
    assert (a.closed_count, b.closed_count) == (1, 1)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FallbackEngine([])
    with pytest.raises(ValueError, match="attempts"):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError, match="backoff_s"):
        RetryPolicy(backoff_s=-1)
    with pytest.raises(ValueError, match="retries"):
        create_engine("auto", retries=-1)


async def test_create_engine_by_name_and_auto_order() -> None:
    assert isinstance(create_engine("espeak", voice="en-us"), EspeakEngine)
    auto = create_engine()
    assert isinstance(auto, FallbackEngine)
    assert [type(e) for e in auto.engines] == [EdgeEngine, PiperEngine, Pyttsx3Engine, EspeakEngine]
    custom = create_engine(
        "auto", order=["espeak", "pyttsx3"], espeak={"voice": "en-us"}, retries=0
    )
    assert isinstance(custom, FallbackEngine)
    assert [e.name for e in custom.engines] == ["espeak", "pyttsx3"]
    assert [e.retry.attempts for e in custom.engines] == [1, 1]  # retries=0: one attempt each
    for engine in (auto, custom):
        await engine.aclose()


def test_create_engine_rejects_unknown_names() -> None:
    with pytest.raises(ValueError, match="name must be one of"):
        create_engine("festival")
    with pytest.raises(ValueError, match="festival"):
        create_engine("auto", order=["espeak", "festival"])
    with pytest.raises(ValueError, match="colour"):
        create_engine("auto", colour="blue")
    with pytest.raises(TypeError):
        create_engine("espeak", colour="blue")


async def test_auto_chain_falls_back_to_offline_engines_when_edge_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    import edge_tts.communicate

    monkeypatch.setattr(
        edge_tts.communicate, "WSS_URL", f"ws://127.0.0.1:{unused_tcp_port}/edge/v1?x=1"
    )
    async with create_engine("auto", order=["edge", "espeak"]) as chain:
        results = [await chain.synthesize(s) for s in SEGMENTS[:2]]
        assert isinstance(chain, FallbackEngine) and list(chain.unavailable) == ["edge"]
    assert [r.engine for r in results] == ["espeak", "espeak"]


class _WarmRecorder(TTSEngine):
    def __init__(self, name: str, *, unavailable: bool = False, remote: bool = False) -> None:
        self.name = name
        self.remote = remote
        self.unavailable_on_warm = unavailable
        self.warmed = 0
        self.asked_voices = 0

    async def warm_up(self) -> None:
        self.warmed += 1
        if self.unavailable_on_warm:
            raise EngineUnavailableError(f"{self.name} is not here", engine=self.name)

    async def list_voices(self) -> list[Voice]:
        self.asked_voices += 1
        return [Voice(f"{self.name}-voice", self.name, engine=self.name)]

    async def _synthesize(self, text: str, **_: object) -> SynthesizedAudio:
        raise AssertionError("not called in this test")


async def test_warm_up_warms_the_engine_that_will_speak_and_leaves_fallbacks_cold() -> None:
    first = _WarmRecorder("gone", unavailable=True)
    second = _WarmRecorder("here")
    third = _WarmRecorder("fallback")
    chain = FallbackEngine([first, second, third])
    await chain.warm_up()
    assert (first.warmed, second.warmed, third.warmed) == (1, 1, 0)
    assert set(chain.unavailable) == {"gone"}
    await chain.warm_up()  # ruled-out engines are not warmed again
    assert (first.warmed, second.warmed, third.warmed) == (1, 2, 0)


@pytest.mark.parametrize("reachable", [True, False])
async def test_remote_engines_are_warmed_alongside_the_first_local_one(reachable: bool) -> None:
    remote = _WarmRecorder("online", unavailable=not reachable, remote=True)
    local = _WarmRecorder("local")
    later = _WarmRecorder("later")
    chain = FallbackEngine([remote, local, later])
    await chain.warm_up()
    assert (remote.warmed, local.warmed, later.warmed) == (1, 1, 0)
    assert list(chain.unavailable) == ([] if reachable else ["online"])


async def test_choose_without_a_voice_asks_no_engine_for_voices() -> None:
    gone = _WarmRecorder("gone", unavailable=True)
    here = _WarmRecorder("here")
    later = _WarmRecorder("later")
    chain = FallbackEngine([gone, here, later])
    assert await chain.choose() == "here: gone unavailable (gone is not here)"
    assert (here.asked_voices, later.asked_voices, later.warmed) == (0, 0, 0)
    assert (await chain.choose("later-voice")).startswith("later: voice later-voice is a later")
    assert later.asked_voices == 1
