"""What a measured figure is compared with: Slipstream's targets and Airflow 3.3.2's figures.

Both come from /work/shared/design/performance.md (targets for this machine, SQLite, local
executor; Airflow 3.3.2 standalone measured on the same kind of 2-core machine, 2026-11-26).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

AIRFLOW_SOURCE = (
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
class AirflowFigure:
    value: float | None  # in the unit of the metric it is set beside; None: no ratio
    text: str  # as performance.md states it


# Airflow 3.3.2 as measured (values in the unit of the metric they are compared with).
AIRFLOW_HOP_MS = AirflowFigure(1000.0, "about 1 s per hop")
AIRFLOW_CHAIN20_S = AirflowFigure(22.0, "21.1 s and 22.9 s")
AIRFLOW_CHAIN100_S = AirflowFigure(None, "not measured (about 1 s per hop)")
AIRFLOW_FIRST_TASK_MS = AirflowFigure(1100.0, "1.04-1.14 s (p50 about 1.1 s)")
AIRFLOW_SUCCESS_MS = AirflowFigure(2150.0, "about 2.15 s")
AIRFLOW_FANOUT100_S = AirflowFigure(17.15, "16.2 s and 18.1 s")
AIRFLOW_FANOUT1000_S = AirflowFigure(None, "not measured")
AIRFLOW_TASKS_PER_S = AirflowFigure(6.0, "about 6 tasks/s (fan-out of 100)")
AIRFLOW_IDLE_PROCESSES = AirflowFigure(40.0, "40 processes")
AIRFLOW_IDLE_PSS_MB = AirflowFigure(1102.0, "1,102 MB PSS")
AIRFLOW_IDLE_CPU_PCT = AirflowFigure(5.3, "5.3% of a core")
AIRFLOW_STARTUP_S = AirflowFigure(13.5, "13.5 s (command to healthy API)")

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


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the results table."""

    workload: str  # W1, W2, W3, W5, W6
    name: str
    value: float | None
    unit: str
    source: str  # "bench clock", "probe", "records" or "/proc"
    target: Target | None = None
    airflow: AirflowFigure | None = None
    higher_is_better: bool = False
    detail: bool = False  # a diagnostic figure: in the files, not in the printed table

    @property
    def status(self) -> str:
        if self.target is None or self.value is None:
            return ""
        return "ok" if self.target.met_by(self.value) else "MISS"

    @property
    def times_better(self) -> float | None:
        """How many times better than Airflow (> 1: Slipstream is better)."""
        if self.airflow is None or self.airflow.value is None or not self.value:
            return None
        if self.higher_is_better:
            return self.value / self.airflow.value
        return self.airflow.value / self.value

    def as_dict(self) -> dict[str, object]:
        return {
            "workload": self.workload,
            "name": self.name,
            "value": self.value,
            "unit": self.unit,
            "source": self.source,
            "target": self.target.text if self.target else None,
            "status": self.status,
            "airflow": self.airflow.text if self.airflow else None,
            "airflow_value": self.airflow.value if self.airflow else None,
            "times_better_than_airflow": self.times_better,
            "detail": self.detail,
        }


# The REST API (W3 through HTTP, W4 burst, W7 trigger rate).
AIRFLOW_W7_RATE = AirflowFigure(18.9, "18.9/s over 300 (DAG paused)")
AIRFLOW_W7_P99_MS = AirflowFigure(76.0, "p99 76 ms")
AIRFLOW_W7_ERRORS = AirflowFigure(None, "2 of 300 answered HTTP 500")
AIRFLOW_W7_EXECUTING_RATE = AirflowFigure(50.0, "about 50/s (first 100 requests)")
AIRFLOW_W4 = AirflowFigure(None, "a 500 after a 30 s hang; scheduler died; runs never ran")
TARGET_W7_TOKEN_RATE = Target(">=", 800.0)
TARGET_W7_BASIC_RATE = Target(">=", 550.0)
TARGET_W7_P99_MS = Target("<=", 10.0)
TARGET_ZERO = Target("<=", 0.0)
TARGET_W4_DRAIN_S = Target("<", 20.0)
