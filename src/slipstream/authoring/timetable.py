"""The Timetable interface: what a DAG's schedule means as runs in time, and the data interval
each run covers. Every datetime going in is taken as UTC (naive ones are assumed to be UTC
already) and every datetime coming out is timezone-aware UTC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar


def as_utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class DataInterval:
    """The span of data one run covers: [start, end). Its start is the run's logical date;
    the run may be created once `due` has passed: its end, unless the timetable triggers at
    another moment (`run_after`, as Airflow's DagRunInfo has it)."""

    start: datetime
    end: datetime
    run_after: datetime | None = None

    @property
    def due(self) -> datetime:
        return self.run_after if self.run_after is not None else self.end


class Timetable(ABC):
    """How runs are laid out in time. Subclasses are immutable values, rebuilt in the scheduler
    from `to_spec()` alone (it imports no user code)."""

    # True for a timetable whose next run starts when the previous one ends (@continuous):
    # the scheduler asks `continuous_interval` instead of waiting for a time.
    is_continuous: ClassVar[bool] = False

    @property
    @abstractmethod
    def summary(self) -> str | None:
        """A short human form: "0 0 * * *", "@daily", "1 day, 0:00:00", "@once", or None."""

    @abstractmethod
    def to_spec(self) -> dict[str, Any]:
        """A JSON-able spec that `timetable_from_spec` turns back into an equal timetable."""

    @abstractmethod
    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        """The interval after the one ending at `prev_end`, or the first one at/after
        `start_date` when there was none. None when no further scheduled run exists.
        (end_date is the caller's to apply: it is a DAG property, not a timetable one.)"""

    @abstractmethod
    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        """The latest aligned interval due at or before now (what catchup=False runs next).
        With `start_date`, intervals starting before it do not count (None if none is left)."""

    @abstractmethod
    def manual_interval(self, at: datetime) -> DataInterval:
        """The data interval of a run triggered by hand at `at` (Airflow 2 semantics)."""

    def previous_schedule(self, moment: datetime) -> datetime | None:
        """The logical date of the scheduled run before the one at `moment` (Airflow 2's
        dag.previous_schedule: known for cron and timedelta schedules only)."""
        return None

    def first_interval_without_start(self, now: datetime) -> DataInterval | None:
        """The first run of a DAG that has no start_date and no run yet (None: it has none)."""
        return None

    def continuous_interval(
        self, prev_end: datetime | None, start_date: datetime | None, now: datetime
    ) -> DataInterval | None:
        """For a continuous timetable: the interval of the run to start now that none is
        active. Others never start runs this way."""
        return None

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timetable) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_spec().items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary!r})"
