"""Streamed synthesis (engine.stream), the base class's retry policy and text sanitising.

Real engines where installed (espeak-ng, piper); the streaming FakeEngine for
causality (gates, never timing).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import struct

import pytest

from tests.fakes.engine import FakeEngine, StreamingFakeEngine
from tts import (
    AudioChunk,
    EspeakEngine,
    FallbackEngine,
    RetryPolicy,
    SynthesisError,
    SynthesizedAudio,
    TTSEngine,
    pcm_to_wav,
    sanitize_text,
)
from tts._audio import WavStreamParser, normalize_wav

LONG = " ".join(f"This is sentence number {n}, and it carries on for a while." for n in range(12))
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng missing")


async def chunks_of(engine: TTSEngine, text: str, **kw: object) -> tuple[list[AudioChunk], object]:
    stream = engine.stream(text, **kw)  # type: ignore[arg-type]
    async with contextlib.aclosing(stream):
        chunks = [chunk async for chunk in stream]
    return chunks, stream


@needs_espeak
async def test_espeak_streams_pcm_that_adds_up_to_the_whole_audio() -> None:
    async with EspeakEngine() as engine:
        chunks, stream = await chunks_of(engine, LONG)
        whole = await engine.synthesize(LONG)
    audio = stream.audio  # type: ignore[attr-defined]
    assert len(chunks) > 1, "espeak-ng's stdout should arrive in more than one piece"
    assert {(c.format, c.sample_rate, c.channels, c.engine) for c in chunks} == {
        ("pcm", 22050, 1, "espeak")
    }
    pcm = b"".join(c.data for c in chunks)
    assert all(len(c.data) % 2 == 0 for c in chunks)
    assert normalize_wav(audio.data).pcm == pcm
    assert audio.duration_s == pytest.approx(len(pcm) / 2 / 22050)
    assert audio.format == "wav" and audio.words and audio.text == LONG
    assert whole.duration_s == pytest.approx(audio.duration_s, rel=0.01)  # same code path


async def test_piper_yields_one_chunk_per_sentence() -> None:
    pytest.importorskip("piper")
    from tts import PiperEngine

    text = "The first sentence is short. The second one follows it. And a third."
    async with PiperEngine() as engine:
        try:
            chunks, stream = await chunks_of(engine, text)
        except Exception as exc:  # no voice model installed here
            pytest.skip(f"piper cannot run: {exc}")
    audio = stream.audio  # type: ignore[attr-defined]
    assert len(chunks) == 3
    assert normalize_wav(audio.data).pcm == b"".join(c.data for c in chunks)
    assert audio.engine == "piper" and audio.sample_rate == chunks[0].sample_rate


async def test_the_first_chunk_is_handed_out_while_the_engine_still_works() -> None:
    hold = asyncio.Event()
    engine = StreamingFakeEngine(pieces=3, hold={0: hold})
    stream = engine.stream("Hello there, this is streamed.")
    got = []
    async with contextlib.aclosing(stream):
        async for chunk in stream:
            got.append(chunk)
            if len(got) == 1:
                # the engine is still inside its first yield, and held after it
                assert engine.sent[0] == 0 and not hold.is_set()
                assert stream.first_chunk_s is not None
                hold.set()  # only now may the engine go on: causality, not timing
    assert len(got) == 3
    plain = await FakeEngine().synthesize("Hello there, this is streamed.")
    assert stream.audio.data == plain.data and stream.audio.words == plain.words


async def test_retryable_failure_is_retried_only_before_the_first_chunk() -> None:
    flaky = StreamingFakeEngine(
        fail_on={0: SynthesisError("flaky", retryable=True)},
        retry=RetryPolicy(attempts=3, backoff_s=0),
    )
    chunks, stream = await chunks_of(flaky, "Hello there.")
    assert stream.attempts == 2 and len(chunks) == 3  # type: ignore[attr-defined]

    late = StreamingFakeEngine(
        fail_mid={0: SynthesisError("dropped mid-segment", retryable=True)},
        retry=RetryPolicy(attempts=3, backoff_s=0),
    )
    seen: list[AudioChunk] = []
    stream = late.stream("Hello there.")
    with pytest.raises(SynthesisError, match="dropped mid-segment"):
        async with contextlib.aclosing(stream):
            async for chunk in stream:
                seen.append(chunk)
    assert len(seen) == 1 and stream.attempts == 1 and len(late.calls) == 1
    with pytest.raises(RuntimeError, match="not finished"):
        stream.audio  # noqa: B018


async def test_fallback_never_falls_back_after_the_first_chunk() -> None:
    broken = StreamingFakeEngine(name="first", fail_mid={0: SynthesisError("cut", engine="first")})
    second = FakeEngine(name="second")
    async with FallbackEngine([broken, second]) as chain:
        with pytest.raises(SynthesisError, match="cut"):
            await chunks_of(chain, "Hello there.")
    assert second.calls == []  # the first part was already handed out

    early = StreamingFakeEngine(name="first", fail_on={0: SynthesisError("x", engine="first")})
    async with FallbackEngine([early, FakeEngine(name="second")]) as chain:
        chunks, stream = await chunks_of(chain, "Hello there.")
    assert {c.engine for c in chunks} == {"second"}
    assert stream.audio.engine == "second"  # type: ignore[attr-defined]


async def test_synthesize_falls_back_after_a_mid_stream_failure() -> None:
    """synthesize() hands nothing out before the whole audio, so a failure midway
    through the first engine's stream still falls back: no segment is lost."""
    broken = StreamingFakeEngine(name="first", fail_mid={0: SynthesisError("cut", engine="first")})
    second = FakeEngine(name="second")
    async with FallbackEngine([broken, second]) as chain:
        audio = await chain.synthesize("Hello there.")
    assert audio.engine == "second" and len(broken.calls) == 1 and second.calls


