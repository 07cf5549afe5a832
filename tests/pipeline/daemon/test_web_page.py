"""GET / in a real headless Chromium: streamed text with a cursor, in-order audio, Stop
(also of audio still queued), Pause and Resume, error messages, which LLM/engine answered,
and a page on another origin using a daemon with a token (CORS)."""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipeline._daemon import DaemonSettings
from tests.fakes.engine import FakeEngine

from .conftest import LONG_ANSWER, ScriptedLLM, start_daemon

CHROMIUM = "/usr/bin/chromium"
TOKEN = "page-token-123"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"

pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian chromium"),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--autoplay-policy=no-user-gesture-required"],
        )
        yield b
        b.close()


def ask(browser, url: str, question: str) -> tuple[object, list[str]]:
    """Open the page at ``url``, ask ``question``; the page and its uncaught errors."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url + "/")
    page.fill("#question", question)
    page.click("#send")
    return page, errors


def assert_whole_answer_in_order(page) -> None:
    """All of LONG_ANSWER shown; every segment scheduled once, in order, back to back."""
    assert page.inner_text("#text") == "".join(LONG_ANSWER)
    scheduled = page.evaluate("window.speakstream.scheduled")
    assert [s["index"] for s in scheduled] == list(range(len(scheduled)))
    assert len(scheduled) >= 3
    for a, b in itertools.pairwise(scheduled):  # back to back, no gaps
        assert b["at"] == pytest.approx(a["at"] + a["duration"], abs=1e-6)


def test_page_streams_text_and_schedules_audio_in_order(browser, settings) -> None:
    running = start_daemon(settings, llm=ScriptedLLM(LONG_ANSWER), engine=FakeEngine())
    try:
        assert "text/html" in httpx.get(running.url + "/").headers["content-type"]
        page, errors = ask(browser, running.url, "Tell me about streaming speech")
        page.wait_for_function("window.speakstream.status === 'done'", timeout=60_000)
        assert_whole_answer_in_order(page)
        assert page.evaluate("window.speakstream.error") is None
        assert page.is_hidden("#cursor")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "daemon-web-page.png"), full_page=True)
        assert errors == []
    finally:
        running.stop()


def test_cursor_blinks_while_streaming_and_stop_cancels(browser, settings) -> None:
    llm = ScriptedLLM(LONG_ANSWER, gate_after=6)
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    try:
        page = browser.new_page()
        page.goto(running.url + "/")
        page.fill("#question", "Say something long")
        page.click("#send")
        page.wait_for_function(
            f"document.querySelector('#text').textContent === {''.join(LONG_ANSWER[:6])!r}",
            timeout=60_000)
        assert page.is_visible("#cursor")
        animation = page.evaluate("getComputedStyle(document.querySelector('#cursor'))"
                                  ".animationName")
        assert animation == "blink"
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "daemon-web-page-streaming.png"))
        page.click("#stop")
        page.wait_for_function("window.speakstream.status === 'cancelled'", timeout=60_000)
        assert llm.cancelled.is_set()
    finally:
        llm.gate.set()
        running.stop()


def test_page_is_packaged_with_the_module() -> None:
    from importlib import resources

    page = resources.files("pipeline._daemon").joinpath("static/index.html")
    assert "/v1/stream" in page.read_text("utf-8")


def test_the_page_shows_the_error_message_not_a_bare_failed(browser, settings) -> None:
    llm = ScriptedLLM(LONG_ANSWER, fail_after=5)
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    try:
        page = browser.new_page()
        page.goto(running.url + "/")
        page.fill("#question", "Say something")
        page.click("#send")
        page.wait_for_function("window.speakstream.status === 'failed'", timeout=60_000)
        status = page.inner_text("#status")
        assert status.startswith("failed: ") and "connection dropped" in status
        assert "connection dropped" in page.evaluate("window.speakstream.error")
        assert page.inner_text("#text") == "".join(LONG_ANSWER[:5])  # what came is kept
    finally:
        running.stop()


def test_the_page_shows_which_llm_and_engine_answered(browser, settings) -> None:
    running = start_daemon(settings, llm=ScriptedLLM(LONG_ANSWER), engine=FakeEngine())
    try:
        page = browser.new_page()
        page.goto(running.url + "/")
        page.fill("#question", "Who answers?")
        page.click("#send")
        page.wait_for_function("window.speakstream.status === 'done'", timeout=60_000)
        assert page.inner_text("#via") == "llm scripted:script-1 · voice by fake"
    finally:
        running.stop()


def test_stop_silences_queued_audio_after_the_answer_ended(browser, settings) -> None:
    engine = FakeEngine(seconds_per_char=0.25)  # about 30 s of audio for the answer
    running = start_daemon(settings, llm=ScriptedLLM(LONG_ANSWER), engine=engine)
    try:
        page = browser.new_page()
        page.goto(running.url + "/")
        page.fill("#question", "Talk for a while")
        page.click("#send")
        page.wait_for_function("window.speakstream.status === 'done'", timeout=60_000)
        scheduled = page.evaluate("window.speakstream.scheduled")
        assert sum(s["duration"] for s in scheduled) > 20
        assert page.evaluate("window.speakstream.playing") > 0  # still queued / playing
        assert page.is_enabled("#stop"), "Stop must stay usable while audio plays"
        page.click("#stop")
        page.wait_for_function("window.speakstream.status === 'stopped'", timeout=10_000)
        assert page.evaluate("window.speakstream.playing") == 0
        assert page.is_disabled("#stop")
    finally:
        running.stop()


def test_pause_suspends_playback_and_the_run_then_resume_finishes_in_order(
    browser, settings
) -> None:
    """Pause mid-answer: the AudioContext is suspended and the daemon's run is
    paused (its LLM held); Resume plays on and the answer completes, every
    segment scheduled once, in order, back to back."""
    llm = ScriptedLLM(LONG_ANSWER, gate_after=6)
    running = start_daemon(settings, llm=llm, engine=FakeEngine(seconds_per_char=0.05))
    try:
        page, errors = ask(browser, running.url, "Talk, then wait")
        page.wait_for_function("window.speakstream.scheduled.length >= 1", timeout=60_000)
        assert page.inner_text("#pause") == "Pause" and page.is_enabled("#pause")
        page.click("#pause")
        page.wait_for_function("window.speakstream.status === 'paused'", timeout=30_000)
        assert page.evaluate("window.speakstream.audio") == "suspended"
        assert page.inner_text("#pause") == "Resume"
        run_id = page.evaluate("window.speakstream.runId")
        run = httpx.get(running.url + f"/v1/runs/{run_id}").json()
        assert run["status"] == "running" and run["health"]["paused"] is True
        llm.gate.set()  # the LLM could go on; the paused run holds it
        page.click("#pause")
        page.wait_for_function("window.speakstream.status === 'done'", timeout=60_000)
        assert page.evaluate("window.speakstream.audio") == "running"
        assert page.inner_text("#pause") == "Pause"
        assert_whole_answer_in_order(page)
        assert not llm.cancelled.is_set() and page.evaluate("window.speakstream.error") is None
        assert errors == []
    finally:
        llm.gate.set()
        running.stop()


def test_a_page_on_another_origin_can_use_a_daemon_with_a_token(browser, tmp_path) -> None:
    import http.server
    import socketserver
    import threading

    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "index.html").write_text("<!doctype html><title>other app</title>")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path / "site"))
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as site:
        threading.Thread(target=site.serve_forever, daemon=True).start()
        origin = f"http://127.0.0.1:{site.server_address[1]}"
        settings = DaemonSettings(output_dir=tmp_path / "out", token=TOKEN, cors_origins=(origin,))
        running = start_daemon(settings, llm=ScriptedLLM(LONG_ANSWER), engine=FakeEngine())
        try:
            page = browser.new_page()
            page.goto(origin + "/")
            result = page.evaluate(
                """async ([url, token]) => {
                    const r = await fetch(url + "/v1/speak", {method: "POST",
                        headers: {"Authorization": "Bearer " + token,
                                  "Content-Type": "application/json"},
                        body: JSON.stringify({message: "Hello from another origin"})});
                    return {status: r.status, runId: r.headers.get("X-Run-Id"),
                            body: await r.text()};
                }""",
                [running.url, TOKEN],
            )
            assert result["status"] == 200 and result["runId"]
            assert "event: done" in result["body"]
            refused = page.evaluate(
                """async (url) => {
                    const r = await fetch(url + "/v1/runs/x", {headers: {}});
                    return {status: r.status, body: await r.json()};
                }""",
                running.url,
            )
            assert refused["status"] == 401  # readable by the page: CORS headers on errors too
            assert refused["body"]["error"]["type"] == "unauthorized"
        finally:
            running.stop()
            site.shutdown()


class _DroppingProxy:
    """A TCP proxy in front of the daemon whose connections the test can drop
    (a network change, a laptop lid): ``drop()`` closes every open connection."""

    def __init__(self, target_port: int) -> None:
        import socket
        import threading

        self._target = target_port
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket
        import threading

        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self._target))
            with self._lock:
                self._socks += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: object, dst: object) -> None:
        import socket

        assert isinstance(src, socket.socket) and isinstance(dst, socket.socket)
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def drop(self) -> None:
        import socket

        with self._lock:
            socks, self._socks = self._socks, []
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self) -> None:
        self._server.close()
        self.drop()


def test_the_page_reconnects_by_itself_and_misses_nothing(browser, settings) -> None:
    llm = ScriptedLLM(LONG_ANSWER, gate_after=6)
    running = start_daemon(settings, llm=llm, engine=FakeEngine())
    proxy = _DroppingProxy(int(running.url.rsplit(":", 1)[1]))
    try:
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(f"http://127.0.0.1:{proxy.port}/")
        page.fill("#question", "Talk for a while")
        page.click("#send")
        page.wait_for_function(
            f"document.querySelector('#text').textContent === {''.join(LONG_ANSWER[:6])!r}",
            timeout=60_000)
        proxy.drop()  # the connection is gone mid-answer
        page.wait_for_function("window.speakstream.reconnects >= 1", timeout=60_000)
        llm.gate.set()
        page.wait_for_function("window.speakstream.status === 'done'", timeout=60_000)
        assert page.inner_text("#text") == "".join(LONG_ANSWER)  # nothing lost or doubled
        scheduled = page.evaluate("window.speakstream.scheduled")
        assert [s["index"] for s in scheduled] == list(range(len(scheduled)))
        assert len(scheduled) >= 3
        assert page.evaluate("window.speakstream.error") is None
        assert not llm.cancelled.is_set()
        assert errors == []
    finally:
        llm.gate.set()
        proxy.close()
        running.stop()
