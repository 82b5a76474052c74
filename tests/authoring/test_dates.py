"""days_ago and the airflow.utils.timezone helpers: pendulum datetimes, as Airflow's."""

from __future__ import annotations

import datetime as dt

import pendulum
import pytest

from slipstream.authoring import dates
from slipstream.authoring.dag import DAG
from slipstream.authoring.operators import EmptyOperator
from slipstream.authoring.serialize import serialize_dag


def test_days_ago_is_midnight_utc_n_days_back() -> None:
    value = dates.days_ago(2)
    today = pendulum.now("UTC").start_of("day")
    assert isinstance(value, pendulum.DateTime)
    assert value.utcoffset() == dt.timedelta(0)
    # Midnight turning between the two calls may move "today" by one day: allow that edge.
    assert today - value in (dt.timedelta(days=2), dt.timedelta(days=1))
    assert dates.days_ago(0, hour=6).hour == 6


def test_timezone_helpers() -> None:
    aware = dates.datetime(2021, 1, 1)
    assert aware == dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
    assert dates.make_aware(dt.datetime(2021, 6, 1, 12), "Europe/Paris").hour == 12
    assert dates.make_naive(dates.datetime(2021, 6, 1, 10), "Europe/Paris") == dt.datetime(
        2021, 6, 1, 12
    )
    assert dates.convert_to_utc(dt.datetime(2021, 1, 1)) == aware
    assert dates.parse("2021-01-01T02:00:00+02:00") == aware
    assert dates.is_naive(dt.datetime(2021, 1, 1)) and dates.is_localized(aware)
    with pytest.raises(ValueError, match="naive"):
        dates.make_aware(aware)


def test_pendulum_dates_work_wherever_a_datetime_is_accepted() -> None:
    paris = pendulum.datetime(2021, 1, 1, tz="Europe/Paris")
    with DAG(
        "pendulum_dates",
        schedule="@daily",
        start_date=paris,
        end_date=pendulum.datetime(2022, 1, 1, tz="UTC"),
        default_args={"start_date": dates.days_ago(1)},
    ) as dag:
        EmptyOperator(task_id="t", start_date=pendulum.datetime(2021, 1, 1, tz="UTC"))
    assert dag.start_date == dt.datetime(2020, 12, 31, 23, tzinfo=dt.UTC)
    structure = serialize_dag(dag)
    assert structure["start_date"].startswith("2020-12-31T23:00:00")
    # @daily fires at midnight in the start date's timezone (Paris), 23:00 UTC in winter.
    first = dag.timetable.next_interval(None, dag.start_date)
    assert first is not None and first.start == paris
