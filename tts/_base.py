"""The one TTS seam: an engine turns one segment of text into audio, chunk by chunk.

Shaped after livekit-agents ``tts.TTS`` / ``ChunkedStream`` and Pipecat's
``TTSService.run_tts``: the base class does the shared work once for every
engine, and an engine implements a hook (see "Hooks" below).

* :meth:`TTSEngine.stream` is the primary call: a :class:`SynthesisStream`
  that yields :class:`AudioChunk` objects as the engine makes them (piper: one
  per sentence; espeak-ng: pieces of its stdout; edge-tts: MP3 frames as they
  arrive) and, once exhausted, holds the whole :class:`SynthesizedAudio`.
* :meth:`TTSEngine.synthesize` returns the whole audio: the same retry,
  slots and checks, through the engine's whole-audio hook when it has one
  (no chunks are made that nobody takes), else by draining the stream.

Shared work in the base class: argument validation, the text-sanitising step
(:func:`tts.sanitize_text`: control characters never reach an engine), the
retry policy (:class:`RetryPolicy`: retryable failures are retried only before
the first chunk is handed out; :meth:`TTSEngine.synthesize` hands nothing out
before the whole audio), the empty-audio check, assembling chunks into one
``SynthesizedAudio`` (16-bit PCM chunks become a WAV; word timings are
estimated when the engine reports none), and the single-use lifecycle.

Hooks (an engine overrides one, or both):

* ``_stream(text, *, voice, rate, volume, pitch)``: an async generator yielding
  ``AudioChunk`` objects (``format`` ``"pcm"`` or ``"mp3"``); a chunk with
  empty ``data`` may carry word timings only. It may end by yielding the
  finished ``SynthesizedAudio`` itself (the base then keeps it instead of
  assembling one; :class:`FallbackEngine` passes its inner engine's on).
* ``_synthesize(text, *, voice, rate, volume, pitch)``: the whole audio at once
  (pyttsx3, which writes a file; test engines). The default ``_stream`` turns
  it into one chunk. A progressive engine may implement it too, as a cheaper
  path for :meth:`TTSEngine.synthesize` (espeak-ng: the program's output read
  once in a worker thread, not piece by piece on the event loop). It is used
  when defined by the class that defines ``_stream`` or a subclass of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, replace
from types import TracebackType

from ._audio import AudioInfo, PcmWav, mp3_info, normalize_wav, pcm_to_wav
from ._errors import SynthesisError, TTSError
from ._slots import Slots
from ._text import sanitize_text
from ._types import AudioChunk, RetryPolicy, SynthesizedAudio, Voice, WordBoundary
from ._words import estimate_words

#: Chunk formats an engine's ``_stream`` hook may yield.
STREAM_FORMATS = ("pcm", "mp3")


@dataclass(frozen=True)
class _Request:
    text: str
    voice: str | None
    rate: float | None
    volume: float | None
    pitch: float | None
    whole: bool = False  # the caller takes only the whole audio (synthesize)


class TTSEngine:
    """Base class of every engine.

    Prosody arguments are engine-independent, relative values:

    * ``rate``: speed multiplier, 1.0 = the voice's normal speed, range 0.25–4.0
      (the OpenAI ``speed`` parameter maps onto it directly);
    * ``volume``: 0.0 (silent) to 1.0 (the engine's normal, full volume);
    * ``pitch``: multiplier of the voice's normal pitch, range 0.5–2.0.

    ``None`` means the engine's default. Engines map these to their own units
    (words per minute, ``"+10%"`` strings, espeak's 0–99 pitch).

    Engines are async context managers; blocking engines run their work off
    the event loop so neither ``stream`` nor ``synthesize`` ever blocks it.

    Attributes:
        name: short engine name, also recorded in ``SynthesizedAudio.engine``.
        retry: the :class:`RetryPolicy` of this engine (class default:
            2 attempts, 0.2 s back-off); engines take ``retry=`` in their
            constructor.
        remote: ``True`` when the engine speaks through a network service
            (edge): its warm-up only checks the service can be reached and
            uses next to no CPU here. A :class:`FallbackEngine` warms remote
            engines alongside the first local one (see its ``warm_up``).
    """

    name: str = "engine"
    retry: RetryPolicy = RetryPolicy()
    remote: bool = False
    #: At most ``parallel`` syntheses at once (each attempt holds a slot);
    #: engines with a ``parallel`` option set their own.
    slots: Slots = Slots(None)

    _closed: bool = False

    # -- the public calls --------------------------------------------------

    def stream(
        self,
        text: str,
        *,
        voice: str | None = None,
        rate: float | None = None,
        volume: float | None = None,
        pitch: float | None = None,
    ) -> SynthesisStream:
        """Start synthesizing ``text`` (one segment); iterate the result for its chunks.

        Arguments are checked here, at once; the work starts when the stream
        is iterated. See :class:`SynthesisStream` for what it yields and raises.

        Raises:
            ValueError: ``text`` holds nothing speakable once sanitised, or a
                prosody value is out of range or not finite (the message names
                the argument).
            RuntimeError: the engine was closed.
        """
        return SynthesisStream(self, self._request(text, voice, rate, volume, pitch))

    def _request(
        self,
        text: str,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
        *,
        whole: bool = False,
    ) -> _Request:
        """The checked request (raises what :meth:`stream` documents)."""
        if self._closed:
            raise RuntimeError(f"{type(self).__name__} is closed")
        if not isinstance(text, str):
            raise ValueError(f"text must be a str, got {type(text).__name__}")
        spoken = sanitize_text(text)
        if not spoken.strip():
            raise ValueError("text must contain at least one speakable, non-space character")
        _check_range("rate", rate, 0.25, 4.0)
        _check_range("volume", volume, 0.0, 1.0)
        _check_range("pitch", pitch, 0.5, 2.0)
        return _Request(spoken, voice, rate, volume, pitch, whole)

    async def synthesize(
        self,
        text: str,
        *,
        voice: str | None = None,
        rate: float | None = None,
        volume: float | None = None,
        pitch: float | None = None,
    ) -> SynthesizedAudio:
        """Synthesize ``text`` (one segment) and return its whole audio.

        The same checks, retry policy and slots as :meth:`stream`; the engine's
        ``_synthesize`` hook makes the audio when the engine has one, so no
        chunks are made for nobody (see the module docstring).
        ``SynthesizedAudio.text`` is the sanitised text, i.e. what was spoken.

        Raises:
            ValueError: see :meth:`stream`.
            EngineUnavailableError: the engine cannot run here.
            SynthesisError: the engine failed or produced no audio for
                non-empty text (after the retry policy).
            RuntimeError: the engine was closed.
        """
        request = self._request(text, voice, rate, volume, pitch, whole=True)
        return await SynthesisStream(self, request).collect()

    # -- hooks ---------------------------------------------------------------

    async def _stream(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> AsyncGenerator[AudioChunk | SynthesizedAudio, None]:
        """Engine hook for progressive engines (see the module docstring).

        Arguments are validated and ``text`` sanitised. The default
        implementation yields the whole audio of :meth:`_synthesize` as one
        chunk, then the audio itself.
        """
        audio = await self._synthesize(text, voice=voice, rate=rate, volume=volume, pitch=pitch)
        chunk = _chunk_of(audio)
        if chunk is not None:
            yield chunk
        yield audio

    async def _synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> SynthesizedAudio:
        """Engine hook for whole-audio engines: produce the segment's audio at once."""
        raise NotImplementedError(
            f"{type(self).__name__} implements neither _stream nor _synthesize"
        )

    # -- the rest of the engine API -----------------------------------------

    async def list_voices(self) -> list[Voice]:
        """The voices this engine offers (may be empty when it cannot tell)."""
        return []

    async def warm_up(self) -> None:
        """Get ready so the first synthesis is fast (load a model, start a worker).

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


class SynthesisStream:
    """One segment's synthesis: iterate it (once) for :class:`AudioChunk` objects.

    Yields the segment's audio as the engine makes it: chunks of one format
    (``"pcm"``: 16-bit little-endian frames; edge-tts: ``"mp3"``), sample
    rate and channel count, in order, never empty. When the iteration ends
    normally, :attr:`audio` holds the whole :class:`SynthesizedAudio` (PCM
    chunks joined into a WAV, MP3 chunks into one MP3, word timings reported
    by the engine or estimated) and :meth:`collect` returns it.

    Retries (the engine's :class:`RetryPolicy`) happen only before the first
    chunk is yielded; afterwards a failure is raised (the audio already handed
    out cannot be taken back). :meth:`TTSEngine.synthesize` yields nothing
    before the whole audio, so it retries a retryable failure at any point.
    Once retried attempts are exhausted the error is a :class:`SynthesisError`
    with ``retryable=False`` ("failed N times; last error: ..."), so callers
    do not multiply the attempts.

    Close it when stopping early (``async with contextlib.aclosing(stream)``
    or :meth:`aclose`): the engine's work (subprocess, request) is stopped.

    Raises (while iterating):
        EngineUnavailableError: the engine cannot run here.
        SynthesisError: the engine failed or made no audio.
        RuntimeError: iterated a second time.
        Anything else the engine raised (a bug) passes through unchanged.

    Attributes:
        engine: the engine.
        text: the sanitised text being spoken (characters).
        attempts: attempts made so far (1 + retries).
        first_chunk_s: seconds from the start of the iteration to the first
            chunk (``None`` before it): the engine's time to first audio.
    """

    def __init__(self, engine: TTSEngine, request: _Request) -> None:
        self.engine = engine
        self.text = request.text
        self._request = request
        self._iterator: AsyncGenerator[AudioChunk, None] | None = None
        self._audio: SynthesizedAudio | None = None
        self.attempts = 0
        self.first_chunk_s: float | None = None

    @property
    def audio(self) -> SynthesizedAudio:
        """The whole audio, once the iteration ended normally.

        Raises:
            RuntimeError: the stream has not been fully iterated (or failed).
        """
        if self._audio is None:
            raise RuntimeError("the synthesis stream has not finished")
        return self._audio

    def __aiter__(self) -> AsyncIterator[AudioChunk]:
        if self._iterator is not None:
            raise RuntimeError("a SynthesisStream can be iterated only once")
        self._iterator = self._run()
        return self._iterator

    async def collect(self) -> SynthesizedAudio:
        """Drain the stream and return :attr:`audio` (raises what iterating raises)."""
        async with contextlib.aclosing(self):
            async for _ in self:
                pass
        return self.audio

    async def aclose(self) -> None:
        """Stop the synthesis (idempotent)."""
        if self._iterator is not None:
            await self._iterator.aclose()

    async def _run(self) -> AsyncGenerator[AudioChunk, None]:
        engine, request = self.engine, self._request
        policy = engine.retry
        started = time.monotonic()
        while True:
            self.attempts += 1
            assembler = _Assembler(engine, request)
            inner = _hook(engine, request)
            try:
                async with engine.slots():  # released before a retry's back-off
                    async for item in inner:
                        chunk = assembler.add(item)
                        if chunk is not None:
                            if self.first_chunk_s is None:
                                self.first_chunk_s = time.monotonic() - started
                            yield chunk
                self._audio = assembler.finish()
                return
            except TTSError as exc:
                # Nothing handed out yet (a whole-audio request hands out nothing): retry.
                if (assembler.yielded and not request.whole) or not exc.retryable:
                    raise
                if self.attempts >= policy.attempts:
                    if self.attempts == 1:
                        raise  # no retry policy here: the caller may retry
                    # Retried already: say so, and that retrying again is pointless.
                    raise SynthesisError(
                        f"{engine.name} failed {self.attempts} times; last error: {exc}",
                        engine=engine.name, text=request.text, retryable=False,
                    ) from (exc.__cause__ or exc)  # the root cause, e.g. the vendor's error
            finally:
                await inner.aclose()
            await asyncio.sleep(policy.delay_s(self.attempts + 1))


async def _whole(
    engine: TTSEngine, request: _Request
) -> AsyncGenerator[AudioChunk | SynthesizedAudio, None]:
    yield await engine._synthesize(
        request.text, voice=request.voice, rate=request.rate, volume=request.volume,
        pitch=request.pitch,
    )


def _hook(
    engine: TTSEngine, request: _Request
) -> AsyncGenerator[AudioChunk | SynthesizedAudio, None]:
    """The engine hook that serves ``request``: ``_synthesize`` for a whole-audio
    request when the engine has its own (see :func:`_has_whole_hook`), else ``_stream``."""
    if request.whole and _has_whole_hook(type(engine)):
        return _whole(engine, request)
    return engine._stream(
        request.text, voice=request.voice, rate=request.rate, volume=request.volume,
        pitch=request.pitch,
    )


def _has_whole_hook(cls: type[TTSEngine]) -> bool:
    """Whether ``cls``'s ``_synthesize`` is its own whole-audio path: defined by
    the class that defines its ``_stream``, or by a subclass of it. A subclass
    that overrides only ``_stream`` (a test engine streaming a parent's audio)
    is served by that ``_stream``."""
    def owner(name: str) -> type:
        return next(k for k in cls.__mro__ if name in vars(k))

    whole, stream = owner("_synthesize"), owner("_stream")
    return whole is not TTSEngine and issubclass(whole, stream)


class _Assembler:
    """Checks an engine's chunks and joins them into one SynthesizedAudio."""

    def __init__(self, engine: TTSEngine, request: _Request) -> None:
        self._engine = engine
        self._request = request
        self._parts: list[bytes] = []
        self._words: list[WordBoundary] = []
        self._first: AudioChunk | None = None
        self._whole: SynthesizedAudio | None = None
        self._rest = b""
        self.yielded = False

    def add(self, item: AudioChunk | SynthesizedAudio) -> AudioChunk | None:
        """Record ``item``; return the chunk to hand out (``None``: nothing to hand out)."""
        name = self._engine.name
        if isinstance(item, SynthesizedAudio):
            self._whole = item
            return None
        if self._whole is not None:
            raise SynthesisError(f"{name} yielded audio after its whole result", engine=name)
        self._words.extend(item.words)
        if not item.engine:
            item = replace(item, engine=name)
        first = self._first
        if first is None:
            if item.format not in STREAM_FORMATS or item.sample_rate <= 0 or item.channels <= 0:
                raise SynthesisError(
                    f"{name} streamed unusable audio (format {item.format!r}, "
                    f"{item.sample_rate} Hz, {item.channels} channels)",
                    engine=name, text=self._request.text,
                )
            if not item.data:
                return None  # words only, before any audio: keep them for the whole audio
            self._first = first = item
        elif (item.format, item.sample_rate, item.channels) != (
            first.format, first.sample_rate, first.channels
        ):
            raise SynthesisError(
                f"{name} changed its audio format within one segment", engine=name,
                text=self._request.text,
            )
        data = item.data
        if item.format == "pcm":  # hand out whole frames only
            data = self._rest + data
            frame = 2 * item.channels
            cut = len(data) - len(data) % frame
            data, self._rest = data[:cut], data[cut:]
        if not data:
            return None
        self._parts.append(data)
        self.yielded = True
        return item if data is item.data else replace(item, data=data)

    def finish(self) -> SynthesizedAudio:
        engine, text = self._engine, self._request.text
        audio = self._whole if self._whole is not None else self._assemble()
        if audio is None or not audio.data or audio.duration_s <= 0:
            raise SynthesisError(
                f"{engine.name} returned no audio for {len(text)} characters of text",
                engine=engine.name, text=text,
            )
        return audio if audio.engine else replace(audio, engine=engine.name)

    def _assemble(self) -> SynthesizedAudio | None:
        first = self._first
        if first is None:
            return None
        text = self._request.text
        data = b"".join(self._parts)
        self._parts = []
        words = tuple(self._words)
        if first.format == "pcm":
            return pcm_audio(data, first.sample_rate, first.channels, text=text, words=words,
                             engine=first.engine, voice=first.voice)
        try:
            info = mp3_info(data)
        except ValueError as exc:
            raise SynthesisError(
                f"{first.engine} sent {len(data)} bytes that are not MP3: {exc}",
                engine=first.engine, text=text,
            ) from exc
        return SynthesizedAudio(
            data=data, format="mp3", sample_rate=info.sample_rate, channels=info.channels,
            duration_s=info.duration_s, words=words, engine=first.engine, voice=first.voice,
            text=text,
        )


def pcm_audio(
    pcm: bytes,
    sample_rate: int,
    channels: int,
    *,
    text: str,
    words: tuple[WordBoundary, ...] = (),
    engine: str = "",
    voice: str | None = None,
) -> SynthesizedAudio:
    """16-bit little-endian ``pcm`` as one WAV ``SynthesizedAudio`` of ``text``.

    ``sample_rate`` in Hz; a trailing partial frame is dropped; word timings
    are estimated when ``words`` is empty (:func:`tts._words.estimate_words`).
    The one way a PCM segment becomes whole audio, whether it came in chunks
    or at once.

    Raises:
        ValueError: ``sample_rate`` or ``channels`` is not > 0.
    """
    if sample_rate <= 0 or channels <= 0:
        raise ValueError(f"sample_rate and channels must be > 0, got {sample_rate}, {channels}")
    wav = pcm_to_wav(pcm, sample_rate=sample_rate, channels=channels)
    frames = len(pcm) // (2 * channels)
    info = AudioInfo(sample_rate, channels, frames / sample_rate)
    if not words:
        words = estimate_words(text, PcmWav(wav, pcm, 2, info))
    return SynthesizedAudio(
        data=wav, format="wav", sample_rate=info.sample_rate, channels=info.channels,
        duration_s=info.duration_s, words=words, engine=engine, voice=voice, text=text,
    )


def _chunk_of(audio: SynthesizedAudio) -> AudioChunk | None:
    """The whole ``audio`` as one chunk: PCM for a 16-bit WAV, else its own bytes."""
    if not audio.data:
        return None
    if audio.format == "wav":
        try:
            wav = normalize_wav(audio.data)
        except ValueError:
            wav = None
        if wav is not None and wav.sample_width == 2:
            return AudioChunk(
                wav.pcm, "pcm", wav.info.sample_rate, wav.info.channels,
                engine=audio.engine, voice=audio.voice,
            )
    if audio.format == "pcm":
        return AudioChunk(audio.data, "pcm", audio.sample_rate, audio.channels,
                          engine=audio.engine, voice=audio.voice)
    if audio.format in STREAM_FORMATS:
        return AudioChunk(audio.data, audio.format, audio.sample_rate, audio.channels,
                          engine=audio.engine, voice=audio.voice)
    return None  # another container: only the whole audio is handed out


def _check_range(name: str, value: float | None, low: float, high: float) -> None:
    if value is None:
        return
    if not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
