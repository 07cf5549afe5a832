"""Reasoning output, finish reasons and blocked prompts, per provider, on the real wire formats."""

from __future__ import annotations

import pytest

import llm
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.llm.conftest import HTTP_PROVIDERS, USER, MakeClient

TOKENS = ["The answer", " is", " 42."]
THINKING = ["Let me think", " about the question", " step by step."]

# (provider, the provider's own stop value on the wire, our finish_reason)
FINISH_CASES = [
    ("ollama", "stop", "stop"),
    ("ollama", "length", "length"),
    ("ollama", "unload", "unload"),
    ("openai", "stop", "stop"),
    ("openai", "length", "length"),
    ("openai", "content_filter", "content_filter"),
    ("openai", "tool_calls", "tool_calls"),
    ("anthropic", "end_turn", "stop"),
    ("anthropic", "stop_sequence", "stop"),
    ("anthropic", "max_tokens", "length"),
    ("anthropic", "refusal", "refusal"),
    ("anthropic", "pause_turn", "pause_turn"),
    ("gemini", "STOP", "stop"),
    ("gemini", "MAX_TOKENS", "length"),
    ("gemini", "SAFETY", "content_filter"),
    ("gemini", "RECITATION", "content_filter"),
    ("gemini", "PROHIBITED_CONTENT", "content_filter"),
    ("gemini", "OTHER", "OTHER"),
]


# -- reasoning ("thinking") output ----------------------------------------------------


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_thinking_is_never_text_but_is_counted(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, thinking=THINKING, split=[1, 3, 7]))
    async with make_client(provider) as client:
        stream = client.astream_chat(USER)
        deltas = [d async for d in stream]
    assert deltas == TOKENS  # no reasoning in what is spoken
    assert stream.thinking_chars == len("".join(THINKING))
    assert stream.stats is not None and stream.stats.thinking_chars == len("".join(THINKING))
    assert stream.stats.text_chars == len("".join(TOKENS))
    assert stream.finish_reason == "stop"


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_thinking_keeps_the_first_token_timeout_from_firing(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    """Reasoning starts at once, then a piece every 0.45 s: 1.35 s of reasoning,
    longer than the first-token timeout (0.8 s, wide enough for the first byte
    on a loaded machine). Bytes flow, so after the first piece the idle timeout
    (30 s) governs, and the answer arrives."""
    thinking = ["Hmm."] * 3
    server.push(Reply(tokens=TOKENS, thinking=thinking, token_delay=0.45))
    async with make_client(provider, first_token_timeout=0.8, idle_timeout=30) as client:
        stream = client.astream_chat(USER)
        assert [d async for d in stream] == TOKENS
    assert stream.stats is not None and stream.stats.ttft_s is not None
    assert stream.stats.ttft_s > 0.8  # the first text came after the first-token limit


async def test_silence_of_the_same_length_does_trip_the_first_token_timeout(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    """The control for the test above: no reasoning, the same wait, a timeout."""
    server.push(Reply(tokens=TOKENS, first_token_delay=1.35))
    async with make_client("ollama", first_token_timeout=0.8, idle_timeout=30) as client:
        with pytest.raises(llm.LLMTimeoutError) as info:
            async for _ in client.astream_chat(USER):
                pass
    assert info.value.phase == "first_token"


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_reasoning_that_stalls_hits_the_idle_timeout(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, thinking=THINKING, stall_after=0))
    async with make_client(provider, first_token_timeout=30, idle_timeout=0.3) as client:
        with pytest.raises(llm.LLMTimeoutError) as info:
            async for _ in client.astream_chat(USER):
                pass
    assert info.value.phase == "idle" and info.value.partial_text == ""


async def test_ollama_generate_thinking(server: FakeLLMServer, make_client: MakeClient) -> None:
    server.push(Reply(tokens=TOKENS, thinking=THINKING))
    async with make_client("ollama") as client:
        stream = client.astream_generate("Why?")
        assert "".join([d async for d in stream]) == "".join(TOKENS)
    assert stream.thinking_chars == len("".join(THINKING))


# -- finish reasons -------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "raw", "ours"), FINISH_CASES)
async def test_finish_reason_is_normalized(
    provider: str, raw: str, ours: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, finish=raw))
    async with make_client(provider) as client:
        stream = client.astream_chat(USER)
        text = "".join([d async for d in stream])
    assert text == "".join(TOKENS)  # a cut-off answer keeps every delta
    assert stream.finish_reason == ours
    assert client.last_stats is not None and client.last_stats.finish_reason == ours
    assert client.last_stats.completed


