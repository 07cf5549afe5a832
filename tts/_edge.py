"""EdgeEngine: Microsoft Edge's online read-aloud voices through edge-tts.

Protocol source: the edge-tts package (``edge_tts/communicate.py``): one
WebSocket per request, ``speech.config`` + ``ssml`` text frames out;
``turn.start``, binary ``Path:audio`` frames (MP3,
``audio-24khz-48kbitrate-mono-mp3``), ``audio.metadata`` (WordBoundary, offsets
and durations in 100 ns ticks) and ``turn.end`` back.

Output is MP3 (never labelled WAV); ``duration_s`` is measured by walking the
MP3 frame headers (:func:`tts._audio.mp3_info`); ``words`` are edge's own
WordBoundary events converted to seconds.

Failures, mapped once here:

* cannot connect at all (DNS failure, connection refused: ``aiohttp``
  ``ClientConnectorError``) -> :class:`EngineUnavailableError` at once, no retry
  (offline costs one quick attempt);
* HTTP 403 on the handshake (after edge-tts's own clock-skew retry), other
  5xx/429 handshakes, ``NoAudioReceived``, dropped connections
  (``ClientError``, ``WebSocketError``), clock-skew errors, timeouts (socket
  or the whole attempt, ``attempt_timeout_s``) ->
  retried ``attempts`` times in all with exponential backoff
  (``backoff_s``, ``2 * backoff_s``, ...), then a retryable
  :class:`SynthesisError`;
* an invalid voice name/other 4xx, an unexpected or unknown response ->
  :class:`SynthesisError` at once (``retryable=False``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from ._audio import mp3_info
from ._base import TTSEngine
from ._errors import EngineUnavailableError, SynthesisError, TTSError
from ._types import SynthesizedAudio, Voice, WordBoundary

#: edge's default voice (``edge_tts.constants.DEFAULT_VOICE``).
DEFAULT_VOICE = "en-US-EmmaMultilingualNeural"
#: 100-nanosecond ticks per second, the unit of edge's offsets and durations.
TICKS_PER_SECOND = 10_000_000
#: Nominal voice pitch (Hz) used to turn the relative ``pitch`` into edge's ``+NHz``.
NOMINAL_PITCH_HZ = 150


@dataclass(frozen=True)
class EdgeConfig:
    """Options of :class:`EdgeEngine` (validated on construction).

    Attributes:
        voice: default voice short name (``edge-tts --list-voices``).
        attempts: tries per segment for retryable failures, 1-10.
        backoff_s: wait before the 2nd try in seconds (doubles each time), 0-60.
        connect_timeout_s: socket connect timeout in whole seconds, 1-300.
        receive_timeout_s: socket read timeout in whole seconds, 1-600.
        proxy: HTTP proxy URL or ``None``.
        attempt_timeout_s: wall-clock limit of one attempt in seconds, > 0
            (edge-tts's own read timeout does not cover WebSocket reads, so a
            silent server would otherwise hang the call forever).
    """

    voice: str = DEFAULT_VOICE
    attempts: int = 3
    backoff_s: float = 0.5
    connect_timeout_s: int = 10
    receive_timeout_s: int = 60
    proxy: str | None = None
    attempt_timeout_s: float = 60.0

    def __post_init__(self) -> None:
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


class _Retryable(Exception):
    """An attempt failed in a way worth retrying (internal)."""


class EdgeEngine(TTSEngine):
    """edge-tts (online, neural voices, MP3 24 kHz mono, real word timings)."""

    name = "edge"

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
    ) -> None:
        self.config = EdgeConfig(
            attempt_timeout_s=attempt_timeout_s,
            voice=voice,
            attempts=attempts,
            backoff_s=backoff_s,
            connect_timeout_s=connect_timeout_s,
            receive_timeout_s=receive_timeout_s,
            proxy=proxy,
        )

    async def _synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> SynthesizedAudio:
        voice = voice or self.config.voice
        prosody = edge_prosody(rate=rate, volume=volume, pitch=pitch)
        last: BaseException | None = None
        for attempt in range(self.config.attempts):
            if attempt:
                await asyncio.sleep(self.config.backoff_s * 2 ** (attempt - 1))
            try:
                async with asyncio.timeout(self.config.attempt_timeout_s):
                    return await self._attempt(text, voice, prosody)
            except TimeoutError as exc:
                last = exc
            except _Retryable as exc:
                last = exc.__cause__
        raise SynthesisError(
            f"edge-tts failed {self.config.attempts} times; last error: "
            f"{type(last).__name__}: {last}",
            engine=self.name,
            text=text,
            # This engine already retried with backoff: a caller retrying again
            # (FallbackEngine) would only multiply the attempts per segment.
            retryable=False,
        ) from last

    async def _attempt(self, text: str, voice: str, prosody: dict[str, str]) -> SynthesizedAudio:
        aiohttp, edge_tts = _import_vendor()
        exceptions = edge_tts.exceptions
        audio = bytearray()
        words: list[WordBoundary] = []
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
        try:
            async for chunk in communicate.stream():
                if chunk["type"] == "audio":
                    audio += chunk["data"]
                elif chunk["type"] == "WordBoundary":
                    words.append(
                        WordBoundary(
                            chunk["text"],
                            chunk["offset"] / TICKS_PER_SECOND,
                            chunk["duration"] / TICKS_PER_SECOND,
                        )
                    )
        except aiohttp.ClientConnectorError as exc:  # includes ClientConnectorDNSError
            raise EngineUnavailableError(
                f"edge-tts service unreachable: {exc}", engine=self.name
            ) from exc
        except aiohttp.ClientResponseError as exc:  # includes WSServerHandshakeError
            if exc.status in (403, 429) or exc.status >= 500:
                raise _Retryable() from exc
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
            TimeoutError,
        ) as exc:
            raise _Retryable() from exc
        except (exceptions.UnexpectedResponse, exceptions.UnknownResponse) as exc:
            raise SynthesisError(
                f"edge-tts got a response it does not understand: {exc}",
                engine=self.name,
                text=text,
            ) from exc
        try:
            info = mp3_info(bytes(audio))
        except ValueError as exc:
            raise SynthesisError(
                f"edge-tts sent {len(audio)} bytes that are not MP3: {exc}",
                engine=self.name,
                text=text,
            ) from exc
        return SynthesizedAudio(
            data=bytes(audio),
            format="mp3",
            sample_rate=info.sample_rate,
            channels=info.channels,
            duration_s=info.duration_s,
            words=tuple(words),
            engine=self.name,
            voice=voice,
            text=text,
        )

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


def _import_vendor() -> tuple[Any, Any]:
    try:
        import aiohttp
        import edge_tts
        import edge_tts.exceptions
    except ImportError as exc:
        raise EngineUnavailableError(f"edge-tts is not installed ({exc})", engine="edge") from exc
    return aiohttp, edge_tts
