"""Latency statistics of RPC bursts (pure): nearest-rank percentiles of round trips."""

from __future__ import annotations

from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, int(-(-fraction * len(sorted_values) // 1)))  # ceil(fraction * n), at least 1
    return sorted_values[min(rank, len(sorted_values)) - 1]


def latency_summary(latencies: Sequence[float]) -> dict[str, float | None]:
    """``p50_ms``, ``p90_ms``, ``p99_ms`` and ``max_ms`` of round trips given in ms (None each when empty)."""
    lat = sorted(latencies)

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {
        "p50_ms": ms(percentile(lat, 0.50)),
        "p90_ms": ms(percentile(lat, 0.90)),
        "p99_ms": ms(percentile(lat, 0.99)),
        "max_ms": ms(lat[-1] if lat else None),
    }
