"""What a run counts while it goes: pure bookkeeping, synchronous, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class RunTally:
    """Figures of one run, filled in by its stages, read by its summary.

    Times are seconds since the run started (the caller passes them in: the
    tally has no clock). Indices are segment indices.

    Attributes:
        ttft_s: first text delta.
        ttfa_s: first audio handed to a sink (a chunk for the player or a
            streaming route, or a whole segment when no sink takes chunks).
        first_file_s: first segment file written.
        files: paths of the written segment files, in index order.
        file_indices: their segment indices, same order.
        audio_s: total seconds of audio delivered (in the written files, when
            the run writes files).
        synth_s: total seconds spent synthesizing that audio.
        skipped: indices that cleaned to nothing (no audio, no error).
        failed: indices with no file because synthesis, conversion or writing failed.
        segments_total: segments the cutter released so far.
        first_error: ``"ErrorType: message"`` of the first failure.
    """

    ttft_s: float | None = None
    ttfa_s: float | None = None
    first_file_s: float | None = None
    files: list[str] = field(default_factory=list)
    file_indices: list[int] = field(default_factory=list)
    audio_s: float = 0.0
    synth_s: float = 0.0
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    segments_total: int = 0
    first_error: str | None = None

    def text_arrived(self, t: float) -> None:
        if self.ttft_s is None:
            self.ttft_s = t

    def audio_handed_out(self, t: float) -> None:
        if self.ttfa_s is None:
            self.ttfa_s = t

    def delivered(self, t: float, duration_s: float, synth_s: float) -> None:
        """A segment's whole audio reached the sinks (and its file, if any)."""
        self.audio_handed_out(t)
        self.audio_s += duration_s
        self.synth_s += synth_s

    def file_written(self, t: float, index: int, path: str) -> None:
        if self.first_file_s is None:
            self.first_file_s = t
        self.files.append(path)
        self.file_indices.append(index)

    def taken_back(self, index: int, duration_s: float, synth_s: float) -> None:
        """The file of ``index``, counted by :meth:`file_written` and
        :meth:`delivered`, was removed again (it could not be made durable)."""
        at = self.file_indices.index(index)
        del self.file_indices[at], self.files[at]
        self.audio_s -= duration_s
        self.synth_s -= synth_s

    def error(self, error_type: str, message: str) -> None:
        if self.first_error is None:
            self.first_error = f"{error_type}: {message}"

    @property
    def rtf(self) -> float | None:
        """Real-time factor: synthesis seconds / audio seconds (``None`` without audio)."""
        return self.synth_s / self.audio_s if self.audio_s > 0 else None
