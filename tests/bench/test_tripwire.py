"""The bench's regression tripwire: a figure trips it only when it is more than the factor off
its target, in the direction that target cares about; errors trip it at any count."""

from __future__ import annotations

from bench.__main__ import tripwire_breaches
from bench.figures import Metric, Target
from bench.model import WorkloadResult


def _result(*metrics: Metric) -> list[WorkloadResult]:
    result = WorkloadResult("W7", "trigger rate")
    result.metrics = list(metrics)
    return [result]


def test_figures_within_the_factor_pass_even_when_they_miss() -> None:
    results = _result(
        Metric("W7", "token rate", 160.0, "/s", "bench clock", Target(">=", 800.0)),
        Metric("W7", "p99", 50.0, "ms", "bench clock", Target("<=", 10.0)),
        Metric("W7", "non-2xx", 0.0, "", "bench clock", Target("<=", 0.0)),
        Metric("W7", "no target", 1e9, "ms", "bench clock"),
    )
    assert tripwire_breaches(results, 5) == []


def test_figures_beyond_the_factor_trip_it_each_named() -> None:
    results = _result(
        Metric("W7", "token rate", 159.0, "/s", "bench clock", Target(">=", 800.0)),
        Metric("W7", "p99", 51.0, "ms", "bench clock", Target("<=", 10.0)),
        Metric("W7", "non-2xx", 1.0, "", "bench clock", Target("<=", 0.0)),
    )
    breaches = tripwire_breaches(results, 5)
    assert len(breaches) == 3
    assert "W7 token rate" in breaches[0] and ">= 800" in breaches[0]
    assert "W7 p99" in breaches[1] and "<= 10" in breaches[1]
    assert "W7 non-2xx" in breaches[2]


def test_a_breach_under_other_load_says_how_busy_the_machine_was() -> None:
    results = _result(Metric("W7", "p99", 51.0, "ms", "bench clock", Target("<=", 10.0)))
    assert "other processes" not in tripwire_breaches(results, 5)[0]
    results[0].other_load_pct = 150.0
    [breach] = tripwire_breaches(results, 5)
    assert breach.endswith("(other processes used 150% of a core meanwhile)")
