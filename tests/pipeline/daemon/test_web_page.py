"""GET / in a real headless Chromium: streamed text with a cursor, in-order audio, Stop."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.engine import FakeEngine

from .conftest import LONG_ANSWER, ScriptedLLM, start_daemon

CHROMIUM = "/usr/bin/chromium"
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


def test_page_streams_text_and_schedules_audio_in_order(browser, settings) -> None:
    running = start_daemon(settings, llm=ScriptedLLM(LONG_ANSWER), engine=FakeEngine())
    try:
        assert "text/html" in httpx.get(running.url + "/").headers["content-type"]
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(running.url + "/")
        page.fill("#question", "Tell me about streaming speech")
        page.click("#send")
        page.wait_for_function("window.speakstream.status === 'done'", timeout=60_000)
        assert page.inner_text("#text") == "".join(LONG_ANSWER)
        scheduled = page.evaluate("window.speakstream.scheduled")
        assert [s["index"] for s in scheduled] == list(range(len(scheduled)))
        assert len(scheduled) >= 3
        for a, b in itertools.pairwise(scheduled):  # back to back, no gaps
            assert b["at"] == pytest.approx(a["at"] + a["duration"], abs=1e-6)
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
