"""Playback through a real PulseAudio null sink: segments are heard in index order."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import RunCompleted, RunFailed, create_streaming_pipeline
from tests.fakes.pulse import PulseServer, pulse_available
from tests.fakes.tones import freq_track, samples, tone_wav
from tts import SynthesizedAudio, TTSEngine

pytestmark = pytest.mark.skipif(not pulse_available(), reason="needs pulseaudio-utils")

FREQS = {"Low": 440.0, "High": 1320.0}


class ToneEngine(TTSEngine):
    """Speaks a segment as a 0.6 s tone: 440 Hz if it starts with "Low", else 1320 Hz.

    The "Low" segment is made to finish last, so in-order playback is tested."""

    name = "tone"

    def __init__(self) -> None:
        self.high_done = asyncio.Event()

    async def _synthesize(self, text: str, **_: object) -> SynthesizedAudio:
        word = text.split()[0]
        if word == "Low":
            await self.high_done.wait()
        audio = SynthesizedAudio(
            data=tone_wav(FREQS[word], 0.6), format="wav", sample_rate=22050, channels=1,
            duration_s=0.6, engine=self.name, text=text,
        )
        if word == "High":
            self.high_done.set()
        return audio


@pytest.fixture
def pulse(monkeypatch: pytest.MonkeyPatch) -> Iterator[PulseServer]:
    with PulseServer() as server:
        for key, value in server.env.items():
            monkeypatch.setenv(key, value)
        yield server


async def test_segments_are_played_in_index_order(pulse: PulseServer, tmp_path: Path) -> None:
    pipe = create_streaming_pipeline(
        None,
        streaming_config={"output_dir": str(tmp_path), "play": True, "sentence_buffer_size": 1,
                          "min_chunk_length": 0, "first_segment_min_length": None},
        output_config={"device": pulse.sink, "backends": ("pulse",)},
        tts_engine=ToneEngine(),
    )
    with pulse.record() as rec:
        async with pipe:
            assert await pipe.check_playback() is None
            async with asyncio.timeout(60):
                events = [e async for e in pipe.astream_text_to_audio(
                    "Low tone comes first. High tone comes second."
                )]
        assert await asyncio.to_thread(rec.wait_for_seconds, 1.5)
        pcm = rec.pcm
    assert not [e for e in events if isinstance(e, RunFailed)]
    assert isinstance(events[-1], RunCompleted) and len(events[-1].audio_files) == 2
    track = freq_track(samples(pcm), rec.sample_rate)
    assert track, "the recording is silent"
    low = [i for i, f in enumerate(track) if abs(f - 440) < 60]
    high = [i for i, f in enumerate(track) if abs(f - 1320) < 150]
    assert low and high and max(low) < min(high)
