"""EspeakEngine: the ``espeak-ng`` command line, the dependable offline engine.

Protocol source: ``espeak-ng(1)``. The text goes in on stdin (``--stdin``, so a
segment starting with ``-`` is never read as an option) and ``--stdout`` gives
a 22050 Hz mono 16-bit WAV *as it is synthesized* (placeholder sizes in its
header): the engine streams its samples as PCM chunks while espeak-ng is still
speaking (:class:`tts._audio.WavStreamParser`).

Word timings: the CLI reports none; they are estimated from text length over
the measured speech span (see :mod:`tts._words`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ._audio import WavStreamParser
from ._base import TTSEngine, pcm_audio
from ._errors import SynthesisError
from ._process import run_program, stream_program
from ._slots import Slots
from ._types import AudioChunk, RetryPolicy, SynthesizedAudio, Voice

#: espeak-ng's default speed in words per minute and the range it honours.
DEFAULT_WPM = 175
MIN_WPM, MAX_WPM = 80, 450


@dataclass(frozen=True)
class EspeakConfig:
    """Options of :class:`EspeakEngine` (validated on construction).

    Attributes:
        voice: default ``-v`` voice (``"en-us"``, see ``espeak-ng --voices``),
            ``None`` for espeak-ng's default.
        executable: the program to run.
        timeout_s: seconds one synthesis may take before the process is killed
            and :class:`SynthesisError` raised; > 0.
        parallel: segments synthesized at once (processes running, 1-64);
            ``None``: no limit (each caller bounds its own).
    """

    voice: str | None = None
    executable: str = "espeak-ng"
    timeout_s: float = 30.0
    parallel: int | None = None

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0 seconds, got {self.timeout_s!r}")
        Slots(self.parallel)  # validates it
        if not self.executable:
            raise ValueError("executable must be a non-empty program name or path")


def espeak_arguments(
    *, voice: str | None, rate: float | None, volume: float | None, pitch: float | None
) -> list[str]:
    """Map the relative prosody of :class:`TTSEngine` to espeak-ng options.

    ``rate`` x 175 wpm (clamped to espeak's 80-450 wpm), ``volume`` x 100
    amplitude (``-a``, 0-200 scale, 100 normal), ``pitch`` x 50 (``-p``, 0-99).
    """
    args: list[str] = []
    if voice:
        args += ["-v", voice]
    if rate is not None:
        args += ["-s", str(min(MAX_WPM, max(MIN_WPM, round(DEFAULT_WPM * rate))))]
    if volume is not None:
        args += ["-a", str(round(volume * 100))]
    if pitch is not None:
        args += ["-p", str(min(99, max(0, round(50 * pitch))))]
    return args


class EspeakEngine(TTSEngine):
    """``espeak-ng`` as a subprocess per segment (never blocks the event loop).

    Streams 16-bit mono PCM at 22050 Hz as espeak-ng writes it; the whole
    audio is a WAV with ``duration_s`` from the sample count and ``words``
    estimated (see module docstring). :meth:`synthesize` (no chunks wanted,
    e.g. narration to files) reads the program's output in one piece in a
    worker thread of the engine's own (``parallel`` of them; ``None``: the
    standard pool size, ``min(32, cores + 4)``): about half the event loop's
    CPU per segment.
    """

    name = "espeak"

    def __init__(
        self,
        *,
        voice: str | None = None,
        executable: str = "espeak-ng",
        timeout_s: float = 30.0,
        parallel: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = EspeakConfig(voice=voice, executable=executable, timeout_s=timeout_s,
                                   parallel=parallel)
        self.slots = Slots(parallel)
        # synthesize()'s waits: threads of the engine's own, never the loop's default
        # pool (the daemon sizes that one for disk writes), one per slot.
        self._threads = ThreadPoolExecutor(parallel, thread_name_prefix="speakstream-espeak")
        if retry is not None:
            self.retry = retry

    async def aclose(self) -> None:
        self._threads.shutdown(wait=False, cancel_futures=True)
        await super().aclose()

    def _argv(self, voice: str | None, rate: float | None, volume: float | None,
              pitch: float | None) -> list[str]:
        return [
            self.config.executable,
            *espeak_arguments(voice=voice, rate=rate, volume=volume, pitch=pitch),
            "--stdin",
            "--stdout",
        ]

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
        parser = WavStreamParser()
        stdout = stream_program(
            self._argv(voice, rate, volume, pitch),
            stdin=text.encode("utf-8"),
            timeout_s=self.config.timeout_s,
            engine=self.name,
            text=text,
        )
        try:
            async for data in stdout:
                pcm = parser.feed(data)
                if pcm:
                    yield AudioChunk(pcm, "pcm", parser.sample_rate, parser.channels,
                                     engine=self.name, voice=voice)
            parser.close()
        except ValueError as exc:
            raise SynthesisError(
                f"{self.name} wrote no valid WAV: {exc}", engine=self.name, text=text
            ) from exc
        finally:
            await stdout.aclose()

    async def _synthesize(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> SynthesizedAudio:
        """The whole segment at once (:meth:`synthesize`: nobody takes chunks).

        The same program and audio as :meth:`_stream`, its output read in one
        piece by a worker thread (:func:`tts._process.run_program`).
        """
        voice = voice or self.config.voice
        data = await run_program(
            self._argv(voice, rate, volume, pitch), stdin=text.encode("utf-8"),
            timeout_s=self.config.timeout_s, engine=self.name, text=text, executor=self._threads,
        )
        parser = WavStreamParser()
        try:
            pcm = parser.feed(data)
            parser.close()
        except ValueError as exc:
            raise SynthesisError(
                f"{self.name} wrote no valid WAV: {exc}", engine=self.name, text=text
            ) from exc
        if not pcm:
            raise SynthesisError(
                f"{self.name} returned no audio for {len(text)} characters of text",
                engine=self.name, text=text,
            )
        return pcm_audio(pcm, parser.sample_rate, parser.channels, text=text,
                         engine=self.name, voice=voice)

    async def list_voices(self) -> list[Voice]:
        """Voices from ``espeak-ng --voices``; ``id`` is the language column (``-v`` value)."""
        out = await run_program(
            [self.config.executable, "--voices"],
            stdin=b"",
            timeout_s=self.config.timeout_s,
            engine=self.name,
            text="",
        )
        return parse_voice_table(out.decode("utf-8", "replace"))


_GENDERS = {"M": "male", "F": "female"}


def parse_voice_table(table: str) -> list[Voice]:
    """Parse the table printed by ``espeak-ng --voices``."""
    voices = []
    for line in table.splitlines()[1:]:
        fields = re.split(r"\s+", line.strip())
        if len(fields) < 5:
            continue
        _priority, language, age_gender, name = fields[:4]
        gender = _GENDERS.get(age_gender.rpartition("/")[2], "")
        voices.append(
            Voice(
                id=language,
                name=name.replace("_", " "),
                language=language,
                gender=gender,
                engine="espeak",
            )
        )
    return voices
