"""Pacing an in-process LLM against synthesis (issue 12 item 3): the rule and its wiring."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncGenerator

import pytest

import llm
from llm import ClientOptions
from llm._types import ChatRequest, Report
from pipeline import AudioReady, RunCompleted, SegmentQueued, create_streaming_pipeline
from pipeline._pacing import Pacer
from tests.fakes.engine import FakeEngine

SENTENCES = [f"Sentence number {n} has a few words in it. " for n in range(40)]


# -- the rule ---------------------------------------------------------------------


async def test_first_segment_holds_generation_until_audio_is_out() -> None:
    pacer = Pacer(lead_chars=100)
    pacer.text_received(30)
    assert not pacer.should_wait()  # nothing in flight: text must reach the cutter
    pacer.segment_queued()
    assert pacer.should_wait()  # segment 0 synthesizes alone
    pacer.audio_out()
    assert not pacer.should_wait()  # little text ahead: generation goes on


async def test_far_ahead_waits_only_while_a_segment_is_in_flight() -> None:
    pacer = Pacer(lead_chars=100)
    pacer.audio_out()
    pacer.text_received(150)
    assert not pacer.should_wait()  # nothing in flight: never wait
    pacer.segment_queued()
    assert pacer.should_wait()  # 150 characters ahead of synthesis
    pacer.segment_ended(80)
    assert not pacer.should_wait()  # 70 left: below the lead


async def test_wait_returns_when_the_rule_lets_go_and_close_releases_for_good() -> None:
    pacer = Pacer(lead_chars=10)
    pacer.segment_queued()
    waiter = asyncio.create_task(pacer.wait())
    await asyncio.sleep(0)
    assert not waiter.done()
    pacer.close()
    await waiter
    pacer.segment_queued()
    await pacer.wait()  # closed: never waits again
    assert pacer.waits == 1


async def test_a_paused_run_never_holds_generation_in_the_pacer() -> None:
    # While paused, the LLM reader must reach PauseControl.hold (which has a time
    # limit); a pacer waiting on a paused segment would hold the LLM for ever.
    from pipeline import PauseControl

    pacer, pause = Pacer(lead_chars=10), PauseControl(hold_s=1.0)
    pause.subscribe(pacer.set_paused)
    pacer.segment_queued()
    waiter = asyncio.create_task(pacer.wait())
    await asyncio.sleep(0)
    assert not waiter.done()  # segment 0 in flight: generation held
    pause.pause()
    await waiter  # released by the pause
    assert not pacer.should_wait()
    pause.resume()
    assert pacer.should_wait()  # the rule applies again


def test_lead_must_be_positive() -> None:
    with pytest.raises(ValueError, match="lead_chars"):
        Pacer(lead_chars=0)


# -- the wiring: a run paces an in-process client, not a network one ---------------


class _ScriptedClient(llm.LLMClient):
    """Yields SENTENCES word by word as fast as it is asked; counts what it made."""

    provider = "scripted"

    def __init__(self, *, in_process: bool) -> None:
        super().__init__(model="script", options=ClientOptions())
        self.runs_in_process = in_process
        self.produced = 0

    async def _astream(self, request: ChatRequest, report: Report) -> AsyncGenerator[str, None]:
        for sentence in SENTENCES:
            for word in sentence.split(" "):
                if word:
                    self.produced += 1
                    yield word + " "
                    await asyncio.sleep(0)


async def _tokens_made_while_segment_0_synthesizes(in_process: bool) -> tuple[int, str]:
    client = _ScriptedClient(in_process=in_process)
    gate = asyncio.Event()
    engine = FakeEngine(gates={0: gate})
    started = engine.started.setdefault(0, asyncio.Event())
    with tempfile.TemporaryDirectory() as out:
        pipe = create_streaming_pipeline(llm_client=client, tts_engine=engine,
                                         streaming_config={"output_dir": out})
        async with pipe:
            events = pipe.astream_chat_to_audio("Go.")
            done: list[RunCompleted] = []

            async def consume() -> None:
                async with contextlib.aclosing(events) as stream:
                    async for event in stream:
                        if isinstance(event, RunCompleted):
                            done.append(event)

            task = asyncio.create_task(consume())
            await started.wait()
            before = client.produced
            for _ in range(300):  # plenty of turns for an unpaced stream to run ahead
                await asyncio.sleep(0)
            made = client.produced - before
            gate.set()
            await task
    return made, done[0].complete_text


async def test_generation_waits_while_segment_0_is_synthesized() -> None:
    made, text = await _tokens_made_while_segment_0_synthesizes(in_process=True)
    assert made <= 2
    assert text.split() == "".join(SENTENCES).split()  # nothing lost to pacing


async def test_a_network_client_is_not_paced() -> None:
    made, _ = await _tokens_made_while_segment_0_synthesizes(in_process=False)
    assert made > 2


async def test_a_run_without_chunk_sinks_lets_generation_go_after_segment_0() -> None:
    """Files only (no player): the first file counts as the first audio, so later
    segments are paced by the lead rule, not held one by one."""
    client = _ScriptedClient(in_process=True)
    gate = asyncio.Event()
    engine = FakeEngine(gates={1: gate})
    started = engine.started.setdefault(1, asyncio.Event())
    queued: dict[int, SegmentQueued] = {}
    first_file = asyncio.Event()

    async def drain(events: AsyncGenerator[object, None]) -> None:
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                if isinstance(event, SegmentQueued):
                    queued[event.index] = event
                elif isinstance(event, AudioReady):
                    first_file.set()

    with tempfile.TemporaryDirectory() as out:
        pipe = create_streaming_pipeline(llm_client=client, tts_engine=engine,
                                         streaming_config={"output_dir": out})
        async with pipe:
            task = asyncio.create_task(drain(pipe.astream_chat_to_audio("Go.")))
            await started.wait()  # segment 1 synthesizes ...
            await first_file.wait()  # ... and segment 0's file is written
            for _ in range(300):
                await asyncio.sleep(0)
            made = client.produced
            gate.set()
            await task
    through_segment_1 = len("".join(SENTENCES)[: queued[1].end].split())
    # Held one segment at a time, generation would stop within 2 tokens of segment
    # 1's end; with the first file as the first audio it runs on to the lead.
    assert made > through_segment_1 + 2
