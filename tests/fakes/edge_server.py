"""FakeEdgeServer: a local server speaking the edge-tts read-aloud protocol byte for byte.

Framing follows the installed client, ``edge_tts/communicate.py`` (7.3.1):

* WebSocket at ``/consumer/speech/synthesize/readaloud/edge/v1?TrustedClientToken=...``;
  the client appends ``&ConnectionId=&Sec-MS-GEC=&Sec-MS-GEC-Version=`` and
  offers permessage-deflate.
* client -> server text frames: ``speech.config`` (JSON with
  ``outputFormat`` and ``wordBoundaryEnabled``) then ``ssml`` (headers
  ``X-RequestId``, ``Content-Type:application/ssml+xml``, ``X-Timestamp``, ``Path:ssml``).
* server -> client: text ``turn.start``; text ``response``; per word a text
  ``audio.metadata`` frame ``{"Metadata":[{"Type":"WordBoundary","Data":{"Offset",
  "Duration","text":{"Text","Length","BoundaryType"}}}]}`` (100 ns ticks); binary
  audio frames = 2-byte big-endian header length + headers
  (``X-RequestId``, ``Content-Type:audio/mpeg``, ``X-StreamId``, ``Path:audio``,
  each ending in CRLF) + MP3 bytes (``audio-24khz-48kbitrate-mono-mp3``, i.e.
  MPEG-2 Layer III frames of 144 bytes = 24 ms); a final binary ``Path:audio``
  frame with no Content-Type and no data; text ``turn.end``.
* Text frames are ``headers CRLF CRLF body``.
* Voice list: ``GET /consumer/speech/synthesize/readaloud/voices/list``.

The audio is a real MP3 (a 220 Hz tone encoded once by ffmpeg, cut at frame
boundaries) lasting ``seconds_per_char * len(text)`` rounded up to whole frames.

Failure script: append modes to ``server.failures``; each new connection pops one:
``"403"`` (handshake refused with 403 + Date header, as the service does on
clock skew), ``"500"``, ``"400"``, ``"no_audio"`` (turn.start then turn.end),
``"drop"`` (abort the TCP connection after turn.start), ``"bad_path"``
(binary frame whose Path is not audio), ``"hang"`` (accept the ssml, then never answer
until ``release`` is set).

Records: ``connections`` (query dict + headers per handshake), ``requests``
(parsed ssml: request id, voice, rate, volume, pitch, text, speech.config JSON).

Point edge-tts at it with ``monkeypatch.setattr(edge_tts.communicate, "WSS_URL",
server.wss_url)`` and ``edge_tts.voices.VOICE_LIST`` at ``server.voice_list_url``.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import subprocess
import uuid
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from xml.sax.saxutils import unescape

from aiohttp import WSMsgType, web

PATH = "/consumer/speech/synthesize/readaloud"
TICKS = 10_000_000
FRAME_BYTES = 144  # 48 kbit/s * 0.024 s / 8
FRAME_S = 0.024  # 576 samples at 24 kHz

VOICES = [
    {
        "Name": "Microsoft Server Speech Text to Speech Voice (en-US, EmmaMultilingualNeural)",
        "ShortName": "en-US-EmmaMultilingualNeural",
        "Gender": "Female",
        "Locale": "en-US",
        "SuggestedCodec": "audio-24khz-48kbitrate-mono-mp3",
        "FriendlyName": "Microsoft Emma Online (Natural) - English (United States)",
        "Status": "GA",
        "VoiceTag": {"ContentCategories": ["General"], "VoicePersonalities": ["Cheerful"]},
    },
    {
        "Name": "Microsoft Server Speech Text to Speech Voice (de-DE, ConradNeural)",
        "ShortName": "de-DE-ConradNeural",
        "Gender": "Male",
        "Locale": "de-DE",
        "SuggestedCodec": "audio-24khz-48kbitrate-mono-mp3",
        "FriendlyName": "Microsoft Conrad Online (Natural) - German (Germany)",
        "Status": "GA",
        "VoiceTag": {"ContentCategories": ["General"], "VoicePersonalities": ["Friendly"]},
    },
]


@cache
def tone_mp3_frames() -> tuple[bytes, ...]:
    """30 s of 220 Hz tone as 24 kHz / 48 kbit/s mono MP3, split into its 144-byte frames."""
    data = subprocess.run(
        [
            "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=220:duration=30",
            "-ar", "24000", "-ac", "1", "-b:a", "48k", "-write_xing", "0",
            "-id3v2_version", "0", "-f", "mp3", "pipe:1",
        ],
        check=True,
        capture_output=True,
    ).stdout
    frames = tuple(data[i : i + FRAME_BYTES] for i in range(0, len(data), FRAME_BYTES))
    assert all(f[:2] == b"\xff\xf3" for f in frames[:-1]), "unexpected MP3 framing"
    return frames[:-1]


def _text_frame(request_id: str, path: str, body: str) -> str:
    return (
        f"X-RequestId:{request_id}\r\n"
        "Content-Type:application/json; charset=utf-8\r\n"
        f"Path:{path}\r\n\r\n{body}"
    )


def _audio_frame(request_id: str, stream_id: str, data: bytes, *, path: str = "audio") -> bytes:
    if data:
        headers = (
            f"X-RequestId:{request_id}\r\nContent-Type:audio/mpeg\r\n"
            f"X-StreamId:{stream_id}\r\nPath:{path}\r\n"
        )
    else:
        headers = f"X-RequestId:{request_id}\r\nX-StreamId:{stream_id}\r\nPath:{path}\r\n"
    raw = headers.encode("utf-8")
    return len(raw).to_bytes(2, "big") + raw + data


def _parse_text_frame(data: str) -> tuple[dict[str, str], str]:
    head, _, body = data.partition("\r\n\r\n")
    headers = dict(line.split(":", 1) for line in head.split("\r\n") if line)
    return headers, body


@dataclass
class FakeEdgeServer:
    """See the module docstring. Use ``async with FakeEdgeServer() as server``."""

    seconds_per_char: float = 0.06
    failures: list[str] = field(default_factory=list)
    connections: list[dict[str, Any]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)
    open_now: int = 0  # connections open at this moment
    open_max: int = 0  # the most ever open at once
    port: int = 0
    _runner: web.AppRunner | None = None
    _transport: asyncio.Transport | None = None

    @property
    def wss_url(self) -> str:
        """The value for ``edge_tts.communicate.WSS_URL`` (has a query, as the real one)."""
        return f"ws://127.0.0.1:{self.port}{PATH}/edge/v1?TrustedClientToken=6A5AA1D4EAFF4E9F"

    @property
    def voice_list_url(self) -> str:
        """The value for ``edge_tts.voices.VOICE_LIST``."""
        return f"http://127.0.0.1:{self.port}{PATH}/voices/list?trustedclienttoken=6A5AA1D4"

    async def __aenter__(self) -> FakeEdgeServer:
        await asyncio.to_thread(tone_mp3_frames)
        app = web.Application()
        app.router.add_get(f"{PATH}/edge/v1", self._websocket)
        app.router.add_get(f"{PATH}/voices/list", self._voices)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _voices(self, request: web.Request) -> web.Response:
        return web.json_response(VOICES)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        self.open_now += 1
        self.open_max = max(self.open_max, self.open_now)
        try:
            return await self._session(request)
        finally:
            self.open_now -= 1

    async def _session(self, request: web.Request) -> web.StreamResponse:
        self.connections.append({"query": dict(request.query), "headers": dict(request.headers)})
        mode = self.failures.pop(0) if self.failures else "ok"
        if mode in ("403", "500", "400"):
            return web.Response(status=int(mode), text=f"fake edge: {mode}")
        self._transport = request.transport
        ws = web.WebSocketResponse(compress=True)
        await ws.prepare(request)
        config: dict[str, Any] = {}
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            headers, body = _parse_text_frame(message.data)
            if headers.get("Path") == "speech.config":
                config = json.loads(body)
            elif headers.get("Path") == "ssml":
                await self._answer(ws, headers, body, config, mode)
        return ws

    async def _answer(
        self,
        ws: web.WebSocketResponse,
        headers: dict[str, str],
        ssml: str,
        config: dict[str, Any],
        mode: str,
    ) -> None:
        request_id = headers["X-RequestId"]
        match = re.search(
            r"<voice name='([^']*)'><prosody pitch='([^']*)' rate='([^']*)' volume='([^']*)'>"
            r"(.*)</prosody></voice>",
            ssml,
            re.S,
        )
        assert match is not None, ssml
        voice, pitch, rate, volume, escaped = match.groups()
        text = unescape(escaped)
        self.requests.append(
            {
                "request_id": request_id,
                "voice": voice,
                "rate": rate,
                "volume": volume,
                "pitch": pitch,
                "text": text,
                "config": config,
                "content_type": headers.get("Content-Type"),
            }
        )
        stream_id = uuid.uuid4().hex.upper()
        await ws.send_str(
            _text_frame(request_id, "turn.start", '{"context":{"serviceTag":"fake"}}')
        )
        if mode == "hang":
            await self.release.wait()
            return
        if mode == "drop":
            transport = self._transport
            assert transport is not None
            transport.abort()  # the connection dies mid-turn, no close frame
            return
        await ws.send_str(
            _text_frame(
                request_id,
                "response",
                '{"context":{"serviceTag":"fake"},"audio":{"type":"inline","streamId":"'
                + stream_id
                + '"}}',
            )
        )
        if mode == "no_audio":
            await ws.send_str(_text_frame(request_id, "turn.end", "{}"))
            return
        if mode == "bad_path":
            await ws.send_bytes(_audio_frame(request_id, stream_id, b"\x00" * 10, path="video"))
            return
        frames = tone_mp3_frames()
        count = max(1, math.ceil(self.seconds_per_char * len(text) / FRAME_S))
        words = text.split()
        per_char_ticks = count * FRAME_S * TICKS / max(1, len(text))
        position = 0
        for word in words:
            position = text.index(word, position)
            metadata = {
                "Metadata": [
                    {
                        "Type": "WordBoundary",
                        "Data": {
                            "Offset": round(position * per_char_ticks),
                            "Duration": round(len(word) * per_char_ticks),
                            "text": {
                                "Text": word,
                                "Length": len(word),
                                "BoundaryType": "WordBoundary",
                            },
                        },
                    }
                ]
            }
            await ws.send_str(_text_frame(request_id, "audio.metadata", json.dumps(metadata)))
            position += len(word)
        sent = 0
        while sent < count:
            chunk = frames[sent % len(frames) : sent % len(frames) + min(8, count - sent)]
            await ws.send_bytes(_audio_frame(request_id, stream_id, b"".join(chunk)))
            sent += len(chunk)
        await ws.send_bytes(_audio_frame(request_id, stream_id, b""))
        await ws.send_str(_text_frame(request_id, "turn.end", "{}"))
