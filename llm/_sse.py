"""Server-sent events (SSE) decoding, line by line, free of I/O.

Follows the WHATWG HTML Standard, section 9.2 "Server-sent events",
"Interpreting an event stream": a blank line dispatches the event, lines
starting with ``:`` are comments (keep-alives), ``field: value`` lines set
``event``/``data``/``id``/``retry`` (one leading space of the value is
dropped), several ``data`` lines are joined with ``\\n``. Line splitting
(``\\n``, ``\\r\\n``, ``\\r``) and incremental UTF-8 decoding across network
chunks are done by ``httpx.Response.aiter_lines``; this decoder sees whole lines.

A small decoder of our own rather than ``httpx-sse``: it is the core of the
streaming path, 40 lines, and keeps the dependency list unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: ``event`` type (``"message"`` by default) and ``data``."""

    event: str
    data: str


class SSEDecoder:
    """Feed lines (without their line terminator); get events on blank lines."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []

    def decode(self, line: str) -> SSEEvent | None:
        """Consume one line; return the event it completes, else ``None``."""
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = SSEEvent(self._event or "message", "\n".join(self._data))
            self._event, self._data = "", []
            return event
        if line.startswith(":"):
            return None
        name, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        return None  # "id", "retry" and unknown fields are not needed here
