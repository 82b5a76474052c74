"""Percentiles and summaries of raw samples.

Percentiles use the nearest-rank method: the p-th percentile of n sorted samples is the sample
at rank ceil(p/100 * n) (1-based), so it is always a value that was actually observed.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(samples: Sequence[float], p: float) -> float | None:
    """The nearest-rank p-th percentile (0 < p <= 100), or None without samples."""
    if not samples:
        return None
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    ordered = sorted(samples)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(samples: Sequence[float]) -> dict[str, float | int | None]:
    """n, min, p50, p95, p99, max and mean of the samples (None where there are none)."""
    if not samples:
        return {"n": 0, "min": None, "p50": None, "p95": None, "p99": None, "max": None}
    return {
        "n": len(samples),
        "min": min(samples),
        "p50": percentile(samples, 50),
        "p95": percentile(samples, 95),
        "p99": percentile(samples, 99),
        "max": max(samples),
        "mean": statistics.fmean(samples),
    }
