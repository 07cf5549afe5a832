"""Estimated word timings for engines that report none (espeak-ng CLI, pyttsx3, piper).

Method: the words (whitespace-separated tokens of the text) are laid end to end
over the *speech span* of the audio, i.e. from the first to the last sample
louder than a small threshold (leading/trailing silence excluded, see
:func:`tts._audio.speech_bounds`). Each word gets a share of that span
proportional to its length in characters plus one (for the gap after it).
It is an estimate: good enough for subtitles cue by cue, not for lip sync.
"""

from __future__ import annotations

from ._audio import PcmWav, speech_bounds
from ._types import WordBoundary


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
