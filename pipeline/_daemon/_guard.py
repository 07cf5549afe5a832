"""ASGI middleware in front of every route: bearer-token auth, the body size limit
and the JSON nesting limit.

Pure ASGI (not ``BaseHTTPMiddleware``) so it also guards WebSockets and
never buffers streaming responses.
"""

from __future__ import annotations

import asyncio
import hmac
import json
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._http import MAX_JSON_DEPTH, error_body, too_deep

#: Bodies larger than this are checked for nesting in a worker thread.
_INLINE_CHECK_BYTES = 64 * 1024

#: Paths anyone may read without the token: the page, health and API schema.
PUBLIC_PATHS = frozenset(
    {"/", "/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)


class GuardMiddleware:
    """Checks ``Authorization: Bearer <token>`` and caps request bodies.

    * Auth (only when ``token`` is set): every path but :data:`PUBLIC_PATHS`
      and ``/static/*`` needs the header; WebSockets may instead pass
      ``?token=`` (browsers cannot set headers on them). Failure: HTTP 401
      JSON; a WebSocket handshake gets the same 401 JSON (ASGI denial response),
      or a close with code 1008 where the server lacks that extension.
    * Size: a declared ``Content-Length`` above ``max_body_bytes`` is refused
      with 413 before reading; otherwise the body is read (at most
      ``max_body_bytes`` + one chunk) and replayed to the app, so chunked
      uploads are capped too.
    * Nesting: a JSON body (one that starts with ``[`` or ``{``, not a
      multipart upload) nested deeper than :data:`MAX_JSON_DEPTH` gets 400
      before any route parses it.

    CORS preflights (``OPTIONS`` with ``Origin`` and
    ``Access-Control-Request-Method``) carry no credentials by design: the
    CORS middleware sits *outside* this one and answers them, so they never
    need the token.
    """

    def __init__(self, app: ASGIApp, *, token: str | None, max_body_bytes: int) -> None:
        self.app = app
        self.token = token
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if not self._authorized(scope):
            denial = error_body("unauthorized", "missing or wrong bearer token")
            if scope["type"] == "http":
                await _json(send, 401, denial, {"www-authenticate": "Bearer"})
            elif "websocket.http.response" in scope.get("extensions", {}):
                # ASGI's WebSocket denial response (uvicorn has it): the same 401 JSON
                await _json(send, 401, denial, {"www-authenticate": "Bearer"},
                            kind="websocket.http.response")
            else:
                await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
            return
        if scope["type"] == "http" and scope["method"] in ("POST", "PUT", "PATCH"):
            replay = await self._capped_body(scope, receive, send)
            if replay is None:
                return
            receive = replay
        await self.app(scope, receive, send)

    def _authorized(self, scope: Scope) -> bool:
        if self.token is None:
            return True
        path: str = scope["path"]
        if path in PUBLIC_PATHS or path.startswith("/static/"):
            return True
        expected = f"Bearer {self.token}".encode()
        for name, value in scope["headers"]:
            if name == b"authorization" and hmac.compare_digest(value, expected):
                return True
        if scope["type"] == "websocket":
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            for given in query.get("token", []):
                if hmac.compare_digest(given.encode(), self.token.encode()):
                    return True
        return False

    async def _capped_body(self, scope: Scope, receive: Receive, send: Send) -> Receive | None:
        limit = self.max_body_bytes
        too_large = error_body(
            "payload_too_large", f"request body is larger than the limit of {limit} bytes"
        )
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await _json(send, 413, too_large, {"connection": "close"})
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None  # the client left: nothing to answer
            body = message.get("body", b"")
            size += len(body)
            if size > limit:
                await _json(send, 413, too_large, {"connection": "close"})
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body.lstrip()[:1] in (b"[", b"{") and not _is_multipart(scope):
            deep = (too_deep(body) if len(body) <= _INLINE_CHECK_BYTES
                    else await asyncio.to_thread(too_deep, body))
            if deep:
                await _json(send, 400, error_body(
                    "invalid_request_error",
                    f"JSON nested more than {MAX_JSON_DEPTH} levels deep"), {})
                return None
        replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replaying_receive() -> Message:
            if replay:
                return replay.pop()
            return await receive()

        return replaying_receive


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.lower().startswith(b"multipart/")
    return False


async def _json(send: Send, status: int, body: dict[str, Any], headers: dict[str, str], *,
                kind: str = "http.response") -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in headers.items()]
    await send({"type": f"{kind}.start", "status": status, "headers": raw})
    await send({"type": f"{kind}.body", "body": payload})
