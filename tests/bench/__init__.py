"""Benchmarks (scripts that print figures, not tests). ``python -m tests.bench [name ...]``."""
