"""Benchmarks: scripts that print figures against stated targets (docs/performance.md)."""
