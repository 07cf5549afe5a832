"""Player against a real PulseAudio null sink, recorded through its monitor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from output import AudioOutput, NoAudioDeviceError, PlaybackError, Player, find_audio_output
from tests.fakes.pulse import PulseServer
from tests.fakes.tones import dominant_freq, freq_track, loud_runs, samples, tone_wav

RATE = 48000  # recorder rate


def _tone_file(tmp_path: Path, name: str, freq: float, seconds: float) -> Path:
    path = tmp_path / name
    path.write_bytes(tone_wav(freq, seconds))
    return path


def test_detect_finds_the_pulse_server(pulse_env: PulseServer) -> None:
    out = find_audio_output(device=pulse_env.sink)
    assert out.backend == "pulse" and out.device == "ttsnull"
    assert out.command(48000, 2)[0] == "pacat"


def test_no_server_raises_no_audio_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing-here")
    expected = r"no audio output found \(no PulseAudio server\)"
    with pytest.raises(NoAudioDeviceError, match=expected) as info:
        Player.detect(backends=("pulse",))
    # The message stays one short line; what the tools printed is in `checked`.
    assert "\n" not in str(info.value)
    assert info.value.checked[0].startswith("pulse: no server (")


def test_no_server_and_no_card_raises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if Path("/dev/snd").exists():
        pytest.skip("this machine has a sound card")
    monkeypatch.setenv("PULSE_SERVER", f"unix:{tmp_path}/nothing-here")
    with pytest.raises(NoAudioDeviceError) as info:
        find_audio_output()
    assert [c.split(":")[0] for c in info.value.checked] == ["pulse", "alsa"]


def test_bad_options() -> None:
    with pytest.raises(ValueError, match="sample_rate must be an int in"):
        Player(AudioOutput("pulse"), sample_rate=100)
    with pytest.raises(ValueError, match="backend must be one of"):
        AudioOutput("mpv")


async def test_two_segments_play_in_order_and_gapless(
    pulse_env: PulseServer, tmp_path: Path
) -> None:
    low = _tone_file(tmp_path, "a.wav", 440, 0.6)
    high = _tone_file(tmp_path, "b.wav", 1500, 0.6)
    with pulse_env.record(sample_rate=RATE) as rec:
        async with Player.detect(device=pulse_env.sink) as player:
            player.enqueue(low)
            player.enqueue(high)
            await player.drain()
            assert player.played == [low, high]
        assert rec.wait_for_seconds(1.15), "the recording never held both tones"
        pcm = samples(rec.pcm)
    runs = loud_runs(pcm, RATE)
    # One continuous sound: the two files follow each other without a gap.
    assert len(runs) == 1, runs
    start, end = runs[0]
    assert end - start == pytest.approx(1.2, abs=0.05)
    first = pcm[int((start + 0.1) * RATE) : int((start + 0.5) * RATE)]
    second = pcm[int((start + 0.7) * RATE) : int((start + 1.1) * RATE)]
    assert dominant_freq(first, RATE) == pytest.approx(440, rel=0.05)
    assert dominant_freq(second, RATE) == pytest.approx(1500, rel=0.05)


async def test_stop_cuts_playback_at_once(pulse_env: PulseServer, tmp_path: Path) -> None:
    long = _tone_file(tmp_path, "long.wav", 440, 20.0)
    # 6000 Hz: outside anything a window mixing 440 and 3000 Hz can read as
    # (zero-crossing estimates of a mix land between the two).
    after = _tone_file(tmp_path, "after.wav", 6000, 1.0)

    def marker_heard(pcm: bytes) -> bool:
        return sum(1 for f in freq_track(samples(pcm), RATE) if abs(f - 3000) < 150) >= 5

    with pulse_env.record(sample_rate=RATE) as rec:
        player = Player.detect(device=pulse_env.sink)
        player.enqueue(long)
        player.enqueue(after)
        assert await asyncio.to_thread(rec.wait_for_seconds, 0.3), "playback never started"
        await player.stop()
        assert player.played == []  # neither file was handed over completely
        # A marker played after stop: the recording must be the cut 440 Hz tone,
        # then the marker, and never the 6000 Hz file that was queued.
        marker = _tone_file(tmp_path, "marker.wav", 3000, 0.6)
        await player.play(marker)
        await player.aclose()
        heard = await asyncio.to_thread(rec.wait_until, marker_heard, timeout=20)
        assert heard, f"marker never recorded: {freq_track(samples(rec.pcm), RATE)}"
        track = freq_track(samples(rec.pcm), RATE)
    tones = [440 if abs(f - 440) < 40 else 3000 if abs(f - 3000) < 150 else 0 for f in track]
    # Windows straddling the cut mix two signals (0 here): at most a couple.
    assert tones.count(0) <= 2, track
    assert not any(abs(f - 6000) < 300 for f in track), "the queued file played after stop"
    known = [t for t in tones if t]
    first_marker = known.index(3000)
    assert set(known[:first_marker]) == {440}
    assert set(known[first_marker:]) == {3000}
    # Far less than the 20 s file was heard (window count, not wall time).
    assert first_marker * 0.05 < 10


async def test_undecodable_file_is_reported_and_the_rest_plays(
    pulse_env: PulseServer, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"ID3 this is not audio")
    good = _tone_file(tmp_path, "good.wav", 1000, 0.3)
    with pulse_env.record(sample_rate=RATE) as rec:
        player = Player.detect(device=pulse_env.sink)
        player.enqueue(bad)
        player.enqueue(good)
        with pytest.raises(PlaybackError, match="could not decode") as info:
            await player.drain()
        assert info.value.path == bad
        assert player.played == [good]
        await player.drain()  # the error was reported once
        await player.aclose()
        assert rec.wait_for_seconds(0.25)
    assert dominant_freq(samples(rec.pcm)[: int(0.25 * RATE)], RATE) == pytest.approx(
        1000, rel=0.05
    )


async def test_closed_player_refuses_work(pulse_env: PulseServer, tmp_path: Path) -> None:
    player = Player.detect(device=pulse_env.sink)
    await player.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        player.enqueue(_tone_file(tmp_path, "x.wav", 440, 0.1))
    with pytest.raises(FileNotFoundError):
        Player.detect(device=pulse_env.sink).enqueue(tmp_path / "missing.wav")


class _LingeringSink(AudioOutput):
    """A 'sound server client' that takes all audio, then lingers before exiting."""

    def command(self, sample_rate: int, channels: int) -> list[str]:
        return ["sh", "-c", "cat >/dev/null; sleep 30"]


async def test_stop_releases_a_pending_drain(tmp_path: Path) -> None:
    """stop() while drain() waits on the sink: the drain returns (documented), never hangs."""
    player = Player(_LingeringSink("pulse"))
    waiting_for_sink = asyncio.Event()
    finish_sink = player._finish_sink

    async def spy() -> None:
        waiting_for_sink.set()
        await finish_sink()

    player._finish_sink = spy  # type: ignore[method-assign]
    tone = _tone_file(tmp_path, "tone.wav", 440, 0.2)
    player.enqueue(tone)
    draining = asyncio.ensure_future(player.drain())
    async with asyncio.timeout(60):  # a deadlock guard, not a measurement
        await waiting_for_sink.wait()  # the worker took the drain marker
        assert not draining.done()
        await player.stop()
        await draining
    await player.aclose()
