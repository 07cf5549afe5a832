"""Shared HTTP plumbing of the providers: one pooled ``aiohttp.ClientSession``,
error translation at the edge, NDJSON lines and SSE events fed to a parser.

Why aiohttp and not httpx for the streams: an answer arrives as one small
network chunk per token, and the cost of a chunk is what a daemon relaying
hundreds of answers pays. Measured on 100 concurrent NDJSON streams of 75
tokens (uvloop, 2 cores): httpx's read path (``aiter_text`` over httpcore's
generators and an anyio cancel scope per read) costs 115-146 us of CPU per
chunk, aiohttp's (``StreamReader.iter_any``: what its C parser has buffered,
one await) 38-39 us, our line split and JSON parse included. aiohttp is a
dependency already (edge-tts's transport).

aiohttp errors are translated here and only here (``raise ... from exc``):

=================================  =============================================
aiohttp                            llm
=================================  =============================================
``ConnectionTimeoutError`` (the    ``LLMTimeoutError(phase="connect")``, retryable
connect or pool wait)
``NonHttpUrlClientError`` (not     ``LLMConnectionError``, not retryable
http/https), ``InvalidURL``
``ClientConnectorError``, any      ``LLMConnectionError``, retryable
other ``ClientError`` before the
response head
``ValueError`` (a header value     ``LLMConnectionError``, not retryable
aiohttp refuses: CR/LF in a key)
401 / 403                          ``LLMAuthError``
404 whose body names a model       ``ModelNotFoundError``
other 404                          ``LLMResponseError`` naming the URL, with a
                                   base URL hint when the path looks wrong
429                                ``LLMRateLimitError``, retryable
503, 529 (Anthropic "overloaded")  ``LLMResponseError``, retryable
other status >= 400                ``LLMResponseError``
200 with an HTML page              ``LLMResponseError`` (not an API: base URL?)
any ``ClientError`` mid-body        ``LLMStreamError``, retryable (the base
(connection dropped, bad gzip)     retries only if no text was yielded yet);
                                   bad chunk framing mid-body is not reported
                                   by aiohttp 3.14's parser: the idle timeout
                                   ends such a stream
=================================  =============================================

``Retry-After`` (RFC 9110 section 10.2.3: delay-seconds or an HTTP-date) and
``retry-after-ms`` (OpenAI, Azure) on a retryable status become the error's
``retry_after``; the base class waits that long before retrying (capped).
"""

from __future__ import annotations

