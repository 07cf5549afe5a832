"""Everything one daemon app shares between requests."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import llm
from tts import TTSEngine

from ._http import ApiError
from ._jobs import JobStore, NarrationJobs
from ._metrics import DaemonMetrics
from ._runs import RunRegistry
from ._settings import DaemonSettings
from ._source import PipelineSource

logger = logging.getLogger("speakstream.daemon")


class DaemonState:
    """The app's shared objects: settings, metrics, run registry, pipeline source.

    ``start()`` / ``aclose()`` are called by the app's lifespan.
    """

    def __init__(
        self,
        settings: DaemonSettings,
        *,
        llm_client: Any = None,
        tts_engine: TTSEngine | None = None,
    ) -> None:
        self.settings = settings
        self.metrics = DaemonMetrics()
        self.runs = RunRegistry(settings.runs_dir)
        self.source = PipelineSource(settings, llm_client=llm_client, tts_engine=tts_engine)
        self._conversations: dict[str, Any] = {}
        self._jobs: NarrationJobs | None = None

    @property
    def jobs(self) -> NarrationJobs:
        """The narration jobs (available once the app started)."""
        if self._jobs is None:
            raise RuntimeError("the daemon has not started")
        return self._jobs

    def conversation(self, conversation_id: str, provider: str | None, model: str | None,
                     *, system: str | None = None) -> Any:
        """The :class:`llm.Conversation` kept under ``conversation_id`` (created on first use).

        Raises:
            ApiError: 409 when the id is in use with another provider/model.
        """
        client = self.source.client(provider, model)
        conversation = self._conversations.get(conversation_id)
        if conversation is None:
            conversation = llm.Conversation(client, system=system)
            self._conversations[conversation_id] = conversation
        elif conversation.client is not client:
            raise ApiError(409, "conflict",
                           f"conversation {conversation_id!r} uses another llm/model",
                           param="conversation_id")
        return conversation

    async def start(self) -> None:
        """Create directories, open the job store and resume unfinished jobs."""
        self.settings.runs_dir.mkdir(parents=True, exist_ok=True)
        store = await asyncio.to_thread(JobStore, self.settings.database)
        self._jobs = NarrationJobs(store, self.source, self.settings.narrations_dir,
                                   self.metrics)
        resumed = await self._jobs.resume_unfinished()
        if resumed:
            logger.info("resuming narration jobs %s", ", ".join(resumed))

    async def aclose(self) -> None:
        """Stop jobs (they resume at the next start), close engines the daemon made."""
        try:
            if self._jobs is not None:
                await self._jobs.aclose()
        finally:
            await self.source.aclose()
