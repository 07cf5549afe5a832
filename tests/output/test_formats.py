"""Format conversion round trips, checked with ffprobe, pydub and magic bytes."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from output import FILE_FORMATS, FormatError, convert, probe_duration, sniff_format
from tests.fakes.tones import tone_pcm
from tests.output.conftest import decode_file, espeak_audio, tone_audio
from tts import SynthesizedAudio

MAGIC = {
    "wav": lambda d: d[:4] == b"RIFF" and d[8:12] == b"WAVE",
    "mp3": lambda d: d[:3] == b"ID3" or (d[0] == 0xFF and d[1] & 0xE0 == 0xE0),
    "ogg": lambda d: d[:4] == b"OggS" and b"\x01vorbis" in d[:64],
    "opus": lambda d: d[:4] == b"OggS" and b"OpusHead" in d[:64],
    "flac": lambda d: d[:4] == b"fLaC",
}


@pytest.fixture(scope="module")
def speech() -> SynthesizedAudio:
    return espeak_audio("Hello there. This is speakstream.")


@pytest.mark.parametrize("fmt", [f for f in FILE_FORMATS if f != "wav"])
def test_wav_to_format_and_back(speech: SynthesizedAudio, fmt: str, tmp_path: Path) -> None:
    out = convert(speech, fmt)
    assert out.format == fmt
    assert MAGIC[fmt](out.data), out.data[:16]
    assert sniff_format(out.data) == fmt
    assert out.words == speech.words and out.engine == "espeak" and out.text == speech.text
    # The reported duration is the audio's own length...
    assert out.duration_s == pytest.approx(speech.duration_s, abs=1e-6)
    # ...and ffprobe and pydub agree with it (MP3 padding stays within 5%).
    path = tmp_path / f"x.{fmt}"
    path.write_bytes(out.data)
    assert probe_duration(path) == pytest.approx(speech.duration_s, rel=0.05)
    decoded = decode_file(path)
    assert decoded.frame_rate == out.sample_rate
    assert decoded.channels == 1
    back = convert(out, "wav")
    assert MAGIC["wav"](back.data)
    assert back.duration_s == pytest.approx(speech.duration_s, rel=0.02)


def test_same_format_is_not_converted(speech: SynthesizedAudio) -> None:
    assert convert(speech, "wav") is speech


def test_pcm_in_and_out() -> None:
    pcm = tone_pcm(440, 0.5)
    raw = SynthesizedAudio(data=pcm, format="pcm", sample_rate=22050, channels=1, duration_s=0.5)
    wav = convert(raw, "wav")
    assert sniff_format(wav.data) == "wav"
    assert wav.duration_s == pytest.approx(0.5)
    assert convert(wav, "pcm").data == pcm


def test_mislabelled_audio_is_refused(speech: SynthesizedAudio) -> None:
    mp3 = convert(speech, "mp3")
    liar = dataclasses.replace(mp3, format="wav")  # "WAV" that is really MP3
    with pytest.raises(FormatError, match="labelled 'wav' but its bytes are mp3"):
        convert(liar, "wav")
    with pytest.raises(FormatError):
        convert(liar, "flac")


def test_undecodable_bytes_raise_format_error() -> None:
    # Valid ID3 magic, garbage after it: ffmpeg must fail, mapped to FormatError.
    junk = SynthesizedAudio(
        data=b"ID3" + bytes(range(256)) * 4,
        format="mp3",
        sample_rate=24000,
        channels=1,
        duration_s=1.0,
    )
    with pytest.raises(FormatError) as info:
        convert(junk, "wav")
    assert info.value.format == "mp3"
    assert info.value.__cause__ is not None


def test_unknown_target_format_names_option() -> None:
    with pytest.raises(
        ValueError, match=r"format must be one of wav, mp3, ogg, opus, flac, got 'aac'"
    ):
        convert(tone_audio(440, 0.1), "aac")


def test_probe_duration_errors(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="ffprobe failed"):
        probe_duration(tmp_path / "missing.wav")
    bad = tmp_path / "bad.mp3"
    bad.write_bytes(b"not audio at all")
    with pytest.raises(FormatError):
        probe_duration(bad)


def test_sniff_unknown_is_none() -> None:
    assert sniff_format(b"") is None
    assert sniff_format(b"OggS" + b"\0" * 60) is None
    assert sniff_format(b"RIFF\0\0\0\0AVI ") is None
    assert sniff_format(b"fLaC\0\0\0\x22") == "flac"
