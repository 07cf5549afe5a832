"""A run's event log: every client message of a run, numbered, kept for replay.

The run's producer appends each message once; every client (SSE, WebSocket,
one or many, live or reconnecting) reads the same log from its own cursor::

    pipeline events ──producer──▶ EventLog (seq 1, 2, 3, ...) ──▶ client A (cursor 41)
                                   (encoded once per entry)   ──▶ client B (cursor 12)

So a client that reconnects with ``Last-Event-ID: N`` (SSE) or ``"after": N``
(WebSocket) gets the entries after ``N`` and then the live ones: nothing
lost, nothing twice. A slow client only moves its own cursor: the others
and the run never wait for it (no per-client queue: the log is the buffer).

Text deltas are coalesced *in the log*: a ``token`` entry nobody has read
yet takes the next delta too, and readers are woken ``coalesce_s`` after the
first delta (at once for any other kind). An entry is frozen once read, so
every reader sees the same entries under the same ids.

Bound: at most ``max_bytes`` (encoded JSON) per run; past it the oldest
entries are dropped and a reader asking for them gets :class:`EventsExpired`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

#: Most entries handed to a reader at once (one write per batch).
BATCH_MAX = 256

_WS_KINDS = {"token": "chunk"}


class EventsExpired(Exception):
    """The entries after ``after`` were dropped from the log (its byte bound)."""

    def __init__(self, after: int, first: int) -> None:
        super().__init__(f"events after {after} are no longer kept (oldest kept: {first})")
        self.after = after
        self.first = first


class LogEntry:
    """One client message: ``seq`` (its id, 1, 2, ...), ``kind`` and ``data``
    (JSON-ready); its SSE and WebSocket encodings are made once, when first read."""

    __slots__ = ("_sse", "_ws", "counted", "data", "frozen", "index", "kind", "seq")

    def __init__(self, seq: int, kind: str, data: dict[str, Any], index: int | None) -> None:
        self.seq = seq
        self.kind = kind
        self.data = data
        self.index = index  # the audio segment's index (WebSocket binary frame)
        self.frozen = False
        self.counted = 0  # bytes the log counts for it
        self._sse: bytes | None = None
        self._ws: str | None = None

    def sse(self) -> bytes:
        """``id: <seq>\\nevent: <kind>\\ndata: <json>\\n\\n`` as UTF-8."""
        if self._sse is None:
            payload = json.dumps(self.data, ensure_ascii=False)
            self._sse = f"id: {self.seq}\nevent: {self.kind}\ndata: {payload}\n\n".encode()
        return self._sse

    def ws(self) -> str:
        """The WebSocket text frame (see :mod:`._routes_ws`), with ``"id": seq``."""
        if self._ws is None:
            data = self.data
            if self.kind == "token":
                message = {"type": "chunk", "id": self.seq, "data": data["text"], "t": data["t"]}
            elif self.kind == "error":
                message = {"type": "error", "id": self.seq,
                           "error": {"type": data.get("error_type"), **data}}
            else:
                message = {"type": _WS_KINDS.get(self.kind, self.kind), "id": self.seq, **data}
            self._ws = json.dumps(message, ensure_ascii=False)
        return self._ws

    def size(self) -> int:
        """Bytes held: the SSE encoding once made, else an estimate."""
        return len(self._sse) if self._sse is not None else 64 + 2 * len(str(self.data))


class EventLog:
    """The numbered client messages of one run (see the module docstring).

    Args:
        max_bytes: bound of what is kept (bytes, approximate); oldest dropped first.
        coalesce_s: readers wake this long after a text delta (0: at once).
    """

    def __init__(self, *, max_bytes: int, coalesce_s: float = 0.0) -> None:
        self.max_bytes = max_bytes
        self.coalesce_s = coalesce_s
        self._entries: list[LogEntry] = []
        self._start = 0  # index in _entries of the oldest kept entry
        self.next_seq = 1
        self.bytes = 0
        self.closed = False
        self._wake = asyncio.Event()
        self._timer: asyncio.TimerHandle | None = None

    @property
    def first_seq(self) -> int:
        """Id of the oldest entry kept (``next_seq`` when none)."""
        return self.next_seq - (len(self._entries) - self._start)

    @property
    def last_seq(self) -> int:
        """Id of the newest entry (0 when none)."""
        return self.next_seq - 1

    def __len__(self) -> int:
        return len(self._entries) - self._start

    def append(self, kind: str, data: dict[str, Any], *, index: int | None = None) -> None:
        """Add a message (a ``token`` merges into an unread ``token`` entry)."""
        if self.closed:
            raise RuntimeError("the event log is closed")
        if kind == "token" and self.extend_token(data["text"], data["t"]):
            return
        entry = LogEntry(self.next_seq, kind, data, index)
        self.next_seq += 1
        self._entries.append(entry)
        self._recount(entry)
        self._trim()
        if kind == "token":
            self._schedule_wake()
        else:
            self._wake_now()

    def extend_token(self, text: str, t: float) -> bool:
        """Add ``text`` to the newest entry if it is an unread ``token``
        (``False``: there is none, append a new one). The cheap per-token path:
        no dict is built, nothing encoded."""
        entries = self._entries
        if self.closed or len(entries) <= self._start:
            return False
        last = entries[-1]
        if last.kind != "token" or last.frozen:
            return False
        last.data["text"] += text
        last.data["t"] = t
        grown = 2 * len(text)  # the estimate's growth (see LogEntry.size)
        last.counted += grown
        self.bytes += grown
        self._schedule_wake()
        return True

    def close(self) -> None:
        """No more entries: readers end once they have read everything."""
        self.closed = True
        self._wake_now()

    def read(self, after: int) -> list[LogEntry]:
        """Up to :data:`BATCH_MAX` entries with ``seq > after`` (``[]`` when none yet).

        Raises:
            EventsExpired: entries after ``after`` were dropped.
        """
        first = self.first_seq
        if after + 1 < first:
            raise EventsExpired(after, first)
        begin = self._start + max(0, after + 1 - first)
        batch = self._entries[begin:begin + BATCH_MAX]
        if batch:
            last = batch[-1]
            if not last.frozen:
                last.frozen = True  # read: never changes again (same entry for every reader)
                self._recount(last)
        return batch

    async def wait(self, after: int) -> None:
        """Return when there is an entry after ``after`` or the log is closed."""
        while not self.closed and self.last_seq <= after:
            await self._wake.wait()
        if not self.closed and self._timer is not None and self.last_seq == after + 1:
            # The only new entry is a token waiting out its coalescing window
            # (anything else new, a segment or audio, goes out at once).
            await self._wake.wait()

    def _schedule_wake(self) -> None:
        if self.coalesce_s <= 0:
            self._wake_now()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self.coalesce_s, self._wake_now)

    def _wake_now(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake.set()
        self._wake = asyncio.Event()

    def _recount(self, entry: LogEntry) -> None:
        size = len(entry.sse()) if entry.frozen else entry.size()
        self.bytes += size - entry.counted
        entry.counted = size

    def _trim(self) -> None:
        entries = self._entries
        while self.bytes > self.max_bytes and len(entries) - self._start > 1:
            self.bytes -= entries[self._start].counted
            entries[self._start] = None  # type: ignore[call-overload]
            self._start += 1
        if self._start > 1024 and self._start * 2 > len(entries):
            del entries[:self._start]
            self._start = 0
