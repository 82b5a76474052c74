"""WeekDay (Airflow's ISO day enum) and BranchDayOfWeekOperator."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator
from slipstream.authoring.weekday import BranchDayOfWeekOperator, WeekDay
from tests.authoring.fakes import context_for


def test_weekday_numbers_names_and_conversion() -> None:
    assert [int(day) for day in WeekDay] == [1, 2, 3, 4, 5, 6, 7]
    assert WeekDay.get_weekday_number("sunday") is WeekDay.SUNDAY
    assert WeekDay.convert("Monday") is WeekDay.MONDAY
    assert WeekDay.convert(WeekDay.FRIDAY) is WeekDay.FRIDAY
    assert WeekDay.validate_week_day("Saturday") == {6}
    assert WeekDay.validate_week_day(WeekDay.TUESDAY) == {2}
    assert WeekDay.validate_week_day(["monday", WeekDay.SUNDAY]) == {1, 7}
    with pytest.raises(AttributeError, match='Invalid Week Day passed: "Funday"'):
        WeekDay.get_weekday_number("Funday")
    with pytest.raises(TypeError, match="week_day"):
        WeekDay.validate_week_day(3)  # type: ignore[arg-type]


class FixedDay(BranchDayOfWeekOperator):
    moment = datetime(2024, 3, 10, 23, 30, tzinfo=UTC)  # Sunday in UTC, Monday in Paris

    def now(self) -> datetime:
        return self.moment


def _branch(tz: str = "UTC", **kwargs: object) -> tuple[list[str], set[str]]:
    start = datetime(2024, 1, 1, tzinfo=ZoneInfo(tz))
    with DAG("week", schedule="@daily", start_date=start):
        branch = FixedDay(
            task_id="branch",
            follow_task_ids_if_true="yes",
            follow_task_ids_if_false=["no", "also_no"],
            **kwargs,  # type: ignore[arg-type]
        )
        branch >> [EmptyOperator(task_id=t) for t in ("yes", "no", "also_no")]
    chosen = branch.execute(context_for(branch))
    return chosen, branch.skip_after(chosen)


def test_branches_on_today_in_the_dags_timezone() -> None:
    assert _branch(week_day="Sunday") == (["yes"], {"no", "also_no"})
    assert _branch(week_day={WeekDay.SATURDAY, WeekDay.SUNDAY}) == (["yes"], {"no", "also_no"})
    assert _branch(week_day="Monday") == (["no", "also_no"], {"yes"})
    assert _branch("Europe/Paris", week_day="Monday") == (["yes"], {"no", "also_no"})


def test_branches_on_the_logical_date_when_asked() -> None:
    # The fake run's logical date is Tuesday 2024-03-05.
    assert _branch(week_day="Tuesday", use_task_logical_date=True)[0] == ["yes"]
    assert _branch(week_day="Sunday", use_task_logical_date=True)[0] == ["no", "also_no"]
    assert _branch(week_day="Tuesday", use_task_execution_day=True)[0] == ["yes"]


def test_a_bad_day_is_a_definition_error_naming_it() -> None:
    with pytest.raises(AttributeError, match="Someday"):
        _branch(week_day="Someday")