async def test_synthesize_retries_a_failure_after_chunks_nobody_was_handed() -> None:
    """A stream cannot retry once a chunk is out; synthesize() hands nothing out
    before the whole audio, so the same mid-segment failure is retried."""
    def engine() -> StreamingFakeEngine:
        return StreamingFakeEngine(fail_mid={0: SynthesisError("dropped", retryable=True)},
                                   retry=RetryPolicy(attempts=3, backoff_s=0))

    streamed = engine()
    with pytest.raises(SynthesisError, match="dropped"):
        await chunks_of(streamed, "Hello there.")
    whole = engine()
    audio = await whole.synthesize("Hello there.")
    assert len(whole.calls) == 2 and audio.duration_s > 0  # the second attempt spoke
    assert len(streamed.calls) == 1


async def test_a_stream_is_single_use_and_arguments_are_checked_at_once() -> None:
    engine = FakeEngine()
    stream = engine.stream("Hello.")
    await stream.collect()
    with pytest.raises(RuntimeError, match="only once"):
        aiter(stream)
    with pytest.raises(ValueError, match="rate"):
        engine.stream("Hello.", rate=9)
    with pytest.raises(ValueError, match="speakable"):
        engine.stream("\x00\x01 \x02")


class _Ragged(TTSEngine):
    """Yields PCM cut at odd byte offsets (torn frames)."""

    name = "ragged"

    async def _stream(self, text: str, **_: object):
        pcm = struct.pack("<6h", 1, 2, 3, 4, 5, 6)
        for piece in (pcm[:3], pcm[3:8], pcm[8:]):
            yield AudioChunk(piece, "pcm", 8000, 1)


async def test_torn_pcm_frames_are_handed_out_whole() -> None:
    chunks, stream = await chunks_of(_Ragged(), "x")
    assert [len(c.data) for c in chunks] == [2, 6, 4]
    assert normalize_wav(stream.audio.data).pcm == struct.pack("<6h", 1, 2, 3, 4, 5, 6)  # type: ignore[attr-defined]


class _Empty(TTSEngine):
    name = "empty"

    async def _stream(self, text: str, **_: object):
        if False:  # pragma: no cover
            yield AudioChunk(b"", "pcm", 8000, 1)


async def test_no_audio_is_a_synthesis_error() -> None:
    with pytest.raises(SynthesisError, match="returned no audio"):
        await _Empty().synthesize("Hello.")


def test_wav_stream_parser_takes_the_header_in_any_cut() -> None:
    pcm = struct.pack("<8h", *range(8))
    wav = pcm_to_wav(pcm, sample_rate=16000)
    streamed = wav[:4] + struct.pack("<I", 0x7FFFFFFF) + wav[8:40] + struct.pack("<I", 0x7FFFFFFF)
    streamed += pcm
    for cut in range(1, len(streamed)):
        parser = WavStreamParser()
        out = parser.feed(streamed[:cut]) + parser.feed(streamed[cut:])
        parser.close()
        assert out == pcm and parser.sample_rate == 16000 and parser.channels == 1
    with pytest.raises(ValueError, match="RIFF"):
        WavStreamParser().feed(b"not a wav at all")


def test_sanitize_text_removes_control_characters_only() -> None:
    assert sanitize_text("Hello\x00world") == "Hello world"
    assert sanitize_text("a\x00\x01\x02b") == "a b"
    assert sanitize_text("keep\ttabs\nand lines\r\n") == "keep\ttabs\nand lines\r\n"
    assert sanitize_text("café 🎉 \u200d ok") == "café 🎉 \u200d ok"
    assert sanitize_text("bad \ud800 surrogate\x7f\x85") == "bad   surrogate "
    assert sanitize_text("line\u2028para\u2029") == "line\npara\n"
    once = sanitize_text("x\x00\x0by")
    assert sanitize_text(once) == once


@needs_espeak
async def test_a_nul_byte_no_longer_cuts_the_segment() -> None:
    """espeak-ng stops reading at NUL: before the sanitising step, everything
    after it was silently lost."""
    plain = "The first half is here. The second half is right after it."
    async with EspeakEngine() as engine:
        with_nul = await engine.synthesize(plain.replace(". The", ".\x00The"))
        without = await engine.synthesize(plain.replace(". The", ". The"))
        first_half = await engine.synthesize("The first half is here.")
    assert "\x00" not in with_nul.text and with_nul.text == plain.replace(". The", ". The")
    assert with_nul.duration_s == pytest.approx(without.duration_s, rel=0.05)
    assert with_nul.duration_s > 1.5 * first_half.duration_s


async def test_whole_engines_keep_their_own_audio() -> None:
    class Whole(TTSEngine):
        name = "whole"

        async def _synthesize(self, text: str, **_: object) -> SynthesizedAudio:
            return SynthesizedAudio(data=b"OggS" + bytes(60), format="ogg", sample_rate=48000,
                                    channels=1, duration_s=0.5, engine="", text=text)

    chunks, stream = await chunks_of(Whole(), "Hi.")
    assert chunks == []  # not PCM nor MP3: only the whole audio is handed out
    audio = stream.audio  # type: ignore[attr-defined]
    assert audio.format == "ogg" and audio.engine == "whole" and audio.duration_s == 0.5
