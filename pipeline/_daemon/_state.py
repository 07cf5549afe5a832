"""Everything one daemon app shares between requests."""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import llm
from tts import TTSEngine

from ._http import ApiError
from ._jobs import JobStore, NarrationJobs
from ._metrics import DaemonMetrics
from ._runs import RunRegistry
from ._settings import DaemonSettings
from ._source import ClientLease, PipelineSource
from ._spares import SpareEncoders
from ._warm import started_pool, warm_up

logger = logging.getLogger("speakstream.daemon")

#: Conversations kept (``conversation_id`` of ``/v1/speak``); the least recently
#: used is forgotten first, so clients cannot grow the daemon's memory without bound.
MAX_CONVERSATIONS = 1000

#: Threads of the daemon loop's default executor (``asyncio.to_thread``). Runs
#: send their file work there (directory lock, segment files and manifest
#: lines, each fsynced, format conversions): it waits on the disk, not the CPU.
#: asyncio's default, ``min(32, cores + 4)`` (6 on 2 cores), queued the writes
#: of a hundred concurrent runs behind each other's fsyncs (measured in
#: ``bench/daemon_load.py``: up to 125 ms waiting for a thread at 100 clients).
IO_THREADS = 64


class DaemonState:
    """The app's shared objects: settings, metrics, run registry, pipeline source.

    ``start()`` / ``aclose()`` are called by the app's lifespan.

    Args:
        settings: the daemon's options.
        llm_client / tts_engine: injected ready objects (see ``create_app``).
        announce: called once at start-up with the line saying what the daemon
            serves and why (``speakstream serve`` prints it).
        address: the URL the daemon listens on, for that line.
    """

    def __init__(
        self,
        settings: DaemonSettings,
        *,
        llm_client: Any = None,
        tts_engine: TTSEngine | None = None,
        announce: Callable[[str], Any] | None = None,
        address: str = "",
    ) -> None:
        self.settings = settings
        self.metrics = DaemonMetrics()
        self.runs = RunRegistry(settings.runs_dir)
        self.source = PipelineSource(settings, llm_client=llm_client, tts_engine=tts_engine)
        #: Started ffmpeg encoders for ``/v1/audio/speech`` (see :mod:`._spares`).
        self.encoders = SpareEncoders()
        self._conversations: OrderedDict[str, tuple[llm.Conversation, ClientLease]] = (
            OrderedDict()
        )
        self._jobs: NarrationJobs | None = None
        self._announce = announce
        self._address = address
        #: The start-up line (set by ``start()``).
        self.description = ""

    @property
    def jobs(self) -> NarrationJobs:
        """The narration jobs (available once the app started)."""
        if self._jobs is None:
            raise RuntimeError("the daemon has not started")
        return self._jobs

    def conversation(self, conversation_id: str, provider: str | None, model: str | None,
                     *, system: str | None = None) -> llm.Conversation:
        """The :class:`llm.Conversation` kept under ``conversation_id`` (created on first use).

        Raises:
            ApiError: 409 when the id is in use with another provider/model;
                422 for an unknown provider.
        """
        key, _ = self.source.client_key(provider, model)
        kept = self._conversations.get(conversation_id)
        if kept is not None:
            conversation, lease = kept
            if lease.key != key and lease.key:
                raise ApiError(409, "conflict",
                               f"conversation {conversation_id!r} uses another llm/model",
                               param="conversation_id")
            self._conversations.move_to_end(conversation_id)
            return conversation
        lease = self.source.lease(provider, model)
        conversation = llm.Conversation(lease.client, system=system)
        self._conversations[conversation_id] = (conversation, lease)
        while len(self._conversations) > MAX_CONVERSATIONS:
            _, (_, old) = self._conversations.popitem(last=False)
            old.release()
        return conversation

    async def start(self) -> None:
        """Create directories, start the spare encoders, open the job store, resume
        unfinished jobs, and say what the daemon serves (warming the default engine up).

        The running loop's default executor becomes a pool of
        :data:`IO_THREADS` threads, all started now (the loop shuts it down
        when it closes); what the first request would import is imported now
        (see :mod:`._warm`)."""
        pool = await started_pool(IO_THREADS, "speakstream-io")
        asyncio.get_running_loop().set_default_executor(pool)
        await warm_up()
        self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
        await self.encoders.start()
        store = await asyncio.to_thread(JobStore, self.settings.database)
        self._jobs = NarrationJobs(store, self.source, self.settings.narrations_dir,
                                   self.metrics)
        resumed = await self._jobs.resume_unfinished()
        if resumed:
            logger.info("resuming narration jobs %s", ", ".join(resumed))
        self.description = await self._describe()
        if self._announce is not None:
            self._announce(self.description)

    async def _describe(self) -> str:
        sources = self.settings.sources
        try:
            llm_text, tts_text = await self.source.describe(
                voice=self.settings.streaming_config.voice
            )
        except ApiError as exc:
            return f"speakstream serve: {self._address} · cannot serve the default llm/tts: " + (
                exc.message)
        parts = [self._address] if self._address else []
        parts.append(f"llm {llm_text} ({sources.get('llm', 'default')})")
        name, arrow, choice = tts_text.partition(" → ")
        parts.append(f"tts {name} ({sources.get('tts', 'default')}){arrow}{choice}")
        if self.settings.ray_address:
            parts.append(f"narrations on Ray {self.settings.ray_address} "
                         f"({sources.get('ray_address', 'default')})")
        return "speakstream serve: " + " · ".join(parts)

    async def aclose(self) -> None:
        """Cancel runs still going, stop jobs (they resume at the next start), reap
        the spare encoders, close engines the daemon made."""
        try:
            await self.runs.aclose()
            if self._jobs is not None:
                await self._jobs.aclose()
        finally:
            await self.encoders.aclose()
            for _, lease in self._conversations.values():
                lease.release()
            self._conversations.clear()
            await self.source.aclose()
