"""Timetables: what a DAG's `schedule` means as data intervals. Pure functions of their inputs.

The interval timetables Airflow 2 gives a cron string, a timedelta, @once and None live here;
the trigger ones (and events, @continuous) in trigger_timetables.py; this module also turns a
`schedule=` argument or a serialized spec into one of them. Cron is evaluated in the DAG's
timezone (cron.py), UTC unless start_date or the timetable says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, tzinfo
from types import MappingProxyType
from typing import Any

from slipstream.authoring.asset_timetables import (
    AssetOrTimeSchedule,
    AssetOrTimeTimetable,
    AssetTriggeredTimetable,
    DatasetOrTimeSchedule,
    asset_timetable,
)
from slipstream.authoring.cron import CRON_PRESETS, CronSchedule, timezone_name
from slipstream.authoring.timetable import DataInterval, Timetable, as_utc
from slipstream.authoring.trigger_timetables import (
    ContinuousTimetable,
    CronTriggerTimetable,
    DeltaTriggerTimetable,
    EventsTimetable,
    MultipleCronTriggerTimetable,
)
from slipstream.errors import DagDefinitionError, InvalidScheduleError

__all__ = [
    "CRON_PRESETS",
    "ContinuousTimetable",
    "CronTimetable",
    "CronTriggerTimetable",
    "DataInterval",
    "DeltaTimetable",
    "DeltaTriggerTimetable",
    "EventsTimetable",
    "MultipleCronTriggerTimetable",
    "NullTimetable",
    "OnceTimetable",
    "Timetable",
    "as_utc",
    "timetable_from_schedule",
    "timetable_from_spec",
]


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
    """Intervals between consecutive fire times of a cron expression in a timezone: Airflow's
    CronDataIntervalTimetable, what a cron string or preset means (Airflow 2's reading)."""

    def __init__(
        self,
        expression: str,
        timezone: str | tzinfo | None = None,
        *,
        preset: str | None = None,
    ) -> None:
        self.expression = CRON_PRESETS.get(expression, expression)
        self.preset = (
            preset if preset is not None else (expression if expression in CRON_PRESETS else None)
        )
        self.timezone = timezone_name(timezone)
        self._cron = CronSchedule(self.expression, self.timezone)

    @property
    def summary(self) -> str | None:
        return self.preset or self.expression

    def to_spec(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "type": "cron",
            "expression": self.expression,
            "preset": self.preset,
        }
        if self.timezone != "UTC":
            spec["timezone"] = self.timezone  # absent for UTC: older specs stay equal
        return spec

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        candidates = [as_utc(d) for d in (prev_end, start_date) if d is not None]
        if not candidates:
            return None
        start = self._cron.at_or_after(max(candidates))
        return DataInterval(start, self._cron.after(start))

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        end = self._cron.at_or_before(as_utc(now))
        start = self._cron.before(end)
        if start_date is not None and start < as_utc(start_date):
            return None
        return DataInterval(start, end)

    def manual_interval(self, at: datetime) -> DataInterval:
        end = self._cron.at_or_before(as_utc(at))
        return DataInterval(self._cron.before(end), end)

    def previous_schedule(self, moment: datetime) -> datetime | None:
        return self._cron.before(as_utc(moment))


class DeltaTimetable(Timetable):
    """Fixed-length intervals laid end to end from start_date: [start + k*delta, +delta)."""

    def __init__(self, delta: timedelta) -> None:
        if not isinstance(delta, timedelta) or delta <= timedelta(0):
            # dateutil's relativedelta (months, years) has no fixed length to lay out.
            raise InvalidScheduleError(
                delta, "a delta schedule must be a positive datetime.timedelta"
            )
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

    def previous_schedule(self, moment: datetime) -> datetime | None:
        return as_utc(moment) - self.delta


def _cron_timetable(
    expression: str, *, preset: str | None, dag_id: str | None, timezone: str | tzinfo | None
) -> CronTimetable:
    try:
        return CronTimetable(expression, preset=preset, timezone=timezone)
    except InvalidScheduleError as exc:
        raise InvalidScheduleError(preset or expression, exc.reason, dag_id=dag_id) from exc


def timetable_from_schedule(
    schedule: object, *, dag_id: str | None = None, timezone: str | tzinfo | None = None
) -> Timetable:
    """Turn a DAG's `schedule` argument into a Timetable, or raise InvalidScheduleError.
    `timezone` is the DAG's (from its start_date), for cron strings and presets."""
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, Timetable):
        if type(schedule) not in _BUILT_IN:
            raise InvalidScheduleError(
                type(schedule).__name__,
                f"custom timetable class {type(schedule).__qualname__} (from "
                f"{type(schedule).__module__}) cannot run in Slipstream: the scheduler runs no "
                "user code, so only the built-in timetables are supported",
                dag_id=dag_id,
            )
        return schedule
    try:
        on_assets = asset_timetable(schedule)
    except DagDefinitionError as exc:
        raise InvalidScheduleError(schedule, str(exc), dag_id=dag_id) from None
    if on_assets is not None:
        return on_assets
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
            return ContinuousTimetable()
        if text in CRON_PRESETS:
            return _cron_timetable(
                CRON_PRESETS[text], preset=text, dag_id=dag_id, timezone=timezone
            )
        if text.startswith("@"):
            known = ", ".join(["@once", "@continuous", *CRON_PRESETS])
            raise InvalidScheduleError(schedule, f"unknown preset; known: {known}", dag_id=dag_id)
        if not text:
            raise InvalidScheduleError(schedule, "empty cron expression", dag_id=dag_id)
        return _cron_timetable(text, preset=None, dag_id=dag_id, timezone=timezone)
    reason = (
        "expected None, a preset, a cron string, a timedelta or a timetable, "
        f"not {type(schedule).__name__}"
    )
    raise InvalidScheduleError(schedule, reason, dag_id=dag_id)


