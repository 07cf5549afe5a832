"""Every daemon error in the documented shape ``{"error": {"type", "message", "param",
"code"}}``, the framework's own included; hostile bodies; CORS with a token.
(Issue 10 item 3, issue 11 item 9.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from pipeline._daemon import DaemonSettings
from pipeline._daemon._http import MAX_FIELD_ERRORS, invalid_fields
from tests.fakes.engine import FakeEngine

from .conftest import Daemon, ScriptedLLM, read_sse, start_daemon

TOKEN = "s3cret-token-123"
DEEP = "[" * 100_000 + "]" * 100_000


def _error(response: httpx.Response, status: int, type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"type", "message", "param", "code"}
    assert error["type"] == type and error["message"]
    return error


@pytest.mark.parametrize(
    ("method", "path", "status", "type"),
    [
        ("GET", "/nope", 404, "not_found"),
        ("GET", "/v1/runs", 404, "not_found"),
        ("POST", "/v1/runs/abc", 405, "method_not_allowed"),
        ("PUT", "/v1/speak", 405, "method_not_allowed"),
        ("GET", "/v1/speak", 405, "method_not_allowed"),
        ("DELETE", "/healthz", 405, "method_not_allowed"),
    ],
)
def test_route_level_errors_have_the_documented_shape(
    daemon: Daemon, method: str, path: str, status: int, type: str
) -> None:
    response = httpx.request(method, daemon.url + path)
    error = _error(response, status, type)
    if status == 405:
        assert "allow" in response.headers
        assert method in error["message"]


def test_bad_bodies_are_4xx_with_the_documented_shape(daemon: Daemon) -> None:
    url = daemon.url + "/v1/speak"
    error = _error(httpx.post(url, json={"message": 5}), 422, "invalid_request_error")
    assert error["param"] == "message"
    _error(httpx.post(url, json={"message": "hi", "colour": "blue"}), 422,
           "invalid_request_error")
    error = _error(httpx.post(url, content=b"{bad", headers={"content-type": "application/json"}),
                   400, "invalid_request_error")
    assert "not JSON" in error["message"]
    _error(httpx.post(url, json={"message": "hi", "max_tokens": 0}), 422,
           "invalid_request_error")


def _one_line_naming(error: dict[str, Any], field: str | None) -> None:
    """A field error reads the same on every transport: ``field: reason``, one line."""
    assert error["param"] == field, error
    assert error["message"].startswith(f"{field or 'the body'}: "), error
    assert "\n" not in error["message"] and "pydantic" not in error["message"], error


@pytest.mark.parametrize("path", ["/v1/speak", "/v1/narrations"])
def test_invalid_fields_read_the_same_on_every_route(daemon: Daemon, path: str) -> None:
    field = "message" if path == "/v1/speak" else "text"
    response = httpx.post(daemon.url + path, json={field: 5})
    _one_line_naming(_error(response, 422, "invalid_request_error"), field)
    response = httpx.post(daemon.url + path, json=[1])  # a list where the object belongs
    error = _error(response, 422, "invalid_request_error")
    _one_line_naming(error, None)
    assert error["message"] == "the body: must be a JSON object"  # the same on both routes
    # An unknown key is the client's text: it cannot break the line.
    response = httpx.post(daemon.url + path, json={field: "hi", "a\nb": 1})
    error = _error(response, 422, "invalid_request_error")
    assert error["param"] == "a\\nb" and "\n" not in error["message"], error


def test_a_body_that_is_not_json_reads_the_same_on_every_route(daemon: Daemon) -> None:
    messages = set()
    for path in ("/v1/speak", "/v1/narrations"):
        response = httpx.post(daemon.url + path, content=b'{"message": "hi",',
                              headers={"content-type": "application/json"})
        messages.add(_error(response, 400, "invalid_request_error")["message"])
    assert len(messages) == 1, messages
    assert messages.pop().startswith("the body is not JSON: ")


def test_many_field_errors_stay_one_bounded_line() -> None:
    errors = [{"loc": ("items", n, "x" * 100), "msg": "bad", "type": "string_type"}
              for n in range(40)]
    error = invalid_fields(errors)
    assert error.status == 422 and error.param == "items[0]." + "x" * 63 + "…"
    assert error.message.count("bad") == MAX_FIELD_ERRORS
    assert error.message.endswith(f"; and {40 - MAX_FIELD_ERRORS} more")


def test_invalid_fields_read_the_same_over_the_websocket(daemon: Daemon) -> None:
    with connect(daemon.ws_url + "/v1/stream") as ws:
        ws.send(json.dumps({"type": "speak", "message": 5}))
        reply = json.loads(ws.recv(timeout=30))
        assert reply["type"] == "error"
        _one_line_naming(reply["error"], "message")


@pytest.mark.parametrize("path", ["/v1/speak", "/v1/narrations", "/v1/audio/speech"])
def test_deeply_nested_json_is_a_400_on_every_route(daemon: Daemon, path: str) -> None:
    response = httpx.post(daemon.url + path, content=DEEP.encode(),
                          headers={"content-type": "application/json"})
    error = _error(response, 400, "invalid_request_error")
    assert "nested" in error["message"]
    # Nested deep inside an otherwise valid body: same answer.
    body = '{"message": "hi", "streaming_config": {"x": ' + DEEP + "}}"
    response = httpx.post(daemon.url + path, content=body.encode(),
                          headers={"content-type": "application/json"})
    _error(response, 400, "invalid_request_error")
    assert httpx.get(daemon.url + "/healthz").status_code == 200


def test_shallow_json_with_brackets_in_strings_passes(daemon: Daemon) -> None:
    message = "[" * 200 + " brackets in text are not nesting. " + "{" * 200
    with httpx.stream("POST", daemon.url + "/v1/speak", json={"message": message},
                      timeout=60) as response:
        events = list(read_sse(response))
    assert events[-1][0] == "done"


def test_nested_json_over_websocket_gets_an_error_and_the_connection_stays(daemon: Daemon) -> None:
    with connect(daemon.ws_url + "/v1/stream", max_size=None) as ws:
        ws.send(DEEP)
        reply = json.loads(ws.recv(timeout=30))
        assert reply["type"] == "error" and "nested" in reply["error"]["message"]
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=30)) == {"type": "pong"}


def test_superscript_digits_in_an_audio_index_are_a_404(daemon: Daemon) -> None:
    with httpx.stream("POST", daemon.url + "/v1/speak", json={"message": "Hi"},
                      timeout=60) as response:
        run_id = response.headers["x-run-id"]
        list(read_sse(response))
    assert httpx.get(daemon.url + f"/v1/runs/{run_id}/audio/0").status_code == 200
    for index in ("²", "0²", "٣", "１"):  # str.isdigit() is true for each
        _error(httpx.get(daemon.url + f"/v1/runs/{run_id}/audio/{index}"), 404, "not_found")


@pytest.fixture
def cors_daemon(tmp_path: Path):
    running = start_daemon(
        DaemonSettings(output_dir=tmp_path / "out", token=TOKEN,
                       cors_origins=("http://app.example",)),
        llm=ScriptedLLM(["Hello there. ", "Bye now."]), engine=FakeEngine(),
    )
    yield running
    running.stop()


def test_cors_preflight_passes_without_the_token(cors_daemon: Daemon) -> None:
    preflight = {"Origin": "http://app.example", "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    response = httpx.options(cors_daemon.url + "/v1/speak", headers=preflight)
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] == "http://app.example"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    # The real request still needs the token, and its answers carry CORS headers,
    # the 401 included, so the page can read it.
    refused = httpx.post(cors_daemon.url + "/v1/speak", json={"message": "hi"},
                         headers={"Origin": "http://app.example"})
    _error(refused, 401, "unauthorized")
    assert refused.headers["access-control-allow-origin"] == "http://app.example"
    with httpx.stream("POST", cors_daemon.url + "/v1/speak", json={"message": "hi"},
                      headers={"Origin": "http://app.example",
                               "Authorization": f"Bearer {TOKEN}"}, timeout=60) as ok:
        assert ok.headers["access-control-allow-origin"] == "http://app.example"
        assert "x-run-id" in ok.headers["access-control-expose-headers"].lower()
        assert list(read_sse(ok))[-1][0] == "done"


def test_a_refused_preflight_has_the_documented_shape(cors_daemon: Daemon) -> None:
    response = httpx.options(cors_daemon.url + "/v1/speak",
                             headers={"Origin": "http://evil.example",
                                      "Access-Control-Request-Method": "POST"})
    error = _error(response, 400, "invalid_request_error")
    assert "origin" in error["message"]
