"""The one text-sanitising step every engine gets (in :class:`tts.TTSEngine`).

Control characters mean nothing to a voice and hurt engines: espeak-ng stops
reading at a NUL byte (the rest of the segment silently vanished), a lone
surrogate cannot be encoded to UTF-8 for a subprocess, and other C0/C1 codes
are read out or dropped differently by each engine. So before any engine sees
a text:

* C0 controls (U+0000-U+001F) except tab, line feed and carriage return, DEL
  (U+007F) and C1 controls (U+0080-U+009F) become a space (one space per run:
  they often stand between words, e.g. a form feed or record separator);
* lone surrogates (U+D800-U+DFFF, from bad decoding) and the noncharacters
  U+FFFE/U+FFFF become a space as well;
* the Unicode line and paragraph separators (U+2028, U+2029) become ``"\\n"``.

Everything else (letters, punctuation, emoji, format characters such as
zero-width joiners) is kept. The result is what is spoken, and what the
manifest records as the segment's ``text``.
"""

from __future__ import annotations

import re

_UNSPEAKABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]+")
_LINE_SEPARATORS = str.maketrans({"\u2028": "\n", "\u2029": "\n"})


def sanitize_text(text: str) -> str:
    """``text`` with control characters replaced (see the module docstring).

    Pure and idempotent; the length may shrink (a run of controls becomes one
    space) but never grows. Raises ``TypeError`` when ``text`` is not a str.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _UNSPEAKABLE.sub(" ", text).translate(_LINE_SEPARATORS)
