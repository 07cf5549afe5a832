"""LLM clients per provider/model are kept in a bounded LRU cache (issue 11 item 2):
any client may name any model, so the cache must not grow with them; an evicted
client is closed once no run uses it, never under a running answer."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from pipeline._daemon import DaemonSettings
from tests.fakes.engine import FakeEngine
from tests.fakes.llm_server import FakeLLMServer, Gate, Reply

from .conftest import Daemon, read_sse, start_daemon


def _state(daemon: Daemon) -> Any:
    return daemon.server.config.app.state.daemon


def _eventually(check: Callable[[], bool], what: str) -> None:
    for _ in range(200):  # bounded; no time is asserted
        if check():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened: {what}")


def _speak(daemon: Daemon, **body: Any) -> list[tuple[str, dict[str, Any]]]:
    with httpx.stream("POST", daemon.url + "/v1/speak", json={"message": "Hi", **body},
                      timeout=60) as response:
        assert response.status_code == 200, response.read()
        return list(read_sse(response))


def _daemon(tmp_path: Path, server: FakeLLMServer, **options: Any) -> Daemon:
    settings = DaemonSettings(
        output_dir=tmp_path / "out", llm_provider="ollama",
        llm_config={"base_url": server.url}, **options,
        streaming_config=DaemonSettings().streaming_config.replace(
            sentence_buffer_size=1, min_chunk_length=1, max_buffer_time=None),
    )
    return start_daemon(settings, engine=FakeEngine())


def test_200_distinct_models_keep_the_client_cache_bounded(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=["Fine."])) as server:
        running = _daemon(tmp_path, server, max_llm_clients=8)
        try:
            source = _state(running).source
            for i in range(200):
                events = _speak(running, model=f"model-{i}")
                assert events[-1][0] == "done" and events[-1][1]["error"] is None
                assert source.cached_clients <= 8
            assert {r.json["model"] for r in server.requests} == {f"model-{i}" for i in range(200)}
            # 201 clients were made (the default one at start-up, then one per model)
            _eventually(lambda: source.closed_clients == 201 - 8, "evicted clients closed")
            assert source.cached_clients == 8
            # A model used again is served by its cached client (no new client).
            _speak(running, model="model-199")
            assert source.closed_clients == 201 - 8 and source.cached_clients == 8
        finally:
            running.stop()


def test_an_evicted_client_is_not_closed_under_a_running_answer(tmp_path: Path) -> None:
    gate = Gate()
    with FakeLLMServer(Reply(tokens=["One. ", "Two. ", "Three."], gate=gate)) as server:
        running = _daemon(tmp_path, server, max_llm_clients=1)
        try:
            source = _state(running).source
            gate.release(1)
            with httpx.stream("POST", running.url + "/v1/speak",
                              json={"message": "Hi", "model": "slow"}, timeout=60) as slow:
                events = read_sse(slow)
                assert next(events)[0] == "started"
                assert next(events)[0] == "token"
                server.push(Reply(tokens=["Quick."]))
                for name in ("a", "b"):  # evict "slow" from a cache of one
                    assert _speak(running, model=name)[-1][1]["error"] is None
                # "slow" left the cache but is not closed: its answer is still streaming
                assert len(source._retired) == 1
                closed = source.closed_clients
                gate.release_all()
                rest = list(events)
            assert rest[-1][0] == "done" and rest[-1][1]["error"] is None
            assert rest[-1][1]["complete_text"] == "One. Two. Three."
            _eventually(lambda: not source._retired and source.closed_clients == closed + 1,
                        "slow closed after its run")
        finally:
            gate.release_all()
            running.stop()


def test_a_request_for_another_provider_gets_only_the_timeouts(tmp_path: Path) -> None:
    with FakeLLMServer(Reply(tokens=["Hi."])) as server:
        running = _daemon(tmp_path, server)
        try:
            source = _state(running).source
            _, options = source.client_key("openai", None)
            assert "base_url" not in options  # the daemon's ollama URL is not sent to openai
            _, own = source.client_key(None, "m")
            assert own["base_url"] == server.url and own["model"] == "m"
            refused = httpx.post(running.url + "/v1/speak",
                                 json={"message": "Hi", "llm": "anthropic"})
            assert refused.status_code == 422  # no API key: refused before anything is held
            assert refused.json()["error"]["param"] == "llm"
        finally:
            running.stop()


@pytest.mark.parametrize("model", ["/etc/passwd", "../other.gguf", "other.gguf"])
def test_a_client_cannot_make_the_daemon_load_another_local_model(
    tmp_path: Path, model: str
) -> None:
    """With ``llm local`` a model is a file on the daemon's disk: a client may not
    name one (no file probe, no loading of any GGUF), and is told so in the
    documented error shape. No LLM client is created for it."""
    own = tmp_path / "own.gguf"
    with FakeLLMServer() as server:
        running = _daemon(tmp_path, server)
        try:
            state = _state(running)
            before = state.source.cached_clients
            state.source._settings = DaemonSettings(
                llm_provider="local", llm_config={"model": str(own)})
            response = httpx.post(running.url + "/v1/speak", timeout=60,
                                  json={"message": "Hi", "llm": "local", "model": model})
            assert response.status_code == 422
            error = response.json()["error"]
            assert error["param"] == "model" and "cannot choose" in error["message"]
            assert str(own) not in response.text  # no path on the daemon's disk leaks
            assert state.source.cached_clients == before  # no client made for it
        finally:
            running.stop()


def test_a_client_may_name_the_daemons_own_local_model_by_file_name(tmp_path: Path) -> None:
    from pipeline._daemon._source import PipelineSource

    own = tmp_path / "models" / "own.gguf"
    source = PipelineSource(DaemonSettings(llm_provider="local",
                                           llm_config={"model": str(own)}), tts_engine=None)
    for name in (None, "own.gguf", str(own)):
        _, config = source.client_key("local", name)
        assert config["model"] == str(own)
