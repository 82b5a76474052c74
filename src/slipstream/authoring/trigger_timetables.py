"""Timetables that start a run at a moment rather than after an interval: cron and delta
triggers, a list of event dates, and @continuous. Airflow's classes of the same names.

A trigger's run is due at its fire time; its data interval is [fire - interval, fire] (zero
length by default) and, as in Airflow 2, its logical date is the interval's start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta, tzinfo
from typing import Any

from slipstream.authoring.cron import CRON_PRESETS, CronSchedule, timezone_name
from slipstream.authoring.timetable import DataInterval, Timetable, as_utc
from slipstream.errors import InvalidScheduleError


def _as_interval(value: object, owner: str) -> timedelta:
    if not isinstance(value, timedelta) or value < timedelta(0):
        raise InvalidScheduleError(owner, f"interval must be a non-negative timedelta: {value!r}")
    return value


class _FireTimes(Timetable):
    """A trigger timetable defined by its fire times: `_after` (strictly) and `_at_or_before`."""

    interval: timedelta = timedelta(0)

    def _after(self, moment: datetime) -> datetime | None:
        raise NotImplementedError

    def _at_or_before(self, moment: datetime) -> datetime | None:
        raise NotImplementedError

    def _at_or_after(self, moment: datetime) -> datetime | None:
        return self._after(moment - timedelta(microseconds=1))

    def _run_at(self, fire: datetime) -> DataInterval:
        return DataInterval(fire - self.interval, fire, run_after=fire)

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        candidates = []
        if prev_end is not None:
            candidates.append(self._after(as_utc(prev_end)))
        if start_date is not None:
            candidates.append(self._at_or_after(as_utc(start_date)))
        fires = [fire for fire in candidates if fire is not None]
        if len(fires) < len(candidates) or not fires:
            return None
        return self._run_at(max(fires))

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        fire = self._at_or_before(as_utc(now))
        if fire is None or (start_date is not None and fire < as_utc(start_date)):
            return None
        return self._run_at(fire)

    def manual_interval(self, at: datetime) -> DataInterval:
        at = as_utc(at)
        return DataInterval(at - self.interval, at)


class CronTriggerTimetable(_FireTimes):
    """A run at each fire time of a cron expression, in `timezone` (Airflow's
    CronTriggerTimetable). `run_immediately` matters only for a DAG without start_date: True
    runs the latest past fire at once; a timedelta runs it if it is at most that old; False
    runs it if it is within a tenth of the gap between fires (at least 5 minutes), as Airflow."""

    def __init__(
        self,
        cron: str,
        *,
        timezone: str | tzinfo | None = None,
        interval: timedelta = timedelta(0),
        run_immediately: bool | timedelta = False,
    ) -> None:
        self.expression = CRON_PRESETS.get(cron, cron)
        self.timezone = timezone_name(timezone)
        self.interval = _as_interval(interval, cron)
        self.run_immediately = run_immediately
        self._cron = CronSchedule(self.expression, self.timezone)
        self._label = cron

    @property
    def summary(self) -> str | None:
        return self._label

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "cron_trigger",
            "expression": self.expression,
            "label": self._label,
            "timezone": self.timezone,
            "interval": self.interval.total_seconds(),
            "run_immediately": _immediately_spec(self.run_immediately),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> CronTriggerTimetable:
        built = cls(
            str(spec["expression"]),
            timezone=spec.get("timezone"),
            interval=timedelta(seconds=float(spec.get("interval") or 0)),
            run_immediately=_immediately_value(spec.get("run_immediately", False)),
        )
        built._label = str(spec.get("label") or spec["expression"])
        return built

    def _after(self, moment: datetime) -> datetime | None:
        return self._cron.after(moment)

    def _at_or_before(self, moment: datetime) -> datetime | None:
        return self._cron.at_or_before(moment)

    def first_interval_without_start(self, now: datetime) -> DataInterval | None:
        """The first run of a DAG with no start_date (Airflow's run_immediately rule)."""
        now = as_utc(now)
        past, upcoming = self._cron.at_or_before(now), self._cron.after(now)
        if self.run_immediately is True:
            return self._run_at(past)
        if isinstance(self.run_immediately, timedelta):
            buffer = self.run_immediately
        else:
            buffer = max((upcoming - past) / 10, timedelta(minutes=5))
        return self._run_at(past if now - past <= buffer else upcoming)


class MultipleCronTriggerTimetable(_FireTimes):
    """A run at each fire time of any of several cron expressions (Airflow 3's class)."""

    def __init__(
        self,
        *crons: str,
        timezone: str | tzinfo | None = None,
        interval: timedelta = timedelta(0),
        run_immediately: bool | timedelta = False,
    ) -> None:
        if not crons:
            raise InvalidScheduleError("MultipleCronTriggerTimetable()", "no cron expression")
        self.triggers = [
            CronTriggerTimetable(
                c, timezone=timezone, interval=interval, run_immediately=run_immediately
            )
            for c in crons
        ]
        self.timezone = timezone_name(timezone)
        self.interval = _as_interval(interval, crons[0])
        self.run_immediately = run_immediately

    @property
    def summary(self) -> str | None:
        return ", ".join(str(t.summary) for t in self.triggers)

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "multiple_cron_trigger",
            "expressions": [t.expression for t in self.triggers],
            "timezone": self.timezone,
            "interval": self.interval.total_seconds(),
            "run_immediately": _immediately_spec(self.run_immediately),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> MultipleCronTriggerTimetable:
        return cls(
            *[str(e) for e in spec["expressions"]],
            timezone=spec.get("timezone"),
            interval=timedelta(seconds=float(spec.get("interval") or 0)),
            run_immediately=_immediately_value(spec.get("run_immediately", False)),
        )

    def _after(self, moment: datetime) -> datetime | None:
        return min(t._cron.after(moment) for t in self.triggers)

    def _at_or_before(self, moment: datetime) -> datetime | None:
        return max(t._cron.at_or_before(moment) for t in self.triggers)


class DeltaTriggerTimetable(_FireTimes):
    """A run every `delta` from start_date (Airflow 3's DeltaTriggerTimetable). Without
    catchup the latest past fire on that grid runs (Airflow runs "now", which drifts)."""

    def __init__(self, delta: timedelta, *, interval: timedelta = timedelta(0)) -> None:
        if not isinstance(delta, timedelta) or delta <= timedelta(0):
            raise InvalidScheduleError(delta, "a delta trigger must be a positive timedelta")
        self.delta = delta
        self.interval = _as_interval(interval, str(delta))

    @property
    def summary(self) -> str | None:
        return str(self.delta)

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "delta_trigger",
            "seconds": self.delta.total_seconds(),
            "interval": self.interval.total_seconds(),
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> DeltaTriggerTimetable:
        return cls(
            timedelta(seconds=float(spec["seconds"])),
            interval=timedelta(seconds=float(spec.get("interval") or 0)),
        )

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        if prev_end is None:
            return None if start_date is None else self._run_at(as_utc(start_date))
        fire = as_utc(prev_end) + self.delta
        if start_date is not None and fire < as_utc(start_date):
            fire = as_utc(start_date)
        return self._run_at(fire)

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        now = as_utc(now)
        if start_date is None:
            return self._run_at(now)
        origin = as_utc(start_date)
        if now < origin:
            return None
        return self._run_at(origin + ((now - origin) // self.delta) * self.delta)


class EventsTimetable(_FireTimes):
    """A run at each of a list of moments (Airflow's EventsTimetable). A run triggered by hand
    covers the latest past event when `restrict_to_events`, else its own moment."""

    def __init__(
        self,
        event_dates: Iterable[datetime],
        restrict_to_events: bool = False,
        presorted: bool = False,
        description: str | None = None,
    ) -> None:
        dates = [as_utc(d) for d in event_dates]
        if not all(isinstance(d, datetime) for d in dates):
            raise InvalidScheduleError(event_dates, "event_dates must be datetimes")
        self.event_dates = dates if presorted else sorted(dates)
        self.restrict_to_events = bool(restrict_to_events)
        self.description = description

    @property
    def summary(self) -> str | None:
        return self.description or f"{len(self.event_dates)} events"

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "events",
            "events": [d.isoformat() for d in self.event_dates],
            "restrict_to_events": self.restrict_to_events,
            "description": self.description,
        }

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> EventsTimetable:
        return cls(
            [datetime.fromisoformat(d) for d in spec["events"]],
            restrict_to_events=bool(spec.get("restrict_to_events")),
            presorted=True,
            description=spec.get("description"),
        )

    def _after(self, moment: datetime) -> datetime | None:
        return next((d for d in self.event_dates if d > moment), None)

    def _at_or_before(self, moment: datetime) -> datetime | None:
        return next((d for d in reversed(self.event_dates) if d <= moment), None)

    def manual_interval(self, at: datetime) -> DataInterval:
        at = as_utc(at)
        if self.restrict_to_events:
            event = self._at_or_before(at)
            if event is not None:
                return DataInterval(event, event)
        return DataInterval(at, at)


class ContinuousTimetable(Timetable):
    """@continuous: a new run as soon as the previous one ends (max_active_runs must be 1)."""

    is_continuous = True
    active_runs_limit = 1

    @property
    def summary(self) -> str | None:
        return "@continuous"

    def to_spec(self) -> dict[str, Any]:
        return {"type": "continuous"}

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        return None  # never by the clock: see continuous_interval

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        return None

    def manual_interval(self, at: datetime) -> DataInterval:
        at = as_utc(at)
        return DataInterval(at, at)

    def continuous_interval(
        self, prev_end: datetime | None, start_date: datetime | None, now: datetime
    ) -> DataInterval | None:
        now = as_utc(now)
        if start_date is not None and now < as_utc(start_date):
            return None
        if prev_end is not None and as_utc(prev_end) >= now:
            return None  # the previous run began this very instant: a run needs a span
        start = as_utc(prev_end) if prev_end is not None else as_utc(start_date or now)
        return DataInterval(min(start, now), now, run_after=now)


def _immediately_spec(value: bool | timedelta) -> bool | float:
    return value.total_seconds() if isinstance(value, timedelta) else bool(value)


def _immediately_value(value: object) -> bool | timedelta:
    if isinstance(value, bool):
        return value
    return timedelta(seconds=float(value))  # type: ignore[arg-type]
