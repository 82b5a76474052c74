"""Schedules on assets: a DAG run when its asset condition is met (AssetTriggeredTimetable),
or that or a time schedule, whichever comes first (Airflow's AssetOrTimeSchedule /
DatasetOrTimeSchedule). In time they behave as their time part, so the scheduler's time
schedules need nothing new; the asset part is judged by scheduler/assets.py from the spec.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from slipstream.authoring.assets import BaseAsset, condition_from, condition_spec
from slipstream.authoring.timetable import DataInterval, Timetable, as_utc
from slipstream.errors import DagDefinitionError

# What Airflow 2.10 shows as such a DAG's schedule (timetable summary).
ASSET_SUMMARY = "Dataset"


class AssetTriggeredTimetable(Timetable):
    """Runs only when the condition's assets are updated (or when triggered)."""

    def __init__(self, condition: Mapping[str, Any]) -> None:
        self.condition = dict(condition)

    @property
    def summary(self) -> str | None:
        return ASSET_SUMMARY

    def to_spec(self) -> dict[str, Any]:
        return {"type": "assets", "condition": self.condition}

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


class AssetOrTimeTimetable(Timetable):
    """Runs on its timetable and also whenever the asset condition is met."""

    def __init__(self, timetable: Timetable, condition: Mapping[str, Any]) -> None:
        self.timetable = timetable
        self.condition = dict(condition)

    @property
    def summary(self) -> str | None:
        return f"{ASSET_SUMMARY} or {self.timetable.summary}"

    def to_spec(self) -> dict[str, Any]:
        return {
            "type": "asset_or_time",
            "condition": self.condition,
            "timetable": self.timetable.to_spec(),
        }

    def next_interval(
        self, prev_end: datetime | None, start_date: datetime | None
    ) -> DataInterval | None:
        return self.timetable.next_interval(prev_end, start_date)

    def latest_complete_interval(
        self, now: datetime, *, start_date: datetime | None = None
    ) -> DataInterval | None:
        return self.timetable.latest_complete_interval(now, start_date=start_date)

    def manual_interval(self, at: datetime) -> DataInterval:
        return self.timetable.manual_interval(at)

    def previous_schedule(self, moment: datetime) -> datetime | None:
        return self.timetable.previous_schedule(moment)

    def first_interval_without_start(self, now: datetime) -> DataInterval | None:
        return self.timetable.first_interval_without_start(now)


class AssetOrTimeSchedule(AssetOrTimeTimetable):
    """Airflow 3's AssetOrTimeSchedule(timetable=..., assets=...)."""

    def __init__(self, *, timetable: Timetable, assets: object) -> None:
        if not isinstance(timetable, Timetable):
            raise DagDefinitionError(
                f"{type(self).__name__}: timetable must be a timetable, not "
                f"{type(timetable).__name__}"
            )
        if isinstance(timetable, (AssetTriggeredTimetable, AssetOrTimeTimetable)):
            raise DagDefinitionError(f"{type(self).__name__}: timetable must be a time schedule")
        condition = condition_from(assets)
        if condition is None:
            raise DagDefinitionError(
                f"{type(self).__name__} needs assets: an asset, a list or a condition"
            )
        super().__init__(timetable, condition_spec(condition))


class DatasetOrTimeSchedule(AssetOrTimeSchedule):
    """Airflow 2.9-2.10's DatasetOrTimeSchedule(timetable=..., datasets=...)."""

    def __init__(self, *, timetable: Timetable, datasets: object) -> None:
        super().__init__(timetable=timetable, assets=datasets)


def asset_timetable(schedule: object) -> Timetable | None:
    """The timetable a `schedule=` of assets means, or None when it is not about assets."""
    if isinstance(schedule, AssetOrTimeTimetable):
        return schedule
    condition = condition_from(schedule)
    if condition is None:
        return None
    return AssetTriggeredTimetable(condition_spec(condition))


def asset_condition(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The asset condition of a stored schedule spec, or None for a time-only schedule."""
    if spec.get("type") in ("assets", "asset_or_time"):
        condition: Mapping[str, Any] = spec["condition"]
        return condition
    return None


__all__ = [
    "AssetOrTimeSchedule",
    "AssetOrTimeTimetable",
    "AssetTriggeredTimetable",
    "BaseAsset",
    "DatasetOrTimeSchedule",
    "asset_condition",
    "asset_timetable",
]
