"""SSE decoding rules, and streaming == batch for any cut of the bytes (hypothesis)."""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import llm
from llm._sse import SSEDecoder, SSEEvent
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.llm.conftest import HTTP_PROVIDERS, client_kwargs


def _decode(lines: list[str]) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return [e for line in lines if (e := decoder.decode(line)) is not None]


def test_sse_events_comments_and_multiline_data() -> None:
    lines = [
        ": keep-alive",
        "",
        "event: content_block_delta",
        'data: {"a":1}',
        "",
        "data:no-space",
        "data:  two spaces",
        "id: 7",
        "retry: 100",
        "",
        "data: [DONE]",
        "",
        "data: unterminated",
    ]
    assert _decode(lines) == [
        SSEEvent("content_block_delta", '{"a":1}'),
        SSEEvent("message", "no-space\n two spaces"),
        SSEEvent("message", "[DONE]"),
    ]


def test_event_name_without_data_is_not_dispatched() -> None:
    assert _decode(["event: ping", "", "data: x", ""]) == [SSEEvent("message", "x")]


tokens = st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=6)
cuts = st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(provider=st.sampled_from(HTTP_PROVIDERS), tokens=tokens, cuts=cuts)
def test_any_cut_of_the_bytes_gives_the_same_text(
    provider: str, tokens: list[str], cuts: list[int]
) -> None:
    """Arbitrary text (newlines, emoji, quotes) cut at arbitrary byte positions."""
    with FakeLLMServer(Reply(tokens=tokens, split=cuts)) as server:
        client = llm.create_client(provider, model="m", **client_kwargs(provider, server.url))
        with client:
            chunks = list(client.generate_stream("x"))
    assert chunks[-1] == llm.StreamChunk("", True, finish_reason="stop")
    assert [c.text for c in chunks[:-1]] == [t for t in tokens if t]


@given(text=st.text(alphabet="ab\r\n\x85\u2028", max_size=30), cut=st.lists(st.integers(0, 30)))
def test_line_splitter_agrees_with_batch_for_any_cut(text: str, cut: list[int]) -> None:
    """Streaming == batch: only CR, LF and CRLF end lines, wherever the chunks are cut."""
    from llm._sse import LineSplitter

    batch = LineSplitter()
    expected = batch.feed(text) + batch.flush()
    splitter = LineSplitter()
    got: list[str] = []
    bounds = sorted({0, len(text), *(c for c in cut if c <= len(text))})
    for a, b in itertools.pairwise(bounds):
        got += splitter.feed(text[a:b])
    got += splitter.flush()
    assert got == expected
    assert "\x85" not in text or any("\x85" in line for line in expected)


def test_sse_decoder_feed_takes_chunks_cut_anywhere() -> None:
    from llm import SSEDecoder

    body = (
        'event: token\ndata: {"text": "a\u2028b"}\n\n'
        ": keep-alive\r\n\r\n"
        "event: done\r\ndata: {}\r\n\r\n"
    )
    for cut in range(len(body) + 1):
        decoder = SSEDecoder()
        events = decoder.feed(body[:cut]) + decoder.feed(body[cut:])
        assert [(e.event, e.data) for e in events] == [
            ("token", '{"text": "a\u2028b"}'),
            ("done", "{}"),
        ], cut
