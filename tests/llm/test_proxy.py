"""The environment's HTTP proxy: used for the LLM server's URL unless ``NO_PROXY`` names it.

The proxy here is a real one, started by the test on 127.0.0.1: it reads the
request line (absolute-form, RFC 9112 section 3.2.2, as a client speaks to a
forward proxy), records it, and relays the request to the server in origin-form.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import pytest

from tests.fakes.llm_server import FakeLLMServer, Reply
from tests.fakes.tcp import tcp_server
from tests.llm.conftest import MakeClient

_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


@asynccontextmanager
async def forward_proxy(seen: list[str]) -> AsyncIterator[str]:
    """A plain-HTTP forward proxy on 127.0.0.1; yields its URL."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        finally:
            writer.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        line, _, rest = head.decode("latin-1").partition("\r\n")
        seen.append(line)
        method, target, version = line.split(" ")
        parts = urlsplit(target)
        origin = parts.path + (f"?{parts.query}" if parts.query else "")
        up_reader, up_writer = await asyncio.open_connection(parts.hostname, parts.port)
        up_writer.write(f"{method} {origin} {version}\r\n{rest}".encode("latin-1"))
        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer),
                             return_exceptions=True)

    async with tcp_server(handle) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def _no_proxy_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


async def _answer_via_env(
    server: FakeLLMServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str], tokens: list[str],
) -> tuple[str, list[str]]:
    """The answer to one request with ``env`` set (``{proxy}`` stands for the
    running proxy's host:port), and the request lines the proxy saw."""
    server.push(Reply(tokens=tokens))
    seen: list[str] = []
    async with forward_proxy(seen) as proxy_url:
        for name, value in env.items():
            monkeypatch.setenv(name, value.format(proxy=proxy_url.removeprefix("http://"),
                                                  server=server.url.removeprefix("http://")))
        async with make_client("ollama") as client:
            text = "".join([d async for d in client.astream_generate("hi")])
    assert len(server.requests) == 1
    return text, seen


async def test_the_llm_request_goes_through_the_environments_http_proxy(
    server: FakeLLMServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, seen = await _answer_via_env(server, make_client, monkeypatch,
                                       {"HTTP_PROXY": "http://{proxy}"}, ["through ", "the proxy"])
    assert text == "through the proxy"
    assert seen == [f"POST {server.url}/api/generate HTTP/1.1"]


@pytest.mark.parametrize("no_proxy", ["localhost,127.0.0.1", "{server}"])  # host; host:port
async def test_no_proxy_naming_the_host_goes_direct(
    server: FakeLLMServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
) -> None:
    text, seen = await _answer_via_env(server, make_client, monkeypatch,
                                       {"HTTP_PROXY": "http://{proxy}", "NO_PROXY": no_proxy},
                                       ["direct"])
    assert text == "direct" and seen == []


async def test_a_proxy_without_a_scheme_is_read_as_http(
    server: FakeLLMServer, make_client: MakeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    text, seen = await _answer_via_env(server, make_client, monkeypatch,
                                       {"http_proxy": "{proxy}"}, ["proxied"])
    assert text == "proxied" and len(seen) == 1
