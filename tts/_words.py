"""Estimated word timings for engines that report none (espeak-ng CLI, pyttsx3, piper).

Method: the words (whitespace-separated tokens of the text) are laid end to end
over the *speech span* of the audio, i.e. from the first to the last sample
louder than a small threshold (leading/trailing silence excluded, see
:func:`tts._audio.speech_bounds`). Each word gets a share of that span
proportional to its length in characters plus one (for the gap after it).
It is an estimate: good enough for subtitles cue by cue, not for lip sync.
"""

from __future__ import annotations

from ._audio import PcmWav, normalize_wav, speech_bounds
from ._errors import SynthesisError
from ._types import SynthesizedAudio, WordBoundary


def audio_from_wav(raw: bytes, *, text: str, engine: str, voice: str | None) -> SynthesizedAudio:
    """The :class:`SynthesizedAudio` of a WAV an engine wrote, with estimated word timings.

    ``raw`` is normalized (header sizes repaired, see :func:`tts._audio.normalize_wav`);
    the duration is measured from its samples.

    Raises:
        SynthesisError: ``raw`` is not a valid PCM WAV (names the engine and the byte count).
    """
    try:
        wav = normalize_wav(raw)
    except ValueError as exc:
        raise SynthesisError(
            f"{engine} wrote no valid WAV ({len(raw)} bytes): {exc}", engine=engine, text=text
        ) from exc
    return SynthesizedAudio(
        data=wav.data,
        format="wav",
        sample_rate=wav.info.sample_rate,
        channels=wav.info.channels,
        duration_s=wav.info.duration_s,
        words=estimate_words(text, wav),
        engine=engine,
        voice=voice,
        text=text,
    )


def estimate_words(text: str, wav: PcmWav) -> tuple[WordBoundary, ...]:
    """Spread the words of ``text`` over the speech span of ``wav`` (seconds)."""
    words = text.split()
    if not words:
        return ()
    start, end = speech_bounds(wav)
    weights = [len(word) + 1 for word in words]
    per_weight = (end - start) / sum(weights)
    result = []
    offset = start
    for word, weight in zip(words, weights, strict=True):
        share = weight * per_weight
        # The trailing "+1" is the gap after the word: not part of its duration.
        result.append(WordBoundary(word, round(offset, 4), round(share - per_weight, 4)))
        offset += share
    return tuple(result)
