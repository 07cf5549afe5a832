"""Benchmarks: speed measured side by side against a baseline (never in tests)."""
