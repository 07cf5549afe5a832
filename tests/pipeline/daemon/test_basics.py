"""App factory, health, metrics, auth, limits, id validation, CORS, OpenAPI."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pipeline._daemon import DaemonSettings
from tests.fakes.engine import FakeEngine

from .conftest import Daemon, ScriptedLLM, start_daemon

TOKEN = "s3cret-token-123"


def test_healthz_and_openapi(daemon: Daemon) -> None:
    assert httpx.get(daemon.url + "/healthz").json() == {"status": "ok"}
    schema = httpx.get(daemon.url + "/openapi.json").json()
    for path in ("/v1/speak", "/v1/runs/{run_id}", "/v1/runs/{run_id}/audio/{index}",
                 "/healthz", "/metrics"):
        assert path in schema["paths"], path


def test_metrics_is_prometheus_text(daemon: Daemon) -> None:
    response = httpx.get(daemon.url + "/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in ("speakstream_ttft_seconds", "speakstream_ttfa_seconds",
                 "speakstream_websocket_connections_active", "speakstream_active_streams"):
        assert f"# TYPE {name}" in text


def test_non_loopback_bind_needs_a_token(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="token"):
        DaemonSettings(host="0.0.0.0", output_dir=tmp_path)
    DaemonSettings(host="0.0.0.0", token=TOKEN, output_dir=tmp_path)  # allowed with a token
    DaemonSettings(host="::1", output_dir=tmp_path)  # loopback v6
    with pytest.raises(ValueError, match="max_body_bytes"):
        DaemonSettings(max_body_bytes=10)


@pytest.fixture
def secured(tmp_path: Path):
    running = start_daemon(
        DaemonSettings(output_dir=tmp_path / "out", token=TOKEN, max_body_bytes=4096,
                       max_message_chars=100),
        llm=ScriptedLLM(["Hello there. ", "Bye now."]), engine=FakeEngine(),
    )
    yield running
    running.stop()


def test_bearer_token_is_required(secured: Daemon) -> None:
    url = secured.url
    assert httpx.get(url + "/healthz").status_code == 200  # public
    assert httpx.get(url + "/openapi.json").status_code == 200  # public
    for method, path in (("GET", "/metrics"), ("GET", "/v1/runs/abc"),
                         ("POST", "/v1/speak")):
        r = httpx.request(method, url + path, json={"message": "hi"})
        assert r.status_code == 401, path
        assert r.json()["error"]["type"] == "unauthorized"
        r = httpx.request(method, url + path, json={"message": "hi"},
                          headers={"Authorization": "Bearer wrong-token-0"})
        assert r.status_code == 401, path
    ok = httpx.get(url + "/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200


def test_body_and_message_limits_give_413_json(secured: Daemon) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    big = httpx.post(secured.url + "/v1/speak", headers=auth,
                     json={"message": "x" * 10_000})
    assert big.status_code == 413
    assert big.json()["error"]["type"] == "payload_too_large"

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(10):
            yield b"{" + b" " * 1000

    chunked = httpx.post(secured.url + "/v1/speak", headers=auth, content=chunks())
    assert chunked.status_code == 413

    long_message = httpx.post(secured.url + "/v1/speak", headers=auth,
                              json={"message": "y" * 101})
    assert long_message.status_code == 413
    assert long_message.json()["error"]["param"] == "message"


@pytest.mark.parametrize("bad", ["..", "..%2F..%2Fetc", "%2E%2E", "a b", "x" * 65, "-x"])
def test_malformed_run_ids_are_404(daemon: Daemon, bad: str) -> None:
    for path in (f"/v1/runs/{bad}", f"/v1/runs/{bad}/audio/0", f"/v1/runs/{bad}/audio/merged"):
        r = httpx.get(daemon.url + path)
        assert r.status_code == 404, (path, r.text)


def test_path_traversal_cannot_reach_other_files(daemon: Daemon) -> None:
    secret = daemon.settings.root / "secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("top secret")
    # A run directory whose manifest points outside it (a tampered manifest).
    run = daemon.settings.runs_dir / "evil"
    run.mkdir(parents=True)
    (run / "manifest.jsonl").write_text(
        '{"type": "segment", "index": 0, "path": "../../secret.txt", "format": "wav",'
        ' "duration_s": 1.0}\n'
    )
    for path in ("/v1/runs/evil/audio/0", "/v1/runs/evil/audio/..%2F..%2Fsecret.txt",
                 "/v1/runs/evil/audio/-1"):
        r = httpx.get(daemon.url + path)
        assert r.status_code == 404, path
        assert "top secret" not in r.text


def test_cors_is_off_by_default(daemon: Daemon, tmp_path: Path) -> None:
    headers = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    r = httpx.options(daemon.url + "/v1/speak", headers=headers)
    assert "access-control-allow-origin" not in r.headers
    allowed = start_daemon(DaemonSettings(output_dir=tmp_path / "o2",
                                          cors_origins=("http://app.example",)),
                           llm=ScriptedLLM(["Hi."]), engine=FakeEngine())
    try:
        r = httpx.options(allowed.url + "/v1/speak",
                          headers={**headers, "Origin": "http://app.example"})
        assert r.headers["access-control-allow-origin"] == "http://app.example"
    finally:
        allowed.stop()
