"""Test doubles shared by the test suite and bench/: fake LLM servers that speak
the real wire formats, a fake TTS engine behind the real interface, and a fake
edge-tts WebSocket server; also a raw TCP server for tests that write their own
bytes. Each lives in its own module."""
