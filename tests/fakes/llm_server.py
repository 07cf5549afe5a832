"""A fake LLM server on 127.0.0.1 that speaks four streaming wire formats byte for byte.

Endpoints (``POST``): Ollama ``/api/chat`` and ``/api/generate`` (NDJSON, final
``"done": true`` record with ``eval_count``/``eval_duration``); OpenAI
``/v1/chat/completions`` (SSE, role chunk, content chunks, finish chunk, usage
chunk when ``stream_options.include_usage``, ``data: [DONE]``); Anthropic
``/v1/messages`` (SSE ``message_start`` ... ``message_stop``); Gemini
``/v1beta/models/{model}:streamGenerateContent?alt=sse`` (SSE with CRLF, last
chunk with ``finishReason``). Each response is one connection
(``Connection: close``), HTTP/1.1 chunked, written by a raw asyncio server in a
background thread, so tests control every byte and every pause.

API:
    ``FakeLLMServer(*replies)``: context manager; ``.url`` is ``http://127.0.0.1:PORT``.
    ``server.push(*replies)``: queue replies; each request takes the next one, the
        last one is reused when the queue runs dry (default ``Reply()``).
    ``Reply(tokens=[...], token_delay=0, first_token_delay=0, gate=None, status=200,
        error_body=None, error_after=None, drop_after=None, stall_after=None,
        split=None, keepalive=False, omit_done=False, eval_duration_ns=10_000_000,
        thinking=[], finish=None, block_reason=None, headers={}, raw_body=None,
        content_type=None)``:
        ``gate`` (a :class:`Gate`) paces tokens: token ``i`` is sent once
        ``gate.release()`` was called ``i + 1`` times; ``split=n`` writes the body
        in ``n``-byte HTTP chunks (cuts JSON and UTF-8 anywhere); ``error_after=n``
        sends the protocol's in-stream error object after ``n`` tokens;
        ``drop_after=n`` aborts the TCP connection; ``stall_after=n`` goes silent
        until the client hangs up; ``status>=400`` answers that error first
        (with ``headers``, e.g. ``{"Retry-After": "2"}``). ``thinking`` are
        reasoning deltas sent before the tokens, the provider's way (Ollama
        ``message.thinking``, OpenAI-style ``delta.reasoning_content``, an
        Anthropic ``thinking`` block with ``thinking_delta`` s and a
        ``signature_delta``, Gemini parts with ``"thought": true``), paced like
        tokens (``first_token_delay`` before the first, ``token_delay`` between).
        ``finish`` is the provider's raw stop value in the last record (Ollama
        ``done_reason``, OpenAI ``finish_reason``, Anthropic ``stop_reason``,
        Gemini ``finishReason``; ``None``: the normal stop). ``block_reason``
        (Gemini) answers with ``promptFeedback.blockReason`` and no candidates.
        ``raw_body`` answers 200 with that body and ``content_type`` instead of
        a stream. An unknown path gets Ollama's (Go's) ``404 page not found``.
    ``server.requests``: list of :class:`RecordedRequest` (``path``, ``query``,
        ``headers``, ``json``, ``tokens_sent``, ``complete``, ``disconnected``: a
        ``threading.Event`` set when the client hung up before the end, and
        ``await rec.wait_disconnected()``).

Example::

    gate = Gate()
    with FakeLLMServer(Reply(tokens=["Hi", " there"], gate=gate)) as server:
        client = llm.create_client("ollama", model="m", base_url=server.url)
        ...  # gate.release() lets one more token out
        assert server.requests[0].json["stream"] is True

Wire sources: Ollama ``docs/api.md``; OpenAI API reference (chat completion chunk
object, ``stream_options``); Anthropic "Streaming Messages"; Gemini API
reference ``models.streamGenerateContent`` (``alt=sse``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
from collections.abc import Awaitable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

_GEMINI_PATH = re.compile(r"^/v1(?:beta)?/models/([^/:]+):streamGenerateContent$")
_CREATED_AT = "2024-11-21T12:00:00.000000Z"
_PROMPT_TOKENS = 5


class Gate:
    """Test-controlled pacing: the server sends token ``i`` after ``i + 1`` releases."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._allowed = 0
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def release(self, n: int = 1) -> None:
        """Let ``n`` more tokens out (thread-safe, callable from any loop or thread)."""
        with self._lock:
            self._allowed += n
            waiters, self._waiters = self._waiters, []
        for loop, event in waiters:
            loop.call_soon_threadsafe(event.set)

    def release_all(self) -> None:
        """Let every remaining token out."""
        self.release(1_000_000)

    async def _wait_turn(self, index: int) -> None:
        while True:
            with self._lock:
                if self._allowed > index:
                    return
                event = asyncio.Event()
                self._waiters.append((asyncio.get_running_loop(), event))
            await event.wait()


