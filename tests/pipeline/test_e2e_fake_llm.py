"""End to end over HTTP: the local fake LLM server (real Ollama/OpenAI wire
formats) → pipeline → FakeEngine or real espeak-ng → files.

Causality is proven with the server's pacing gate and its record of how many
tokens it had sent; no elapsed time is asserted.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import pytest

import pipeline
from output import probe_duration, read_manifest, sniff_format
from pipeline import (
    AudioReady,
    ProgressEvent,
    RunCompleted,
    RunFailed,
    RunStarted,
    SegmentQueued,
    TextDelta,
    create_streaming_pipeline,
)
from tests.fakes.engine import FakeEngine
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply

GUARD = 60

ANSWER = (
    "The sky looks blue because air scatters short wavelengths of sunlight more than long ones. "
    "This is called Rayleigh scattering. At sunset the light travels through more air, "
    "so the blue is scattered away and reds remain. That is why evenings glow orange."
)


def tokens(text: str) -> list[str]:
    parts = text.split(" ")
    return [parts[0]] + [" " + p for p in parts[1:]]


TOKENS = tokens(ANSWER)


def make(server: FakeLLMServer, tmp_path: Path, provider: str = "ollama", **kw: Any) -> Any:
    base_url = server.url + ("/v1" if provider == "openai" else "")
    engine = kw.pop("engine", None) or FakeEngine()
    return create_streaming_pipeline(
        provider,
        streaming_config={"output_dir": str(tmp_path), "sentence_buffer_size": 1, **kw},
        llm_config={"model": "fake-model", "base_url": base_url},
        tts_engine=engine,
    )


def head(path: str | Path) -> bytes:
    return Path(path).read_bytes()


def of(events: list[ProgressEvent], cls: type) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


@pytest.mark.parametrize("provider", ["ollama", "openai"])
async def test_first_audio_file_exists_before_the_llm_stream_ends(
    tmp_path: Path, provider: str
) -> None:
    gate = Gate()
    # The first sentence and two more words (a boundary is confirmed once the next
    # word is complete); the rest is held until the first file exists.
    first_sentence = len(tokens("The sky looks blue because air scatters short wavelengths of "
                                "sunlight more than long ones. This is"))
    gate.release(first_sentence)
    seen: list[ProgressEvent] = []
    sent_at_first_audio: int | None = None
    with FakeLLMServer(Reply(tokens=TOKENS, gate=gate)) as server:
        async with make(server, tmp_path, provider) as pipe:
            async with asyncio.timeout(GUARD):
                async for event in pipe.astream_chat_to_audio("Why is the sky blue?"):
                    seen.append(event)
                    if isinstance(event, AudioReady) and sent_at_first_audio is None:
                        sent_at_first_audio = server.requests[0].tokens_sent
                        gate.release_all()
        request = server.requests[0]
    assert request.complete and request.json["messages"][-1]["content"] == "Why is the sky blue?"
    assert sent_at_first_audio is not None and sent_at_first_audio < len(TOKENS)
    first = of(seen, AudioReady)[0]
    assert first.index == 0 and first.text.startswith("The sky looks blue")
    assert of(seen, SegmentQueued)[0].reason == "sentences"  # not the max_buffer_time rule
    deltas = of(seen, TextDelta)
    # the first file was reported while most of the answer had not even been sent
    assert seen.index(first) < seen.index(deltas[first_sentence])
    started = seen[0]
    assert isinstance(started, RunStarted)
    assert (started.llm_provider, started.model) == (provider, "fake-model")
    done = seen[-1]
    assert isinstance(done, RunCompleted) and done.error is None
    assert done.complete_text == ANSWER
    assert [a.index for a in of(seen, AudioReady)] == [s.index for s in of(seen, SegmentQueued)]
    assert done.ttft_s is not None and done.ttfa_s is not None


async def test_closing_the_stream_disconnects_the_llm_request(tmp_path: Path) -> None:
    gate = Gate()
    gate.release(len(tokens("The sky looks blue because air scatters short wavelengths of "
                            "sunlight more than long ones. This is")))
    engine = FakeEngine()
    with FakeLLMServer(Reply(tokens=TOKENS, gate=gate)) as server:
        async with make(server, tmp_path, engine=engine) as pipe:
            events = pipe.astream_chat_to_audio("Why?", run_id="cut")
            async with asyncio.timeout(GUARD):
                async for event in events:
                    if isinstance(event, AudioReady):
                        break
                await events.aclose()
            request = server.requests[0]
            assert await request.wait_disconnected()
        assert not request.complete and request.tokens_sent < len(TOKENS)
    assert sorted(p.name for p in (tmp_path / "cut").glob("segment_*")) == ["segment_0000.wav"]
    assert read_manifest(tmp_path / "cut")[-1]["status"] == "cancelled"


@pytest.mark.parametrize("provider", ["ollama", "openai"])
async def test_llm_failure_mid_stream_keeps_the_partial_audio(
    tmp_path: Path, provider: str
) -> None:
    cut = len(tokens("The sky looks blue because air scatters short wavelengths of sunlight "
                     "more than long ones. This is called Rayleigh"))
    with FakeLLMServer(Reply(tokens=TOKENS, drop_after=cut)) as server:
        async with make(server, tmp_path, provider) as pipe:
            async with asyncio.timeout(GUARD):
                events = [e async for e in pipe.astream_chat_to_audio("Why?", run_id="drop")]
    failed = of(events, RunFailed)
    assert len(failed) == 1 and failed[0].error_type == "LLMStreamError"
    received = "".join(TOKENS[:cut])
    assert failed[0].partial_text == received
    audio = of(events, AudioReady)
    assert [a.text for a in audio] == [
        "The sky looks blue because air scatters short wavelengths of sunlight more than long "
        "ones.",
        "This is called Rayleigh",
    ]
    assert events.index(audio[-1]) < events.index(failed[0])
    done = events[-1]
    assert isinstance(done, RunCompleted) and done.error is not None
    assert done.error.startswith("LLMStreamError") and done.complete_text == received
    assert [bool(head(p)) for p in done.audio_files] == [True, True]
    assert read_manifest(tmp_path / "drop")[-1]["status"] == "failed"


def test_module_level_sync_function(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        dicts = list(
            pipeline.stream_chat_to_audio(
                "Why is the sky blue?",
                llm_provider="ollama",
                llm_config={"base_url": server.url, "model": "fake-model"},
                tts_engine=FakeEngine(),
                streaming_config={"output_dir": str(tmp_path)},
            )
        )
    statuses = [d["status"] for d in dicts]
    assert statuses[0] == "started" and statuses[-1] == "completed"
    assert {"text", "segment", "audio"} <= set(statuses)
    assert dicts[-1]["complete_text"] == ANSWER
    assert dicts[-1]["audio_files_generated"] == len(dicts[-1]["audio_files"]) >= 2


async def test_module_level_async_function(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        async with asyncio.timeout(GUARD):
            events = [
                e
                async for e in pipeline.astream_chat_to_audio(
                    "Why?",
                    llm_provider="openai",
                    llm_config={"base_url": server.url + "/v1", "model": "m"},
                    tts_engine=FakeEngine(),
                    streaming_config={"output_dir": str(tmp_path)},
                )
            ]
    assert isinstance(events[-1], RunCompleted) and events[-1].complete_text == ANSWER


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
async def test_real_espeak_end_to_end(tmp_path: Path) -> None:
    from tts import EspeakEngine

    with FakeLLMServer(Reply(tokens=TOKENS)) as server:
        async with EspeakEngine() as engine:
            async with make(server, tmp_path, engine=engine, format="mp3", merge=True) as pipe:
                async with asyncio.timeout(GUARD):
                    events = [e async for e in pipe.astream_chat_to_audio("Why?")]
    done = events[-1]
    assert isinstance(done, RunCompleted) and done.error is None
    assert all(a.engine == "espeak" for a in of(events, AudioReady))
    for path in done.audio_files:
        assert sniff_format(head(path)) == "mp3"
    assert done.audio_s > 5  # four sentences of real speech
    assert done.merged_path is not None
    assert probe_duration(done.merged_path) == pytest.approx(done.audio_s, abs=0.2)
