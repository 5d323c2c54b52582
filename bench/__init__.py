"""Benchmarks: `python -m bench.<name>` (not timed tests)."""
