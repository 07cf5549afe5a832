"""One client, many answers at once: each stream holds its own connection for
the whole answer, so the client must not cap them (a daemon runs hundreds)."""

from __future__ import annotations

import asyncio

from tests.fakes.llm_server import FakeLLMServer, Gate, Reply
from tests.llm.conftest import MakeClient

STREAMS = 120  # more than the default cap of 100 connections per client (httpx's, aiohttp's)


class Barrier(Gate):
    """No token leaves before ``parties`` streams are waiting for their first one."""

    def __init__(self, parties: int) -> None:
        super().__init__()
        self.parties = parties
        self.arrived = 0

    async def _wait_turn(self, index: int) -> None:
        if index == 0:
            self.arrived += 1  # the server's one event loop: no race
            if self.arrived == self.parties:
                self.release_all()
        await super()._wait_turn(index)


async def test_more_than_a_hundred_streams_of_one_client_are_open_at_once(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    # A capped pool keeps the streams past the cap waiting for a connection
    # (they fail after connect_timeout) while the others wait at the barrier.
    gate = Barrier(STREAMS)
    server.push(*(Reply(tokens=["a", "b", "."], gate=gate) for _ in range(STREAMS)))
    client = make_client("ollama", connect_timeout=5.0)

    async def one(n: int) -> str:
        deltas = client.astream_chat([{"role": "user", "content": f"question {n}"}])
        return "".join([delta async for delta in deltas])

    try:
        answers = await asyncio.gather(*(one(n) for n in range(STREAMS)))
    finally:
        gate.release_all()  # a failed run must not leave streams held
        await client.aclose()
    assert answers == ["ab."] * STREAMS
    assert len(server.requests) == STREAMS