@pytest.mark.parametrize("raw", ["SAFETY", "BLOCKLIST", "SPII"])
async def test_gemini_filtered_answer_ends_normally_and_says_why(
    raw: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    """Not an error, not a truncated stream: the text so far, then the reason."""
    server.push(Reply(tokens=["Sure, here", " is how"], finish=raw))
    async with make_client("gemini", max_retries=2) as client:
        stream = client.astream_chat(USER)
        assert "".join([d async for d in stream]) == "Sure, here is how"
    assert stream.finish_reason == "content_filter"
    assert len(server.requests) == 1


async def test_finish_reason_is_none_until_the_end_and_after_a_failure(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, finish="length", drop_after=2))
    async with make_client("openai") as client:
        stream = client.astream_chat(USER)
        assert await anext(stream) == TOKENS[0]
        assert stream.finish_reason is None and stream.stats is None
        with pytest.raises(llm.LLMStreamError):
            async for _ in stream:
                pass
    assert stream.finish_reason is None
    assert stream.stats is not None and not stream.stats.completed


async def test_closed_early_has_no_finish_reason(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    async with make_client("anthropic") as client:
        async with client.astream_chat(USER) as stream:
            async for _ in stream:
                break
    assert stream.finish_reason is None


def test_sync_twins_report_the_finish_reason(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(
        Reply(tokens=TOKENS, finish="max_tokens"), Reply(tokens=TOKENS, finish="MAX_TOKENS")
    )
    with make_client("anthropic") as client:
        chunks = list(client.generate_stream("x"))
    assert chunks[-1] == llm.StreamChunk("", True, finish_reason="length")
    with make_client("gemini") as client:
        response = client.generate("x")
    assert response.success and response.finish_reason == "length"
    assert response.text == "".join(TOKENS)


async def test_conversation_reply_carries_the_finish_reason(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, finish="length", thinking=THINKING))
    async with make_client("ollama") as client:
        chat = llm.Conversation(client)
        reply = chat.astream_reply("Hi")
        assert "".join([d async for d in reply]) == "".join(TOKENS)
    assert reply.finish_reason == "length"
    assert reply.thinking_chars == len("".join(THINKING))
    assert chat.history[-1] == {"role": "assistant", "content": "".join(TOKENS)}


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        (None, None),
        ("stop", None),
        ("length", "the answer was cut off: max tokens reached"),
        ("content_filter", "the answer was stopped by the provider's content filter"),
        ("refusal", "the model refused to answer"),
        ("tool_calls", "the answer ended early (finish reason 'tool_calls')"),
    ],
)
def test_explain_finish_reason(reason: str | None, expected: str | None) -> None:
    assert llm.explain_finish_reason(reason) == expected


# -- a prompt the provider blocks ----------------------------------------------------


@pytest.mark.parametrize("reason", ["SAFETY", "OTHER", "PROHIBITED_CONTENT"])
async def test_gemini_blocked_prompt_is_one_clear_error_never_retried(
    reason: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(block_reason=reason))
    async with make_client("gemini", max_retries=3) as client:
        with pytest.raises(llm.PromptBlockedError) as info:
            async for _ in client.astream_chat(USER):
                pass
    assert info.value.reason == reason and not info.value.retryable
    assert f"blockReason {reason}" in str(info.value)
    assert "stream ended" not in str(info.value)  # not reported as a truncated stream
    assert info.value.provider == "gemini" and info.value.partial_text == ""
    assert len(server.requests) == 1


def test_gemini_blocked_prompt_in_the_sync_api(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(block_reason="SAFETY"))
    with make_client("gemini") as client:
        chunks = list(client.generate_stream("x"))
    assert len(chunks) == 1 and chunks[0].done
    assert isinstance(chunks[0].exception, llm.PromptBlockedError)
    assert chunks[0].error is not None and "blockReason SAFETY" in chunks[0].error
