"""Client side of the daemon (``speakstream ask --daemon URL``), over httpx.

:class:`DaemonClient` streams ``POST /v1/speak`` and parses the Server-Sent
Events (the SSE format of the HTML Living Standard, "Server-sent events")
into ``{"status": <event name>, **data}`` dicts: the daemon's client messages
(see ``pipeline._daemon._messages``): ``started``, ``token``, ``segment``,
``audio`` (with a ``url``), ``error``, ``cancelled``, ``done``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any

import httpx

from llm import SSEDecoder

from ._daemon._settings import TOKEN_ENV
from ._errors import PipelineError


class DaemonError(PipelineError):
    """The daemon refused a request or could not be reached.

    Attributes:
        status_code: the HTTP status, or ``None`` when no answer came.
        type: the daemon's error type (``"unauthorized"``, ``"payload_too_large"``...).
    """

    def __init__(self, message: str, *, status_code: int | None = None, type: str = "") -> None:
        super().__init__(message)
        self.status_code = status_code
        self.type = type


class DaemonClient:
    """An async client of a running speakstream daemon.

    Args:
        base_url: e.g. ``http://127.0.0.1:8765``.
        token: bearer token (default: ``$SPEAKSTREAM_TOKEN``).
        timeout: httpx timeout in seconds for connecting and between bytes.
    """

    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 60.0) -> None:
        token = token if token is not None else os.environ.get(TOKEN_ENV)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url.rstrip("/"), headers=headers,
                                       timeout=timeout)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> DaemonClient:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None,
                        exc: BaseException | None, tb: TracebackType | None) -> None:
        await self.aclose()

    async def astream_speak(
        self, message: str, **options: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        """Ask ``message``; yield the run's messages as dicts (``status`` = event name).

        ``options`` are the other fields of ``POST /v1/speak`` (``llm``, ``model``,
        ``tts``, ``voice``, ``format``, ``system``, ``streaming_config``...).
        Closing the iterator closes the HTTP response, which cancels the run.

        Raises:
            DaemonError: connection failure or an HTTP error status (401, 413, 422...).
        """
        body = {"message": message, **{k: v for k, v in options.items() if v is not None}}
        try:
            async with self._http.stream("POST", "/v1/speak", json=body) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise _error(response)
                decoder = SSEDecoder()
                async for text in response.aiter_text():
                    for event in decoder.feed(text):
                        yield {"status": event.event, **json.loads(event.data)}
        except httpx.HTTPError as exc:
            raise DaemonError(f"daemon at {self._http.base_url}: {exc}") from exc

    async def cancel(self, run_id: str) -> None:
        """``DELETE /v1/runs/{run_id}`` (a finished run is not an error)."""
        try:
            response = await self._http.delete(f"/v1/runs/{run_id}")
        except httpx.HTTPError as exc:
            raise DaemonError(f"daemon at {self._http.base_url}: {exc}") from exc
        if response.status_code not in (202, 409):
            raise _error(response)


def _error(response: httpx.Response) -> DaemonError:
    try:
        error = response.json()["error"]
        message, kind = str(error["message"]), str(error["type"])
    except (ValueError, KeyError, TypeError):
        message, kind = response.text[:200], ""
    return DaemonError(f"HTTP {response.status_code}: {message}",
                       status_code=response.status_code, type=kind)


def ask_daemon(args: argparse.Namespace) -> int:
    """``speakstream ask --daemon URL QUESTION``: stream the answer from a daemon.

    Text goes to stdout as it streams (``--json``: one JSON object per line,
    NDJSON); audio URLs and the summary go to stderr. Ctrl-C cancels the run on
    the daemon. Exit status: 0 ok, 1 the run failed, 2 the daemon refused the
    request, 130 interrupted.
    """
    return asyncio.run(_ask(args))


async def _ask(args: argparse.Namespace) -> int:
    options = {"llm": getattr(args, "llm", None), "model": getattr(args, "model", None),
               "system": getattr(args, "system", None), "format": getattr(args, "format", None)}
    run_id: str | None = None
    done: dict[str, Any] | None = None
    async with DaemonClient(args.daemon) as client:
        try:
            async with contextlib.aclosing(client.astream_speak(args.question, **options)) as it:
                async for item in it:
                    if item["status"] == "started":
                        run_id = item["run_id"]
                    if args.json:
                        print(json.dumps(item, ensure_ascii=False), flush=True)
                    elif item["status"] == "token":
                        print(item["text"], end="", flush=True)
                    elif item["status"] == "audio":
                        print(f"\n[audio {item['index']}] {args.daemon.rstrip('/')}{item['url']}",
                              file=sys.stderr)
                    elif item["status"] == "error":
                        print(f"\nerror: {item['error_type']}: {item['message']}",
                              file=sys.stderr)
                    if item["status"] == "done":
                        done = item
        except DaemonError as exc:
            print(f"speakstream: {exc}", file=sys.stderr)
            return 2
        except (KeyboardInterrupt, asyncio.CancelledError):
            if run_id is not None:
                with contextlib.suppress(DaemonError):
                    await client.cancel(run_id)
            return 130
    if not args.json:
        print()
        if done is not None:
            print(f"ttft {done['ttft_s']} s, ttfa {done['ttfa_s']} s, "
                  f"total {done['total_s']:.2f} s", file=sys.stderr)
    return 0 if done is not None and done.get("error") is None else 1
