"""Test audio: sine tones as WAV bytes, and simple analysis of 16-bit PCM.

Shared by tests and bench/. Pure stdlib (``wave``, ``array``, ``math``).
"""

from __future__ import annotations

import array
import io
import itertools
import math
import wave


def tone_pcm(
    freq_hz: float, duration_s: float, *, sample_rate: int = 22050, amplitude: float = 0.5
) -> bytes:
    """Mono 16-bit little-endian samples of a sine tone."""
    n = round(duration_s * sample_rate)
    peak = amplitude * 32767
    samples = array.array(
        "h", (round(peak * math.sin(2 * math.pi * freq_hz * i / sample_rate)) for i in range(n))
    )
    return samples.tobytes()


def wav_bytes(pcm: bytes, *, sample_rate: int = 22050, channels: int = 1) -> bytes:
    """Wrap 16-bit PCM in a RIFF/WAVE container."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()


def tone_wav(freq_hz: float, duration_s: float, *, sample_rate: int = 22050) -> bytes:
    """A whole mono WAV file (bytes) holding a sine tone."""
    return wav_bytes(
        tone_pcm(freq_hz, duration_s, sample_rate=sample_rate), sample_rate=sample_rate
    )


def samples(pcm: bytes) -> array.array[int]:
    """16-bit little-endian PCM bytes as an array of ints."""
    out = array.array("h")
    out.frombytes(pcm[: len(pcm) // 2 * 2])
    return out


def rms(values: array.array[int] | list[int]) -> float:
    """Root mean square of samples (0 for none)."""
    return math.sqrt(sum(v * v for v in values) / len(values)) if len(values) else 0.0


def dominant_freq(values: array.array[int] | list[int], sample_rate: int) -> float:
    """Frequency estimate (Hz) of a mono tone from its zero-crossing rate."""
    crossings = sum(1 for a, b in itertools.pairwise(values) if (a < 0) != (b < 0))
    return crossings * sample_rate / (2 * len(values)) if len(values) > 1 else 0.0


def loud_runs(
    values: array.array[int], sample_rate: int, *, window_s: float = 0.01, threshold: float = 500
) -> list[tuple[float, float]]:
    """(start_s, end_s) spans where the windowed RMS exceeds ``threshold``."""
    step = max(1, round(window_s * sample_rate))
    runs: list[tuple[float, float]] = []
    start: int | None = None
    for i in range(0, len(values), step):
        loud = rms(values[i : i + step]) > threshold
        if loud and start is None:
            start = i
        elif not loud and start is not None:
            runs.append((start / sample_rate, i / sample_rate))
            start = None
    if start is not None:
        runs.append((start / sample_rate, len(values) / sample_rate))
    return runs


def freq_track(
    values: array.array[int], sample_rate: int, *, window_s: float = 0.05, threshold: float = 500
) -> list[float]:
    """Dominant frequency (Hz) of each loud ``window_s`` window, in order (quiet ones skipped)."""
    step = max(1, round(window_s * sample_rate))
    out = []
    for i in range(0, len(values) - step + 1, step):
        window = values[i : i + step]
        if rms(window) > threshold:
            out.append(dominant_freq(window, sample_rate))
    return out
