"""The raw TCP server the LLM tests write their own bytes with (``tests.fakes.tcp``)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.fakes.tcp import tcp_server


async def test_a_handler_still_running_at_exit_is_ended_and_its_connection_closed() -> None:
    """What ``start_server`` + ``wait_closed`` leave running on Python 3.11 (gh-79033)."""
    started, ended = asyncio.Event(), asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        started.set()
        try:
            await reader.read()  # until the peer hangs up, which it does not
        finally:
            ended.set()

    async with tcp_server(handle) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        await started.wait()
    assert ended.is_set()
    assert await reader.read() == b""  # the server's end was closed: EOF
    writer.close()
    await writer.wait_closed()


async def test_a_peer_that_hangs_up_ends_its_handler_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The handler's IncompleteReadError is the peer's doing: not an error the
    loop logs as an unhandled exception of the server's callback."""
    ended = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readexactly(10)  # the peer sends 2 bytes, then closes
        finally:
            ended.set()

    with caplog.at_level(logging.ERROR, logger="asyncio"):
        async with tcp_server(handle) as port:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"hi")
            writer.close()
            await writer.wait_closed()
            await ended.wait()
            for _ in range(3):  # let the server's task finish its callback
                await asyncio.sleep(0)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
