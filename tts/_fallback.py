"""FallbackEngine: several engines tried in order, per segment.

Policy, for each segment (it only falls back: retries are each engine's own
:class:`RetryPolicy`, applied by the base class, so attempts never multiply):

1. engines are tried in the order given; an engine that once raised
   :class:`EngineUnavailableError` (not installed, no network) is skipped for
   the rest of this FallbackEngine's life, so an unreachable edge-tts costs one
   quick failed attempt per run, not one per segment;
2. an engine that fails (after its own retries) before handing out any audio
   makes the chain move on to the next engine;
3. the first engine that speaks wins; its chunks are passed on as they come and
   ``SynthesizedAudio.engine`` / ``AudioChunk.engine`` name it. A failure after
   its first chunk is raised, not hidden by another engine's take on the same
   text (the first part was already handed out). If every engine fails:
   :class:`EngineUnavailableError` when all were unavailable, else
   :class:`AllEnginesFailedError` carrying every failure.

``ValueError`` and other non-TTS errors (bugs, bad arguments) are not hidden
behind a fallback: they propagate at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace

from ._base import TTSEngine
from ._errors import AllEnginesFailedError, EngineUnavailableError, TTSError
from ._types import AudioChunk, RetryPolicy, SynthesizedAudio, Voice


class FallbackEngine(TTSEngine):
    """Try ``engines`` in order per segment (see the module docstring for the policy).

    Args:
        engines: at least one engine; the FallbackEngine owns them and closes
            them in :meth:`aclose`. Each retries per its own ``retry`` policy.

    ``voice`` and prosody given to :meth:`synthesize` go to every engine; voice
    names are engine-specific, so prefer configuring each engine's ``voice=``
    when building the chain.
    """

    name = "fallback"
    #: The chain itself never retries: its engines do (see the module docstring).
    retry = RetryPolicy(attempts=1)

    def __init__(self, engines: Sequence[TTSEngine]) -> None:
        if not engines:
            raise ValueError("engines must hold at least one TTSEngine, got none")
        self.engines: tuple[TTSEngine, ...] = tuple(engines)
        self._unavailable: dict[int, EngineUnavailableError] = {}

    @property
    def unavailable(self) -> dict[str, EngineUnavailableError]:
        """Engines skipped for the rest of the run, by name, with the error that ruled them out."""
        return {self.engines[i].name: exc for i, exc in self._unavailable.items()}

    async def _stream(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> AsyncGenerator[AudioChunk | SynthesizedAudio, None]:
        failures: list[tuple[str, TTSError]] = []
        for index, engine in enumerate(self.engines):
            if index in self._unavailable:
                continue
            stream = engine.stream(text, voice=voice, rate=rate, volume=volume, pitch=pitch)
            spoke = False
            try:
                async with contextlib.aclosing(stream):
                    async for chunk in stream:
                        spoke = True
                        yield chunk if chunk.engine else replace(chunk, engine=engine.name)
            except EngineUnavailableError as exc:
                if spoke:
                    raise
                self._unavailable[index] = exc
                failures.append((engine.name, exc))
                continue
            except TTSError as exc:
                if spoke:
                    raise
                failures.append((engine.name, exc))
                continue
            audio = stream.audio
            yield audio if audio.engine else replace(audio, engine=engine.name)
            return
        summary = "; ".join(f"{name}: {exc}" for name, exc in failures)
        last = failures[-1][1] if failures else None
        if all(isinstance(exc, EngineUnavailableError) for _, exc in failures):
            raise EngineUnavailableError(
                f"no engine is available ({summary or 'all were ruled out earlier'})",
                engine=self.name,
            ) from last
        raise AllEnginesFailedError(
            f"every engine failed for {len(text)} characters of text ({summary})",
            text=text,
            failures=tuple(failures),
        ) from last

    async def warm_up(self) -> None:
        """Warm every engine still available, concurrently.

        An engine whose warm-up raises :class:`EngineUnavailableError` is ruled
        out for the rest of the run, exactly as if a synthesis had found it
        unavailable; other errors propagate.
        """
        candidates = [i for i in range(len(self.engines)) if i not in self._unavailable]
        results = await asyncio.gather(
            *(self.engines[i].warm_up() for i in candidates), return_exceptions=True
        )
        for index, result in zip(candidates, results, strict=True):
            if isinstance(result, EngineUnavailableError):
                self._unavailable[index] = result
            elif isinstance(result, BaseException):
                raise result

    async def list_voices(self) -> list[Voice]:
        """The voices of every engine still available, in engine order."""
        voices: list[Voice] = []
        for index, engine in enumerate(self.engines):
            if index in self._unavailable:
                continue
            try:
                voices.extend(await engine.list_voices())
            except EngineUnavailableError as exc:
                self._unavailable[index] = exc
        return voices

    async def aclose(self) -> None:
        """Close every engine (all of them, even if one fails), then raise the first error."""
        if self._closed:
            return
        await super().aclose()
        results = await asyncio.gather(
            *(engine.aclose() for engine in self.engines), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
