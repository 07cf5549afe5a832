"""Streaming over the real wire formats, against tests/fakes/llm_server.py."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest

import llm
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply
from tests.llm.conftest import HTTP_PROVIDERS, USER, MakeClient

TOKENS = ["Grüß", " Gott", ", ", "🎉", " — fine."]


@pytest.mark.parametrize("split", [None, 1, 3, [1, 2, 5, 7]])
@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_deltas_match_tokens_for_any_chunking(
    provider: str, split: int | list[int] | None, server: FakeLLMServer, make_client: MakeClient
) -> None:
    """Writes cut mid-JSON, mid-SSE-event and mid-UTF-8 still give the exact deltas."""
    server.push(Reply(tokens=TOKENS, split=split))
    async with make_client(provider) as client:
        deltas = [d async for d in client.astream_chat(USER)]
    assert deltas == TOKENS
    stats = client.last_stats
    assert stats is not None and stats.completed
    assert stats.output_tokens == len(TOKENS)
    assert stats.text_chars == len("".join(TOKENS))
    assert stats.ttft_s is not None and stats.ttft_s <= stats.total_s


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_first_delta_arrives_before_server_sent_the_rest(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    gate = Gate()
    server.push(Reply(tokens=TOKENS, gate=gate))
    async with make_client(provider) as client:
        stream = client.astream_chat(USER)
        gate.release(1)
        first = await anext(stream)
        assert first == TOKENS[0]
        assert server.requests[0].tokens_sent == 1  # the server is blocked on the gate
        gate.release_all()
        rest = [d async for d in stream]
    assert [first, *rest] == TOKENS


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_aclose_disconnects_at_once(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    gate = Gate()
    server.push(Reply(tokens=TOKENS, gate=gate))
    async with make_client(provider) as client:
        stream = client.astream_chat(USER)
        gate.release(1)
        assert await anext(stream) == TOKENS[0]
        await stream.aclose()
        assert await server.requests[0].wait_disconnected()
        assert server.requests[0].tokens_sent == 1
    stats = client.last_stats
    assert stats is not None and not stats.completed and stats.text_chars == len(TOKENS[0])


async def test_break_out_of_loop_disconnects(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    gate = Gate()
    server.push(Reply(tokens=TOKENS, gate=gate))
    gate.release(1)
    async with make_client("ollama") as client:
        async with aclosing(client.astream_chat(USER)) as stream:
            async for _ in stream:
                break
        assert await server.requests[0].wait_disconnected()


async def test_task_cancellation_disconnects(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    gate = Gate()
    server.push(Reply(tokens=TOKENS, gate=gate))
    got_first = asyncio.Event()

    async def consume(client: llm.LLMClient) -> None:
        async for _ in client.astream_chat(USER):
            got_first.set()

    async with make_client("openai") as client:
        gate.release(1)
        task = asyncio.create_task(consume(client))
        await got_first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await server.requests[0].wait_disconnected()


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_stalled_stream_hits_idle_timeout_and_keeps_partial_text(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, stall_after=2))
    received: list[str] = []
    async with make_client(provider, idle_timeout=0.3, first_token_timeout=30) as client:
        with pytest.raises(llm.LLMTimeoutError) as info:
            async for delta in client.astream_chat(USER):
                received.append(delta)
    assert info.value.phase == "idle"
    assert info.value.partial_text == "".join(TOKENS[:2]) == "".join(received)
    assert await server.requests[0].wait_disconnected()
    assert len(server.requests) == 1  # never retried after text


async def test_a_consumer_slower_than_the_idle_timeout_does_not_trip_it(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    """Only the time a read waits for the server counts: the consumer holding the
    stream (here 0.5 s per delta, the idle timeout 0.2 s) is no silence."""
    server.push(Reply(tokens=TOKENS[:4]))
    received: list[str] = []
    async with make_client("ollama", idle_timeout=0.2, first_token_timeout=30) as client:
        async for delta in client.astream_chat(USER):
            received.append(delta)
            await asyncio.sleep(0.5)
    assert "".join(received) == "".join(TOKENS[:4])


async def test_an_outside_cancel_during_a_read_stays_a_cancel(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    """A task cancelled while it waits for a token gets CancelledError, not a
    timeout error, and the timeouts' timer does not fire into a later read."""
    server.push(Reply(tokens=TOKENS, stall_after=1))
    async with make_client("ollama", idle_timeout=0.3, first_token_timeout=30) as client:
        got_first = asyncio.Event()

        async def consume() -> None:
            async for _ in client.astream_chat(USER):
                got_first.set()

        task = asyncio.create_task(consume())
        await got_first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert task.cancelled()
        server.push(Reply(tokens=TOKENS[:3]))  # the next stream of the client is whole
        assert "".join([d async for d in client.astream_chat(USER)]) == "".join(TOKENS[:3])


