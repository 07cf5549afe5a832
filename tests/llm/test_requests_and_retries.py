"""What goes on the wire, retries before the first token, stats, options, errors."""

from __future__ import annotations

import socket

import pytest

import llm
from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.fakes.tcp import tcp_server
from tests.llm.conftest import USER, MakeClient

HISTORY = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "Tell me more."},
]


async def _drain(client: llm.LLMClient, **kwargs: object) -> str:
    return "".join([d async for d in client.astream_chat(HISTORY, **kwargs)])  # type: ignore[arg-type]


async def test_ollama_chat_request(server: FakeLLMServer, make_client: MakeClient) -> None:
    async with make_client("ollama") as client:
        await _drain(client, system="Be brief.", temperature=0.2, max_tokens=50)
    rec = server.requests[0]
    assert rec.path == "/api/chat"
    assert rec.json == {
        "model": "fake-model",
        "stream": True,
        "options": {"temperature": 0.2, "num_predict": 50},
        "messages": [{"role": "system", "content": "Be brief."}, *HISTORY],
    }


async def test_ollama_generate_uses_api_generate(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    async with make_client("ollama") as client:
        text = "".join([d async for d in client.astream_generate("Why?", system="S")])
    assert text == "Hello, world."
    rec = server.requests[0]
    assert rec.path == "/api/generate"
    assert rec.json == {"model": "fake-model", "stream": True, "prompt": "Why?", "system": "S"}


async def test_openai_request(server: FakeLLMServer, make_client: MakeClient) -> None:
    async with llm.create_client(
        "openai", model="gpt-x", base_url=server.url + "/v1", api_key="sk-1"
    ) as client:
        await _drain(client, system="Be brief.", max_tokens=7)
    rec = server.requests[0]
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == "Bearer sk-1"
    assert rec.json["stream"] is True
    assert rec.json["stream_options"] == {"include_usage": True}
    assert rec.json["max_tokens"] == 7
    assert rec.json["messages"] == [{"role": "system", "content": "Be brief."}, *HISTORY]


async def test_anthropic_request(server: FakeLLMServer, make_client: MakeClient) -> None:
    async with make_client("anthropic") as client:
        await _drain(client, system="Be brief.")
    rec = server.requests[0]
    assert rec.path == "/v1/messages"
    assert rec.headers["x-api-key"] == "sk-ant-test"
    assert rec.headers["anthropic-version"] == "2023-06-01"
    assert rec.json == {
        "model": "fake-model",
        "messages": HISTORY,
        "max_tokens": 1024,
        "stream": True,
        "system": "Be brief.",
    }


async def test_gemini_request(server: FakeLLMServer, make_client: MakeClient) -> None:
    async with make_client("gemini") as client:
        await _drain(client, system="Be brief.", temperature=0.5, max_tokens=9)
    rec = server.requests[0]
    assert rec.path == "/v1beta/models/fake-model:streamGenerateContent"
    assert rec.query == {"alt": ["sse"]}
    assert rec.headers["x-goog-api-key"] == "g-test"
    assert rec.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Hi"}]},
            {"role": "model", "parts": [{"text": "Hello!"}]},
            {"role": "user", "parts": [{"text": "Tell me more."}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"temperature": 0.5, "maxOutputTokens": 9},
    }


async def test_ollama_tokens_per_second_from_eval_counts(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=["a", "b", "c", "d"], eval_duration_ns=20_000_000))
    async with make_client("ollama") as client:
        await _drain(client)
    stats = client.last_stats
    assert stats is not None
    assert stats.output_tokens == 4
    assert stats.tokens_per_s == pytest.approx(50.0)  # 4 tokens / 0.08 s eval_duration


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini"])
async def test_output_tokens_from_server_usage(
    provider: str, server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(tokens=["x"] * 7))
    async with make_client(provider) as client:
        await _drain(client)
    assert client.last_stats is not None and client.last_stats.output_tokens == 7


async def test_retries_503_and_429_before_first_token(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(status=503), Reply(status=429), Reply(tokens=["ok"]))
    async with make_client("openai", max_retries=2) as client:
        assert await _drain(client) == "ok"
    assert len(server.requests) == 3
    assert client.last_stats is not None and client.last_stats.attempts == 3


