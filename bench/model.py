"""The bench's own values: what a workload is asked to do (Options) and what it hands back."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.figures import Metric


@dataclass(frozen=True, slots=True)
class Options:
    root: Path  # a fresh temporary directory; each workload makes its own home under it
    db: str  # "sqlite" or "postgres"
    quick: bool
    repeat: int  # repetitions of each W1 (and W2, W6) measurement
    executor: str = "local"  # Slipstream's executor: "local"; "celery" once it exists


@dataclass(slots=True)
class WorkloadResult:
    workload: str  # W1, W2, ...
    title: str
    params: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    metrics: list[Metric] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # scheduler log lines that went wrong
    error: str | None = None  # set when the workload could not finish measuring
    seconds: float = 0.0  # how long the workload took to run, warm-ups included
    other_load_pct: float = 0.0  # % of a core used meanwhile by processes not the bench's

    def as_dict(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "title": self.title,
            "params": self.params,
            "metrics": [metric.as_dict() for metric in self.metrics],
            "problems": self.problems,
            "error": self.error,
            "seconds": self.seconds,
            "other_load_pct_of_a_core": self.other_load_pct,
            "raw": self.raw,
        }


def ms_between(earlier: datetime | None, later: datetime | None) -> float | None:
    """Milliseconds from one recorded time to another (None if either is missing)."""
    if earlier is None or later is None:
        return None
    return (later - earlier).total_seconds() * 1000.0


def ns_of(when: datetime | None) -> int | None:
    """A recorded time as nanoseconds since the epoch, comparable with time.time_ns()."""
    if when is None:
        return None
    return round(when.timestamp() * 1e6) * 1000


def ms_from_ns(earlier_ns: int | None, later_ns: int | None) -> float | None:
    if earlier_ns is None or later_ns is None:
        return None
    return (later_ns - earlier_ns) / 1e6
