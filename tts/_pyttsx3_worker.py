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
import threading
from typing import Any

#: pyttsx3 2.99's espeak driver runs espeak in AUDIO_OUTPUT_RETRIEVAL mode: the
#: synthesis runs on espeak's own thread, and ``runAndWait()`` can return before
#: it has finished (the queued ``endLoop`` ends the loop right after synthesis
#: *starts*). The WAV is written, then ``finished-utterance`` is notified, by
#: espeak's thread at the end. Trusting ``runAndWait()`` there gives empty files
#: and, worse, audio shifted by one call (the late synthesis writes into the
#: *next* request's file, with the previous prosody). So on that driver the
#: worker waits for ``finished-utterance`` before it looks at the file.
#: A write that still holds no samples is repeated, up to this many attempts.
#:
#: Prosody has the same race: ``setProperty`` is queued by pyttsx3 and handed
#: to espeak's asynchronous command FIFO, and took effect one call late in about
#: half the calls on a loaded machine (rate=2.0 spoken at normal speed, the next
#: default-rate call fast). On the espeak driver the worker therefore sets the
#: properties on the driver directly and then calls ``espeak_Synchronize()``,
#: which returns once espeak has applied them, before queueing the synthesis.
EMPTY_ATTEMPTS = 3

#: Seconds to wait for ``finished-utterance`` (the parent's own timeout, which
#: restarts a hung worker, is the real bound).
FINISH_TIMEOUT_S = 120.0

#: Round-trip cost (issue 12 item 6b; measured ~36 ms per call for a 13-word
#: sentence, of which espeak's synthesis is a few ms). Two waits were fixed costs:
#:
#: * ``espeak_Synchronize()`` polls espeak-ng's command FIFO in 20 ms sleeps, even
#:   when nothing is queued: the worker now applies the properties (and
#:   synchronizes) only when they differ from the last ones applied, which is
#:   every call but the first of a run with one voice and prosody;
#: * pyttsx3's espeak driver loop sleeps 10 ms per turn while it waits for the
#:   synthesis it started: the worker gives that loop a shorter sleep
#:   (:data:`DRIVER_TICK_S`); the parent still waits on ``finished-utterance``.
DRIVER_TICK_S = 0.001


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
    driver = type(engine.proxy._driver).__module__
    _shorten_driver_tick(driver)
    finished = threading.Event()
    engine.connect("finished-utterance", lambda **_: finished.set())
    waits_for_finish = driver.endswith(".espeak")
    send({"ready": True, "driver": driver})

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
            _apply(engine, defaults, request, direct=waits_for_finish)
            for attempt in range(1, EMPTY_ATTEMPTS + 1):
                finished.clear()
                engine.save_to_file(request["text"], request["path"])
                engine.runAndWait()
                if waits_for_finish and not finished.wait(FINISH_TIMEOUT_S):
                    raise TimeoutError(f"no finished-utterance in {FINISH_TIMEOUT_S} s")
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


def _shorten_driver_tick(driver: str) -> None:
    """Make the espeak driver's wait loop tick every DRIVER_TICK_S (see above)."""
    if not driver.endswith(".espeak"):
        return
    import types

    namespace = vars(sys.modules[driver])  # the driver's globals: it calls time.sleep
    real = namespace["time"]
    names = {name: getattr(real, name) for name in dir(real) if not name.startswith("_")}
    names["sleep"] = lambda seconds: real.sleep(min(seconds, DRIVER_TICK_S))
    namespace["time"] = types.SimpleNamespace(**names)


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


def _apply(
    engine: Any, defaults: dict[str, Any], request: dict[str, Any], *, direct: bool
) -> None:
    """Set every property for this request, from the defaults: nothing leaks between calls.

    ``direct`` (the espeak driver): set them on the driver now and wait until
    espeak has applied them (see the module notes), instead of queueing them.
    """
    wanted = _wanted(engine, defaults, request)
    if direct and wanted == _APPLIED:
        return  # espeak already has them: no setProperty, no 20 ms Synchronize
    set_property = engine.proxy._driver.setProperty if direct else engine.setProperty
    for name, value in wanted.items():
        set_property(name, value)
    if direct:
        from pyttsx3.drivers import _espeak

        _espeak.Synchronize()
        _APPLIED.clear()
        _APPLIED.update(wanted)


#: The properties last applied on the espeak driver (see ``_apply``).
_APPLIED: dict[str, Any] = {}


def _wanted(engine: Any, defaults: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """Every property's value for this request, from the defaults."""
    voice = request["voice"]
    if voice and voice not in _voice_ids(engine):
        # pyttsx3's espeak driver silently keeps the old voice for an unknown name.
        raise ValueError(f"unknown pyttsx3 voice {voice!r}")
    rate, volume, pitch = request["rate"], request["volume"], request["pitch"]
    wanted = {
        "voice": voice or defaults["voice"],
        "rate": round(defaults["rate"] * (1.0 if rate is None else rate)),
        "volume": defaults["volume"] if volume is None else volume,
    }
    if defaults["pitch"] is not None:
        wanted["pitch"] = min(99, round(defaults["pitch"] * (pitch or 1.0)))
    elif pitch is not None and pitch != 1.0:
        raise ValueError("this pyttsx3 driver has no pitch control")
    return wanted


if __name__ == "__main__":
    main()
