"""EdgeEngine: Microsoft Edge's online read-aloud voices through edge-tts.

Protocol source: the edge-tts package (``edge_tts/communicate.py``): one
WebSocket per request, ``speech.config`` + ``ssml`` text frames out;
``turn.start``, binary ``Path:audio`` frames (MP3,
``audio-24khz-48kbitrate-mono-mp3``), ``audio.metadata`` (WordBoundary, offsets
and durations in 100 ns ticks) and ``turn.end`` back.

Output is MP3 (never labelled WAV), streamed: each binary audio frame is
handed out as an ``"mp3"`` :class:`AudioChunk` as it arrives. The whole
audio's ``duration_s`` is measured by walking the MP3 frame headers
(:func:`tts._audio.mp3_info`); ``words`` are edge's own WordBoundary events
converted to seconds.

Failures, mapped once here:

* cannot connect at all (DNS failure, connection refused: ``aiohttp``
  ``ClientConnectorError``) -> :class:`EngineUnavailableError` at once, no retry
  (offline costs one quick attempt);
* HTTP 403 on the handshake (after edge-tts's own clock-skew retry), other
  5xx/429 handshakes, ``NoAudioReceived``, dropped connections
  (``ClientError``, ``WebSocketError``), clock-skew errors, timeouts (socket,
  or ``attempt_timeout_s`` without any data) -> a retryable
  :class:`SynthesisError`: the base class's :class:`RetryPolicy`
  (``attempts`` tries in all, back-off ``backoff_s``, ``2 * backoff_s``, ...)
  retries it while no audio has been handed out;
* an invalid voice name/other 4xx, an unexpected or unknown response ->
  :class:`SynthesisError` at once (``retryable=False``).

``parallel`` bounds the requests open at once (a batch job's overlapping
runs share it); a request waiting for a slot has not started its attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ._base import TTSEngine
from ._errors import EngineUnavailableError, SynthesisError, TTSError
from ._slots import Slots
from ._types import AudioChunk, RetryPolicy, SynthesizedAudio, Voice, WordBoundary

#: edge's service host (the host of ``edge_tts.constants.WSS_URL``; a test checks
#: they agree): :meth:`EdgeEngine.warm_up` resolves it without importing edge-tts.
SERVICE_HOST = "speech.platform.bing.com"
#: edge's default voice (``edge_tts.constants.DEFAULT_VOICE``).
DEFAULT_VOICE = "en-US-EmmaMultilingualNeural"
#: 100-nanosecond ticks per second, the unit of edge's offsets and durations.
TICKS_PER_SECOND = 10_000_000
#: Nominal voice pitch (Hz) used to turn the relative ``pitch`` into edge's ``+NHz``.
NOMINAL_PITCH_HZ = 150
#: edge's output format ``audio-24khz-48kbitrate-mono-mp3``: rate and channels.
SAMPLE_RATE, CHANNELS = 24000, 1


@dataclass(frozen=True)
class EdgeConfig:
    """Options of :class:`EdgeEngine` (validated on construction).

    Attributes:
        voice: default voice short name (``edge-tts --list-voices``).
        attempts: tries per segment for retryable failures, 1-10 (the
            engine's :class:`RetryPolicy`).
        backoff_s: wait before the 2nd try in seconds (doubles each time), 0-60.
        connect_timeout_s: socket connect timeout in whole seconds, 1-300.
        receive_timeout_s: socket read timeout in whole seconds, 1-600.
        proxy: HTTP proxy URL or ``None``.
        parallel: segments synthesized at once (requests open, 1-64); ``None``:
            no limit (each caller bounds its own).
        attempt_timeout_s: seconds an attempt may wait for the service's next
            message (the first audio, or the next piece), > 0 (edge-tts's own
            read timeout does not cover WebSocket reads, so a silent server
            would otherwise hang the call forever).
    """

    voice: str = DEFAULT_VOICE
    attempts: int = 3
    backoff_s: float = 0.5
    connect_timeout_s: int = 10
    receive_timeout_s: int = 60
    proxy: str | None = None
    attempt_timeout_s: float = 60.0
    parallel: int | None = None

    def __post_init__(self) -> None:
        Slots(self.parallel)  # validates it
        if not isinstance(self.attempt_timeout_s, (int, float)) or not self.attempt_timeout_s > 0:
            raise ValueError(
                f"attempt_timeout_s must be > 0 seconds, got {self.attempt_timeout_s!r}"
            )
        _check_int("attempts", self.attempts, 1, 10)
        _check_int("connect_timeout_s", self.connect_timeout_s, 1, 300)
        _check_int("receive_timeout_s", self.receive_timeout_s, 1, 600)
        if not isinstance(self.backoff_s, (int, float)) or not 0 <= self.backoff_s <= 60:
            raise ValueError(f"backoff_s must be in [0, 60] seconds, got {self.backoff_s!r}")
        if not self.voice:
            raise ValueError("voice must be a non-empty edge voice name")


def _check_int(name: str, value: object, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value!r}")


def edge_prosody(
    *, rate: float | None, volume: float | None, pitch: float | None
) -> dict[str, str]:
    """Relative prosody -> edge-tts strings: rate ``+N%``, volume ``-N%``, pitch ``+NHz``.

    ``rate`` 1.5 -> ``"+50%"``; ``volume`` 0.8 -> ``"-20%"``; ``pitch`` 1.2 ->
    ``"+30Hz"`` (an offset from a nominal 150 Hz voice; edge-tts accepts only Hz).
    """
    return {
        "rate": _signed(round(((1.0 if rate is None else rate) - 1.0) * 100), "%"),
        "volume": _signed(round(((1.0 if volume is None else volume) - 1.0) * 100), "%"),
        "pitch": _signed(round(((1.0 if pitch is None else pitch) - 1.0) * NOMINAL_PITCH_HZ), "Hz"),
    }


def _signed(value: int, unit: str) -> str:
    return f"{'-' if value < 0 else '+'}{abs(value)}{unit}"


class EdgeEngine(TTSEngine):
    """edge-tts (online, neural voices, MP3 24 kHz mono, real word timings)."""

    name = "edge"
    remote = True

    def __init__(
        self,
        *,
        voice: str = DEFAULT_VOICE,
        attempts: int = 3,
        backoff_s: float = 0.5,
        connect_timeout_s: int = 10,
        receive_timeout_s: int = 60,
        proxy: str | None = None,
        attempt_timeout_s: float = 60.0,
        parallel: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if retry is not None:  # one policy object instead of attempts/backoff_s
            attempts, backoff_s = retry.attempts, retry.backoff_s
        self.config = EdgeConfig(
            attempt_timeout_s=attempt_timeout_s,
            voice=voice,
            attempts=attempts,
            backoff_s=backoff_s,
            connect_timeout_s=connect_timeout_s,
            receive_timeout_s=receive_timeout_s,
            proxy=proxy,
            parallel=parallel,
        )
        self.retry = RetryPolicy(attempts=attempts, backoff_s=backoff_s)
        self.slots = Slots(parallel)

    async def _stream(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> AsyncGenerator[AudioChunk | SynthesizedAudio, None]:
        voice = voice or self.config.voice
        prosody = edge_prosody(rate=rate, volume=volume, pitch=pitch)
        aiohttp, edge_tts = _import_vendor()
        exceptions = edge_tts.exceptions
        try:
            communicate = edge_tts.Communicate(
                text,
                voice,
                **prosody,
                boundary="WordBoundary",
                proxy=self.config.proxy,
                connect_timeout=self.config.connect_timeout_s,
                receive_timeout=self.config.receive_timeout_s,
            )
        except ValueError as exc:  # edge_tts.data_classes.TTSConfig validation
            raise SynthesisError(f"edge-tts rejected: {exc}", engine=self.name, text=text) from exc

        def retryable(exc: BaseException) -> SynthesisError:
            return SynthesisError(
                f"edge-tts failed: {type(exc).__name__}: {exc}", engine=self.name, text=text,
                retryable=True,
            )

        words: list[WordBoundary] = []
        messages = communicate.stream()
        try:
            while True:
                try:
                    async with asyncio.timeout(self.config.attempt_timeout_s):
                        message = await anext(messages, None)
                except TimeoutError as exc:
                    raise retryable(exc) from exc
                except aiohttp.ClientConnectorError as exc:  # includes ClientConnectorDNSError
                    raise EngineUnavailableError(
                        f"edge-tts service unreachable: {exc}", engine=self.name
                    ) from exc
                except aiohttp.ClientResponseError as exc:  # includes WSServerHandshakeError
                    if exc.status in (403, 429) or exc.status >= 500:
                        raise retryable(exc) from exc
                    raise SynthesisError(
                        f"edge-tts refused the request (HTTP {exc.status}): {exc.message}",
                        engine=self.name,
                        text=text,
                    ) from exc
                except (
                    exceptions.NoAudioReceived,
                    exceptions.WebSocketError,
                    exceptions.SkewAdjustmentError,
                    aiohttp.ClientError,
                ) as exc:
                    raise retryable(exc) from exc
                except (exceptions.UnexpectedResponse, exceptions.UnknownResponse) as exc:
                    raise SynthesisError(
                        f"edge-tts got a response it does not understand: {exc}",
                        engine=self.name,
                        text=text,
                    ) from exc
                if message is None:
                    break
                if message["type"] == "WordBoundary":
                    words.append(
                        WordBoundary(
                            message["text"],
                            message["offset"] / TICKS_PER_SECOND,
                            message["duration"] / TICKS_PER_SECOND,
                        )
                    )
                elif message["type"] == "audio" and message["data"]:
                    yield AudioChunk(message["data"], "mp3", SAMPLE_RATE, CHANNELS,
                                     engine=self.name, voice=voice, words=tuple(words))
                    words = []
            if words:  # timings that came after the last audio frame
                yield AudioChunk(b"", "mp3", SAMPLE_RATE, CHANNELS, engine=self.name,
                                 voice=voice, words=tuple(words))
        finally:
            # Closing a connection that already broke may fail the same way.
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await messages.aclose()

    async def warm_up(self) -> None:
        """Check that the service can be reached, cheaply: resolve its host name
        (no request is sent), then import edge-tts (in a thread).

        Offline, the name does not resolve (a few ms): edge is ruled out before
        the first segment, and edge-tts (with aiohttp, ~0.3 s of CPU to import)
        is never imported, so the engine that will speak gets the CPU. Nothing
        is checked behind a ``proxy`` (the proxy resolves the name).

        Raises:
            EngineUnavailableError: edge-tts is not installed, or the host name
                does not resolve within ``connect_timeout_s``.
        """
        if importlib.util.find_spec("edge_tts") is None:
            raise EngineUnavailableError("edge-tts is not installed", engine=self.name)
        if self.config.proxy is None:
            host, port = _service_address()
            try:
                async with asyncio.timeout(self.config.connect_timeout_s):
                    await asyncio.get_running_loop().getaddrinfo(host, port)
            except (OSError, TimeoutError) as exc:  # socket.gaierror is an OSError
                raise EngineUnavailableError(
                    f"edge-tts service unreachable: cannot resolve {host}: {exc}",
                    engine=self.name,
                ) from exc
        await asyncio.to_thread(_import_vendor)

    async def list_voices(self) -> list[Voice]:
        """edge's voice list (one HTTPS request); ``id`` is the ShortName."""
        aiohttp, edge_tts = _import_vendor()
        try:
            voices = await edge_tts.list_voices(proxy=self.config.proxy)
        except aiohttp.ClientConnectorError as exc:
            raise EngineUnavailableError(
                f"edge-tts service unreachable: {exc}", engine=self.name
            ) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TTSError(
                f"edge-tts voice list failed: {exc}", engine=self.name, retryable=True
            ) from exc
        return [
            Voice(
                id=v["ShortName"],
                name=v.get("FriendlyName", v["ShortName"]),
                language=v.get("Locale", ""),
                gender=str(v.get("Gender", "")).lower(),
                engine=self.name,
            )
            for v in voices
        ]


def _service_address() -> tuple[str, int]:
    """(host, port) of edge's WebSocket service: edge-tts's ``WSS_URL`` once it is
    imported (tests point it at local servers), else :data:`SERVICE_HOST`, 443."""
    communicate = sys.modules.get("edge_tts.communicate")
    url = getattr(communicate, "WSS_URL", None)
    if not isinstance(url, str):
        return SERVICE_HOST, 443
    parts = urlsplit(url)
    return parts.hostname or SERVICE_HOST, parts.port or (80 if parts.scheme == "ws" else 443)


def _import_vendor() -> tuple[Any, Any]:
    try:
        import aiohttp
        import edge_tts
        import edge_tts.exceptions
    except ImportError as exc:
        raise EngineUnavailableError(f"edge-tts is not installed ({exc})", engine="edge") from exc
    return aiohttp, edge_tts
