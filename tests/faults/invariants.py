"""The one invariant every fault test asserts, as shared helpers.

Events are the documented dicts (``pipeline.event_to_dict``: the Python API,
``speakstream --json`` lines; daemon messages via :func:`from_daemon`):

* :func:`check_text`: every character the LLM sent is in exactly one segment,
  in order (segment offsets tile the text; texts concatenate to it, modulo
  whitespace), and each segment is accounted for once: written, failed or
  skipped.
* :func:`check_files`: every finished segment's file decodes (``wave`` for WAV,
  ffprobe otherwise) and the manifest agrees with the files on disk (same
  indices and names, no stray or temporary files, failed lines carry their
  text).
* :func:`check_cli_error` / :func:`check_error_shape`: an error is one line on
  the CLI (no traceback) or the daemon's documented ``{"error": {...}}``.
"""

from __future__ import annotations

import re
import wave
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from output import probe_duration, read_manifest

Event = Mapping[str, Any]

_DAEMON_KINDS = {"token": "text", "done": "completed"}


def squash(text: str) -> str:
    """``text`` without whitespace (segments may trim the spaces between them)."""
    return re.sub(r"\s+", "", text)


def from_daemon(messages: Iterable[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Daemon ``(kind, data)`` messages (SSE or WebSocket) as event dicts with ``status``."""
    events = []
    for kind, data in messages:
        status = _DAEMON_KINDS.get(kind, "text" if kind == "chunk" else kind)
        item = {**data, "status": status}
        if kind == "chunk":
            item["text"] = data["data"]
        events.append(item)
    return events


def of(events: Iterable[Event], status: str) -> list[Event]:
    return [e for e in events if e["status"] == status]


def completed(events: list[Event]) -> Event:
    """The run's last event, which must be its one ``completed``."""
    assert events, "no events at all"
    assert events[-1]["status"] == "completed", f"last event {events[-1]['status']!r}"
    assert len(of(events, "completed")) == 1
    return events[-1]


def check_text(events: list[Event], sent: str, *, stopped: bool = False) -> list[Event]:
    """Assert the text invariant for one run; returns its ``segment`` events.

    ``sent`` is what the LLM (or the caller) sent, e.g. the fake server's
    ``"".join(tokens[:request.tokens_sent])``. ``stopped``: the run was stopped
    on purpose (Ctrl-C, a cancel): its segments may cover only a prefix of
    ``sent`` (text not yet cut when it stopped), still each character once, in
    order, and the result still holds all of ``sent``.
    """
    done = completed(events)
    streamed = "".join(e["text"] for e in of(events, "text"))
    if of(events, "text") and stopped:  # a stop may land between receiving and telling
        assert sent.startswith(streamed), f"text events {streamed!r} not a prefix of {sent!r}"
    elif of(events, "text"):  # runs fed by given text have no text deltas
        assert streamed == sent, f"text events {streamed!r} != sent {sent!r}"
    segments = of(events, "segment")
    assert [s["index"] for s in segments] == list(range(len(segments))), "segment gap"
    position = 0
    for s in segments:
        assert s["start"] == position, f"segment {s['index']} does not start where the last ended"
        assert s["end"] >= s["start"]
        assert s["text"] == sent[s["start"]:s["end"]], f"segment {s['index']} text != sent"
        position = s["end"]
    if not stopped:
        assert squash(sent[position:]) == "", f"text after the last segment: {sent[position:]!r}"
    assert squash("".join(s["text"] for s in segments)) == squash(sent[:position])
    if "complete_text" in done:
        assert done["complete_text"] == sent
    written, failed = done["audio_indices"], done["failed_indices"]
    skipped = [s["index"] for s in segments if not s["spoken_text"]]
    assert not set(written) & set(failed), "a segment both written and failed"
    assert sorted(written + failed + skipped) == list(range(len(segments))), (
        f"segments unaccounted for: written {written}, failed {failed}, skipped {skipped}"
    )
    failed_events = sorted({e["segment_index"] for e in of(events, "error")
                            if e.get("segment_index") is not None})
    audio_order = [a["index"] for a in of(events, "audio")]
    assert audio_order == sorted(set(audio_order)), "audio events out of order"
    # An `audio` event whose file then failed its sync is taken back by a later error.
    for taken_back in set(audio_order) & set(failed_events):
        at = next(i for i, e in enumerate(events)
                  if e["status"] == "audio" and e["index"] == taken_back)
        assert any(e["status"] == "error" and e.get("segment_index") == taken_back
                   for e in events[at:]), f"segment {taken_back} taken back before its audio"
    assert [i for i in audio_order if i not in failed_events] == written
    assert failed_events == failed, "a failed segment without its error event (or vice versa)"
    return segments


def decodes(path: Path) -> float:
    """Seconds of audio in ``path``; asserts it decodes and is not empty."""
    assert path.is_file(), f"{path} missing"
    if path.suffix == ".wav":
        with wave.open(str(path)) as w:
            frames, rate = w.getnframes(), w.getframerate()
        assert frames > 0, f"{path} holds no audio"
        return frames / rate
    seconds = probe_duration(path)
    assert seconds > 0, f"{path} holds no audio"
    return seconds


def check_files(run_dir: Path, events: list[Event] | None = None, *,
                expect_summary: bool = True) -> list[dict[str, Any]]:
    """Assert the files invariant for one run directory; returns the manifest records.

    With ``events``, the manifest also agrees with the run's ``completed``
    event (and failed lines with the segments' text). ``expect_summary=False``
    is a writer killed mid-run: no summary line, a temp file it was writing
    may be left (``output`` removes it when the lock is next taken), and so
    may the one segment file that had landed without its manifest line yet
    (the last index on disk; a resume writes it again with its line).
    """
    records = read_manifest(run_dir)
    segments = [r for r in records if r["type"] == "segment"]
    failed = [r for r in records if r["type"] == "failed"]
    indices = [r["index"] for r in segments]
    assert len(set(indices)) == len(indices), f"a segment listed twice: {indices}"
    on_disk = sorted(p.name for p in run_dir.glob("segment_*"))
    listed = sorted(r["path"] for r in segments)
    if not expect_summary and len(on_disk) == len(listed) + 1 and on_disk[:-1] == listed:
        # Killed between a file's atomic rename and its manifest line: that one whole
        # file, the last, is unlisted; resuming writes it and its line again.
        on_disk = on_disk[:-1]
    assert on_disk == listed, "manifest and files disagree"
    if expect_summary:  # a killed writer may leave a temp file; the next lock removes it
        assert not [p for p in run_dir.iterdir() if ".tmp" in p.name], "temporary file left"
    for r in segments:
        assert r["bytes"] == (run_dir / r["path"]).stat().st_size
        seconds = decodes(run_dir / r["path"])
        assert abs(seconds - r["duration_s"]) < 0.1, f"{r['path']}: duration disagrees"
    assert not set(indices) & {r["index"] for r in failed}
    if expect_summary:
        assert records and records[-1]["type"] == "summary", "manifest not closed"
        assert records[-1]["segments"] == len(segments)
    if events is not None:
        done = completed(events)
        assert sorted(indices) == sorted(done["audio_indices"])
        assert sorted(r["index"] for r in failed) == sorted(done["failed_indices"])
        by_index = {s["index"]: s for s in of(events, "segment")}
        for r in failed:
            assert r["text"] in (by_index[r["index"]]["spoken_text"], by_index[r["index"]]["text"])
        for a in of(events, "audio"):
            name = f"segment_{a['index']:04d}.{a['format']}"
            assert (name in on_disk) == (a["index"] in done["audio_indices"])  # or taken back
    return records


#: A CLI error line: a failure of the command (``speakstream: ...``, not the status
#: lines ``speakstream: model|tts|note ...``) or of the run (``error: Type: ...``,
#: ``error (segment N): ...``).
_CLI_ERROR = re.compile(r"^(speakstream: (?!model |tts |note: )|error( \(segment \d+\))?: )")


def check_cli_error(stderr: str, *, expect: str | None = None) -> str:
    """Assert the CLI said its error in one line and no traceback; returns the line."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if _CLI_ERROR.match(line)]
    assert len(errors) == 1, f"expected one error line, got {errors!r} in {stderr!r}"
    if expect is not None:
        assert expect in errors[0], errors[0]
    return errors[0]


def check_error_shape(body: Any) -> dict[str, Any]:
    """Assert ``body`` (parsed JSON) is the daemon's documented error shape; returns
    the inner ``error`` object."""
    assert isinstance(body, dict) and set(body) == {"error"}, body
    error = body["error"]
    assert set(error) >= {"type", "message", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"], error
    return dict(error)
