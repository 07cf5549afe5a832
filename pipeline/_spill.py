"""A list of strings kept on disk, not in memory: a job item's audio file paths.

An item of a long document writes tens of thousands of segment files; its
``results.jsonl`` line names them all. :class:`SpilledStrings` holds them in
an unnamed temporary file (removed by the OS when it is closed, or when the
process dies, even by ``kill -9``), one JSON string a line, which is also how
the results line spells them: :func:`iter_json_list` streams them into the
line without building it in memory.
"""

from __future__ import annotations

import json
import os
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload

_READ = 1 << 16
#: Strings kept in memory before the sequence moves to its file.
SPILL_AFTER = 1000


class SpilledStrings(Sequence[str]):
    """An append-only sequence of strings, moved to an unnamed temporary file once it
    holds more than :data:`SPILL_AFTER` of them (a short list opens no file).

    ``len`` is O(1); iterating reads the file (``s[i]`` is O(n)). Equal to any
    sequence of the same strings in the same order. Not thread-safe. The file
    is removed by :meth:`close` or when the sequence is collected.
    """

    def __init__(self, items: Iterable[str] = ()) -> None:
        self._held: list[str] | None = []
        self._file: Any = None
        self._closer: weakref.finalize[Any, Any] | None = None
        self._count = 0
        self.extend(items)

    def append(self, item: str) -> None:
        """Add ``item`` at the end (kept in memory, or written to the file, buffered)."""
        self._count += 1
        if self._held is not None:
            self._held.append(item)
            if len(self._held) > SPILL_AFTER:
                self._spill()
            return
        self._file.write(json.dumps(item, ensure_ascii=False).encode("utf-8") + b"\n")

    def _spill(self) -> None:
        held, self._held = self._held or [], None
        self._file = tempfile.TemporaryFile()
        # The file lives as long as the sequence: closed when it is collected.
        self._closer = weakref.finalize(self, self._file.close)
        for item in held:
            self._file.write(json.dumps(item, ensure_ascii=False).encode("utf-8") + b"\n")

    def extend(self, items: Iterable[str]) -> None:
        """Add each of ``items`` at the end."""
        for item in items:
            self.append(item)

    @property
    def spilled(self) -> bool:
        """Whether the strings are in the file (more than :data:`SPILL_AFTER` came)."""
        return self._held is None

    def iter_json(self) -> Iterator[str]:
        """Each string as its JSON text (``json.dumps(s, ensure_ascii=False)``), in order."""
        if self._held is not None:
            yield from (json.dumps(item, ensure_ascii=False) for item in list(self._held))
            return
        self._file.flush()
        fd, offset, rest = self._file.fileno(), 0, b""
        while True:
            data = os.pread(fd, _READ, offset)
            if not data:
                break
            offset += len(data)
            *lines, rest = (rest + data).split(b"\n")
            for line in lines:
                yield line.decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        if self._held is not None:
            return iter(list(self._held))
        return (json.loads(text) for text in self.iter_json())

    def __len__(self) -> int:
        return self._count

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return list(self)[index]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, str | bytes):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable, like a list

    def __repr__(self) -> str:
        return f"SpilledStrings(<{self._count} strings>)"

    def __deepcopy__(self, memo: dict[int, Any]) -> list[str]:
        return list(self)  # dataclasses.asdict and copy.deepcopy get a plain list

    def close(self) -> None:
        """Remove the file now (idempotent; otherwise when the sequence is collected);
        the sequence must not be used after."""
        if self._closer is not None:
            self._closer()


def iter_json_list(items: Sequence[str]) -> Iterator[str]:
    """``json.dumps(list(items), ensure_ascii=False)`` in pieces, reading a
    :class:`SpilledStrings` from its file (a plain sequence works too)."""
    texts = items.iter_json() if isinstance(items, SpilledStrings) else (
        json.dumps(item, ensure_ascii=False) for item in items)
    yield "["
    for n, text in enumerate(texts):
        yield text if n == 0 else ", " + text
    yield "]"
