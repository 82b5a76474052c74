"""Timetables: what a DAG's `schedule` means as data intervals. Pure functions of their inputs.

Every datetime going in is taken as UTC (naive ones are assumed to be UTC already) and every
datetime coming out is timezone-aware UTC. Cron expressions are evaluated in UTC.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from slipstream.errors import InvalidScheduleError

# Airflow's cron presets. "@continuous" is deliberately absent: it is refused with a reason.
CRON_PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}

_ONE_MICROSECOND = timedelta(microseconds=1)


def as_utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime; a naive value is taken to be UTC already."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@dataclass(frozen=True)
class DataInterval:
    """The span of data one run covers: [start, end)."""

    start: datetime
    end: datetime


class Timetable(ABC):
    """How runs are laid out in time. Subclasses are immutable values."""

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
        """The latest aligned interval whose end is <= now (what catchup=False runs next).
        With `start_date`, intervals starting before it do not count (None if none is left)."""

    @abstractmethod
    def manual_interval(self, at: datetime) -> DataInterval:
        """The data interval of a run triggered by hand at `at` (Airflow 2 semantics)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Timetable) and self.to_spec() == other.to_spec()

    def __hash__(self) -> int:
        return hash(repr(sorted(self.to_spec().items())))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary!r})"


class NullTimetable(Timetable):
    """schedule=None: runs only when triggered."""

    @property
    def summary(self) -> str | None:
        return None

    def to_spec(self) -> dict[str, Any]:
        return {"type": "none"}

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        return None

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        return None

    def manual_interval(self, at: datetime) -> DataInterval:
        at = as_utc(at)
        return DataInterval(at, at)


class OnceTimetable(Timetable):
    """@once: a single run at start_date, then nothing."""

    @property
    def summary(self) -> str | None:
        return "@once"

    def to_spec(self) -> dict[str, Any]:
        return {"type": "once"}

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        if prev_end is not None or start_date is None:
            return None
        start = as_utc(start_date)
        return DataInterval(start, start)

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        # The one run happens whether or not the DAG catches up, so the answer is the same.
        if start_date is None or as_utc(start_date) > as_utc(now):
            return None
        start = as_utc(start_date)
        return DataInterval(start, start)

    def manual_interval(self, at: datetime) -> DataInterval:
        at = as_utc(at)
        return DataInterval(at, at)


class CronTimetable(Timetable):
    """Intervals between consecutive fire times of a cron expression, in UTC."""

    def __init__(self, expression: str, *, preset: str | None = None) -> None:
        self.expression = expression
        self.preset = preset

    @property
    def summary(self) -> str | None:
        return self.preset or self.expression

    def to_spec(self) -> dict[str, Any]:
        return {"type": "cron", "expression": self.expression, "preset": self.preset}

    def _first_at_or_after(self, moment: datetime) -> datetime:
        from croniter import croniter  # deferred: it costs ~70ms and `import slipstream` is hot

        # croniter's get_next is strictly after its start, so step back a hair to include `moment`.
        fire: datetime = croniter(self.expression, as_utc(moment) - _ONE_MICROSECOND).get_next(
            datetime
        )
        return fire.astimezone(UTC)

    def _last_at_or_before(self, moment: datetime) -> datetime:
        from croniter import croniter

        fire: datetime = croniter(self.expression, as_utc(moment) + _ONE_MICROSECOND).get_prev(
            datetime
        )
        return fire.astimezone(UTC)

    def _after(self, fire_time: datetime) -> datetime:
        return self._first_at_or_after(fire_time + _ONE_MICROSECOND)

    def _before(self, fire_time: datetime) -> datetime:
        return self._last_at_or_before(fire_time - _ONE_MICROSECOND)

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        candidates = [as_utc(d) for d in (prev_end, start_date) if d is not None]
        if not candidates:
            return None
        start = self._first_at_or_after(max(candidates))
        return DataInterval(start, self._after(start))

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        end = self._last_at_or_before(now)
        start = self._before(end)
        if start_date is not None and start < as_utc(start_date):
            return None
        return DataInterval(start, end)

    def manual_interval(self, at: datetime) -> DataInterval:
        end = self._last_at_or_before(at)
        return DataInterval(self._before(end), end)


class DeltaTimetable(Timetable):
    """Fixed-length intervals laid end to end from start_date: [start + k*delta, +delta)."""

    def __init__(self, delta: timedelta) -> None:
        self.delta = delta

    @property
    def summary(self) -> str | None:
        return str(self.delta)

    def to_spec(self) -> dict[str, Any]:
        return {"type": "delta", "seconds": self.delta.total_seconds()}

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        if prev_end is None:
            if start_date is None:
                return None
            start = as_utc(start_date)
        else:
            start = as_utc(prev_end)
            if start_date is not None and start < as_utc(start_date):
                start = as_utc(start_date)
        return DataInterval(start, start + self.delta)

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        now = as_utc(now)
        if start_date is None:
            return DataInterval(now - self.delta, now)
        origin = as_utc(start_date)
        if now < origin + self.delta:
            return None
        complete = (now - origin) // self.delta
        end = origin + complete * self.delta
        return DataInterval(end - self.delta, end)

    def manual_interval(self, at: datetime) -> DataInterval:
        at = as_utc(at)
        return DataInterval(at - self.delta, at)


def _cron_timetable(expression: str, *, preset: str | None, dag_id: str | None) -> CronTimetable:
    from croniter import CroniterError, croniter

    try:
        croniter(expression, datetime(2000, 1, 1, tzinfo=UTC))
    except (CroniterError, ValueError, KeyError) as exc:
        raise InvalidScheduleError(preset or expression, str(exc), dag_id=dag_id) from exc
    return CronTimetable(expression, preset=preset)


def timetable_from_schedule(schedule: object, *, dag_id: str | None = None) -> Timetable:
    """Turn a DAG's `schedule` argument into a Timetable, or raise InvalidScheduleError."""
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, Timetable):
        return schedule
    if isinstance(schedule, timedelta):
        if schedule <= timedelta(0):
            raise InvalidScheduleError(
                schedule, "a timedelta schedule must be positive", dag_id=dag_id
            )
        return DeltaTimetable(schedule)
    if isinstance(schedule, str):
        text = schedule.strip()
        if text == "@once":
            return OnceTimetable()
        if text == "@continuous":
            raise InvalidScheduleError(schedule, "@continuous is not supported", dag_id=dag_id)
        if text in CRON_PRESETS:
            return _cron_timetable(CRON_PRESETS[text], preset=text, dag_id=dag_id)
        if text.startswith("@"):
            known = ", ".join(["@once", *CRON_PRESETS])
            raise InvalidScheduleError(schedule, f"unknown preset; known: {known}", dag_id=dag_id)
        if not text:
            raise InvalidScheduleError(schedule, "empty cron expression", dag_id=dag_id)
        return _cron_timetable(text, preset=None, dag_id=dag_id)
    reason = f"expected None, a preset, a cron string or a timedelta, not {type(schedule).__name__}"
    raise InvalidScheduleError(schedule, reason, dag_id=dag_id)


def timetable_from_spec(spec: dict[str, Any]) -> Timetable:
    """Rebuild a timetable from `Timetable.to_spec()` output."""
    kind = spec.get("type")
    if kind == "none":
        return NullTimetable()
    if kind == "once":
        return OnceTimetable()
    if kind == "cron":
        return CronTimetable(str(spec["expression"]), preset=spec.get("preset"))
    if kind == "delta":
        return DeltaTimetable(timedelta(seconds=float(spec["seconds"])))
    raise InvalidScheduleError(spec, f"unknown timetable type {kind!r}")
