"""DayOfWeekSensor: waits until today (in the DAG's timezone), or with use_task_logical_date the
run's logical date, is one of the given week days."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from slipstream.authoring.sensors.base import BaseSensorOperator, clock_of, log
from slipstream.authoring.weekday import WeekDay

if TYPE_CHECKING:
    from slipstream.authoring.context import Context


class DayOfWeekSensor(BaseSensorOperator):
    def __init__(
        self,
        *,
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.week_day = week_day
        # Airflow 2's older name for the same switch.
        if use_task_execution_day is not None:
            use_task_logical_date = use_task_execution_day
        self.use_task_logical_date = bool(use_task_logical_date)
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def poke(self, context: Context) -> bool:
        if self.use_task_logical_date:
            day: datetime = context["logical_date"]
        else:
            day = clock_of(context).now()
            if self.dag is not None:
                day = day.astimezone(self.dag.timezone)
        log.info("Poking until weekday is in %s; it is %s", self.week_day, day.strftime("%A"))
        return day.isoweekday() in self._week_day_num
