"""The fault table: each fault the suite injects and what speakstream does about it.

This dict is the one source of the README's "Reliability" table. Every test in
``tests/faults/`` names the fault it injects with ``@fault(KEY)`` (a
``pytest.mark.fault`` marker); ``test_table.py`` checks that every key here is
exercised by at least one test, that no test names an unknown key, and that
the README section is exactly :func:`render`'s output.

Render (print) the README section::

    .venv/bin/python -m tests.faults.table
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

#: key -> (the fault, what happens). Order is the README's order.
FAULTS: dict[str, tuple[str, str]] = {
    "llm-drop": (
        "The LLM connection drops mid-answer (Ollama NDJSON, OpenAI-compatible SSE, "
        "Anthropic SSE, Gemini SSE)",
        "The text received so far is segmented, spoken and saved; an `error` event "
        "(`LLMStreamError`) then `completed`; the CLI prints one line and exits 1.",
    ),
    "llm-stall": (
        "The LLM goes silent mid-answer (each provider)",
        "After `idle_timeout` an `LLMTimeoutError` ends the stream; the text received so "
        "far is spoken and saved, then `completed`.",
    ),
    "llm-404": (
        "Unknown model: HTTP 404 (each provider)",
        "Not retried; `ModelNotFoundError` names the model; no segment, no file; "
        "`completed` says the error; the CLI prints one line and exits 2.",
    ),
    "llm-401": (
        "Bad API key: HTTP 401 (each provider)",
        "Not retried; `LLMAuthError`; no segment, no file; `completed` says the error; "
        "the CLI prints one line and exits 2.",
    ),
    "llm-cut-off": (
        "The answer is cut off (max tokens, per provider) or Gemini blocks the prompt",
        "A cut-off answer is all spoken and `completed` says `finish_reason: \"length\"` "
        "(the CLI warns); a blocked prompt is one `PromptBlockedError`, not retried.",
    ),
    "no-punctuation": (
        "A long answer with no sentence punctuation (one line, or a poem with line breaks)",
        "Cut at the best break within `max_segment_length` (600 characters): every segment "
        "gets audio, none is giant.",
    ),
    "control-chars": (
        "NUL bytes, escapes and other control characters in the answer",
        "Kept in the segments' text; replaced before any engine sees them; the manifest "
        "says what was spoken.",
    ),
    "engine-fails": (
        "The TTS engine fails on segment k (a TTS error, or any other exception)",
        "Segment k gets an `error` event with `segment_index`, a `failed` manifest line "
        "with its text and is in `failed_indices`; every other segment is written.",
    ),
    "engine-offline": (
        "The TTS engine is unavailable (edge-tts offline, a missing binary)",
        "With `tts auto` the next engine speaks every segment; a single engine that is "
        "unavailable fails each segment on its own (text kept in the manifest), "
        "and the run still ends with `completed`.",
    ),
    "disk-full": (
        "The disk fills up mid-run (ENOSPC: a 200 KiB tmpfs, or an injected writer)",
        "The segments that fit are written whole; each one that does not is a `failed` "
        "segment naming its file; the manifest is never torn and `completed` still comes.",
    ),
    "narrate-kill": (
        "`kill -9` during `speakstream narrate`, then `narrate --resume`",
        "Written segments are whole (atomic writes); the resume keeps them, makes only "
        "the missing ones and the chapter's manifest lists each segment once, in order.",
    ),
    "two-writers": (
        "A second `narrate` (or `--resume`) into a directory another writer is using",
        "Refused at once in one line naming the process that holds it (an `flock`, dropped "
        "by the OS however its holder exits); nothing is written; the first run finishes "
        "untouched.",
    ),
    "bad-utf8": (
        "Text that is not UTF-8 (a file, stdin, an HTTP body)",
        "The CLI says which file and at which byte offset in one line (exit 2) before any "
        "directory is created; the daemon answers `400` in the documented shape.",
    ),
    "daemon-kill": (
        "`kill -9` of `speakstream serve` during a narration job, then a restart",
        "The job resumes from SQLite: finished segments are kept and not synthesized "
        "again; the job completes with every segment once.",
    ),
    "cli-signal": (
        "SIGINT or SIGTERM to `ask` / `narrate`",
        "The run stops cleanly: the LLM request is cancelled, written files are kept and "
        "the manifest is closed (`cancelled` summary); exit 130 (SIGINT) or 143 (SIGTERM), "
        "no traceback.",
    ),
    "client-disconnect": (
        "An SSE client hangs up mid-answer",
        "A reconnect within `reconnect_grace_s` (30 s) gets every missed event; after it, with "
        "nobody following, the run is cancelled (the LLM request stops), `GET /v1/runs/{id}` "
        "says `cancelled` and the files written so far stay, listed in a closed manifest.",
    ),
    "ws-malformed": (
        "Malformed WebSocket frames (not JSON, unknown type, binary, missing fields, "
        "nested 10,000 deep)",
        "Each gets an `error` message in the documented shape; the connection stays open "
        "and a following `speak` works.",
    ),
    "traversal": (
        "Path traversal in run, job and audio URLs (`..`, encoded slashes, odd digits)",
        "`404` in the documented `{\"error\": ...}` shape; nothing outside the run's "
        "directory is served.",
    ),
    "auth": (
        "Missing or wrong bearer token (HTTP and WebSocket)",
        "`401` in the documented shape, the WebSocket handshake included; no run starts.",
    ),
    "cors": (
        "Cross-origin requests with a token and `--cors-origin`",
        "Preflights from an allowed origin pass without the token; other origins get "
        "`400` in the documented shape; answers, errors included, carry the CORS headers.",
    ),
    "oversized-body": (
        "Oversized bodies and messages (HTTP and WebSocket)",
        "`413` in the documented shape (WebSocket: an `error` message); no run starts.",
    ),
    "nested-body": (
        "JSON nested more than 64 levels deep",
        "`400` in the documented shape on every route; no run starts.",
    ),
    "sse-crowd": (
        "100 concurrent SSE clients, 20 of them reading slowly",
        "Every client gets every event of its own run in order and its files; "
        "slow readers hold back only their own run.",
    ),
}

_T = TypeVar("_T", bound=Callable[..., Any])


def fault(key: str) -> Callable[[_T], _T]:
    """Mark a test as injecting fault ``key`` (a key of :data:`FAULTS`)."""
    if key not in FAULTS:
        raise KeyError(f"unknown fault {key!r}: add it to tests/faults/table.py FAULTS")
    return pytest.mark.fault(key)


def render() -> str:
    """The README "Reliability" section (Markdown), from :data:`FAULTS`."""
    lines = [
        "## Reliability",
        "",
        "Each fault below is injected by the test suite (`tests/faults/`, run by the normal",
        "test command), and every one of those tests checks the same invariant: every",
        "character the LLM sent is in exactly one segment, in order; every finished segment's",
        "file decodes; the manifest agrees with the files on disk; an error is one line on the",
        "CLI (no traceback) or the documented `{\"error\": {...}}` shape from the daemon. This",
        "table is generated from the suite (`.venv/bin/python -m tests.faults.table`).",
        "",
        "| Fault | What happens |",
        "| --- | --- |",
    ]
    lines += [f"| {what} | {outcome} |" for what, outcome in FAULTS.values()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(render(), end="")