async def test_silent_server_hits_first_token_timeout(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, stall_after=0))
    async with make_client("ollama", first_token_timeout=2.0, idle_timeout=30) as client:
        with pytest.raises(llm.LLMTimeoutError) as info:
            async for _ in client.astream_chat(USER):
                pass
    assert info.value.phase == "first_token"
    assert info.value.partial_text == ""
    assert len(server.requests) == 1  # a slow model is not retried


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_dropped_connection_keeps_partial_text(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, drop_after=2))
    received: list[str] = []
    async with make_client(provider, max_retries=3) as client:
        with pytest.raises(llm.LLMStreamError) as info:
            async for delta in client.astream_chat(USER):
                received.append(delta)
    assert received == TOKENS[:2]
    assert info.value.partial_text == "".join(TOKENS[:2])
    assert info.value.provider == provider
    assert isinstance(info.value.__cause__, Exception)  # translated with `from`
    assert len(server.requests) == 1


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_error_object_inside_stream(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, error_after=1, error_message="GPU on fire"))
    async with make_client(provider, max_retries=3) as client:
        with pytest.raises(llm.LLMStreamError, match="GPU on fire") as info:
            async for _ in client.astream_chat(USER):
                pass
    assert info.value.partial_text == TOKENS[0]
    assert len(server.requests) == 1  # even Anthropic's retryable overload: text was out


@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_stream_without_end_marker_is_an_error(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    # Ollama: no "done": true record; OpenAI: no [DONE]; Anthropic: no message_stop;
    # Gemini: no chunk with a finishReason. The body itself ends cleanly.
    server.push(Reply(tokens=TOKENS, omit_done=True))
    async with make_client(provider, max_retries=0) as client:
        with pytest.raises(llm.LLMStreamError, match="ended before") as info:
            async for _ in client.astream_chat(USER):
                pass
    assert info.value.partial_text == "".join(TOKENS)


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_keepalive_comments_and_pings_are_skipped(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=TOKENS, keepalive=True, split=4))
    async with make_client(provider) as client:
        assert [d async for d in client.astream_chat(USER)] == TOKENS


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, llm.LLMAuthError),
        (403, llm.LLMAuthError),
        (404, llm.ModelNotFoundError),
        (429, llm.LLMRateLimitError),
        (400, llm.LLMResponseError),
        (500, llm.LLMResponseError),
    ],
)
@pytest.mark.parametrize("provider", HTTP_PROVIDERS)
async def test_http_error_before_stream(
    provider: str,
    status: int,
    error: type[llm.LLMError],
    server: FakeLLMServer,
    make_client: MakeClient,
) -> None:
    server.push(Reply(status=status))
    async with make_client(provider, max_retries=0) as client:
        with pytest.raises(error) as info:
            async for _ in client.astream_chat(USER):
                pass
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.partial_text == ""
    assert "fake" in str(info.value) or "not found" in str(info.value) or "exist" in str(info.value)


async def test_ollama_model_not_found_message(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(status=404))
    async with make_client("ollama") as client:
        with pytest.raises(llm.ModelNotFoundError, match='model "fake-model" not found'):
            async for _ in client.astream_chat(USER):
                pass
    assert len(server.requests) == 1  # 404 is not retried


async def test_plain_break_disconnects(server: FakeLLMServer, make_client: MakeClient) -> None:
    """Without aclosing(): the dropped generator is finalized by the loop's asyncgen hook."""
    gate = Gate()
    server.push(Reply(tokens=TOKENS, gate=gate))
    gate.release(1)
    async with make_client("gemini") as client:
        async for _ in client.astream_chat(USER):
            break
        assert await server.requests[0].wait_disconnected()
