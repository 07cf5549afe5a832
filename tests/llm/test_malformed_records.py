"""A stream record of the wrong shape is an LLMStreamError, never an AttributeError/TypeError.

Table-driven cases per provider (the shapes the review found), then hypothesis
feeding arbitrary JSON values to each provider's parser; one end-to-end case
per provider over HTTP.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import llm
from llm._anthropic import AnthropicParser
from llm._gemini import GeminiParser
from llm._ollama import OllamaParser
from llm._openai import OpenAIParser
from llm._records import RecordParser
from llm._sse import SSEEvent
from llm._types import Report, Thinking
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.llm.conftest import USER, MakeClient


def _parser(provider: str) -> RecordParser[Any]:
    report = Report()
    if provider == "ollama":
        return OllamaParser(report, generate=False)
    if provider == "ollama-generate":
        return OllamaParser(report, generate=True)
    return {"openai": OpenAIParser, "anthropic": AnthropicParser, "gemini": GeminiParser}[
        provider
    ](report)


def _feed(provider: str, record: Any, event: str = "message") -> list[str | Thinking]:
    data = json.dumps(record)
    parser = _parser(provider)
    if provider.startswith("ollama"):
        return parser.feed(data)
    return parser.feed(SSEEvent(event, data))


MALFORMED: list[tuple[str, Any, str]] = [
    # provider, record, the field the message names
    ("ollama", [1, 2], "the record"),
    ("ollama", {"message": "hello", "done": False}, "message"),
    ("ollama", {"message": {"content": 5}, "done": False}, "message.content"),
    ("ollama", {"message": {"content": "", "thinking": ["x"]}}, "message.thinking"),
    ("ollama", {"message": {"content": "x"}, "done": True, "done_reason": 3}, "done_reason"),
    ("ollama-generate", {"response": {"text": "x"}, "done": False}, "response"),
    ("openai", "just a string", "the record"),
    ("openai", {"choices": "nope"}, "choices"),
    ("openai", {"choices": ["a choice as a string"]}, "choices[0]"),
    ("openai", {"choices": [None, 3]}, "choices[1]"),
    ("openai", {"choices": [{"index": 0, "delta": "text"}]}, "choices[0].delta"),
    ("openai", {"choices": [{"index": 0, "delta": {"content": 7}}]}, "choices[0].delta.content"),
    ("openai", {"choices": [{"delta": {}, "finish_reason": 1}]}, "choices[0].finish_reason"),
    ("anthropic", 42, "the record"),
    ("anthropic", {"type": "content_block_delta", "delta": "text"}, "delta"),
    (
        "anthropic",
        {"type": "content_block_delta", "delta": {"type": "text_delta", "text": None}},
        "",  # a missing text is empty, not malformed: see below
    ),
    ("anthropic", {"type": "content_block_delta", "delta": {"type": "text_delta", "text": 5}},
     "delta.text"),
    ("anthropic", {"type": "content_block_start", "content_block": []}, "content_block"),
    ("anthropic", {"type": "message_delta", "delta": {"stop_reason": {}}}, "delta.stop_reason"),
    ("gemini", None, "the record"),
    ("gemini", {"candidates": {"0": {}}}, "candidates"),
    ("gemini", {"candidates": ["a candidate as a string"]}, "candidates[0]"),
    ("gemini", {"candidates": [{"content": "text"}]}, "candidates[0].content"),
    ("gemini", {"candidates": [{"content": {"parts": {"text": "x"}}}]},
     "candidates[0].content.parts"),
    ("gemini", {"candidates": [{"content": {"parts": ["x"]}}]}, "candidates[0].content.parts[0]"),
    ("gemini", {"candidates": [{"content": {"parts": [{"text": 1}]}}]},
     "candidates[0].content.parts[0].text"),
    ("gemini", {"candidates": [{"finishReason": 2}]}, "candidates[0].finishReason"),
    ("gemini", {"promptFeedback": "blocked"}, "promptFeedback"),
]


@pytest.mark.parametrize(("provider", "record", "field"), MALFORMED)
def test_malformed_record_is_a_stream_error_naming_the_field(
    provider: str, record: Any, field: str
) -> None:
    if not field:
        assert _feed(provider, record) == []
        return
    with pytest.raises(llm.LLMStreamError, match="malformed stream record") as info:
        _feed(provider, record)
    assert f"{field} is " in str(info.value)
    assert info.value.provider == provider.removesuffix("-generate")
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("provider", "record"),
    [
        ("ollama", {"message": {"content": "x"}, "done": True, "eval_count": "many",
                    "eval_duration": None}),
        ("openai", {"choices": [], "usage": "lots"}),
        ("openai", {"choices": [], "usage": {"completion_tokens": -3}}),
        ("anthropic", {"type": "message_delta", "delta": {}, "usage": [1]}),
        ("gemini", {"candidates": [], "usageMetadata": {"candidatesTokenCount": True}}),
    ],
)
def test_advisory_numbers_of_the_wrong_type_are_ignored(provider: str, record: Any) -> None:
    parser = _parser(provider)
    data = json.dumps(record)
    parser.feed(data if provider == "ollama" else SSEEvent("message", data))
    assert parser.report.output_tokens is None and parser.report.generation_s is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(
        st.sampled_from(
            ["message", "content", "thinking", "response", "done", "done_reason", "error",
             "choices", "index", "delta", "reasoning_content", "reasoning", "finish_reason",
             "usage", "type", "text", "content_block", "stop_reason", "candidates", "parts",
             "thought", "finishReason", "promptFeedback", "blockReason", "usageMetadata",
             "eval_count", "completion_tokens", "output_tokens"]
        ),
        inner,
        max_size=5,
    ),
    max_leaves=12,
)
event_types = st.sampled_from(
    ["message", "error", "content_block_delta", "content_block_start", "message_delta",
     "message_stop", "ping"]
)


@settings(max_examples=400, deadline=None)
@given(
    provider=st.sampled_from(["ollama", "ollama-generate", "openai", "anthropic", "gemini"]),
    record=json_values,
    event=event_types,
)
def test_any_json_gives_items_or_an_llm_error(provider: str, record: Any, event: str) -> None:
    try:
        items = _feed(provider, record, event)
    except llm.LLMError:
        return
    assert all(isinstance(item, str | Thinking) for item in items)
    assert all(item for item in items if isinstance(item, str))  # never an empty delta


@pytest.mark.parametrize(
    ("provider", "body"),
    [
        ("ollama", b'{"message":"not an object","done":false}\n'),
        ("openai", b'data: {"choices":["oops"]}\n\n'),
        ("anthropic", b'event: content_block_delta\ndata: {"type":"content_block_delta",'
                      b'"delta":"oops"}\n\n'),
        ("gemini", b'data: {"candidates":[{"content":{"parts":{"text":"oops"}}}]}\r\n\r\n'),
    ],
)
async def test_malformed_record_over_http(
    provider: str, body: bytes, server: FakeLLMServer, make_client: MakeClient
) -> None:
    content_type = "application/x-ndjson" if provider == "ollama" else "text/event-stream"
    server.push(Reply(raw_body=body, content_type=content_type))
    async with make_client(provider, max_retries=2) as client:
        with pytest.raises(llm.LLMStreamError, match="malformed stream record") as info:
            async for _ in client.astream_chat(USER):
                pass
    assert info.value.provider == provider
    assert len(server.requests) == 1  # a malformed answer is not retried
