"""The query filters of the /api/v1 listings, each declared once as a dependency (a dataclass
whose fields FastAPI reads as query parameters, in field order): the date bounds every listing
of runs or task instances takes, and what runs and task instances add to them. The batch
routes take the same bounds in their bodies; `bounds_from` checks both alike.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Query

from slipstream.api.routes.v1.common import optional_datetime
from slipstream.core.states import TaskState
from slipstream.errors import InvalidInputError

Bounds = dict[str, tuple[datetime | None, datetime | None]]

# The store's date columns -> the prefix of their `_gte`/`_lte` parameters (Airflow's names).
_BOUND_PREFIX = {
    "logical_date": "execution_date",
    "start_date": "start_date",
    "end_date": "end_date",
    "updated_at": "updated_at",
}


def bounds_from(pairs: dict[str, tuple[str | None, str | None]]) -> Bounds:
    """Query or body date bounds, each parsed (400 naming the field for a naive one)."""
    parsed = {}
    for name, (low, high) in pairs.items():
        prefix = _BOUND_PREFIX[name]
        parsed[name] = (
            optional_datetime(low, f"{prefix}_gte"),
            optional_datetime(high, f"{prefix}_lte"),
        )
    return parsed


@dataclass(frozen=True, slots=True)
class DateFilters:
    """`<date>_gte` / `<date>_lte`: a listing's dates within bounds (RFC 3339, with a zone)."""

    execution_date_gte: str | None = None
    execution_date_lte: str | None = None
    start_date_gte: str | None = None
    start_date_lte: str | None = None
    end_date_gte: str | None = None
    end_date_lte: str | None = None
    updated_at_gte: str | None = None
    updated_at_lte: str | None = None

    def bounds(self) -> Bounds:
        return bounds_from(
            {
                "logical_date": (self.execution_date_gte, self.execution_date_lte),
                "start_date": (self.start_date_gte, self.start_date_lte),
                "end_date": (self.end_date_gte, self.end_date_lte),
                "updated_at": (self.updated_at_gte, self.updated_at_lte),
            }
        )


@dataclass(frozen=True, slots=True)
class RunFilters(DateFilters):
    """A listing of DAG runs: the date bounds, their states and the order."""

    state: Annotated[list[str] | None, Query()] = None
    order_by: str | None = None


@dataclass(frozen=True, slots=True)
class TaskInstanceFilters(DateFilters):
    """A listing of task instances: the date bounds, the duration in seconds, and any of the
    states, pools, queues or executors given (each parameter may repeat)."""

    duration_gte: float | None = None
    duration_lte: float | None = None
    state: Annotated[list[str] | None, Query()] = None
    pool: Annotated[list[str] | None, Query()] = None
    queue: Annotated[list[str] | None, Query()] = None
    executor: Annotated[list[str] | None, Query()] = None

    @property
    def duration(self) -> tuple[float | None, float | None]:
        return self.duration_gte, self.duration_lte

    @property
    def states(self) -> list[TaskState] | None:
        return parse_states(self.state)


@dataclass(frozen=True, slots=True)
class MappedInstanceFilters(TaskInstanceFilters):
    """listMapped: a task instance listing's filters, and the order of the instances."""

    order_by: str | None = None


RunFiltersDep = Annotated[RunFilters, Depends()]
TaskInstanceFiltersDep = Annotated[TaskInstanceFilters, Depends()]
MappedInstanceFiltersDep = Annotated[MappedInstanceFilters, Depends()]


_STATE_NAMES = {s.value for s in TaskState} | {"null", ""}


def parse_states(raw: Sequence[str | None] | None) -> list[TaskState] | None:
    """Airflow's task-instance state filter: `none`, `null` or empty for no state."""
    if not raw:
        return None
    found = []
    for value in raw:
        name = (value or "").strip().lower()
        if name not in _STATE_NAMES:
            raise InvalidInputError(
                f"'{value}' is not one of {sorted(s.value for s in TaskState)} - 'state'",
                field="state",
            )
        found.append(TaskState.NONE if name in ("", "null") else TaskState(name))
    return found
