"""Measure encoded audio from its bytes: WAV (RIFF) and MP3 frame headers.

Durations are *measured from the audio* (frames / sample rate), never from the
time a request took. No third-party dependency: mutagen is not installed and
the two containers we receive from engines are simple enough.

* WAV: RIFF chunks (Microsoft/IBM "Multimedia Programming Interface and Data
  Specifications 1.0", 1991). ``espeak-ng --stdout`` streams its WAV and writes
  placeholder sizes (``0x7ffff...``) in the RIFF and ``data`` headers, so
  :func:`normalize_wav` trusts the bytes actually present and rewrites both sizes.
* MP3: MPEG-1/2/2.5 audio frame headers (ISO/IEC 11172-3 and 13818-3): every
  frame header gives bitrate, sample rate and padding, hence the frame length
  and its fixed sample count (1152 or 576 for Layer III). :func:`mp3_info`
  walks the frames and sums their samples; a leading ID3v2 tag and a Xing/Info
  metadata frame (which carries no audio) are skipped.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass

with warnings.catch_warnings():  # deprecated in 3.11, gone in 3.13 (then audioop-lts, a dependency)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop


@dataclass(frozen=True)
class AudioInfo:
    """What was measured from encoded audio bytes.

    Attributes:
        sample_rate: samples per second (Hz).
        channels: 1 mono, 2 stereo.
        duration_s: length in seconds (frames / sample_rate).
    """

    sample_rate: int
    channels: int
    duration_s: float


@dataclass(frozen=True)
class PcmWav:
    """A 16-bit PCM WAV split into its parts (see :func:`normalize_wav`).

    Attributes:
        data: the whole WAV file with correct RIFF/data sizes (bytes).
        pcm: the sample bytes of the ``data`` chunk (little-endian).
        sample_width: bytes per sample (2 for 16-bit).
        info: sample rate, channels and duration.
    """

    data: bytes
    pcm: bytes
    sample_width: int
    info: AudioInfo


def normalize_wav(data: bytes) -> PcmWav:
    """Parse a PCM WAV and return it with its header sizes made correct.

    The ``data`` chunk length is the smaller of its declared size and the bytes
    actually present (streamed WAVs declare a placeholder), rounded down to whole
    frames. Raises ``ValueError`` when ``data`` is not a PCM RIFF/WAVE file.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ValueError(f"not a RIFF/WAVE file ({len(data)} bytes)")
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16 or body + 16 > len(data):
                raise ValueError("WAV fmt chunk is truncated")
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from(
                "<HHIIHH", data, body
            )
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise ValueError("WAV data chunk before fmt chunk")
            tag, channels, rate, bits = fmt
            if tag not in (1, 0xFFFE) or bits % 8 or not channels or not rate:
                raise ValueError(f"unsupported WAV encoding (format tag {tag}, {bits} bits)")
            width = bits // 8
            frame = width * channels
            available = min(size, len(data) - body)
            available -= available % frame
            pcm = data[body : body + available]
            header = _wav_header(len(pcm), sample_rate=rate, channels=channels, bits=bits)
            info = AudioInfo(rate, channels, len(pcm) / frame / rate)
            return PcmWav(header + pcm, pcm, width, info)
        pos = body + size + (size & 1)
    raise ValueError("WAV has no data chunk")


