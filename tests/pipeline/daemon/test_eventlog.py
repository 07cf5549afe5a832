"""The run's event log: ids, coalescing of unread tokens, frozen entries, the byte
bound and EventsExpired, readers woken on new entries and on close."""

from __future__ import annotations

import asyncio
import json

import pytest

from pipeline._daemon._eventlog import EventLog, EventsExpired


def _token(text: str, t: float = 0.0) -> dict[str, object]:
    return {"text": text, "t": t}


def test_ids_and_unread_tokens_merge_until_read() -> None:
    async def main() -> None:
        log = EventLog(max_bytes=1 << 20)
        log.append("started", {"run_id": "r"})
        log.append("token", _token("Hel", 0.1))
        log.append("token", _token("lo", 0.2))  # unread: merged into id 2
        assert [e.seq for e in log.read(0)] == [1, 2]
        log.append("token", _token(" there", 0.3))  # id 2 was read: a new entry
        batch = log.read(2)
        assert [(e.seq, e.data["text"]) for e in batch] == [(3, " there")]
        assert log.read(1)[0].data == {"text": "Hello", "t": 0.2}
        sse = log.read(1)[0].sse().decode()
        assert sse.startswith("id: 2\nevent: token\ndata: ") and sse.endswith("\n\n")
        assert json.loads(log.read(1)[0].ws()) == {"type": "chunk", "id": 2, "data": "Hello",
                                                   "t": 0.2}

    asyncio.run(main())


def test_the_byte_bound_drops_the_oldest_and_says_so() -> None:
    async def main() -> None:
        log = EventLog(max_bytes=64 << 10)
        for i in range(2000):
            log.append("segment", {"index": i, "text": "x" * 100})
        assert log.bytes <= 64 << 10 and log.first_seq > 1 and log.last_seq == 2000
        with pytest.raises(EventsExpired):
            log.read(0)
        assert log.read(log.first_seq - 1)[0].seq == log.first_seq

    asyncio.run(main())


def test_readers_wake_on_new_entries_and_on_close() -> None:
    async def main() -> None:
        log = EventLog(max_bytes=1 << 20, coalesce_s=0.01)
        seen: list[int] = []

        async def reader() -> None:
            after = 0
            while True:
                batch = log.read(after)
                if batch:
                    seen.extend(e.seq for e in batch)
                    after = batch[-1].seq
                elif log.closed:
                    return
                else:
                    await log.wait(after)

        task = asyncio.create_task(reader())
        await asyncio.sleep(0)
        log.append("started", {})
        log.append("token", _token("a"))
        await asyncio.sleep(0.05)
        log.append("done", {})
        log.close()
        await asyncio.wait_for(task, 30)
        assert seen == [1, 2, 3]

    asyncio.run(main())
