"""Shared HTTP plumbing of the providers: one pooled ``httpx.AsyncClient``,
error translation at the edge, NDJSON lines and SSE events fed to a parser.

httpx errors are translated here and only here (``raise ... from exc``):

=================================  =============================================
httpx                              llm
=================================  =============================================
``ConnectTimeout``, ``PoolTimeout``  ``LLMTimeoutError(phase="connect")``, retryable
``ConnectError``, other transport    ``LLMConnectionError``, retryable
error before the response head
401 / 403                          ``LLMAuthError``
404 whose body names a model       ``ModelNotFoundError``
other 404                          ``LLMResponseError`` naming the URL, with a
                                   base URL hint when the path looks wrong
429                                ``LLMRateLimitError``, retryable
503, 529 (Anthropic "overloaded")  ``LLMResponseError``, retryable
other status >= 400                ``LLMResponseError``
200 with an HTML page              ``LLMResponseError`` (not an API: base URL?)
``ReadError``, ``RemoteProtocolError``  ``LLMStreamError``, retryable (the base
(connection dropped mid-body)      retries only if no text was yielded yet)
=================================  =============================================

``Retry-After`` (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date) and
``retry-after-ms`` (OpenAI, Azure) on a retryable status become the error's
``retry_after``; the base class waits that long before retrying (capped).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import re
import time
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import aclosing, asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

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
from ._records import Piece, RecordParser
from ._sse import LineSplitter, SSEDecoder, SSEEvent
from ._types import Thinking

_RETRYABLE_STATUS = frozenset({429, 503, 529})
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_MAX_ERROR_BODY = 4096


def error_message(body: str) -> str:
    """The human message inside an error body of any of the four APIs.

    Ollama ``{"error": "..."}``; OpenAI/Gemini ``{"error": {"message": ...}}``;
    Anthropic ``{"type": "error", "error": {"type": ..., "message": ...}}``;
    FastAPI-based servers ``{"detail": "..."}``.
    Falls back to the raw body (truncated) when it is not JSON, or to the
    title of an HTML page.
    """
    try:
        data = json.loads(body)
    except ValueError:
        if body.lstrip().startswith("<"):
            title = _TITLE.search(body)
            return f"an HTML page ({' '.join(title.group(1).split())[:200]})" if title else (
                "an HTML page"
            )
        return body.strip()[:500]
    if isinstance(data, dict):
        err = data.get("error", data)
        if isinstance(err, str):
            return err
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            kind = err.get("type") or err.get("status")
            return f"{kind}: {err['message']}" if kind else err["message"]
        if isinstance(err, dict) and isinstance(err.get("detail"), str):
            return err["detail"]  # FastAPI servers (llama-cpp-python, vLLM): {"detail": ...}
    return body.strip()[:500]


def error_for_status(
    provider: str, status: int, body: str, *, retry_after: float | None = None
) -> LLMError:
    """Map an HTTP error status (and its body) to the matching :class:`LLMError`."""
    message = f"{provider}: HTTP {status}: {error_message(body)}"
    retryable = status in _RETRYABLE_STATUS
    kwargs: dict[str, Any] = {
        "provider": provider,
        "status_code": status,
        "retryable": retryable,
        "retry_after": retry_after if retryable else None,
    }
    if status in (401, 403):
        return LLMAuthError(message, **kwargs)
    if status == 404:
        return ModelNotFoundError(message, **kwargs)
    if status == 429:
        return LLMRateLimitError(message, **kwargs)
    return LLMResponseError(message, **kwargs)


def retry_after_seconds(headers: httpx.Headers, now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After``, else ``None``.

    ``Retry-After`` is delay-seconds (``"120"``) or an HTTP-date (RFC 9110
    section 10.2.3); a date in the past gives 0. ``now`` is a Unix time (tests).
    """
    ms = headers.get("retry-after-ms", "").strip()
    if re.fullmatch(r"\d+(\.\d+)?", ms):
        return float(ms) / 1000
    value = headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if not value:
        return None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # not an HTTP-date (those are always GMT)
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def names_a_model(body: str, model: str, path: str) -> bool:
    """Whether a 404 body speaks of a model (unknown model) rather than of ``path``.

    The requested path is cut out first: "The requested URL /models/x was not
    found" is about the path (Gemini's ``/models/...`` would name a model).
    """
    lowered = body.replace(path, " ").lower()
    return "model" in lowered or (bool(model) and model.lower() in lowered)


