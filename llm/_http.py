"""Shared HTTP plumbing of the providers: one pooled ``httpx.AsyncClient``,
error translation at the edge, NDJSON lines and SSE events.

httpx errors are translated here and only here (``raise ... from exc``):

=================================  =============================================
httpx                              llm
=================================  =============================================
``ConnectTimeout``, ``PoolTimeout``  ``LLMTimeoutError(phase="connect")``, retryable
``ConnectError``, other transport    ``LLMConnectionError``, retryable
error before the response head
401 / 403                          ``LLMAuthError``
404                                ``ModelNotFoundError``
429                                ``LLMRateLimitError``, retryable
503, 529 (Anthropic "overloaded")  ``LLMResponseError``, retryable
other status >= 400                ``LLMResponseError``
``ReadError``, ``RemoteProtocolError``  ``LLMStreamError``, retryable (the base
(connection dropped mid-body)      retries only if no text was yielded yet)
=================================  =============================================
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from ._base import LLMClient
from ._errors import (
    LLMAuthError,
    LLMConnectionError,
    LLMError,
    LLMRateLimitError,
    LLMResponseError,
    LLMStreamError,
    LLMTimeoutError,
    ModelNotFoundError,
)
from ._options import ClientOptions
from ._sse import LineSplitter, SSEDecoder, SSEEvent

_RETRYABLE_STATUS = frozenset({429, 503, 529})
_MAX_ERROR_BODY = 4096


def error_message(body: str) -> str:
    """The human message inside an error body of any of the four APIs.

    Ollama ``{"error": "..."}``; OpenAI/Gemini ``{"error": {"message": ...}}``;
    Anthropic ``{"type": "error", "error": {"type": ..., "message": ...}}``.
    Falls back to the raw body (truncated) when it is not JSON.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return body.strip()[:500]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, str):
            return err
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            kind = err.get("type") or err.get("status")
            return f"{kind}: {err['message']}" if kind else err["message"]
    return body.strip()[:500]


def error_for_status(provider: str, status: int, body: str) -> LLMError:
    """Map an HTTP error status (and its body) to the matching :class:`LLMError`."""
    message = f"{provider}: HTTP {status}: {error_message(body)}"
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status_code": status,
        "retryable": status in _RETRYABLE_STATUS,
    }
    if status in (401, 403):
        return LLMAuthError(message, **kwargs)
    if status == 404:
        return ModelNotFoundError(message, **kwargs)
    if status == 429:
        return LLMRateLimitError(message, **kwargs)
    return LLMResponseError(message, **kwargs)


def parse_json(provider: str, text: str) -> Any:
    """``json.loads`` for one stream record; bad JSON is an :class:`LLMStreamError`."""
    try:
        return json.loads(text)
    except ValueError as exc:
        raise LLMStreamError(
            f"{provider}: invalid JSON in stream: {text[:200]!r}", provider=provider
        ) from exc


class HTTPClient(LLMClient):
    """Base of the HTTP providers: pooled client per event loop, request, decoding.

    Attributes:
        base_url: the server's base URL, without a trailing slash.
    """

    def __init__(
        self,
        *,
        model: str,
        base_url: str,
        api_key: str | None,
        options: ClientOptions,
    ) -> None:
        super().__init__(model=model, options=options)
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        # httpx connections belong to the event loop that opened them; the sync
        # twins run in their own short-lived loop, so keep one client per loop.
        self._clients: dict[asyncio.AbstractEventLoop, httpx.AsyncClient] = {}

    def _headers(self) -> dict[str, str]:
        """Provider headers (auth, versions); overridden by providers."""
        return {}

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        client = self._clients.get(loop)
        if client is None:
            connect = self.options.connect_timeout
            client = httpx.AsyncClient(
                # Reads are timed by the base (first token / idle), not by httpx.
                timeout=httpx.Timeout(None, connect=connect, pool=connect),
                headers=self._headers(),
            )
            self._clients[loop] = client
        return client

    async def _arelease_loop_resources(self) -> None:
        loop = asyncio.get_running_loop()
        client = self._clients.pop(loop, None)
        if client is not None:
            await client.aclose()

    @asynccontextmanager
    async def _post_stream(
        self, path: str, body: dict[str, Any], *, params: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """POST ``body`` as JSON and yield the streaming response (status < 400).

        The response is closed on exit, also when the caller stops early: httpx
        then drops the connection, which the server sees as a disconnect.
        """
        client = self._client()
        request = client.build_request("POST", self.base_url + path, json=body, params=params)
        try:
            response = await client.send(request, stream=True)
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise LLMTimeoutError(
                f"{self.provider}: connect timeout to {self.base_url}",
                phase="connect",
                provider=self.provider,
                retryable=True,
            ) from exc
        except httpx.UnsupportedProtocol as exc:  # a setting, not a network fault: no retry
            raise LLMConnectionError(
                f"{self.provider}: base_url {self.base_url!r} must start with http:// or https://",
                provider=self.provider,
                retryable=False,
            ) from exc
        except httpx.TransportError as exc:
            raise LLMConnectionError(
                f"{self.provider}: cannot reach {self.base_url}: {exc!r}",
                provider=self.provider,
                retryable=True,
            ) from exc
        try:
            if response.status_code >= 400:
                raw = b""
                try:
                    async for piece in response.aiter_bytes():
                        raw += piece
                        if len(raw) >= _MAX_ERROR_BODY:
                            break
                except httpx.HTTPError as exc:  # transport or content-decoding failure
                    raise error_for_status(
                        self.provider, response.status_code, raw.decode("utf-8", "replace")
                    ) from exc
                raise error_for_status(
                    self.provider, response.status_code, raw.decode("utf-8", "replace")
                )
            yield response
        finally:
            await response.aclose()

    async def _lines(self, response: httpx.Response) -> AsyncGenerator[str, None]:
        """Decoded lines of the body (UTF-8 split across chunks is handled by httpx)."""
        splitter = LineSplitter()
        try:
            async for text in response.aiter_text():
                for line in splitter.feed(text):
                    yield line
            for line in splitter.flush():
                yield line
        except httpx.HTTPError as exc:  # transport, or a body that fails to decode
            raise LLMStreamError(
                f"{self.provider}: connection lost or body undecodable mid-stream: {exc!r}",
                provider=self.provider,
                retryable=True,
            ) from exc

    async def _events(self, response: httpx.Response) -> AsyncGenerator[SSEEvent, None]:
        """SSE events of the body, keep-alive comments skipped."""
        decoder = SSEDecoder()
        async for line in self._lines(response):
            event = decoder.decode(line)
            if event is not None:
                yield event

    def _truncated(self, what: str) -> LLMStreamError:
        return LLMStreamError(
            f"{self.provider}: stream ended before {what}", provider=self.provider, retryable=True
        )


def split_system(
    system: str | None, messages: tuple[dict[str, str], ...]
) -> tuple[str | None, list[dict[str, str]]]:
    """Merge ``system`` and any ``role="system"`` messages into one system prompt.

    For APIs that take the system prompt outside the message list (Anthropic
    ``system``, Gemini ``systemInstruction``). Returns ``(system, other_messages)``.
    """
    parts = [system] if system else []
    parts += [m["content"] for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    return ("\n\n".join(parts) or None), turns
