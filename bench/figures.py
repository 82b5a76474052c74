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


# Target.of for a target on a figure's multiple of its floor measured in this run.
FLOOR = "floor"


@dataclass(frozen=True, slots=True)
class Target:
    """What a figure should be: `op limit` on the figure itself; with `of=FLOOR`, on its
    multiple of its floor measured in the same run (bench.floors); with `of=<peer label>`, on
    how many times better it is than that peer measured in the same run (never a recorded
    figure)."""

    op: str  # "<=", "<" or ">="
    limit: float
    of: str | None = None

    @property
    def text(self) -> str:
        if self.of is None:
            return f"{self.op} {self.limit:g}"
        return f"{self.op} {self.limit:g}x {self.of}"

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
    "W2.fanout10000.e2e_p50",
    "W2.scheduler_peak_rss_mb",
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


# Slipstream's targets on this machine: performance.md's "Targets, second round"; where that
# round says nothing (W3 success, W6 first success, W7 Basic and p99), the first round's.
TARGET_HOP_P50 = Target("<=", 2.0, FLOOR)  # of the warm-worker fork floor
TARGET_CHAIN20_VS_AIRFLOW = Target(">=", 200.0, AIRFLOW_LABEL)
TARGET_FANOUT1000_S = Target("<", 2.0)
TARGET_FANOUT10000_S = Target("<", 20.0)
TARGET_SCHEDULER_RSS_MB = Target("<", 300.0)
TARGET_FIRST_TASK_P50_MS = Target("<=", 5.0)
TARGET_FIRST_TASK_P99_MS = Target("<=", 20.0)
TARGET_SUCCESS_P50_MS = Target("<=", 50.0)
TARGET_IDLE_PROCESSES = Target("<=", 5.0)
TARGET_IDLE_PSS_MB = Target("<=", 200.0)
TARGET_IDLE_CPU_PCT = Target("<", 1.0)
TARGET_STARTUP_S = Target("<", 1.0)
TARGET_FIRST_SUCCESS_S = Target("<", 2.0)

# Converts a figure into its floor's unit before dividing: (figure unit, floor unit) -> factor.
_UNIT_SCALE = {("ms", "ms"): 1.0, ("s", "ms"): 1000.0, ("/s", "/s"): 1.0}


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
    floor: str | None = None  # the key of the floor (bench.floors) it is also read against
    peer_target: Target | None = None  # a second target, against a peer (Target.of its label)
    floor_value: float | None = None  # that floor in this run (set by bench.floors.apply)
    floor_unit: str = ""

    @property
    def targets(self) -> list[Target]:
        return [t for t in (self.target, self.peer_target) if t is not None]

    @property
    def target_text(self) -> str:
        return "; ".join(t.text for t in self.targets)

    @property
    def multiple(self) -> float | None:
        """The figure over its floor of this run (for a rate: the fraction of the floor's)."""
        if self.value is None or self.floor is None or not self.floor_value:
            return None
        scale = _UNIT_SCALE.get((self.unit, self.floor_unit))
        if scale is None:
            raise ValueError(f"{self.name}: no way from {self.unit!r} to {self.floor_unit!r}")
        return self.value * scale / self.floor_value

    def judged(self, target: Target) -> float | None:
        """What `target` is judged on: the figure, its multiple of its floor, or how many times
        better it is than a peer measured in this run; None when there is none to judge."""
        if self.value is None:
            return None
        if target.of is None:
            return self.value
        if target.of == FLOOR:
            return self.multiple
        figure = self.compare.get(target.of)
        if figure is None or not figure.measured:
            return None
        return self.times_better(target.of)

    @property
    def status(self) -> str:
        """Whether the targets are met: "ok" if every one that can be judged in this run is,
        "MISS" if one is not, "" if none can be (no target, no figure, no floor, no peer)."""
        met = [t.met_by(v) for t in self.targets if (v := self.judged(t)) is not None]
        if not met:
            return ""
        return "ok" if all(met) else "MISS"

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
            "target": self.target_text or None,
            "status": self.status,
            "floor": self.floor,
            "floor_value": self.floor_value,
            "x_floor": self.multiple,
            "key": self.key,
            "detail": self.detail,
            "peers": {
                label: {**figure.as_dict(), "times_better": self.times_better(label)}
                for label, figure in self.compare.items()
            },
        }


# The REST API (W4 burst, W7 trigger rate).
TARGET_W7_TOKEN_RATE = Target(">=", 0.5, FLOOR)  # of the trivial-GET rate
TARGET_W7_TOKEN_VS_AIRFLOW = Target(">=", 20.0, AIRFLOW_LABEL)
TARGET_W7_BASIC_RATE = Target(">=", 550.0)
TARGET_W7_P99_MS = Target("<=", 10.0)
TARGET_ZERO = Target("<=", 0.0)
TARGET_W4_DRAIN_S = Target("<", 60.0)  # 10,000 triggers (the full run)
TARGET_W4_DRAIN_QUICK_S = Target("<", 20.0)  # 300 (quick): the first round's, set for 1,000