async def test_gives_up_after_max_retries(server: FakeLLMServer, make_client: MakeClient) -> None:
    server.push(Reply(status=503))
    async with make_client("anthropic", max_retries=1) as client:
        with pytest.raises(llm.LLMResponseError) as info:
            await _drain(client)
    assert info.value.status_code == 503 and info.value.retryable
    assert len(server.requests) == 2


async def test_drop_before_any_text_is_retried(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(drop_after=0), Reply(tokens=["fine"]))
    async with make_client("ollama", max_retries=1) as client:
        assert await _drain(client) == "fine"
    assert len(server.requests) == 2


async def test_overloaded_error_event_before_text_is_retried(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(error_after=0), Reply(tokens=["fine"]))
    async with make_client("anthropic", max_retries=1) as client:
        assert await _drain(client) == "fine"
    assert len(server.requests) == 2


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_connection_refused_is_retried_then_raised() -> None:
    url = f"http://127.0.0.1:{_closed_port()}"
    async with llm.create_client(
        "ollama", model="m", base_url=url, max_retries=2, retry_backoff=0
    ) as client:
        with pytest.raises(llm.LLMConnectionError) as info:
            await _drain(client)
    assert info.value.retryable and info.value.provider == "ollama"
    assert client.last_stats is not None and client.last_stats.attempts == 3


async def test_closed_client_refuses_new_streams(make_client: MakeClient) -> None:
    client = make_client("ollama")
    await client.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await _drain(client)


# -- create_client ------------------------------------------------------------------


def test_unknown_provider_and_option_are_named() -> None:
    with pytest.raises(ValueError, match="provider='mistral'"):
        llm.create_client("mistral")
    with pytest.raises(ValueError, match="read_timeout"):
        llm.create_client("ollama", read_timeout=3)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("idle_timeout", -1),
        ("first_token_timeout", 0),
        ("connect_timeout", float("nan")),
        ("max_retries", 11),
        ("max_retries", 1.5),
        ("retry_backoff", -0.1),
    ],
)
def test_bad_option_values(option: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"{option}="):
        llm.create_client("ollama", **{option: value})


def test_none_disables_timeouts() -> None:
    client = llm.create_client("ollama", idle_timeout=None, first_token_timeout=None)
    assert client.options.idle_timeout is None


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"temperature": 3}, "temperature=3"), ({"max_tokens": 0}, "max_tokens=0")],
)
def test_bad_sampling_arguments(kwargs: dict[str, object], match: str) -> None:
    client = llm.create_client("ollama")
    with pytest.raises(ValueError, match=match):
        client.astream_chat(USER, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="messages"):
        client.astream_chat([{"role": "robot", "content": "x"}])


def test_environment_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_HOST", "0.0.0.0")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1/")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "a-key")
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "g-key")
    assert llm.create_client("ollama").base_url == "http://0.0.0.0:11434"  # type: ignore[attr-defined]
    assert llm.create_client("openai").base_url == "http://127.0.0.1:8080/v1"  # type: ignore[attr-defined]
    assert llm.create_client("anthropic")._headers()["x-api-key"] == "a-key"  # type: ignore[attr-defined]
    assert llm.create_client("gemini")._headers()["x-goog-api-key"] == "g-key"  # type: ignore[attr-defined]
    assert llm.create_client("ollama", base_url="http://h:1").base_url == "http://h:1"  # type: ignore[attr-defined]


def test_missing_api_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(llm.LLMAuthError, match="ANTHROPIC_API_KEY"):
        llm.create_client("anthropic")
    with pytest.raises(llm.LLMAuthError, match="GEMINI_API_KEY"):
        llm.create_client("gemini")


def test_help_documents_providers_env_timeouts_errors() -> None:
    doc = llm.create_client.__doc__ or ""
    for needle in [
        "ollama", "openai", "anthropic", "gemini", "local",
        "OLLAMA_HOST", "OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_API_KEY",
        "GEMINI_API_KEY", "GOOGLE_API_KEY",
        "connect_timeout", "first_token_timeout", "idle_timeout", "max_retries", "retry_backoff",
        "LLMStreamError", "partial_text", "ModelNotFoundError", "LLMTimeoutError",
    ]:  # fmt: skip
        assert needle in doc, needle


