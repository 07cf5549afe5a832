"""The one TTS seam: an engine turns one segment of text into audio.

Shaped after livekit-agents ``tts.TTS`` and Pipecat's ``TTSService.run_tts``:
the base class does the shared work (argument validation, the empty-audio
check, single-use lifecycle) and an engine implements one hook,
:meth:`TTSEngine._synthesize`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from types import TracebackType

from ._errors import SynthesisError
from ._types import SynthesizedAudio, Voice


class TTSEngine(ABC):
    """Base class of every engine.

    Prosody arguments are engine-independent, relative values:

    * ``rate``: speed multiplier, 1.0 = the voice's normal speed, range 0.25–4.0
      (the OpenAI ``speed`` parameter maps onto it directly);
    * ``volume``: 0.0 (silent) to 1.0 (the engine's normal, full volume);
    * ``pitch``: multiplier of the voice's normal pitch, range 0.5–2.0.

    ``None`` means the engine's default. Engines map these to their own units
    (words per minute, ``"+10%"`` strings, espeak's 0–99 pitch).

    Engines are async context managers; blocking engines run their work off
    the event loop so ``synthesize`` never blocks it.
    """

    #: Short engine name, also recorded in ``SynthesizedAudio.engine``.
    name: str = "engine"

    _closed: bool = False

    async def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        rate: float | None = None,
        volume: float | None = None,
        pitch: float | None = None,
    ) -> SynthesizedAudio:
        """Synthesize ``text`` (one segment) and return its audio.

        Raises:
            ValueError: ``text`` is empty/whitespace, or a prosody value is out
                of range or not finite (the message names the argument).
            EngineUnavailableError: the engine cannot run here.
            SynthesisError: the engine produced no audio for non-empty text.
            RuntimeError: the engine was closed.
        """
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if not text or not text.strip():
            raise ValueError("text must contain at least one non-space character")
        _check_range("rate", rate, 0.25, 4.0)
        _check_range("volume", volume, 0.0, 1.0)
        _check_range("pitch", pitch, 0.5, 2.0)
        audio = await self._synthesize(text, voice=voice, rate=rate, volume=volume, pitch=pitch)
        if not audio.data or audio.duration_s <= 0:
            raise SynthesisError(
                f"{self.name} returned no audio for {len(text)} characters of text",
                engine=self.name,
                text=text,
            )
        return audio

    @abstractmethod
    async def _synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> SynthesizedAudio:
        """Engine hook: produce the audio. Arguments are already validated."""

    async def list_voices(self) -> list[Voice]:
        """The voices this engine offers (may be empty when it cannot tell)."""
        return []

    async def warm_up(self) -> None:
        """Get ready so the first :meth:`synthesize` is fast (load a model, start a worker).

        Idempotent and cheap once warm. The pipeline calls it when a run
        starts, concurrently with the LLM request, so a model load does not
        delay the first audio. The default does nothing.

        Raises:
            EngineUnavailableError: the engine cannot run here.
        """
        return None

    async def aclose(self) -> None:
        """Release the engine's resources. Idempotent."""
        self._closed = True

    async def __aenter__(self) -> TTSEngine:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _check_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