class WavStreamParser:
    """Turns a WAV arriving in pieces (``espeak-ng --stdout``) into PCM pieces.

    ``feed(data)`` returns the sample bytes available so far, always whole
    frames (a torn frame is kept for the next call); the header is parsed as
    soon as its ``fmt`` and ``data`` chunk headers are in. A streamed WAV
    declares placeholder sizes (``0x7fffffff``-like), so a ``data`` size of
    ``0x7fff0000`` or more means "to the end"; a real size is honoured.

    Raises ``ValueError`` (from ``feed``/``close``) when the bytes are not a
    16-bit PCM RIFF/WAVE file.
    """

    _PLACEHOLDER = 0x7FFF0000

    def __init__(self) -> None:
        self._head = b""
        self._rest = b""
        self._left: int | None = None  # data bytes still expected (None: to the end)
        self.sample_rate = 0
        self.channels = 0

    @property
    def started(self) -> bool:
        """True once the header was parsed."""
        return bool(self.sample_rate)

    def feed(self, data: bytes) -> bytes:
        """PCM bytes (whole frames) made available by ``data``."""
        if not self.started:
            self._head += data
            if not self._parse_header():
                return b""
            data, self._head = self._head, b""
        if self._left is not None:
            data = data[: self._left]
            self._left -= len(data)
        data = self._rest + data
        frame = 2 * self.channels
        cut = len(data) - len(data) % frame
        self._rest = data[cut:]
        return data[:cut]

    def close(self) -> None:
        """The stream ended. Raises ``ValueError`` when no header ever came."""
        if not self.started:
            raise ValueError(f"not a RIFF/WAVE stream ({len(self._head)} bytes)")

    def _parse_header(self) -> bool:
        data = self._head
        if len(data) < 12:
            return False
        if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
            raise ValueError(f"not a RIFF/WAVE stream (starts with {data[:12]!r})")
        pos = 12
        fmt: tuple[int, int, int, int] | None = None
        while pos + 8 <= len(data):
            chunk_id = data[pos : pos + 4]
            (size,) = struct.unpack_from("<I", data, pos + 4)
            body = pos + 8
            if chunk_id == b"fmt ":
                if body + 16 > len(data):
                    return False
                tag, channels, rate, _rate, _align, bits = struct.unpack_from("<HHIIHH", data, body)
                fmt = (tag, channels, rate, bits)
            elif chunk_id == b"data":
                if fmt is None:
                    raise ValueError("WAV data chunk before fmt chunk")
                tag, channels, rate, bits = fmt
                if tag not in (1, 0xFFFE) or bits != 16 or not channels or not rate:
                    raise ValueError(f"unsupported WAV encoding (format tag {tag}, {bits} bits)")
                self.sample_rate, self.channels = rate, channels
                self._left = None if size >= self._PLACEHOLDER else size
                self._head = data[body:]
                return True
            pos = body + size + (size & 1)
        return False


def pcm_to_wav(pcm: bytes, *, sample_rate: int, channels: int = 1) -> bytes:
    """Wrap raw 16-bit little-endian samples (bytes) in a WAV header."""
    pcm = pcm[: len(pcm) - len(pcm) % (2 * channels)]
    return _wav_header(len(pcm), sample_rate=sample_rate, channels=channels, bits=16) + pcm


def _wav_header(size: int, *, sample_rate: int, channels: int, bits: int) -> bytes:
    frame = bits // 8 * channels
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + size,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * frame,
        frame,
        bits,
        b"data",
        size,
    )


def speech_bounds(wav: PcmWav, *, threshold: int = 500) -> tuple[float, float]:
    """Start and end of non-silent audio in a 16-bit WAV, in seconds.

    A sample counts as sound when its magnitude exceeds ``threshold`` (of
    32767). Returns ``(0.0, duration)`` when nothing exceeds it.
    """
    duration = wav.info.duration_s
    if wav.sample_width != 2 or not wav.pcm:
        return 0.0, duration
    pcm = memoryview(wav.pcm)
    # WAV is little-endian; audioop works in the machine's order.
    if struct.pack("=h", 1) != struct.pack("<h", 1):  # pragma: no cover - big-endian hosts
        pcm = memoryview(audioop.byteswap(wav.pcm, 2))
    first = _first_loud(pcm, threshold, reverse=False)
    if first is None:
        return 0.0, duration
    last = _first_loud(pcm, threshold, reverse=True)
    assert last is not None
    per_second = wav.info.sample_rate * wav.info.channels
    return first / per_second, (last + 1) / per_second


_BLOCK = 2048