@dataclass
class Reply:
    """How the server answers one request; see the module docstring."""

    tokens: list[str] = field(default_factory=lambda: ["Hello", ",", " world", "."])
    token_delay: float = 0.0
    first_token_delay: float = 0.0
    gate: Gate | None = None
    status: int = 200
    error_body: str | dict[str, Any] | None = None
    error_message: str = "the model crashed"
    error_after: int | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    split: int | list[int] | None = None
    keepalive: bool = False
    omit_done: bool = False
    eval_duration_ns: int = 10_000_000  # per token (Ollama eval_duration)
    thinking: list[str] = field(default_factory=list)
    finish: str | None = None
    block_reason: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None
    content_type: str | None = None


@dataclass
class RecordedRequest:
    """One request as the server saw it, and what became of its response."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    json: Any
    tokens_sent: int = 0
    complete: bool = False
    disconnected: threading.Event = field(default_factory=threading.Event)

    async def wait_disconnected(self, limit_s: float = 10.0) -> bool:
        """Wait (off the event loop) until the client hung up; False after ``limit_s``."""
        return await asyncio.to_thread(self.disconnected.wait, limit_s)


def _dumps(obj: Any) -> bytes:
    # Real servers send raw UTF-8 (Go's and Python's SDK servers alike), which
    # lets ``split`` cut a multi-byte character in half.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class _Protocol:
    """Frames (bytes) of one wire format; one frame per token."""

    content_type = "text/event-stream"

    def __init__(self, model: str, request: RecordedRequest, reply: Reply) -> None:
        self.model = model
        self.request = request
        self.reply = reply

    def head(self) -> list[bytes]:
        return []

    def token(self, text: str) -> bytes:
        raise NotImplementedError

    def thinking(self, text: str) -> bytes:
        raise NotImplementedError

    def thinking_done(self) -> list[bytes]:
        """Frames between the last thinking delta and the first text delta."""
        return []

    def blocked(self, reason: str) -> list[bytes]:
        raise NotImplementedError(f"{type(self).__name__} has no prompt block")

    def tail(self, n_tokens: int) -> list[bytes]:
        raise NotImplementedError

    def error(self, message: str) -> bytes:
        raise NotImplementedError

    def keepalive(self) -> bytes:
        return b": keep-alive\n\n"

    def http_error_body(self, status: int) -> Any:
        return {"error": {"message": f"fake error {status}", "type": "error", "code": status}}


class _OllamaChat(_Protocol):
    content_type = "application/x-ndjson"

    def _record(self, **fields: Any) -> bytes:
        return _dumps({"model": self.model, "created_at": _CREATED_AT, **fields}) + b"\n"

    def token(self, text: str) -> bytes:
        return self._record(message={"role": "assistant", "content": text}, done=False)

    def thinking(self, text: str) -> bytes:
        return self._record(
            message={"role": "assistant", "content": "", "thinking": text}, done=False
        )

    def _final_fields(self, n_tokens: int) -> dict[str, Any]:
        eval_ns = n_tokens * self.reply.eval_duration_ns
        return {
            "done_reason": self.reply.finish or "stop",
            "done": True,
            "total_duration": eval_ns + 2_000_000,
            "load_duration": 1_000_000,
            "prompt_eval_count": _PROMPT_TOKENS,
            "prompt_eval_duration": 1_000_000,
            "eval_count": n_tokens,
            "eval_duration": eval_ns,
        }

    def tail(self, n_tokens: int) -> list[bytes]:
        return [
            self._record(
                message={"role": "assistant", "content": ""}, **self._final_fields(n_tokens)
            )
        ]

    def error(self, message: str) -> bytes:
        return _dumps({"error": message}) + b"\n"

    def keepalive(self) -> bytes:
        return b""  # NDJSON has no keep-alive

    def http_error_body(self, status: int) -> Any:
        if status == 404:
            return {"error": f'model "{self.model}" not found, try pulling it first'}
        return {"error": f"fake error {status}"}


class _OllamaGenerate(_OllamaChat):
    def token(self, text: str) -> bytes:
        return self._record(response=text, done=False)

    def thinking(self, text: str) -> bytes:
        return self._record(response="", thinking=text, done=False)

    def tail(self, n_tokens: int) -> list[bytes]:
        return [self._record(response="", context=[1, 2, 3], **self._final_fields(n_tokens))]


class _OpenAI(_Protocol):
    def _usage_field(self) -> dict[str, Any]:
        options = (self.request.json or {}).get("stream_options") or {}
        return {"usage": None} if options.get("include_usage") else {}

    def _chunk(self, choices: list[Any], **extra: Any) -> bytes:
        record = {
            "id": "chatcmpl-fake",
            "object": "chat.completion.chunk",
            "created": 1732190400,
            "model": self.model,
            "system_fingerprint": "fp_fake",
            "choices": choices,
            **self._usage_field(),
            **extra,
        }
        return b"data: " + _dumps(record) + b"\n\n"

    def _choice(self, delta: dict[str, Any], finish: str | None = None) -> list[Any]:
        return [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]

    def head(self) -> list[bytes]:
        return [self._chunk(self._choice({"role": "assistant", "content": ""}))]

    def token(self, text: str) -> bytes:
        return self._chunk(self._choice({"content": text}))

    def thinking(self, text: str) -> bytes:
        # DeepSeek / llama.cpp server style: content is null while reasoning.
        return self._chunk(self._choice({"content": None, "reasoning_content": text}))

    def tail(self, n_tokens: int) -> list[bytes]:
        frames = [self._chunk(self._choice({}, self.reply.finish or "stop"))]
        if self._usage_field():
            usage = {
                "prompt_tokens": _PROMPT_TOKENS,
                "completion_tokens": n_tokens,
                "total_tokens": _PROMPT_TOKENS + n_tokens,
            }
            frames.append(self._chunk([], usage=usage))
        return [*frames, b"data: [DONE]\n\n"]

    def error(self, message: str) -> bytes:
        err = {"message": message, "type": "server_error", "param": None, "code": None}
        return b"data: " + _dumps({"error": err}) + b"\n\n"

    def http_error_body(self, status: int) -> Any:
        code = "model_not_found" if status == 404 else None
        message = f"The model `{self.model}` does not exist" if status == 404 else "fake error"
        return {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }


class _Anthropic(_Protocol):
    @staticmethod
    def _event(name: str, data: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + _dumps(data) + b"\n\n"

    def head(self) -> list[bytes]:
        message: dict[str, Any] = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [],
            "model": self.model,
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": _PROMPT_TOKENS, "output_tokens": 1},
        }
        first = {"type": "thinking", "thinking": ""} if self.reply.thinking else None
        return [
            self._event("message_start", {"type": "message_start", "message": message}),
            self._block_start(0, first),
            self._event("ping", {"type": "ping"}),
        ]

    @property
    def _text_index(self) -> int:
        return 1 if self.reply.thinking else 0

    def _block_start(self, index: int, block: dict[str, Any] | None = None) -> bytes:
        return self._event(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": index,
                "content_block": block or {"type": "text", "text": ""},
            },
        )

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return self._event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def token(self, text: str) -> bytes:
        return self._delta(self._text_index, {"type": "text_delta", "text": text})

    def thinking(self, text: str) -> bytes:
        return self._delta(0, {"type": "thinking_delta", "thinking": text})

    def thinking_done(self) -> list[bytes]:
        signature = {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}
        return [
            self._delta(0, signature),
            self._event("content_block_stop", {"type": "content_block_stop", "index": 0}),
            self._block_start(1),
        ]

    def tail(self, n_tokens: int) -> list[bytes]:
        delta = {"stop_reason": self.reply.finish or "end_turn", "stop_sequence": None}
        stop = {"type": "content_block_stop", "index": self._text_index}
        return [
            self._event("content_block_stop", stop),
            self._event(
                "message_delta",
                {"type": "message_delta", "delta": delta, "usage": {"output_tokens": n_tokens}},
            ),
            self._event("message_stop", {"type": "message_stop"}),
        ]

    def error(self, message: str) -> bytes:
        err = {"type": "overloaded_error", "message": message}
        return self._event("error", {"type": "error", "error": err})

    def keepalive(self) -> bytes:
        return self._event("ping", {"type": "ping"})

    def http_error_body(self, status: int) -> Any:
        kind = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}
        message = f"model: {self.model}" if status == 404 else f"fake error {status}"
        error = {"type": kind.get(status, "api_error"), "message": message}
        return {"type": "error", "error": error}


class _Gemini(_Protocol):
    @staticmethod
    def _data(record: dict[str, Any]) -> bytes:
        return b"data: " + _dumps(record) + b"\r\n\r\n"  # Google's SSE uses CRLF

    def _chunk(
        self, part: dict[str, Any] | None, n_tokens: int, finish: str | None = None
    ) -> bytes:
        candidate: dict[str, Any] = {}
        if part is not None:
            candidate["content"] = {"parts": [part], "role": "model"}
        if finish:
            candidate["finishReason"] = finish
        if finish and finish not in ("STOP", "MAX_TOKENS"):
            # A filtered candidate carries no content, only its safety ratings.
            candidate["safetyRatings"] = [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
            ]
        candidate["index"] = 0
        meta = {
            "promptTokenCount": _PROMPT_TOKENS,
            "candidatesTokenCount": n_tokens,
            "totalTokenCount": _PROMPT_TOKENS + n_tokens,
        }
        return self._data(
            {"candidates": [candidate], "usageMetadata": meta, "modelVersion": self.model}
        )

    def token(self, text: str) -> bytes:
        return self._chunk({"text": text}, self.request.tokens_sent + 1)

    def thinking(self, text: str) -> bytes:
        return self._chunk({"text": text, "thought": True}, self.request.tokens_sent)

    def tail(self, n_tokens: int) -> list[bytes]:
        finish = self.reply.finish or "STOP"
        part = {"text": ""} if finish in ("STOP", "MAX_TOKENS") else None
        return [self._chunk(part, n_tokens, finish)]

    def blocked(self, reason: str) -> list[bytes]:
        feedback = {
            "blockReason": reason,
            "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                 "blocked": True}
            ],
        }
        meta = {"promptTokenCount": _PROMPT_TOKENS, "totalTokenCount": _PROMPT_TOKENS}
        return [
            self._data({"promptFeedback": feedback, "usageMetadata": meta,
                        "modelVersion": self.model})
        ]

    def error(self, message: str) -> bytes:
        return self._data({"error": {"code": 500, "message": message, "status": "INTERNAL"}})

    def http_error_body(self, status: int) -> Any:
        names = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
        return {
            "error": {
                "code": status,
                "message": f"models/{self.model} fake error {status}",
                "status": names.get(status, "UNAVAILABLE"),
            }
        }


_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
    529: "Overloaded",
}


class FakeLLMServer:
    """The server; see the module docstring. Start/stop with ``with``."""

    def __init__(self, *replies: Reply) -> None:
        self.requests: list[RecordedRequest] = []
        self._replies: list[Reply] = list(replies)
        self._last = Reply()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def push(self, *replies: Reply) -> None:
        """Queue replies for the next requests."""
        with self._lock:
            self._replies.extend(replies)

    def _next_reply(self) -> Reply:
        with self._lock:
            if self._replies:
                self._last = self._replies.pop(0)
            return self._last

    # -- lifecycle --------------------------------------------------------------

    def __enter__(self) -> FakeLLMServer:
        self._thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("FakeLLMServer did not start")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._handle(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away while we read its request or wrote
        finally:
            self._tasks.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                await writer.wait_closed()

    # -- one request --------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *header_lines = head.split("\r\n")
        method, target, _ = request_line.split(" ", 2)
        headers = {}
        for line in header_lines:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        url = urlsplit(target)
        rec = RecordedRequest(
            method=method,
            path=url.path,
            query=parse_qs(url.query),
            headers=headers,
            json=json.loads(raw) if raw else None,
        )
        self.requests.append(rec)
        reply = self._next_reply()
        if reply.raw_body is not None:  # a fixed body at any path (a web page, bad records)
            rec.complete = True
            content_type = reply.content_type or "text/html; charset=utf-8"
            await self._send_head(writer, 200, content_type, body=reply.raw_body)
            return
        protocol = self._protocol(rec, reply)
        if protocol is None:  # what Ollama (Go's net/http) answers for an unknown path
            await self._send_head(
                writer, 404, "text/plain; charset=utf-8", body=b"404 page not found"
            )
            return
        watcher = asyncio.create_task(self._watch(reader, rec))
        try:
            await self._respond(writer, rec, reply, protocol, watcher)
        finally:
            watcher.cancel()

    def _protocol(self, rec: RecordedRequest, reply: Reply) -> _Protocol | None:
        body = rec.json if isinstance(rec.json, dict) else {}
        model = str(body.get("model", ""))
        if rec.path == "/api/chat":
            return _OllamaChat(model, rec, reply)
        if rec.path == "/api/generate":
            return _OllamaGenerate(model, rec, reply)
        if rec.path == "/v1/chat/completions":
            return _OpenAI(model, rec, reply)
        if rec.path == "/v1/messages":
            return _Anthropic(model, rec, reply)
        match = _GEMINI_PATH.match(rec.path)
        if match:
            return _Gemini(match.group(1), rec, reply)
        return None

    @staticmethod
    async def _watch(reader: asyncio.StreamReader, rec: RecordedRequest) -> None:
        """Complete when the client hangs up (EOF/reset) before the response ended."""
        with contextlib.suppress(ConnectionError):
            while await reader.read(1024):
                pass
        if not rec.complete:
            rec.disconnected.set()

    @staticmethod
    async def _until(awaitable: Awaitable[Any], watcher: asyncio.Task[None]) -> bool:
        """Await ``awaitable`` unless the client hangs up first (then False)."""
        task = asyncio.ensure_future(awaitable)
        done, _ = await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            return True
        task.cancel()
        return False

    async def _send_head(
        self,
        writer: asyncio.StreamWriter,
        status: int,
        content_type: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        lines = [
            f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}",
            f"Content-Type: {content_type}",
            "Connection: close",
            *(f"{name}: {value}" for name, value in (headers or {}).items()),
        ]
        if body is None:
            lines.append("Transfer-Encoding: chunked")
        else:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        await writer.drain()

    async def _send(
        self, writer: asyncio.StreamWriter, frame: bytes, split: int | list[int] | None
    ) -> None:
        """Write ``frame`` as HTTP chunks: whole, or cut into ``split``-byte pieces
        (a list cycles through piece sizes, for arbitrary cut positions)."""
        sizes = [split] if isinstance(split, int) else (split or [len(frame) or 1])
        start, k = 0, 0
        while start < len(frame):
            piece = frame[start : start + max(1, sizes[k % len(sizes)])]
            start, k = start + len(piece), k + 1
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
            if split:
                await asyncio.sleep(0)  # let each piece leave on its own

    async def _send_thinking(
        self,
        writer: asyncio.StreamWriter,
        reply: Reply,
        protocol: _Protocol,
        watcher: asyncio.Task[None],
    ) -> bool:
        """Send the reasoning deltas before the text; False if the client hung up."""
        for i, text in enumerate(reply.thinking):
            delay = reply.first_token_delay if i == 0 else reply.token_delay
            if delay and not await self._until(asyncio.sleep(delay), watcher):
                return False
            if watcher.done():
                return False
            await self._send(writer, protocol.thinking(text), reply.split)
        if reply.thinking:
            for frame in protocol.thinking_done():
                await self._send(writer, frame, reply.split)
        return True

    async def _respond(
        self,
        writer: asyncio.StreamWriter,
        rec: RecordedRequest,
        reply: Reply,
        protocol: _Protocol,
        watcher: asyncio.Task[None],
    ) -> None:
        if reply.status >= 400:
            body = reply.error_body if reply.error_body is not None else None
            if body is None:
                body = protocol.http_error_body(reply.status)
            data = body.encode() if isinstance(body, str) else _dumps(body)
            rec.complete = True
            await self._send_head(
                writer, reply.status, "application/json", body=data, headers=reply.headers
            )
            return
        await self._send_head(writer, 200, protocol.content_type, headers=reply.headers)
        if reply.block_reason is not None:
            for frame in protocol.blocked(reply.block_reason):
                await self._send(writer, frame, reply.split)
            rec.complete = True
            writer.write(b"0\r\n\r\n")
            await writer.drain()
            return
        for frame in protocol.head():
            await self._send(writer, frame, reply.split)
        if not await self._send_thinking(writer, reply, protocol, watcher):
            return
        tokens = reply.tokens
        for i in range(len(tokens) + 1):
            if i == 0 and reply.first_token_delay and tokens and not reply.thinking:
                if not await self._until(asyncio.sleep(reply.first_token_delay), watcher):
                    return
            if reply.error_after == i:
                await self._send(writer, protocol.error(reply.error_message), reply.split)
                break
            if reply.drop_after == i:
                writer.transport.abort()
                return
            if reply.stall_after == i:
                await watcher
                return
            if i == len(tokens):
                break
            if reply.gate is not None and not await self._until(reply.gate._wait_turn(i), watcher):
                return
            if i > 0 and reply.token_delay:
                if not await self._until(asyncio.sleep(reply.token_delay), watcher):
                    return
            if watcher.done():
                return
            if reply.keepalive:
                await self._send(writer, protocol.keepalive(), reply.split)
            frame = protocol.token(tokens[i])
            # Counted before the write: a client that has read a token always
            # sees it counted (the server thread may not run again before the
            # client's next assertion).
            rec.tokens_sent += 1
            await self._send(writer, frame, reply.split)
        # From here on a hang-up is no longer "before the end": a client may close
        # as soon as it has parsed the end marker, before the terminating chunk.
        rec.complete = True
        if reply.error_after is None and not reply.omit_done:
            for frame in protocol.tail(rec.tokens_sent):
                await self._send(writer, frame, reply.split)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
