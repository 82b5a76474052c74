"""What a measured figure is compared with: Slipstream's targets, the peers' figures for the same
metric key, and Airflow 3.3.2's figures as recorded in performance.md (used only when the bench
runs without the Airflow peer).

Targets and recorded figures come from /work/shared/design/performance.md (this machine, SQLite,
local executor; Airflow 3.3.2 standalone measured on the same kind of 2-core machine).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

RECORDED_AIRFLOW_SOURCE = (
    "shared/design/performance.md: Airflow 3.3.2 standalone (SQLite, LocalExecutor, defaults,"
    " Task SDK @task no-ops), two runs on a 2-core / 24 GiB machine, 2026-11-26"
)


@dataclass(frozen=True, slots=True)
class Target:
    op: str  # "<=", "<" or ">="
    limit: float

    @property
    def text(self) -> str:
        return f"{self.op} {self.limit:g}"

    def far_off(self, value: float, factor: float) -> bool:
        """Whether `value` misses the target by more than `factor` times (the regression
        tripwire): a limit of 0 (errors, lost runs) is missed by any value above it."""
        if self.op == ">=":
            return value < self.limit / factor
        return value > self.limit * factor

    def met_by(self, value: float) -> bool:
        compare: Callable[[float, float], bool] = {
            "<=": operator.le,
            "<": operator.lt,
            ">=": operator.ge,
        }[self.op]
        return compare(value, self.limit)


@dataclass(frozen=True, slots=True)
class PeerFigure:
    """One cell of a peer's column: a figure measured on a peer in this run, or recorded earlier
    (performance.md), or the reason there is none."""

    value: float | None  # in the unit of the Slipstream metric it stands beside
    text: str = ""  # how the cell reads when the value alone would mislead, or why it is empty
    measured: bool = True  # False: recorded in performance.md, not measured in this run
    failed: bool = False  # the peer failed to produce this figure (an error, a crash, a timeout)

    @classmethod
    def failure(cls, why: str) -> PeerFigure:
        return cls(None, f"FAILED: {why}", failed=True)

    @classmethod
    def unsupported(cls, why: str) -> PeerFigure:
        return cls(None, f"n/a: {why}")

    @classmethod
    def recorded(cls, value: float | None, text: str) -> PeerFigure:
        return cls(value, text, measured=False)

    def as_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "text": self.text,
            "measured": self.measured,
            "failed": self.failed,
        }


AIRFLOW_LABEL = "Airflow 3.3.2"

# The figures of the headline table (README, top of the .md) and of the bar chart: one or a few
# per workload, so both stay readable; the full table has every figure.
HEADLINE_KEYS = (
    "W1.chain20.e2e_p50",
    "W1.chain20.hop_p50",
    "W1.chain100.e2e_p50",
    "W2.fanout100.e2e_p50",
    "W2.fanout1000.e2e_p50",
    "W3.first_task_p50",
    "W3.first_task_p99",
    "W3.success_p50",
    "W4.accepted_per_s",
    "W4.non_2xx",
    "W4.never_finished",
    "W4.drained_s",
    "W5.processes",
    "W5.pss_mb",
    "W5.cpu_pct",
    "W6.healthy_s",
    "W6.first_success_s",
    "W7.seq_token.rate",
    "W7.seq_token.p99",
    "W7.seq_basic.rate",
    "W7.c8_token.rate",
    "W7.executing.rate",
)

# Airflow 3.3.2 as recorded in performance.md, by metric key, in the metric's unit: the Airflow
# column when the bench runs without the Airflow peer (`--peers none`), marked as recorded.
RECORDED_AIRFLOW: dict[str, PeerFigure] = {
    "W1.chain20.e2e_p50": PeerFigure.recorded(22.0, "21.1 s and 22.9 s"),
    "W1.chain20.hop_p50": PeerFigure.recorded(1000.0, "about 1 s per hop"),
    "W1.chain20.first_task_p50": PeerFigure.recorded(1100.0, "about 1.1 s"),
    "W1.chain100.hop_p50": PeerFigure.recorded(1000.0, "about 1 s per hop"),
    "W2.fanout100.e2e_p50": PeerFigure.recorded(17.15, "16.2 s and 18.1 s"),
    "W2.fanout100.tasks_per_s": PeerFigure.recorded(6.0, "about 6 tasks/s"),
    "W3.first_task_p50": PeerFigure.recorded(1100.0, "1.04-1.14 s"),
    "W3.success_p50": PeerFigure.recorded(2150.0, "about 2.15 s"),
    "W4.non_2xx": PeerFigure.recorded(None, "a 500 after a 30 s hang; scheduler died"),
    "W4.never_finished": PeerFigure.recorded(None, "runs never ran"),
    "W5.processes": PeerFigure.recorded(40.0, "40 processes"),
    "W5.pss_mb": PeerFigure.recorded(1102.0, "1,102 MB PSS"),
    "W5.cpu_pct": PeerFigure.recorded(5.3, "5.3% of a core"),
    "W6.healthy_s": PeerFigure.recorded(13.5, "13.5 s"),
    "W7.seq_token.rate": PeerFigure.recorded(18.9, "18.9/s over 300, DAG paused"),
    "W7.seq_token.p99": PeerFigure.recorded(76.0, "p99 76 ms"),
    "W7.executing.rate": PeerFigure.recorded(50.0, "about 50/s"),
    "W7.non_2xx": PeerFigure.recorded(2.0, "2 of 300 answered HTTP 500"),
}


# Slipstream's targets on this machine.
TARGET_HOP_P50_MS = Target("<=", 10.0)
TARGET_CHAIN20_S = Target("<", 0.4)
TARGET_FANOUT1000_S = Target("<", 3.0)
TARGET_FIRST_TASK_P50_MS = Target("<=", 20.0)
TARGET_FIRST_TASK_P99_MS = Target("<=", 100.0)
TARGET_SUCCESS_P50_MS = Target("<=", 50.0)
TARGET_IDLE_PROCESSES = Target("<=", 5.0)
TARGET_IDLE_PSS_MB = Target("<=", 150.0)
TARGET_IDLE_CPU_PCT = Target("<", 1.0)
TARGET_STARTUP_S = Target("<", 2.0)


@dataclass(slots=True)
class Metric:
    """One row of the results table: Slipstream's figure, its target, and the peers' figures
    for the same key (filled in by bench.compare once every workload has run)."""

    workload: str  # W1, W2, ...
    name: str
    value: float | None
    unit: str
    source: str  # "bench clock", "probe", "records" or "/proc"
    target: Target | None = None
    key: str | None = None  # what peers' figures are keyed by, e.g. "W1.chain20.e2e_p50"
    higher_is_better: bool = False
    detail: bool = False  # a diagnostic figure: in the files, not in the printed table
    compare: dict[str, PeerFigure] = field(default_factory=dict)  # peer label -> its figure

    @property
    def status(self) -> str:
        if self.target is None or self.value is None:
            return ""
        return "ok" if self.target.met_by(self.value) else "MISS"

    def times_better(self, label: str) -> float | None:
        """How many times better than the peer `label` (> 1: Slipstream is better)."""
        figure = self.compare.get(label)
        if figure is None or not figure.value or not self.value:
            return None
        if self.higher_is_better:
            return self.value / figure.value
        return figure.value / self.value

    def as_dict(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "target": self.target.text if self.target else None,
            "status": self.status,
            "key": self.key,
            "detail": self.detail,
            "peers": {
                label: {**figure.as_dict(), "times_better": self.times_better(label)}
                for label, figure in self.compare.items()
            },
        }


# The REST API (W4 burst, W7 trigger rate).
TARGET_W7_TOKEN_RATE = Target(">=", 800.0)
TARGET_W7_BASIC_RATE = Target(">=", 550.0)
TARGET_W7_P99_MS = Target("<=", 10.0)
TARGET_ZERO = Target("<=", 0.0)
TARGET_W4_DRAIN_S = Target("<", 20.0)
