"""Shared pieces of the fault suite: an answer to stream, a pipeline on the fake
LLM server, event collection as documented dicts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pipeline import ProgressEvent, StreamingPipeline, create_streaming_pipeline, event_to_dict
from tests.fakes.engine import FakeEngine
from tests.llm.conftest import client_kwargs
from tests.pipeline.test_e2e_fake_llm import tokens

GUARD = 60  # seconds: turns a would-be hang into a failure, never a measurement

ANSWER = (
    "The sky looks blue because air scatters short wavelengths of sunlight. "
    "This is called Rayleigh scattering. At sunset the light crosses more air, "
    "so the blue is scattered away and reds remain. That is why evenings glow orange. "
    "Clouds are white because their droplets scatter every colour alike."
)


TOKENS = tokens(ANSWER)


def llm_pipeline(provider: str, url: str, out: Path, *, engine: Any = None,
                 **llm_options: Any) -> StreamingPipeline:
    """A pipeline whose LLM is ``provider`` on the fake server at ``url``."""
    return create_streaming_pipeline(
        provider,
        streaming_config={"output_dir": str(out), "sentence_buffer_size": 1, "workers": 2},
        llm_config={"model": "fake-model", "retry_backoff": 0,
                    **client_kwargs(provider, url), **llm_options},
        tts_engine=engine or FakeEngine(),
    )


async def collect(events: AsyncIterator[ProgressEvent]) -> list[dict[str, Any]]:
    """Every event of a run, as the documented dicts."""
    async with asyncio.timeout(GUARD):
        return [event_to_dict(e) async for e in events]
