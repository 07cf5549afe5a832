"""Pacing an in-process LLM against synthesis (issue 12 item 3).

Why: with the embedded defaults the LLM (llama.cpp) and the engine (piper on
onnxruntime) run in this one process on the same few cores. Measured on
2 cores before this module: piper took 1.5 s for a segment while the LLM
generated, ~0.2 s when idle, so the first audio waited behind text nobody
would hear for seconds. The LLM makes text 20-40x faster than it is spoken,
so it can give way without the listener noticing. Three ways were weighed:

* thread caps only (llama.cpp ``n_threads``, onnxruntime intra-op threads,
  see ``llm._local`` and ``tts._piper``): needed, but on 2 cores two busy
  threads still halve each other's speed;
* OS priorities (``nice`` the generation thread): per-thread niceness is
  Linux-only, does nothing against other processes' load, and llama.cpp's
  own threads do not inherit it reliably;
* **pacing** (this module): generation simply waits while it is not needed.
  It costs nothing when it is not needed, works for any engine and any core
  count, and stays within our code.

The rule (:meth:`Pacer.should_wait`), re-evaluated at every change: generation
waits while a segment is being synthesized **and** either no audio has been
handed out yet (segment 0 goes first: that is the time to first audio) or the
text received but not yet synthesized is at least :data:`LEAD_CHARS`
characters (about 20 s of speech: far ahead). It never waits while no segment
is in flight, so text always reaches the cutter when there is nothing else to
do, and it refills the reservoir 20-40x faster than the player drains it:
generation never starves the player. Network LLMs ignore the hook (their
generation runs on someone else's CPU).

The pacer is plain bookkeeping plus one :class:`asyncio.Event`; the LLM
client only sees :meth:`Pacer.wait`, an ``async () -> None`` callable
(``llm`` imports nothing of ours).
"""

from __future__ import annotations

import asyncio

#: Characters of received but not yet synthesized text above which generation
#: waits for synthesis (~15 characters per spoken second: ~20 s of speech).
LEAD_CHARS = 300


class Pacer:
    """When an in-process LLM should give the CPU to synthesis (see the module docstring).

    Args:
        lead_chars: see :data:`LEAD_CHARS` (characters, >= 1).
    """

    def __init__(self, *, lead_chars: int = LEAD_CHARS) -> None:
        if lead_chars < 1:
            raise ValueError(f"lead_chars must be >= 1, got {lead_chars!r}")
        self.lead_chars = lead_chars
        self._received = 0  # characters of text received from the LLM
        self._synthesized = 0  # characters of segments whose synthesis ended
        self._in_flight = 0  # segments queued for synthesis, not ended yet
        self._audio_out = False
        self._closed = False
        self._paused = False
        self._go = asyncio.Event()
        self._go.set()
        #: How many times generation was held back (for tests and benchmarks).
        self.waits = 0

    # -- what the run tells it ---------------------------------------------

    def text_received(self, chars: int) -> None:
        self._received += chars
        self._update()

    def segment_queued(self) -> None:
        self._in_flight += 1
        self._update()

    def segment_ended(self, chars: int) -> None:
        """A segment's synthesis ended (audio, failure or nothing to say)."""
        self._in_flight -= 1
        self._synthesized += chars
        self._update()

    def audio_out(self) -> None:
        """The first audio was handed to the sinks."""
        if not self._audio_out:
            self._audio_out = True
            self._update()

    def set_paused(self, paused: bool) -> None:
        """The run was paused (``True``) or resumed: while paused, generation is
        never held here, so the LLM reader reaches the pause's own hold, which
        has a time limit (:class:`pipeline._pause.PauseControl`)."""
        self._paused = paused
        self._update()

    def close(self) -> None:
        """The run is over: never hold generation back again."""
        self._closed = True
        self._update()

    # -- the rule ------------------------------------------------------------

    def should_wait(self) -> bool:
        if self._closed or self._paused or self._in_flight <= 0:
            return False
        if not self._audio_out:
            return True
        return self._received - self._synthesized >= self.lead_chars

    def _update(self) -> None:
        if self.should_wait():
            self._go.clear()
        else:
            self._go.set()

    async def wait(self) -> None:
        """The hook given to the LLM client: returns when generation may go on."""
        if self._go.is_set():
            return
        self.waits += 1
        await self._go.wait()
