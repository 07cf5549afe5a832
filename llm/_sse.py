"""Server-sent events (SSE) decoding, line by line, free of I/O.

Follows the WHATWG HTML Standard, section 9.2 "Server-sent events",
"Interpreting an event stream": a blank line dispatches the event, lines
starting with ``:`` are comments (keep-alives), ``field: value`` lines set
``event``/``data``/``id``/``retry`` (one leading space of the value is
dropped), several ``data`` lines are joined with ``\\n``.

Incremental UTF-8 decoding across network chunks is done by the caller
(``llm._http``); :class:`LineSplitter` cuts lines on ``\\r\\n``,
``\\r`` or ``\\n`` ONLY, as the SSE spec says (``aiter_lines`` follows
``str.splitlines`` and also cuts on U+0085, U+2028 and U+2029, which JSON
strings may contain raw: that would break a record in two).

A small decoder of our own rather than ``httpx-sse``: it is the core of the
streaming path, and ``httpx-sse`` reads ``aiter_lines`` (the U+2028 problem).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_EOL = re.compile(r"\r\n|\r|\n")


class LineSplitter:
    """Incremental line splitter for text chunks cut anywhere (also between CR and LF).

    Serves NDJSON too: JSON text never contains a raw CR or LF.
    """

    def __init__(self) -> None:
        self._buffer = ""
        self._skip_lf = False

    def feed(self, text: str) -> list[str]:
        """Add a chunk; return the lines it completes, without terminators."""
        if self._skip_lf and text:
            text = text.removeprefix("\n")
            self._skip_lf = False
        buffer = self._buffer + text
        lines: list[str] = []
        start = 0
        for match in _EOL.finditer(buffer):
            lines.append(buffer[start : match.start()])
            start = match.end()
            if match.group() == "\r" and start == len(buffer):
                self._skip_lf = True  # a LF may open the next chunk: same line end
        self._buffer = buffer[start:]
        return lines

    def flush(self) -> list[str]:
        """End of input: the unterminated last line, if any."""
        rest, self._buffer = self._buffer, ""
        return [rest] if rest else []


@dataclass(frozen=True)
class SSEEvent:
    """One dispatched event: ``event`` type (``"message"`` by default) and ``data``."""

    event: str
    data: str


class SSEDecoder:
    """Feed lines (without their line terminator) to :meth:`decode`, or text
    chunks cut anywhere to :meth:`feed`; get events on blank lines.

    Public so every SSE reader of the project (LLM streams, the daemon client)
    shares this one decoder.
    """

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._splitter = LineSplitter()

    def feed(self, text: str) -> list[SSEEvent]:
        """Consume a chunk of decoded text (any size); return the events it completes."""
        events = [self.decode(line) for line in self._splitter.feed(text)]
        return [event for event in events if event is not None]

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
