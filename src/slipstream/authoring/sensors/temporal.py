"""TimeSensor and TimeDeltaSensor / DateTimeSensor's names for Airflow's async variants: a
time of day (in the DAG's timezone), a delta after the data interval's end, a moment."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from slipstream.authoring.dates import parse
from slipstream.authoring.sensors.base import clock_of
from slipstream.authoring.sensors.moment import MomentSensor
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.context import Context


class TimeSensor(MomentSensor):
    """Done once `target_time` (a time of day in the DAG's timezone) has come today."""

    def __init__(self, *, target_time: dt.time, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(target_time, dt.time):
            raise DagDefinitionError(
                f"target_time of sensor {self.task_id!r} must be a datetime.time, "
                f"not {type(target_time).__name__}",
                dag_id=self.dag_id,
            )
        self.target_time = target_time

    def target(self, context: Context) -> dt.datetime:
        zone = self.dag.timezone if self.dag is not None else dt.UTC
        today = clock_of(context).now().astimezone(zone).date()
        local = dt.datetime.combine(today, self.target_time.replace(tzinfo=None))
        return local.replace(tzinfo=zone).astimezone(dt.UTC)


class TimeSensorAsync(TimeSensor):
    """Airflow 2's deferring TimeSensor: the same (every time sensor defers by default)."""


class TimeDeltaSensor(MomentSensor):
    """Done `delta` after the run's data interval ends (its logical date without one)."""

    def __init__(self, *, delta: dt.timedelta, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(delta, dt.timedelta):
            raise DagDefinitionError(
                f"delta of sensor {self.task_id!r} must be a timedelta, not {type(delta).__name__}",
                dag_id=self.dag_id,
            )
        self.delta = delta

    def target(self, context: Context) -> dt.datetime:
        base = context.get("data_interval_end") or context.get("logical_date")
        if base is None:
            base = clock_of(context).now()
        moment: dt.datetime = base + self.delta
        return moment.astimezone(dt.UTC)


class TimeDeltaSensorAsync(TimeDeltaSensor):
    """Airflow 2's deferring TimeDeltaSensor: the same."""


class DateTimeSensor(MomentSensor):
    """Done once `target_time` (a datetime, or a templated ISO string) has come."""

    template_fields: ClassVar[Sequence[str]] = ("target_time",)

    def __init__(self, *, target_time: str | dt.datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if isinstance(target_time, dt.datetime):
            self.target_time: str = target_time.isoformat()
        elif isinstance(target_time, str):
            self.target_time = target_time
        else:
            raise DagDefinitionError(
                f"target_time of sensor {self.task_id!r} must be a datetime or a string, "
                f"not {type(target_time).__name__}",
                dag_id=self.dag_id,
            )

    def target(self, context: Context) -> dt.datetime:
        try:
            moment = parse(str(self.target_time))
        except ValueError as exc:
            # Rendered from a template, so only a try can find it bad: name the field.
            raise ValueError(
                f"target_time of sensor {self.task_id!r} is not a date and time: "
                f"{self.target_time!r} ({exc})"
            ) from None
        return moment.astimezone(dt.UTC)


class DateTimeSensorAsync(DateTimeSensor):
    """Airflow 2's deferring DateTimeSensor: the same."""
