"""What the benchmarks share: turning measurements into the figures they print."""

from __future__ import annotations


def percentile(values: list[float], pct: float) -> float:
    """@return: the C{pct}th percentile of C{values} (nearest rank, no interpolation)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * pct / 100))]
