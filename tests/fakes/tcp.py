"""A raw TCP server on 127.0.0.1 for tests that write their own bytes.

``asyncio.start_server`` alone leaks on Python 3.11: ``Server.wait_closed()``
returns at once after ``close()`` without waiting for the connection handlers
(cpython gh-79033, fixed in 3.12), so a handler still running when the test's
event loop closes leaves its socket unclosed, and pytest reports the
``ResourceWarning`` in whichever later test the garbage collector runs.

Use::

    async with tcp_server(handle) as port:   # handle(reader, writer), as for start_server
        ... connect to 127.0.0.1:port ...

On exit the listening socket is closed, every handler still running is
cancelled and awaited, and every accepted connection is closed and waited for.
A handler need not close its writer; a peer that hangs up (``ConnectionError``,
``IncompleteReadError``) ends its handler quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def tcp_server(handle: Handler) -> AsyncIterator[int]:
    """Serve ``handle`` on 127.0.0.1 at a free port; yield the port (an int)."""
    handlers: set[asyncio.Task[None]] = set()

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        try:
            await handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the peer hung up
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()
            handlers.discard(task)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in list(handlers):
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        await server.wait_closed()