def with_path(base_url: str, path: str) -> str:
    """``base_url`` with its path replaced by ``path`` (no query, no fragment)."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


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
        # httpx connections belong to the event loop that opened them: one pooled
        # client, bound to the loop of the latest stream (the caller's loop for the
        # async API, the client's own loop thread for the sync twins).
        self._http: httpx.AsyncClient | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def _headers(self) -> dict[str, str]:
        """Provider headers (auth, versions); overridden by providers."""
        return {}

    def _base_url_hint(self) -> str | None:
        """A guess at the right base URL after a 404 at a wrong path; per provider."""
        return None

    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._http is not None and self._http_loop is loop:
            return self._http
        self._drop_http()
        connect = self.options.connect_timeout
        self._http = httpx.AsyncClient(
            # Reads are timed by the base (first token / idle), not by httpx.
            timeout=httpx.Timeout(None, connect=connect, pool=connect),
            headers=self._headers(),
            # A stream holds its connection for the whole answer: httpx's default
            # cap of 100 made the 101st concurrent answer of a daemon wait for a
            # free connection and fail after connect_timeout (measured: half of
            # 500 concurrent /v1/speak clients). Callers bound their own
            # concurrency; the server bounds its own.
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=20),
        )
        self._http_loop = loop
        return self._http

    def _drop_http(self) -> None:
        """Forget a pooled client bound to another loop, closing it there if it still runs.

        A loop that has closed cannot close its connections any more; they
        are dropped (close the client before its loop ends: ``async with``).
        """
        client, loop = self._http, self._http_loop
        self._http = self._http_loop = None
        if client is not None and loop is not None and loop.is_running():
            asyncio.run_coroutine_threadsafe(client.aclose(), loop)

    async def _arelease_loop_resources(self) -> None:
        if self._http is not None and self._http_loop is asyncio.get_running_loop():
            client, self._http, self._http_loop = self._http, None, None
            await client.aclose()
        else:
            self._drop_http()

    def _status_error(self, url: str, status: int, body: str, headers: httpx.Headers) -> LLMError:
        """The error for an HTTP status >= 400 at ``url`` (a 404 at a wrong path gets a hint)."""
        if status == 404 and not names_a_model(body, self.model, urlsplit(url).path):
            hint = self._base_url_hint() or "no such endpoint: check the base URL"
            return LLMResponseError(
                f"{self.provider}: HTTP 404 at {url}: {error_message(body) or 'Not Found'}; {hint}",
                provider=self.provider,
                status_code=status,
            )
        return error_for_status(
            self.provider, status, body, retry_after=retry_after_seconds(headers)
        )

    @asynccontextmanager
    async def _post_stream(
        self, path: str, body: dict[str, Any], *, params: dict[str, str] | None = None
    ) -> AsyncIterator[httpx.Response]:
        """POST ``body`` as JSON and yield the streaming response (status < 400).

        The response is closed on exit, also when the caller stops early: httpx
        then drops the connection, which the server sees as a disconnect.
        """
        client = self._client()
        url = self.base_url + path
        request = client.build_request("POST", url, json=body, params=params)
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
                    raise self._status_error(
                        url, response.status_code, raw.decode("utf-8", "replace"),
                        response.headers,
                    ) from exc
                raise self._status_error(
                    url, response.status_code, raw.decode("utf-8", "replace"), response.headers
                )
            if response.headers.get("content-type", "").startswith("text/html"):
                hint = self._base_url_hint() or "check the base URL"
                raise LLMResponseError(
                    f"{self.provider}: {url} answered with a web page (text/html), not an "
                    f"API stream; {hint}",
                    provider=self.provider,
                    status_code=response.status_code,
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

    async def _parse(
        self,
        pieces: AsyncGenerator[Piece, None],
        parser: RecordParser[Piece],
    ) -> AsyncGenerator[str | Thinking, None]:
        """Feed ``pieces`` (lines or SSE events) to ``parser``; yield its items.

        Returns at the parser's end marker, or when the body ends and the
        parser says the stream is complete; a body that ends before is an
        :class:`LLMStreamError` (retryable: nothing was said yet, or the base
        does not retry).
        """
        async with aclosing(pieces):
            async for piece in pieces:
                for item in parser.feed(piece):
                    yield item
                if parser.ended:
                    return
        if not parser.complete:
            raise LLMStreamError(
                f"{self.provider}: stream ended before {parser.end_marker}",
                provider=self.provider,
                retryable=True,
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
