"""clean_for_speech: markdown, code, URLs and emoji out; words in."""

from __future__ import annotations

import pytest

from pipeline import SentenceBuffer, clean_for_speech
from pipeline._cleanup import CODE_PLACEHOLDER, URL_PLACEHOLDER


@pytest.mark.parametrize(
    ("raw", "spoken"),
    [
        ("**Bold** and __strong__ text.", "Bold and strong text."),
        ("An *italic* and _underlined_ word.", "An italic and underlined word."),
        ("~~old~~ new", "old new"),
        ("# Heading one", "Heading one"),
        ("### Step 2: Install", "Step 2: Install"),
        ("- first item", "first item"),
        ("* starred item", "starred item"),
        ("+ plus item", "plus item"),
        ("1. numbered item", "1. numbered item"),
        ("> quoted text", "quoted text"),
        ("Call `foo()` now.", "Call foo() now."),
        ("Read [the docs](https://x.org/docs) first.", "Read the docs first."),
        ("![a cat](cat.png) sleeps", "a cat sleeps"),
        ("Great job! 🎉👍", "Great job!"),
        ("Flags 🇫🇷 and ❤️ gone", "Flags and gone"),
        ("Keep snake_case_name and 2*3*4 and a_b.", "Keep snake_case_name and 2*3*4 and a_b."),
        ("Prices: $5 * 3 = $15", "Prices: $5 * 3 = $15"),
        ("---", ""),
        ("", ""),
    ],
)
def test_markdown_is_stripped(raw: str, spoken: str) -> None:
    assert clean_for_speech(raw) == spoken


def test_urls_placeholder_or_dropped() -> None:
    text = "See https://example.com/a?b=1. Or www.example.org, then stop."
    assert clean_for_speech(text) == f"See {URL_PLACEHOLDER}. Or {URL_PLACEHOLDER}, then stop."
    assert clean_for_speech(text, urls="drop") == "See . Or , then stop."


def test_code_blocks_placeholder_or_dropped() -> None:
    text = "Run this:\n```python\nprint('hi. there')\n```\nThen relax."
    assert clean_for_speech(text) == f"Run this:\n{CODE_PLACEHOLDER}\nThen relax."
    assert clean_for_speech(text, code="drop") == "Run this:\nThen relax."


def test_unclosed_code_block_in_a_segment_is_still_removed() -> None:
    assert clean_for_speech("Here:\n```bash\nrm -rf build", code="drop") == "Here:"


@pytest.mark.parametrize(("option", "value"), [("code", "keep"), ("urls", "spell")])
def test_invalid_mode_names_the_option(option: str, value: str) -> None:
    with pytest.raises(ValueError, match=option):
        clean_for_speech("x", **{option: value})  # type: ignore[arg-type]


def test_rejects_non_text() -> None:
    with pytest.raises(TypeError):
        clean_for_speech(None)  # type: ignore[arg-type]


def test_segments_keep_raw_text_and_cleanup_is_separate() -> None:
    raw = "**Note.** Visit https://x.org/a.b today. - done\n\n## Next\nOk."
    buffer = SentenceBuffer(sentence_buffer_size=1, min_chunk_length=0, max_buffer_time=None)
    segments = buffer.push(raw) + buffer.flush()
    assert "".join(s.text for s in segments) == raw
    spoken = [clean_for_speech(s.text) for s in segments]
    assert spoken == ["Note.", f"Visit {URL_PLACEHOLDER} today.", "done", "Next", "Ok."]
