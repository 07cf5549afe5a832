"""A small, honest re-creation of the seed system's streaming strategy (the baseline).

What the seed did, as issue 3 describes it, and what this module does the same way:

* **Regex over the whole buffer on every chunk**: each push appends the chunk
  and re-runs the sentence regex over everything buffered.
* **No lookahead**: a terminator (``.``, ``!``, ``?``) at the very end of the
  buffer already ends a sentence, so ``"3."`` + ``"14"`` and ``"Dr."`` +
  ``" Smith"`` are split.
* **Segments of 2 sentences, at least 20 characters**: a segment is released
  once the buffer holds two complete sentences; while those are shorter than
  20 characters it waits for more sentences. No early first fragment, no
  time rule.
* **One serial worker, no lookahead in synthesis**: segments go to a queue;
  one task synthesizes them one after the other and writes each file as it
  finishes (the LLM is still read meanwhile).

Public: :class:`BaselineBuffer` (sync, like the seed's buffer),
:func:`split_baseline` (batch, for the hard cases) and :func:`run_baseline`
(the async run used by the overlap scenario).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path

from tts import TTSEngine

_SENTENCE = re.compile(r".*?[.!?]+(?:\s+|$)", re.S)


class BaselineBuffer:
    """The seed's buffer: ``push(chunk) -> [segment text, ...]``, ``flush() -> [...]``."""

    def __init__(self, *, sentences_per_segment: int = 2, min_length: int = 20) -> None:
        self.sentences_per_segment = sentences_per_segment
        self.min_length = min_length
        self.buffer = ""

    def push(self, chunk: str) -> list[str]:
        self.buffer += chunk
        out: list[str] = []
        while True:
            sentences = _SENTENCE.findall(self.buffer)  # the whole buffer, every time
            taken, length = 0, 0
            for count, sentence in enumerate(sentences, 1):
                length += len(sentence)
                if count >= self.sentences_per_segment and length >= self.min_length:
                    taken = length
                    break
            if not taken:
                return out
            out.append(self.buffer[:taken])
            self.buffer = self.buffer[taken:]

    def flush(self) -> list[str]:
        rest, self.buffer = self.buffer, ""
        return [rest] if rest.strip() else []


def split_baseline(text: str) -> list[str]:
    """Batch use of the baseline's sentence regex (1 sentence/segment, no minimum)."""
    buffer = BaselineBuffer(sentences_per_segment=1, min_length=0)
    return [s.strip() for s in buffer.push(text) + buffer.flush() if s.strip()]


@dataclass
class BaselineRun:
    """Times (``time.monotonic()`` seconds) and segments of one :func:`run_baseline`."""

    started: float
    segments: list[str] = field(default_factory=list)
    first_audio: float | None = None
    finished: float | None = None
    files: list[Path] = field(default_factory=list)


async def run_baseline(
    deltas: AsyncIterable[str], engine: TTSEngine, out_dir: Path
) -> BaselineRun:
    """Stream ``deltas`` through the seed strategy into ``out_dir/segment_NNNN.wav``."""
    run = BaselineRun(started=time.monotonic())
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    buffer = BaselineBuffer()

    async def read() -> None:
        async for delta in deltas:
            for segment in buffer.push(delta):
                run.segments.append(segment)
                queue.put_nowait(segment)
        for segment in buffer.flush():
            run.segments.append(segment)
            queue.put_nowait(segment)
        queue.put_nowait(None)

    async def work() -> None:
        index = 0
        while (segment := await queue.get()) is not None:
            audio = await engine.synthesize(segment.strip())
            path = out_dir / f"segment_{index:04d}.{audio.format}"
            await asyncio.to_thread(path.write_bytes, audio.data)
            run.files.append(path)
            if run.first_audio is None:
                run.first_audio = time.monotonic()
            index += 1

    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    await asyncio.gather(read(), work())
    run.finished = time.monotonic()
    return run
