"""Days of the week as Airflow names them (the WeekDay enum, ISO numbers) and the operator that
branches on one: BranchDayOfWeekOperator.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slipstream.authoring.task import BaseOperator

if TYPE_CHECKING:
    from slipstream.authoring.context import Context

logger = logging.getLogger(__name__)


@enum.unique
class WeekDay(enum.IntEnum):
    """A day of the week, valued by its ISO number (Monday 1 ... Sunday 7)."""

    MONDAY = 1
    TUESDAY = 2
    WEDNESDAY = 3
    THURSDAY = 4
    FRIDAY = 5
    SATURDAY = 6
    SUNDAY = 7

    @classmethod
    def get_weekday_number(cls, week_day_str: str) -> WeekDay:
        """The day named by its full name, in any case ("Sunday", "SUNDAY")."""
        key = week_day_str.upper()
        if key not in cls.__members__:
            # Airflow raises AttributeError here; DAG files may catch exactly that.
            raise AttributeError(f'Invalid Week Day passed: "{week_day_str}"')
        return cls[key]

    @classmethod
    def convert(cls, day: str | WeekDay) -> WeekDay:
        """`day` as a WeekDay, from a WeekDay or a full day name."""
        if isinstance(day, WeekDay):
            return day
        return cls.get_weekday_number(day)

    @classmethod
    def validate_week_day(cls, week_day: str | WeekDay | Iterable[str | WeekDay]) -> set[int]:
        """The ISO numbers of one day or an iterable of days (names or WeekDays)."""
        if isinstance(week_day, (str, WeekDay)):
            return {cls.convert(week_day)}
        if not isinstance(week_day, Iterable):
            raise TypeError(
                f"Unsupported Type for week_day parameter: {type(week_day)}. Input should be "
                "a day name, a WeekDay, or an iterable (set, list) of them"
            )
        return {cls.convert(day) for day in week_day}


def _task_ids(value: str | Iterable[str], argument: str) -> list[str]:
    ids = [value] if isinstance(value, str) else list(value)
    if not all(isinstance(item, str) for item in ids):
        raise TypeError(f"{argument} must be a task id or a list of task ids, not {value!r}")
    return ids


class BranchDayOfWeekOperator(BaseOperator):
    """Follows `follow_task_ids_if_true` on the given week day(s), else
    `follow_task_ids_if_false`; its other direct downstream tasks are skipped. The day is
    today's in the DAG's timezone, or the run's logical date with use_task_logical_date."""

    def __init__(
        self,
        *,
        follow_task_ids_if_true: str | Iterable[str],
        follow_task_ids_if_false: str | Iterable[str],
        week_day: str | WeekDay | Iterable[str | WeekDay],
        use_task_logical_date: bool = False,
        use_task_execution_day: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.follow_task_ids_if_true = _task_ids(follow_task_ids_if_true, "follow_task_ids_if_true")
        self.follow_task_ids_if_false = _task_ids(
            follow_task_ids_if_false, "follow_task_ids_if_false"
        )
        self.week_day = week_day
        # Airflow 2.2's name for the same switch (later renamed, still accepted by 2.x).
        if use_task_execution_day is not None:
            use_task_logical_date = use_task_execution_day
        self.use_task_logical_date = use_task_logical_date
        self._week_day_num = WeekDay.validate_week_day(week_day)

    def execute(self, context: Context) -> list[str]:
        if self.use_task_logical_date:
            day: datetime = context["logical_date"]
        else:
            day = self.now()
            if self.dag is not None:
                day = day.astimezone(self.dag.timezone)
        on_day = day.isoweekday() in self._week_day_num
        chosen = self.follow_task_ids_if_true if on_day else self.follow_task_ids_if_false
        logger.info("%s is %s: following %s", day.date(), day.strftime("%A"), chosen)
        return chosen

    def now(self) -> datetime:
        """The moment whose week day is checked (a seam for tests)."""
        return datetime.now(UTC)

    def skip_after(self, result: Any) -> set[str]:
        return self.downstream_task_ids - set(result or ())
