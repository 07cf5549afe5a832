"""The sync seed-compatible API and Conversation (both thin wrappers over async)."""

from __future__ import annotations

import pytest

import llm
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply
from tests.llm.conftest import MakeClient


def test_generate_stream_yields_chunks_then_done(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=["One", " two", "."]))
    with make_client("ollama") as client:
        chunks = list(client.generate_stream("count"))
    assert chunks == [
        llm.StreamChunk("One", False),
        llm.StreamChunk(" two", False),
        llm.StreamChunk(".", False),
        llm.StreamChunk("", True, finish_reason="stop"),
    ]
    assert server.requests[0].path == "/api/generate"


def test_generate_stream_reports_error_in_final_chunk(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=["One", " two", "."], drop_after=2))
    with make_client("openai") as client:
        chunks = list(client.generate_stream("count"))
    assert [c.text for c in chunks[:-1]] == ["One", " two"]  # nothing lost
    last = chunks[-1]
    assert last.done and last.text == ""
    assert last.error is not None and "mid-stream" in last.error


def test_generate_stream_closed_early_disconnects(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    gate = Gate()
    server.push(Reply(tokens=["a", "b", "c"], gate=gate))
    gate.release(1)
    with make_client("anthropic") as client:
        stream = client.generate_stream("x")
        assert next(stream).text == "a"
        stream.close()  # type: ignore[attr-defined]
    assert server.requests[0].disconnected.wait(10)


def test_generate_returns_model_response(server: FakeLLMServer, make_client: MakeClient) -> None:
    with make_client("gemini") as client:
        response = client.generate("hi", stream=False)
    assert response.success and response.done
    assert response.text == "Hello, world."
    assert response.error is None
    assert response.stats is not None and response.stats.completed


def test_generate_failure_keeps_partial_text_and_status(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(status=404))
    with make_client("ollama") as client:
        missing = client.generate("hi")
        server.push(Reply(tokens=["par", "tial", "!"], error_after=2))
        broken = client.generate("hi")
    assert not missing.success and missing.status_code == 404 and missing.text == ""
    assert missing.error is not None and "not found" in missing.error
    assert not broken.success and broken.text == "partial"
    assert broken.error is not None and "crashed" in broken.error


def test_chat_stream_sends_history(server: FakeLLMServer, make_client: MakeClient) -> None:
    history = [{"role": "user", "content": "A"}, {"role": "assistant", "content": "B"}]
    with make_client("openai") as client:
        text = "".join(c.text for c in client.chat_stream("C", history))
    assert text == "Hello, world."
    assert server.requests[0].json["messages"] == [*history, {"role": "user", "content": "C"}]


async def test_conversation_appends_only_completed_replies(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=["Hi", "!"]), Reply(tokens=["Half", " a", " reply"], drop_after=1))
    async with make_client("anthropic") as client:
        chat = llm.Conversation(client, system="Be kind.")
        assert "".join([d async for d in chat.astream_reply("Hello")]) == "Hi!"
        assert chat.history == [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi!"},
        ]
        with pytest.raises(llm.LLMStreamError) as info:
            async for _ in chat.astream_reply("And?"):
                pass
        assert info.value.partial_text == "Half"
        assert len(chat.history) == 2  # the broken reply is not history
    second = server.requests[1].json
    assert second["system"] == "Be kind."
    assert second["messages"] == [*chat.history, {"role": "user", "content": "And?"}]


async def test_conversation_reply_closed_early_is_not_history(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    async with make_client("ollama") as client:
        chat = llm.Conversation(client)
        stream = chat.astream_reply("Hello")
        assert await anext(stream) == "Hello"
        await stream.aclose()
        assert chat.history == []


async def test_conversation_one_reply_at_a_time(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    gate = Gate()
    server.push(Reply(tokens=["a", "b"], gate=gate))
    gate.release(1)
    async with make_client("ollama") as client:
        chat = llm.Conversation(client)
        first = chat.astream_reply("one")
        assert await anext(first) == "a"
        with pytest.raises(RuntimeError, match="already streaming"):
            await anext(chat.astream_reply("two"))
        await first.aclose()


def test_send_message_stream_sync_twin(server: FakeLLMServer, make_client: MakeClient) -> None:
    with make_client("gemini") as client:
        chat = llm.Conversation(client)
        chunks = list(chat.send_message_stream("Hello"))
    assert "".join(c.text for c in chunks) == "Hello, world."
    assert chunks[-1] == llm.StreamChunk("", True, finish_reason="stop")
    assert chat.history[-1] == {"role": "assistant", "content": "Hello, world."}
