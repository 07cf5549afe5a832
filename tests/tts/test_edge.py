"""EdgeEngine against FakeEdgeServer (the edge-tts wire protocol on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import os

import edge_tts.communicate
import edge_tts.voices
import pytest

from tests.fakes.edge_server import FakeEdgeServer
from tts import EdgeEngine, EngineUnavailableError, SynthesisError
from tts._edge import edge_prosody

TEXT = "Hello there. This is speakstream & friends."


@pytest.fixture
async def server(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    async with FakeEdgeServer() as server:
        monkeypatch.setattr(edge_tts.communicate, "WSS_URL", server.wss_url)
        monkeypatch.setattr(edge_tts.voices, "VOICE_LIST", server.voice_list_url)
        yield server


async def test_mp3_with_measured_duration_and_word_timings(server, probe) -> None:  # type: ignore[no-untyped-def]
    async with EdgeEngine() as engine:
        audio = await engine.synthesize(TEXT)
    judged = probe(audio.data, ".mp3")
    assert audio.format == "mp3" and judged["codec"] == "mp3"
    assert (audio.sample_rate, audio.channels) == (24000, 1) == (
        judged["sample_rate"], judged["channels"]
    )
    assert audio.duration_s == pytest.approx(judged["duration_s"], rel=0.03)
    frames = -(-len(TEXT) * 0.06 // 0.024)
    assert audio.duration_s == pytest.approx(frames * 0.024)
    assert [w.text for w in audio.words] == TEXT.split()
    offsets = [w.offset_s for w in audio.words]
    assert offsets == sorted(offsets) and audio.words[-1].offset_s < audio.duration_s
    assert audio.engine == "edge" and audio.voice == "en-US-EmmaMultilingualNeural"


async def test_request_carries_voice_prosody_text_and_protocol_fields(server) -> None:  # type: ignore[no-untyped-def]
    async with EdgeEngine(voice="de-DE-ConradNeural") as engine:
        await engine.synthesize(TEXT, rate=1.5, volume=0.8, pitch=1.2)
    request = server.requests[0]
    assert request["voice"] == "Microsoft Server Speech Text to Speech Voice (de-DE, ConradNeural)"
    assert (request["rate"], request["volume"], request["pitch"]) == ("+50%", "-20%", "+30Hz")
    assert request["text"] == TEXT  # escaped on the wire, unescaped by the server
    audio_config = request["config"]["context"]["synthesis"]["audio"]
    assert audio_config["outputFormat"] == "audio-24khz-48kbitrate-mono-mp3"
    assert audio_config["metadataoptions"]["wordBoundaryEnabled"] == "true"
    query = server.connections[0]["query"]
    assert {"TrustedClientToken", "ConnectionId", "Sec-MS-GEC", "Sec-MS-GEC-Version"} <= set(query)


def test_prosody_mapping() -> None:
    assert edge_prosody(rate=None, volume=None, pitch=None) == {
        "rate": "+0%", "volume": "+0%", "pitch": "+0Hz"
    }
    assert edge_prosody(rate=0.25, volume=0.0, pitch=0.5) == {
        "rate": "-75%", "volume": "-100%", "pitch": "-75Hz"
    }


async def test_403_twice_is_retried_with_backoff(server) -> None:  # type: ignore[no-untyped-def]
    server.failures += ["403", "403"]  # edge-tts retries once itself, then we retry
    async with EdgeEngine(backoff_s=0.01) as engine:
        audio = await engine.synthesize("Hello.")
    assert audio.duration_s > 0 and len(server.connections) == 3


@pytest.mark.parametrize("mode", ["no_audio", "drop", "500"])
async def test_transient_failures_are_retried(server, mode: str) -> None:  # type: ignore[no-untyped-def]
    server.failures.append(mode)
    async with EdgeEngine(backoff_s=0.01) as engine:
        audio = await engine.synthesize("Hello.")
    assert audio.duration_s > 0 and len(server.connections) == 2


async def test_persistent_no_audio_is_a_final_synthesis_error(server) -> None:  # type: ignore[no-untyped-def]
    """The engine retried itself; the error says not to retry again."""
    server.failures += ["no_audio"] * 3
    async with EdgeEngine(attempts=3, backoff_s=0.01) as engine:
        with pytest.raises(SynthesisError) as info:
            await engine.synthesize("Hello.")
    assert not info.value.retryable and info.value.text == "Hello."
    assert type(info.value.__cause__).__name__ == "NoAudioReceived"
    assert len(server.connections) == 3


async def test_fallback_does_not_multiply_edge_retries(server) -> None:  # type: ignore[no-untyped-def]
    from tests.fakes.engine import FakeEngine
    from tts import FallbackEngine

    server.failures += ["no_audio"] * 10
    chain = FallbackEngine([EdgeEngine(attempts=3, backoff_s=0.01), FakeEngine()])
    async with chain:
        audio = await chain.synthesize("Hello.")
    assert audio.engine == "fake"
    assert len(server.connections) == 3  # edge's own attempts only: the chain never retries


async def test_http_400_is_permanent(server) -> None:  # type: ignore[no-untyped-def]
    server.failures.append("400")
    async with EdgeEngine(backoff_s=0.01) as engine:
        with pytest.raises(SynthesisError, match="HTTP 400") as info:
            await engine.synthesize("Hello.")
    assert not info.value.retryable and len(server.connections) == 1


async def test_unexpected_response_is_permanent(server) -> None:  # type: ignore[no-untyped-def]
    server.failures.append("bad_path")
    async with EdgeEngine(backoff_s=0.01) as engine:
        with pytest.raises(SynthesisError) as info:
            await engine.synthesize("Hello.")
    assert type(info.value.__cause__).__name__ == "UnexpectedResponse"
    assert not info.value.retryable


async def test_silent_server_times_out_and_is_retried(server) -> None:  # type: ignore[no-untyped-def]
    server.failures.append("hang")  # turn.start, then nothing
    async with EdgeEngine(attempt_timeout_s=0.5, backoff_s=0.01) as engine:
        audio = await engine.synthesize("Hello.")
    assert audio.duration_s > 0 and len(server.connections) == 2


async def test_invalid_voice_is_rejected_before_connecting(server) -> None:  # type: ignore[no-untyped-def]
    async with EdgeEngine() as engine:
        with pytest.raises(SynthesisError, match="Invalid voice") as info:
            await engine.synthesize("Hello.", voice="en-us")
    assert isinstance(info.value.__cause__, ValueError) and server.connections == []


async def test_connection_refused_is_unavailable_without_retry(
    monkeypatch: pytest.MonkeyPatch, unused_tcp_port: int
) -> None:
    import aiohttp

    url = f"ws://127.0.0.1:{unused_tcp_port}/edge/v1?TrustedClientToken=x"
    monkeypatch.setattr(edge_tts.communicate, "WSS_URL", url)
    async with EdgeEngine(backoff_s=30) as engine:  # a retry would make this test crawl
        with pytest.raises(EngineUnavailableError) as info:
            await engine.synthesize("Hello.")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


async def test_dns_failure_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    import aiohttp

    monkeypatch.setattr(
        edge_tts.communicate, "WSS_URL", "ws://speakstream-no-such-host.invalid/edge/v1?x=1"
    )
    async with EdgeEngine(backoff_s=30) as engine:
        with pytest.raises(EngineUnavailableError) as info:
            await engine.synthesize("Hello.")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorDNSError)


async def test_warm_up_rules_edge_out_when_its_host_does_not_resolve(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        edge_tts.communicate, "WSS_URL", "ws://speakstream-no-such-host.invalid/edge/v1?x=1"
    )
    async with EdgeEngine() as engine:
        with pytest.raises(EngineUnavailableError, match=r"speakstream-no-such-host\.invalid"):
            await engine.warm_up()


async def test_warm_up_passes_when_the_service_resolves_and_then_it_speaks(server) -> None:  # type: ignore[no-untyped-def]
    async with EdgeEngine() as engine:
        await engine.warm_up()
        assert (await engine.synthesize("Hello.")).engine == "edge"


def test_the_service_host_is_edge_tts_own() -> None:
    from urllib.parse import urlsplit

    import edge_tts.constants

    from tts._edge import SERVICE_HOST

    assert urlsplit(edge_tts.constants.WSS_URL).hostname == SERVICE_HOST


async def test_list_voices(server) -> None:  # type: ignore[no-untyped-def]
    async with EdgeEngine() as engine:
        voices = await engine.list_voices()
    assert [(v.id, v.language, v.gender) for v in voices] == [
        ("en-US-EmmaMultilingualNeural", "en-US", "female"),
        ("de-DE-ConradNeural", "de-DE", "male"),
    ]


@pytest.mark.parametrize("parallel", [1, 2])
async def test_parallel_bounds_the_requests_open_at_once(server, parallel) -> None:  # type: ignore[no-untyped-def]
    texts = [f"Sentence number {i}." for i in range(5)]
    async with EdgeEngine(parallel=parallel) as engine:
        done = await asyncio.gather(*(engine.synthesize(t) for t in texts))
    assert [d.text for d in done] == texts
    assert len(server.connections) == len(texts) and 1 <= server.open_max <= parallel
    with pytest.raises(ValueError, match="parallel"):
        EdgeEngine(parallel=65)


def test_options_are_validated() -> None:
    with pytest.raises(ValueError, match="attempts"):
        EdgeEngine(attempts=0)
    with pytest.raises(ValueError, match="backoff_s"):
        EdgeEngine(backoff_s=-1)


@pytest.mark.network
@pytest.mark.skipif(not os.environ.get("SPEAKSTREAM_NETWORK"), reason="set SPEAKSTREAM_NETWORK=1")
async def test_live_edge_service(probe) -> None:  # type: ignore[no-untyped-def]
    async with EdgeEngine() as engine:
        audio = await engine.synthesize("Hello there. This is speakstream.")
    assert audio.format == "mp3" and audio.words
    assert audio.duration_s == pytest.approx(probe(audio.data, ".mp3")["duration_s"], rel=0.05)


async def test_audio_is_handed_out_frame_by_frame_as_it_arrives(server) -> None:  # type: ignore[no-untyped-def]
    import contextlib

    async with EdgeEngine() as engine:
        stream = engine.stream(TEXT)
        async with contextlib.aclosing(stream):
            chunks = [chunk async for chunk in stream]
    audio = stream.audio
    assert len(chunks) > 1 and {(c.format, c.sample_rate, c.channels) for c in chunks} == {
        ("mp3", 24000, 1)
    }
    assert b"".join(c.data for c in chunks) == audio.data  # the whole MP3, nothing re-encoded
    assert [w.text for w in audio.words] == TEXT.split()  # timings kept from the stream
