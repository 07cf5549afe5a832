"""The pyttsx3 worker process: owns the ONE pyttsx3 engine of a Pyttsx3Engine.

Run as a script (``python -P _pyttsx3_worker.py``), never imported by the
parent: it needs only the standard library and pyttsx3. pyttsx3 is not
thread-safe and writes only the last of several queued ``save_to_file`` calls,
so this process handles one request at a time, one file per ``runAndWait``.

Protocol (JSON, one object per line):

* on start it writes ``{"ready": true, "driver": ...}`` or
  ``{"ready": false, "kind": "import"|"init", "error": "..."}``;
* request ``{"id": n, "op": "synth", "text", "path", "voice", "rate",
  "volume", "pitch"}`` (relative prosody as in ``TTSEngine``; ``None`` = the
  driver's default) -> ``{"id": n, "ok": true}`` once ``path`` is written, or
  ``{"id": n, "ok": false, "kind": "...", "error": "..."}``; ``attempts`` in
  a success reply counts the writes needed (see ``EMPTY_ATTEMPTS``);
* request ``{"id": n, "op": "voices"}`` -> ``{"id": n, "ok": true, "voices": [...]}``;
* end of stdin: exit.

The protocol uses a duplicate of the original stdout; file descriptor 1 is
pointed at /dev/null so pyttsx3's ``print("Audio saved to ...")`` reaches no one.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

#: pyttsx3 2.99's espeak driver runs espeak in AUDIO_OUTPUT_RETRIEVAL mode, whose
#: callbacks come from espeak's own thread; racing with pyttsx3's loop it now and
#: then writes a WAV with no samples (seen in about 1 call of 40 on a loaded
#: machine). Such a write is repeated, up to this many attempts in all.
EMPTY_ATTEMPTS = 3


def main() -> None:
    channel = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)

    def send(message: dict[str, Any]) -> None:
        channel.write(json.dumps(message) + "\n")
        channel.flush()

    try:
        import pyttsx3
    except ImportError as exc:
        send({"ready": False, "kind": "import", "error": str(exc)})
        return
    try:
        engine = pyttsx3.init()
        defaults = {name: _get(engine, name) for name in ("rate", "volume", "voice", "pitch")}
    except Exception as exc:  # any driver failure at start: reported, then exit
        send({"ready": False, "kind": "init", "error": f"{type(exc).__name__}: {exc}"})
        return
    send({"ready": True, "driver": type(engine.proxy._driver).__module__})

    for line in sys.stdin:
        request = json.loads(line)
        try:
            if request["op"] == "voices":
                voices = [
                    {
                        "id": v.id,
                        "name": v.name,
                        "languages": [str(lang) for lang in (v.languages or [])],
                        "gender": v.gender or "",
                    }
                    for v in engine.getProperty("voices")
                ]
                send({"id": request["id"], "ok": True, "voices": voices})
                continue
            _apply(engine, defaults, request)
            for attempt in range(1, EMPTY_ATTEMPTS + 1):
                engine.save_to_file(request["text"], request["path"])
                engine.runAndWait()
                if _has_frames(request["path"]):
                    send({"id": request["id"], "ok": True, "attempts": attempt})
                    break
            else:
                send(
                    {
                        "id": request["id"],
                        "ok": False,
                        "kind": "EmptyAudio",
                        "error": f"no samples written in {EMPTY_ATTEMPTS} attempts",
                    }
                )
        except Exception as exc:  # reported to the parent, which raises SynthesisError
            send({"id": request["id"], "ok": False, "kind": type(exc).__name__, "error": str(exc)})


def _has_frames(path: str) -> bool:
    """True when the WAV/AIFF at ``path`` holds at least one sample (see EMPTY_ATTEMPTS)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        return False
    return size > 100  # a header alone is 44 (WAV) / 54 (AIFF) bytes


_VOICE_IDS: set[str] = set()


def _voice_ids(engine: Any) -> set[str]:
    if not _VOICE_IDS:
        _VOICE_IDS.update(v.id for v in engine.getProperty("voices"))
    return _VOICE_IDS


def _get(engine: Any, name: str) -> Any:
    try:
        return engine.getProperty(name)
    except KeyError:  # this driver has no such property (pitch outside espeak)
        return None


def _apply(engine: Any, defaults: dict[str, Any], request: dict[str, Any]) -> None:
    """Set every property for this request, from the defaults: nothing leaks between calls."""
    voice = request["voice"]
    if voice and voice not in _voice_ids(engine):
        # pyttsx3's espeak driver silently keeps the old voice for an unknown name.
        raise ValueError(f"unknown pyttsx3 voice {voice!r}")
    engine.setProperty("voice", voice or defaults["voice"])
    rate = request["rate"]
    engine.setProperty("rate", round(defaults["rate"] * (1.0 if rate is None else rate)))
    volume = request["volume"]
    engine.setProperty("volume", defaults["volume"] if volume is None else volume)
    pitch = request["pitch"]
    if defaults["pitch"] is not None:
        engine.setProperty("pitch", min(99, round(defaults["pitch"] * (pitch or 1.0))))
    elif pitch is not None and pitch != 1.0:
        raise ValueError("this pyttsx3 driver has no pitch control")


if __name__ == "__main__":
    main()