def _cron_from_spec(spec: Mapping[str, Any]) -> Timetable:
    return CronTimetable(
        str(spec["expression"]), preset=spec.get("preset"), timezone=spec.get("timezone")
    )


_FROM_SPEC: Mapping[str, Callable[[Mapping[str, Any]], Timetable]] = MappingProxyType(
    {
        "none": lambda spec: NullTimetable(),
        "once": lambda spec: OnceTimetable(),
        "cron": _cron_from_spec,
        "delta": lambda spec: DeltaTimetable(timedelta(seconds=float(spec["seconds"]))),
        "cron_trigger": CronTriggerTimetable.from_spec,
        "multiple_cron_trigger": MultipleCronTriggerTimetable.from_spec,
        "delta_trigger": DeltaTriggerTimetable.from_spec,
        "events": EventsTimetable.from_spec,
        "continuous": lambda spec: ContinuousTimetable(),
        "assets": lambda spec: AssetTriggeredTimetable(spec["condition"]),
        "asset_or_time": lambda spec: AssetOrTimeTimetable(
            timetable_from_spec(spec["timetable"]), spec["condition"]
        ),
    }
)


def timetable_from_spec(spec: Mapping[str, Any]) -> Timetable:
    """Rebuild a timetable from `Timetable.to_spec()` output."""
    kind = spec.get("type")
    build = _FROM_SPEC.get(str(kind))
    if build is None:
        raise InvalidScheduleError(dict(spec), f"unknown timetable type {kind!r}")
    return build(spec)


_BUILT_IN = frozenset(
    {
        NullTimetable,
        OnceTimetable,
        CronTimetable,
        DeltaTimetable,
        CronTriggerTimetable,
        MultipleCronTriggerTimetable,
        DeltaTriggerTimetable,
        EventsTimetable,
        ContinuousTimetable,
        AssetTriggeredTimetable,
        AssetOrTimeTimetable,
        AssetOrTimeSchedule,
        DatasetOrTimeSchedule,
    }
)