def _first_loud(pcm: memoryview, threshold: int, *, reverse: bool) -> int | None:
    """Index of the first (``reverse``: last) 16-bit sample of ``pcm`` whose magnitude
    exceeds ``threshold``.

    Blocks of :data:`_BLOCK` samples are judged by their peak magnitude
    (``audioop.max``, in C); the block holding the answer is then halved the
    same way (about 11 halvings), so no Python code runs per sample.
    """

    def loud(lo: int, hi: int) -> bool:  # samples [lo, hi)
        return bool(audioop.max(pcm[2 * lo:2 * hi], 2) > threshold)

    count = len(pcm) // 2
    starts = range(0, count, _BLOCK)
    for start in reversed(starts) if reverse else starts:
        lo, hi = start, min(start + _BLOCK, count)
        if not loud(lo, hi):
            continue
        while hi - lo > 1:  # invariant: [lo, hi) holds the answer
            mid = (lo + hi) // 2
            if reverse:
                lo, hi = (mid, hi) if loud(mid, hi) else (lo, mid)
            else:
                lo, hi = (lo, mid) if loud(lo, mid) else (mid, hi)
        return lo
    return None


_BITRATES_KBPS = {
    # (MPEG-1?, layer) -> table indexed by the 4-bit bitrate index
    (True, 1): (0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
    (False, 3): (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


@dataclass(frozen=True)
class _Frame:
    length: int
    samples: int
    sample_rate: int
    channels: int
    side_info: int


def _frame_at(data: bytes, pos: int) -> _Frame | None:
    if pos + 4 > len(data) or data[pos] != 0xFF or data[pos + 1] & 0xE0 != 0xE0:
        return None
    b1, b2, b3 = data[pos + 1], data[pos + 2], data[pos + 3]
    version = (b1 >> 3) & 3  # 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
    layer = 4 - ((b1 >> 1) & 3)  # 1, 2, 3 (4 = reserved)
    bitrate_index = b2 >> 4
    rate_index = (b2 >> 2) & 3
    if version == 1 or layer == 4 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    mpeg1 = version == 3
    bitrate = _BITRATES_KBPS[(mpeg1, layer)][bitrate_index] * 1000
    rate = _SAMPLE_RATES[version][rate_index]
    padding = (b2 >> 1) & 1
    mono = (b3 >> 6) == 3
    if layer == 1:
        samples = 384
        length = (12 * bitrate // rate + padding) * 4
    else:
        samples = 1152 if (layer == 2 or mpeg1) else 576
        length = samples // 8 * bitrate // rate + padding
    side_info = (17 if mono else 32) if mpeg1 else (9 if mono else 17)
    return _Frame(length, samples, rate, 1 if mono else 2, side_info)


def mp3_info(data: bytes) -> AudioInfo:
    """Measure an MP3 stream by walking its frame headers.

    Bytes that are not a frame (a torn frame, junk between frames) are skipped
    until the next valid header; a trailing partial frame is not counted.
    Raises ``ValueError`` when no complete MPEG audio frame is found.
    """
    pos = 0
    if data[:3] == b"ID3" and len(data) >= 10:
        size = (data[6] << 21) | (data[7] << 14) | (data[8] << 7) | data[9]
        pos = 10 + size + (10 if data[5] & 0x10 else 0)
    total_samples = 0
    rate = channels = 0
    first = True
    while pos + 4 <= len(data):
        frame = _frame_at(data, pos)
        if frame is None or frame.length < 4 or pos + frame.length > len(data):
            pos += 1
            continue
        tag_at = pos + 4 + frame.side_info
        if first and data[tag_at : tag_at + 4] in (b"Xing", b"Info"):
            pass  # metadata frame, no audio
        else:
            total_samples += frame.samples
        first = False
        rate, channels = frame.sample_rate, frame.channels
        pos += frame.length
    if not rate:
        raise ValueError(f"no MPEG audio frame found in {len(data)} bytes")
    return AudioInfo(rate, channels, total_samples / rate)
