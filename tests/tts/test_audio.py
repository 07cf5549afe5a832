"""tts._audio measures WAV/MP3 from their bytes; ffprobe is the independent judge."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tts._audio import mp3_info, normalize_wav, pcm_to_wav, speech_bounds

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg missing")


def _ffmpeg_tone(seconds: float, *args: str) -> bytes:
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", f"sine=frequency=300:duration={seconds}",
         *args, "pipe:1"],
        check=True, capture_output=True,
    ).stdout


def test_streamed_wav_header_sizes_are_repaired(probe) -> None:  # type: ignore[no-untyped-def]
    pcm = b"\x10\x00" * 22050  # one second
    good = pcm_to_wav(pcm, sample_rate=22050)
    # What espeak-ng --stdout writes: placeholder sizes in RIFF and data headers.
    streamed = good[:4] + b"\xff\xff\xff\x7f" + good[8:40] + b"\xff\xff\xff\x7f" + pcm
    wav = normalize_wav(streamed)
    assert wav.data == good
    assert wav.info.duration_s == 1.0
    assert probe(wav.data, ".wav")["duration_s"] == pytest.approx(1.0, abs=1e-3)


def test_wav_torn_last_frame_is_dropped() -> None:
    wav = normalize_wav(pcm_to_wav(b"\x00\x00" * 100, sample_rate=8000, channels=1) + b"\x01")
    assert wav.info.duration_s == 100 / 8000


@pytest.mark.parametrize(
    "junk", [b"", b"RIFF", b"ID3\x03" + b"\x00" * 50, b"RIFF\x00\x00\x00\x00WAVE"]
)
def test_wav_rejects_non_wav(junk: bytes) -> None:
    with pytest.raises(ValueError):
        normalize_wav(junk)


def test_speech_bounds_find_the_loud_part() -> None:
    rate = 1000
    pcm = b"\x00\x00" * 200 + b"\x00\x20" * 500 + b"\x00\x00" * 300
    start, end = speech_bounds(normalize_wav(pcm_to_wav(pcm, sample_rate=rate)))
    assert (start, end) == (0.2, 0.7)


@given(st.lists(st.integers(-32768, 32767), max_size=5000), st.integers(0, 32767))
def test_speech_bounds_match_a_sample_by_sample_scan(samples: list[int], threshold: int) -> None:
    pcm = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)
    loud = [i for i, s in enumerate(samples) if abs(s) > threshold]
    expected = (loud[0] / 1000, (loud[-1] + 1) / 1000) if loud else (0.0, len(samples) / 1000)
    wav = normalize_wav(pcm_to_wav(pcm, sample_rate=1000))
    assert speech_bounds(wav, threshold=threshold) == pytest.approx(expected)


@needs_ffmpeg
@pytest.mark.parametrize(
    ("args", "suffix"),
    [
        # edge-tts's format: 24 kHz, 48 kbit/s, mono, no tags
        (["-ar", "24000", "-ac", "1", "-b:a", "48k", "-write_xing", "0", "-id3v2_version", "0",
          "-f", "mp3"], ".mp3"),
        # ID3v2 tag + Xing/Info frame, MPEG-1 44.1 kHz stereo
        (["-ar", "44100", "-ac", "2", "-b:a", "128k", "-f", "mp3"], ".mp3"),
        # VBR, MPEG-2 16 kHz
        (["-ar", "16000", "-ac", "1", "-q:a", "5", "-f", "mp3"], ".mp3"),
    ],
)
def test_mp3_duration_agrees_with_ffprobe(args: list[str], suffix: str, probe) -> None:  # type: ignore[no-untyped-def]
    data = _ffmpeg_tone(2.5, *args)
    info = mp3_info(data)
    judged = probe(data, suffix)
    assert info.sample_rate == judged["sample_rate"]
    assert info.channels == judged["channels"]
    assert info.duration_s == pytest.approx(judged["duration_s"], rel=0.02)


def test_mp3_without_frames_is_rejected() -> None:
    with pytest.raises(ValueError, match="no MPEG audio frame"):
        mp3_info(b"\x00" * 1000)


def _aiff_file(tmp_path) -> bytes:  # type: ignore[no-untyped-def]
    """An AIFF as NSSpeechSynthesizer writes it: a file, with its sizes filled in."""
    path = tmp_path / "say.aiff"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=300:duration=0.5",
         "-ar", "22050", "-ac", "1", str(path)],
        check=True,
    )
    return path.read_bytes()


@needs_ffmpeg
async def test_aiff_from_macos_is_converted_to_wav(probe, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tts._process import aiff_to_wav

    aiff = _aiff_file(tmp_path)
    assert aiff[:4] == b"FORM"
    wav = normalize_wav(await aiff_to_wav(aiff, engine="pyttsx3", text="x"))
    assert wav.info.duration_s == pytest.approx(0.5, abs=1e-3)
    assert probe(wav.data, ".wav")["duration_s"] == pytest.approx(0.5, abs=1e-3)


def test_audio_from_wav_measures_and_names_the_engine_on_bad_bytes() -> None:
    from tts import SynthesisError
    from tts._audio import pcm_to_wav
    from tts._words import audio_from_wav

    pcm = (b"\x00\x10" * 11025)  # 0.5 s at 22050 Hz, mono, 16-bit
    audio = audio_from_wav(
        pcm_to_wav(pcm, sample_rate=22050), text="two words", engine="espeak", voice="en"
    )
    assert (audio.format, audio.sample_rate, audio.channels) == ("wav", 22050, 1)
    assert audio.duration_s == pytest.approx(0.5)
    assert [w.text for w in audio.words] == ["two", "words"]
    assert (audio.engine, audio.voice, audio.text) == ("espeak", "en", "two words")
    with pytest.raises(SynthesisError, match=r"espeak wrote no valid WAV \(4 bytes\)") as info:
        audio_from_wav(b"RIFX", text="x", engine="espeak", voice=None)
    assert info.value.engine == "espeak" and info.value.text == "x"
