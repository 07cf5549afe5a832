from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import SentenceBuffer, StreamingConfig


def test_defaults_match_the_contract() -> None:
    cfg = StreamingConfig()
    assert cfg.sentence_buffer_size == 2
    assert cfg.min_chunk_length == 20
    assert cfg.max_buffer_time == 3.0
    assert cfg.first_segment_min_length == SentenceBuffer().config.first_segment_min_length
    assert cfg.output_dir == "speakstream-out"
    assert (cfg.format, cfg.workers, cfg.play, cfg.merge, cfg.subtitles) == (
        "wav", 2, False, False, None
    )


def test_keyword_only_and_frozen() -> None:
    with pytest.raises(TypeError):
        StreamingConfig(3)  # type: ignore[misc]
    cfg = StreamingConfig()
    with pytest.raises(AttributeError):
        cfg.workers = 4  # type: ignore[misc]


@pytest.mark.parametrize(
    ("key", "value", "needle"),
    [
        ("sentence_buffer_size", 0, "[1, 1000]"),
        ("sentence_buffer_size", True, "integer"),
        ("min_chunk_length", -1, "[0, "),
        ("min_chunk_length", 2.5, "integer"),
        ("max_buffer_time", 0, "(0.0, "),
        ("max_buffer_time", float("nan"), "number"),
        ("first_segment_min_length", 0, "[1, "),
        ("output_dir", "", "non-empty"),
        ("format", "aiff", "wav, mp3"),
        ("format", "pcm", "wav, mp3"),
        ("workers", 0, "[1, 32]"),
        ("workers", 33, "[1, 32]"),
        ("play", "yes", "true or false"),
        ("merge", 1, "true or false"),
        ("merge_silence_ms", -5, "[0, 10000]"),
        ("subtitles", "ass", "srt, vtt"),
        ("voice", "", "non-empty"),
        ("rate", 5.0, "[0.25, 4.0]"),
        ("volume", -0.1, "[0.0, 1.0]"),
        ("pitch", 0.1, "[0.5, 2.0]"),
        ("clean_code", "keep", "placeholder, drop"),
        ("clean_urls", None, "placeholder, drop"),
    ],
)
def test_bad_values_name_key_value_and_range(key: str, value: object, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        StreamingConfig(**{key: value})  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith(key + " ")
    assert repr(value) in message
    assert needle in message


def test_valid_edges_accepted() -> None:
    cfg = StreamingConfig(
        sentence_buffer_size=1,
        min_chunk_length=0,
        max_buffer_time=None,
        first_segment_min_length=1,
        output_dir=Path("x"),
        format="mp3",
        workers=32,
        play=True,
        merge=True,
        merge_silence_ms=10_000,
        subtitles="vtt",
        voice="en",
        rate=0.25,
        volume=1.0,
        pitch=2.0,
        clean_code="drop",
        clean_urls="drop",
    )
    assert cfg.to_dict()["output_dir"] == "x"
    assert cfg.max_buffer_time is None


def test_from_mapping_names_unknown_keys() -> None:
    with pytest.raises(ValueError, match=r"'buffer_size'.*known keys: sentence_buffer_size"):
        StreamingConfig.from_mapping({"buffer_size": 3, "workers": 2})
    assert StreamingConfig.from_mapping({"workers": 3}).workers == 3
    assert StreamingConfig.from_mapping(None) == StreamingConfig()


def test_replace_validates_and_round_trips() -> None:
    cfg = StreamingConfig(workers=3)
    assert cfg.replace(format="mp3") == StreamingConfig(workers=3, format="mp3")
    with pytest.raises(ValueError, match="workers"):
        cfg.replace(workers=0)
    with pytest.raises(ValueError, match="nope"):
        cfg.replace(nope=1)
    assert StreamingConfig.from_mapping(cfg.to_dict()) == cfg
