"""Prometheus metrics of one daemon app, in its own ``CollectorRegistry``.

A registry per app (not the global one) so several apps in one process
(tests) never collide. Exposed at ``GET /metrics`` in the Prometheus text
format by ``prometheus_client``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .._events import (
    AudioReady,
    ProgressEvent,
    RunCompleted,
    RunFailed,
    SegmentQueued,
    TextDelta,
)

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0)


class DaemonMetrics:
    """The daemon's counters, gauges and histograms (names start ``speakstream_``).

    ``observe(event, endpoint=...)`` updates them from progress events, so
    every endpoint (SSE, WebSocket, OpenAI speech, narrations) is counted the
    same way.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.ttft = Histogram(
            "speakstream_ttft_seconds", "Time to first LLM text delta, seconds.",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.ttfa = Histogram(
            "speakstream_ttfa_seconds", "Time to first audio (first chunk to a sink), seconds.",
            ["endpoint"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.segments = Counter(
            "speakstream_segments", "Segments queued for synthesis.", ["endpoint"], registry=r
        )
        self.audio_files = Counter(
            "speakstream_audio_files", "Audio files written.", ["endpoint"], registry=r
        )
        self.audio_seconds = Counter(
            "speakstream_audio_seconds", "Seconds of audio produced.", ["endpoint"], registry=r
        )
        self.errors = Counter(
            "speakstream_errors", "Failures reported by runs, by exception type.",
            ["endpoint", "error_type"], registry=r,
        )
        self.runs = Counter(
            "speakstream_runs", "Runs finished, by outcome (completed, failed, cancelled).",
            ["endpoint", "outcome"], registry=r,
        )
        self.active_streams = Gauge(
            "speakstream_active_streams", "Runs streaming right now.", ["endpoint"], registry=r
        )
        self.ws_active = Gauge(
            "speakstream_websocket_connections_active", "Open WebSocket connections.", registry=r
        )
        self.ws_peak = Gauge(
            "speakstream_websocket_connections_peak",
            "Most WebSocket connections open at once since start.", registry=r,
        )
        self.ws_total = Counter(
            "speakstream_websocket_connections", "WebSocket connections accepted.", registry=r
        )
        self.messages_sent = Counter(
            "speakstream_messages_sent", "Messages sent to clients (SSE events, WebSocket frames).",
            ["transport"], registry=r,
        )
        self.messages_received = Counter(
            "speakstream_messages_received", "WebSocket messages received from clients.",
            ["transport"], registry=r,
        )
        self.tokens = Counter(
            "speakstream_llm_chunks", "LLM text deltas received (about one token each).",
            ["endpoint"], registry=r,
        )
        self.chars = Counter(
            "speakstream_llm_chars", "Characters of LLM text received (mean delta size = "
            "chars / chunks).", ["endpoint"], registry=r,
        )
        self.slow_readers = Counter(
            "speakstream_slow_reader_events",
            "Times a client fell 64 or more messages behind its run (it reads on from the log).",
            ["endpoint"], registry=r,
        )
        self.paused_runs = Gauge(
            "speakstream_paused_runs", "Runs paused right now.", registry=r
        )
        self.replays = Counter(
            "speakstream_replays", "Clients that (re)attached to a run after message 0.",
            ["transport"], registry=r,
        )
        self.narrations = Gauge(
            "speakstream_narration_jobs", "Narration jobs by state.", ["state"], registry=r
        )
        self._ws_open = 0
        self._ws_peak = 0

    def observe(self, event: ProgressEvent, *, endpoint: str) -> None:
        """Count what ``event`` reports. (Runs of the daemon count their text deltas
        in batches instead: see ``ActiveRun``.)"""
        if isinstance(event, TextDelta):
            self.tokens.labels(endpoint).inc()
            self.chars.labels(endpoint).inc(len(event.text))
        elif isinstance(event, SegmentQueued):
            self.segments.labels(endpoint).inc()
        elif isinstance(event, AudioReady):
            self.audio_files.labels(endpoint).inc()
            self.audio_seconds.labels(endpoint).inc(event.duration_s)
        elif isinstance(event, RunFailed):
            self.errors.labels(endpoint, event.error_type).inc()
        elif isinstance(event, RunCompleted):
            if event.ttft_s is not None:
                self.ttft.labels(endpoint).observe(event.ttft_s)
            if event.ttfa_s is not None:
                self.ttfa.labels(endpoint).observe(event.ttfa_s)

    def run_finished(self, *, endpoint: str, outcome: str) -> None:
        """A run ended with ``outcome`` (``completed``, ``failed`` or ``cancelled``)."""
        self.runs.labels(endpoint, outcome).inc()

    def ws_opened(self) -> None:
        """A WebSocket was accepted."""
        self._ws_open += 1
        self.ws_total.inc()
        self.ws_active.set(self._ws_open)
        self._ws_peak = max(self._ws_peak, self._ws_open)
        self.ws_peak.set(self._ws_peak)

    def ws_closed(self) -> None:
        """A WebSocket ended."""
        self._ws_open -= 1
        self.ws_active.set(self._ws_open)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
