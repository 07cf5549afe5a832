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
   text (the first part was already handed out; with :meth:`~TTSEngine.synthesize`
   nothing is handed out before the whole audio, so any failure falls back).
   If every engine fails:
   :class:`EngineUnavailableError` when all were unavailable, else
   :class:`AllEnginesFailedError` carrying every failure.

Voices are engine-specific (``en-us`` is an espeak-ng voice, ``en_US-joe-medium``
a piper model, ``en-US-AriaNeural`` an edge voice). When a ``voice`` is given,
the engines whose :meth:`~TTSEngine.list_voices` lists it (ids compared without
case, each engine given its own spelling; asked once per engine and kept) are
the only ones tried, in order; when
no available engine lists it, every engine is tried as above. :meth:`choose`
tells which engine will speak and why, in one line.

``ValueError`` and other non-TTS errors (bugs, bad arguments) are not hidden
behind a fallback: they propagate at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Sequence
from dataclasses import replace

from ._base import SynthesisStream, TTSEngine
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
        self._voice_ids: dict[int, dict[str, str]] = {}  # engine index -> lower-case id -> id
        self._voice_lock: asyncio.Lock | None = None

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
        chain = self._chain(text, voice=voice, rate=rate, volume=volume, pitch=pitch, whole=False)
        async with contextlib.aclosing(chain):
            async for item in chain:
                yield item

    async def _synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> SynthesizedAudio:
        chain = self._chain(text, voice=voice, rate=rate, volume=volume, pitch=pitch, whole=True)
        async with contextlib.aclosing(chain):
            async for item in chain:
                assert isinstance(item, SynthesizedAudio)
                return item
        raise AssertionError("the chain ends by raising or with the audio")

    async def _chain(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
        whole: bool,
    ) -> AsyncGenerator[AudioChunk | SynthesizedAudio, None]:
        """Each candidate in turn: its chunks (``whole``: none) then its whole audio."""
        failures: list[tuple[str, TTSError]] = []
        candidates = await self._candidates(voice)
        for index, engine in enumerate(self.engines):
            if index in self._unavailable or index not in candidates:
                continue
            own = self._voice_ids.get(index, {}).get(voice.lower()) if voice else None
            stream = SynthesisStream(engine, engine._request(
                text, own or voice, rate, volume, pitch, whole=whole))
            spoke = False
            try:
                async with contextlib.aclosing(stream):
                    async for chunk in stream:
                        if whole:
                            continue  # nothing is handed out: a failure may still fall back
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

    async def _candidates(self, voice: str | None) -> frozenset[int]:
        """Indices of the engines to try for ``voice``: those that list it, else all."""
        every = frozenset(range(len(self.engines)))
        if voice is None:
            return every
        await self._load_voices()
        wanted = voice.lower()
        listing = frozenset(i for i, ids in self._voice_ids.items() if wanted in ids)
        return listing or every

    async def _load_voices(self) -> None:
        """Ask each available engine once for its voice ids (rules out unreachable ones)."""
        if self._voice_lock is None:
            self._voice_lock = asyncio.Lock()
        async with self._voice_lock:
            for index, engine in enumerate(self.engines):
                if index in self._unavailable or index in self._voice_ids:
                    continue
                try:
                    voices = await engine.list_voices()
                except EngineUnavailableError as exc:
                    self._unavailable[index] = exc
                    continue
                except TTSError:
                    voices = []  # cannot tell: it is tried only when no engine lists the voice
                self._voice_ids[index] = {v.id.lower(): v.id for v in voices}

    async def choose(self, voice: str | None = None) -> str:
        """Which engine will speak ``voice`` (``None``: the engines' default voices), and why.

        Warms the engine that will speak up (:meth:`warm_up`, which rules out
        the engines before it that cannot run or cannot be reached, e.g.
        edge-tts offline) and, when a ``voice`` is given, asks the engines for
        their voices; then returns one line naming the engine and the reason, e.g.
        ``"piper: edge unavailable (edge-tts service unreachable)"``,
        ``"espeak: voice en-us is an espeak voice"``, or
        ``"edge: first in order"``. When no engine can run, the line starts
        with ``"none: "`` and lists why (synthesis will raise
        :class:`EngineUnavailableError`). Cheap once warm.
        """
        await self.warm_up()
        candidates = await self._candidates(voice)  # asks for voices only when one is given
        chosen = next(
            (i for i in range(len(self.engines))
             if i not in self._unavailable and i in candidates), None,
        )
        skipped = [
            f"{self.engines[i].name} unavailable ({_short(self._unavailable[i])})"
            for i in sorted(self._unavailable) if chosen is None or i < chosen
        ]
        if chosen is None:
            return "none: " + ("; ".join(skipped) or "no engine")
        name = self.engines[chosen].name
        reasons = []
        if voice is not None:
            if voice.lower() in self._voice_ids.get(chosen, {}):
                article = "an" if name[:1] in "aeiou" else "a"
                reasons.append(f"voice {voice} is {article} {name} voice")
            else:
                reasons.append(f"no available engine lists voice {voice}")
        reasons += skipped
        return f"{name}: " + ("; ".join(reasons) or "first in order")

    async def warm_up(self) -> None:
        """Warm up the engine that will speak, not its fallbacks.

        Engines still available are warmed in order, concurrently: every
        remote engine (:attr:`TTSEngine.remote`, e.g. edge, whose warm-up only
        checks the service can be reached) up to the first local engine, and
        that one. If it is ruled out, the next local engine is warmed, and so
        on; the engines after the first one that warmed up are left cold and
        load on their first synthesis, if a segment ever falls back to them.

        Why not warm them all: with an in-process LLM on 2 cores, warming the
        whole ``auto`` chain (piper's model, pyttsx3's worker process,
        edge-tts's imports, ``espeak-ng --voices``) took the CPU from the
        LLM's prompt evaluation and first tokens, exactly while the first
        segment was being written, for engines that never spoke (issue 12:
        the default path's first audio came ~1.5x its physical limit).

        An engine whose warm-up raises :class:`EngineUnavailableError` is ruled
        out for the rest of the run, exactly as if a synthesis had found it
        unavailable; other errors propagate (after the other warm-ups ended).
        """
        started: list[tuple[int, asyncio.Future[None]]] = []  # (engine index, warm-up)
        try:
            for index, engine in enumerate(self.engines):
                if index in self._unavailable:
                    continue
                task = asyncio.ensure_future(engine.warm_up())
                started.append((index, task))
                if engine.remote:
                    continue
                await asyncio.wait({task})
                if task.cancelled() or not isinstance(task.exception(), EngineUnavailableError):
                    break  # warmed up (or a real error, raised below): the rest stays cold
            results = await asyncio.gather(*(warming for _, warming in started),
                                           return_exceptions=True)
        finally:
            for _, warming in started:
                warming.cancel()
        for (index, _), result in zip(started, results, strict=True):
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


def _short(exc: BaseException) -> str:
    """The gist of an error message: up to its first ``": "`` (details follow it)."""
    return str(exc).split(": ", 1)[0]
