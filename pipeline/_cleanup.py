"""Text cleanup for speech: what a TTS engine should read out of markdown-ish LLM text.

Separate from segmentation: :class:`~pipeline.SentenceBuffer` segments keep the
raw text (their offsets refer to it); the pipeline passes each segment's text
through :func:`clean_for_speech` before synthesis.
"""

from __future__ import annotations

import re
from typing import Literal

CODE_PLACEHOLDER = "(code omitted)"
"""Spoken instead of a fenced code block when ``code="placeholder"``."""

URL_PLACEHOLDER = "(link)"
"""Spoken instead of a URL when ``urls="placeholder"``."""

Mode = Literal["placeholder", "drop"]

# A fenced block, closed or running to the end of the text (a segment may hold
# only its beginning); a lone closing fence left over from an earlier segment.
_FENCE = re.compile(r"^[ \t]*(```|~~~)[^\n]*\n?.*?(?:^[ \t]*\1[ \t]*$|\Z)", re.M | re.S)
# What is left of a code block that an earlier segment opened: up to its
# closing fence, or all of it.
_CONTINUED_CODE = re.compile(r"\A.*?(?:^[ \t]*(?:```|~~~)[ \t]*$\n?|\Z)", re.M | re.S)
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\([^)\s]*\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\([^)\s]*\)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]*[^\s<>\"')\].,;:!?]")
_INLINE_CODE = re.compile(r"`+([^`\n]*)`+")
_HEADING = re.compile(r"^[ \t]*#{1,6}[ \t]+", re.M)
_BULLET = re.compile(r"^[ \t]*[-*+•][ \t]+", re.M)
_QUOTE = re.compile(r"^[ \t]*>[ \t]?", re.M)
_RULE = re.compile(r"^[ \t]*(?:[-*_][ \t]*){3,}$", re.M)
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1", re.S)
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC_UNDERSCORE = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~", re.S)
_LEFTOVER_MARKS = re.compile(r"\*\*|__|~~|```")
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # pictographs, emoticons, transport, symbols & pictographs ext.
    "\U00002600-\U000027bf"  # misc symbols, dingbats
    "\U0001f1e6-\U0001f1ff"  # regional indicators (flags)
    "\U00002b00-\U00002bff"  # arrows, stars
    "\U0000fe0e\U0000fe0f\U0000200d\U000020e3"  # variation selectors, ZWJ, keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]+"
)
_SPACES = re.compile(r"[ \t]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")


def _check_mode(name: str, value: str) -> None:
    if value not in ("placeholder", "drop"):
        raise ValueError(f"{name} must be 'placeholder' or 'drop', got {value!r}")


def clean_for_speech(
    text: str,
    *,
    code: Mode = "placeholder",
    urls: Mode = "placeholder",
    starts_in_code: bool = False,
) -> str:
    """Return ``text`` as it should be spoken.

    Removes markdown emphasis (``**b**``, ``*i*``, ``_i_``, ``~~s~~``), heading
    ``#`` marks, list bullets, blockquote ``>``, horizontal rules, inline-code
    backticks and link/image syntax (the link text stays); replaces fenced
    code blocks and URLs with :data:`CODE_PLACEHOLDER` / :data:`URL_PLACEHOLDER`
    (``"placeholder"``) or nothing (``"drop"``); drops emoji. Numbered list
    markers stay (``"1."`` reads fine). Runs of spaces collapse to one, blank
    lines to one newline, and the result is stripped. Characters, not bytes;
    the result may be ``""`` (nothing to say).

    ``starts_in_code=True`` (from :attr:`~pipeline.Segment.starts_in_code`)
    says the text continues a fenced code block opened before it: everything
    up to the block's closing fence is dropped (the placeholder was spoken
    with the block's first part).

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``code`` or ``urls`` is not ``"placeholder"`` or ``"drop"``.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    _check_mode("code", code)
    _check_mode("urls", urls)
    code_sub = f" {CODE_PLACEHOLDER} " if code == "placeholder" else " "
    url_sub = URL_PLACEHOLDER if urls == "placeholder" else ""
    if starts_in_code:
        text = _CONTINUED_CODE.sub("", text, count=1)
    text = _FENCE.sub(code_sub, text)
    text = _IMAGE.sub(r"\1", text)
    text = _LINK.sub(r"\1", text)
    text = _URL.sub(url_sub, text)
    text = _INLINE_CODE.sub(r"\1", text)
    text = _RULE.sub("", text)
    text = _HEADING.sub("", text)
    text = _BULLET.sub("", text)
    text = _QUOTE.sub("", text)
    text = _BOLD.sub(r"\2", text)
    text = _STRIKE.sub(r"\1", text)
    text = _ITALIC_STAR.sub(r"\1", text)
    text = _ITALIC_UNDERSCORE.sub(r"\1", text)
    text = _LEFTOVER_MARKS.sub("", text)
    text = _EMOJI.sub("", text)
    text = _SPACES.sub(" ", text)
    text = _BLANK_LINES.sub("\n", text)
    return "\n".join(line.strip() for line in text.strip().split("\n"))