async def test_base_url_without_http_scheme_fails_at_once_without_retries() -> None:
    async with llm.create_client(
        "ollama", model="m", base_url="ftp://127.0.0.1:1", max_retries=2, retry_backoff=0
    ) as client:
        with pytest.raises(llm.LLMConnectionError, match="http:// or https://") as info:
            await _drain(client)
    assert not info.value.retryable
    assert client.last_stats is not None and client.last_stats.attempts == 1


async def test_an_api_key_ending_in_a_newline_is_one_clear_error_without_retries(
    server: FakeLLMServer,
) -> None:
    """aiohttp refuses a header with CR/LF (a ValueError): translated at the edge."""
    async with llm.create_client(
        "openai", model="m", base_url=server.url, api_key="sk-test\n", max_retries=2,
        retry_backoff=0,
    ) as client:
        with pytest.raises(llm.LLMConnectionError, match="API key") as info:
            await _drain(client)
    assert not info.value.retryable
    assert server.requests == []


async def test_undecodable_body_is_an_llm_stream_error_not_a_raw_client_error() -> None:
    """A body that claims gzip but is not: the client's decoding error is translated at the edge."""
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        body = b"this is not gzip at all"
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n"
            b"Content-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        await writer.drain()

    async with tcp_server(handle) as port:
        async with llm.create_client(
            "ollama", model="m", base_url=f"http://127.0.0.1:{port}", max_retries=0
        ) as client:
            with pytest.raises(llm.LLMStreamError) as info:
                await _drain(client)
    assert info.value.provider == "ollama" and info.value.partial_text == ""


# -- Retry-After ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({}, None),
        ({"Retry-After": "120"}, 120.0),
        ({"Retry-After": " 0 "}, 0.0),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "1500", "Retry-After": "9"}, 1.5),  # the finer one wins
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),  # an HTTP-date, 30 s ahead
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),  # in the past
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "-5"}, None),
    ],
)
def test_retry_after_header_values(headers: dict[str, str], expected: float | None) -> None:
    import httpx  # a case-insensitive mapping of headers, as a response's are

    from llm._http import retry_after_seconds

    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_seconds(httpx.Headers(headers), now=now) == expected


def test_retry_delay_takes_the_longer_of_backoff_and_retry_after() -> None:
    from llm._base import RETRY_AFTER_CAP_S, _retry_delay

    assert _retry_delay(llm.LLMRateLimitError("x"), 0.5, 3) == 2.0  # 0.5 * 2**2
    assert _retry_delay(llm.LLMRateLimitError("x", retry_after=5), 0.5, 1) == 5.0
    assert _retry_delay(llm.LLMRateLimitError("x", retry_after=0), 0.5, 1) == 0.5
    too_long = llm.LLMRateLimitError("slow down", retry_after=RETRY_AFTER_CAP_S + 1)
    assert _retry_delay(too_long, 0.5, 1) is None
    assert "retry after 31 s" in str(too_long) and str(too_long).startswith("slow down")


async def test_server_retry_after_is_waited_before_retrying(
    server: FakeLLMServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    real_sleep = asyncio.sleep
    waits: list[float] = []

    async def recording_sleep(delay: float, *args: object) -> None:
        waits.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recording_sleep)
    server.push(Reply(status=429, headers={"Retry-After": "2"}), Reply(tokens=["ok"]))
    async with make_client("openai", max_retries=1, retry_backoff=0) as client:
        assert await _drain(client) == "ok"
    assert 2.0 in waits
    assert len(server.requests) == 2


async def test_retry_after_beyond_the_cap_fails_at_once(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(status=503, headers={"Retry-After": "3600"}))
    async with make_client("anthropic", max_retries=3) as client:
        with pytest.raises(llm.LLMResponseError, match="retry after 3600 s") as info:
            await _drain(client)
    assert info.value.retry_after == 3600 and info.value.status_code == 503
    assert len(server.requests) == 1


async def test_retry_after_is_ignored_on_a_non_retryable_status(
    server: FakeLLMServer, make_client: MakeClient
) -> None:
    server.push(Reply(status=400, headers={"Retry-After": "1"}))
    async with make_client("ollama", max_retries=3) as client:
        with pytest.raises(llm.LLMResponseError) as info:
            await _drain(client)
    assert info.value.retry_after is None and len(server.requests) == 1