import asyncio
import codecs
import email.utils
import functools
import json
import os
import re
import ssl
import time
import urllib.request
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import certifi

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
from ._records import RecordParser
from ._sse import LineSplitter, SSEDecoder
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


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After``, else ``None``.

    ``headers`` is a case-insensitive mapping (a response's headers).
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


def env_proxy(url: str) -> str | None:
    """The HTTP proxy the environment names for ``url``, or ``None``.

    ``http_proxy`` / ``https_proxy`` / ``all_proxy`` (either case) by the URL's
    scheme, unless ``no_proxy`` names its host (:func:`urllib.request.getproxies`
    and :func:`urllib.request.proxy_bypass`, the rules httpx and requests
    follow too). Only ``http://`` and ``https://`` proxies are used. Read once
    per session: aiohttp's own ``trust_env`` reads the environment again, in a
    worker thread, for every request.
    """
    parts = urlsplit(url)
    if not parts.hostname:
        return None
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    if urllib.request.proxy_bypass(host):  # NO_PROXY entries with or without a port
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and "://" not in proxy:
        proxy = "http://" + proxy  # "proxy:3128", as httpx and requests read it
    return proxy if proxy and proxy.startswith(("http://", "https://")) else None


def _tls(url: str) -> ssl.SSLContext | bool:
    """The TLS context for an ``https://`` server: certifi's CA bundle (what httpx
    trusted), unless ``SSL_CERT_FILE``/``SSL_CERT_DIR`` name the system's own."""
    if not url.startswith("https://"):
        return True  # aiohttp's default (no TLS is set up for plain http)
    return _certifi_context()


@functools.cache
def _certifi_context() -> ssl.SSLContext:
    if os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


def with_path(base_url: str, path: str) -> str:
    """``base_url`` with its path replaced by ``path`` (no query, no fragment)."""
    parts = urlsplit(base_url)
    return urlunsplit((parts.scheme, parts.netloc, path.rstrip("/"), "", ""))


class HTTPClient(LLMClient):
    """Base of the HTTP providers: pooled session per event loop, request, decoding.

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
        # Connections belong to the event loop that opened them: one pooled
        # session, bound to the loop of the latest stream (the caller's loop for the
        # async API, the client's own loop thread for the sync twins).
        self._http: aiohttp.ClientSession | None = None
        self._http_loop: asyncio.AbstractEventLoop | None = None

    def _headers(self) -> dict[str, str]:
        """Provider headers (auth, versions); overridden by providers."""
        return {}

    def _base_url_hint(self) -> str | None:
        """A guess at the right base URL after a 404 at a wrong path; per provider."""
        return None

    def _client(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        if self._http is not None and self._http_loop is loop:
            return self._http
        self._drop_http()
        connect = self.options.connect_timeout
        self._http = aiohttp.ClientSession(
            # Reads are timed by the base (first token / idle), not by aiohttp;
            # ``connect`` also bounds the wait for a pooled connection.
            timeout=aiohttp.ClientTimeout(total=None, connect=connect),
            headers=self._headers(),
            # A stream holds its connection for the whole answer: a cap (httpx's
            # and aiohttp's default is 100) made the 101st concurrent answer of a
            # daemon wait for a free connection and fail after connect_timeout
            # (measured: half of 500 concurrent /v1/speak clients). Callers bound
            # their own concurrency; the server bounds its own.
            connector=aiohttp.TCPConnector(limit=0, ssl=_tls(self.base_url)),
            proxy=env_proxy(self.base_url),
        )
        self._http_loop = loop
        return self._http

    def _drop_http(self) -> None:
        """Forget a pooled session bound to another loop, closing it there if it still runs.

        A loop that has closed cannot close its connections any more; they
        are dropped, and the session is marked closed so that it does not
        warn when collected (close the client before its loop ends:
        ``async with``).
        """
        client, loop = self._http, self._http_loop
        self._http = self._http_loop = None
        if client is None or loop is None:
            return
        if loop.is_running():
            asyncio.run_coroutine_threadsafe(client.close(), loop)
        else:
            client.detach()

    async def _arelease_loop_resources(self) -> None:
        if self._http is not None and self._http_loop is asyncio.get_running_loop():
            client, self._http, self._http_loop = self._http, None, None
            await client.close()
        else:
            self._drop_http()

    def _status_error(
        self, url: str, status: int, body: str, headers: Mapping[str, str]
    ) -> LLMError:
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
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST ``body`` as JSON and yield the streaming response (status < 400).

        The response is closed on exit; when the caller stops early its
        connection is dropped, which the server sees as a disconnect.
        """
        client = self._client()
        url = self.base_url + path
        try:
            response = await client.post(url, json=body, params=params, allow_redirects=False)
        except aiohttp.ConnectionTimeoutError as exc:
            raise LLMTimeoutError(
                f"{self.provider}: connect timeout to {self.base_url}",
                phase="connect",
                provider=self.provider,
                retryable=True,
            ) from exc
        except (aiohttp.NonHttpUrlClientError, aiohttp.InvalidURL) as exc:  # a setting: no retry
            proxy = env_proxy(self.base_url)
            if isinstance(exc, aiohttp.NonHttpUrlClientError):
                problem = f"base_url {self.base_url!r} must start with http:// or https://"
            elif proxy is not None:
                problem = f"base_url {self.base_url!r} or the proxy {proxy!r} is not a valid URL"
            else:
                problem = f"base_url {self.base_url!r} is not a valid URL"
            raise LLMConnectionError(
                f"{self.provider}: {problem}", provider=self.provider, retryable=False
            ) from exc
        except ValueError as exc:  # a header aiohttp refuses (a key ending in a newline)
            raise LLMConnectionError(
                f"{self.provider}: the request cannot be sent: {exc} (check the API key)",
                provider=self.provider,
                retryable=False,
            ) from exc
        except aiohttp.ClientError as exc:
            via = (f" through the proxy {env_proxy(self.base_url)}"
                   if isinstance(exc, aiohttp.ClientProxyConnectionError) else "")
            raise LLMConnectionError(
                f"{self.provider}: cannot reach {self.base_url}{via}: {_describe(exc)}",
                provider=self.provider,
                retryable=True,
            ) from exc
        try:
            if response.status >= 400:
                raw = b""
                try:
                    async for piece in response.content.iter_any():
                        raw += piece
                        if len(raw) >= _MAX_ERROR_BODY:
                            break
                except aiohttp.ClientError as exc:  # transport or content-decoding failure
                    raise self._status_error(
                        url, response.status, raw.decode("utf-8", "replace"), response.headers
                    ) from exc
                raise self._status_error(
                    url, response.status, raw.decode("utf-8", "replace"), response.headers
                )
            if response.headers.get("content-type", "").startswith("text/html"):
                hint = self._base_url_hint() or "check the base URL"
                raise LLMResponseError(
                    f"{self.provider}: {url} answered with a web page (text/html), not an "
                    f"API stream; {hint}",
                    provider=self.provider,
                    status_code=response.status,
                )
            yield response
        finally:
            if response.content.at_eof():
                response.release()  # read to its end: the connection goes back to the pool
            else:
                response.close()

    async def _parse(
        self, response: aiohttp.ClientResponse, parser: RecordParser[Any], *, sse: bool
    ) -> AsyncGenerator[str | Thinking, None]:
        """Feed the body's pieces to ``parser``; yield its items.

        The pieces are NDJSON lines, or with ``sse`` SSE events (keep-alive
        comments skipped). One pass per network chunk: the chunk is decoded
        (UTF-8 split across chunks is handled by an incremental decoder), cut
        into lines, and each line parsed, with no generator per layer.

        Returns at the parser's end marker, or when the body ends and the
        parser says the stream is complete.

        Raises:
            LLMStreamError: the connection dropped or the body failed to
                decode mid-stream, or the body ended before the parser's end
                marker (retryable: the base retries only if nothing was said).
        """
        decode = codecs.getincrementaldecoder(_charset(response))(errors="replace").decode
        splitter = LineSplitter()
        events = SSEDecoder() if sse else None

        def items(lines: list[str]) -> Iterator[str | Thinking]:
            """The parser's items for ``lines``, up to its end marker."""
            for line in lines:
                piece = line if events is None else events.decode(line)
                if piece is not None:
                    yield from parser.feed(piece)
                    if parser.ended:
                        return

        try:
            async for data in response.content.iter_any():
                for item in items(splitter.feed(decode(data))):
                    yield item
                if parser.ended:
                    return
        except aiohttp.ClientError as exc:  # transport, or a body that fails to decode
            raise LLMStreamError(
                f"{self.provider}: connection lost or body undecodable mid-stream: "
                f"{_describe(exc)}",
                provider=self.provider,
                retryable=True,
            ) from exc
        for item in items(splitter.feed(decode(b"", final=True)) + splitter.flush()):
            yield item
        if parser.ended:
            return
        if not parser.complete:
            raise LLMStreamError(
                f"{self.provider}: stream ended before {parser.end_marker}",
                provider=self.provider,
                retryable=True,
            )


def _describe(exc: BaseException) -> str:
    """``Type: message`` of an aiohttp error (its repr holds the whole connection key)."""
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _charset(response: aiohttp.ClientResponse) -> str:
    """The body's declared charset if Python knows it, else UTF-8 (what the APIs send)."""
    charset = response.charset or "utf-8"
    try:
        return codecs.lookup(charset).name
    except LookupError:
        return "utf-8"


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
