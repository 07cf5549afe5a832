"""FallbackEngine: several engines tried in order, per segment.

Policy, for each segment:

1. engines are tried in the order given; an engine that once raised
   :class:`EngineUnavailableError` (not installed, no network) is skipped for
   the rest of this FallbackEngine's life, so an unreachable edge-tts costs one
   quick failed attempt per run, not one per segment;
2. a :class:`SynthesisError` with ``retryable=True`` (timeout, dropped
   connection, restarted worker) is retried on the same engine up to
   ``retries`` times; a permanent one (``retryable=False``) moves on at once;
3. the first audio wins; ``SynthesizedAudio.engine`` names the engine that made
   it. If every engine fails: :class:`EngineUnavailableError` when all were
   unavailable, else :class:`AllEnginesFailedError` carrying every failure.

``ValueError`` and other non-TTS errors (bugs, bad arguments) are not hidden
behind a fallback: they propagate at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from ._base import TTSEngine
from ._errors import AllEnginesFailedError, EngineUnavailableError, TTSError
from ._types import SynthesizedAudio, Voice


class FallbackEngine(TTSEngine):
    """Try ``engines`` in order per segment (see the module docstring for the policy).

    Args:
        engines: at least one engine; the FallbackEngine owns them and closes
            them in :meth:`aclose`.
        retries: extra attempts on the same engine after a retryable failure,
            0-10.

    ``voice`` and prosody given to :meth:`synthesize` go to every engine; voice
    names are engine-specific, so prefer configuring each engine's ``voice=``
    when building the chain.
    """

    name = "fallback"

    def __init__(self, engines: Sequence[TTSEngine], *, retries: int = 1) -> None:
        if not engines:
            raise ValueError("engines must hold at least one TTSEngine, got none")
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 10:
            raise ValueError(f"retries must be an integer in [0, 10], got {retries!r}")
        self.engines: tuple[TTSEngine, ...] = tuple(engines)
        self.retries = retries
        self._unavailable: dict[int, EngineUnavailableError] = {}

    @property
    def unavailable(self) -> dict[str, EngineUnavailableError]:
        """Engines skipped for the rest of the run, by name, with the error that ruled them out."""
        return {self.engines[i].name: exc for i, exc in self._unavailable.items()}

    async def _synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> SynthesizedAudio:
        failures: list[tuple[str, TTSError]] = []
        for index, engine in enumerate(self.engines):
            if index in self._unavailable:
                continue
            for _attempt in range(1 + self.retries):
                try:
                    audio = await engine.synthesize(
                        text, voice=voice, rate=rate, volume=volume, pitch=pitch
                    )
                except EngineUnavailableError as exc:
                    self._unavailable[index] = exc
                    failures.append((engine.name, exc))
                    break
                except TTSError as exc:
                    failures.append((engine.name, exc))
                    if not exc.retryable:
                        break
                else:
                    return audio if audio.engine else replace(audio, engine=engine.name)
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
