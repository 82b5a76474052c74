from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from slipstream.authoring.schedules import (
    CronTimetable,
    DataInterval,
    DeltaTimetable,
    NullTimetable,
    OnceTimetable,
    Timetable,
    timetable_from_schedule,
    timetable_from_spec,
)
from slipstream.errors import InvalidScheduleError


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, sec: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, sec, tzinfo=UTC)


def iv(start: datetime, end: datetime) -> DataInterval:
    return DataInterval(start, end)


@pytest.mark.parametrize(
    ("preset", "expression"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@quarterly", "0 0 1 */3 *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
    ],
)
def test_presets(preset: str, expression: str) -> None:
    timetable = timetable_from_schedule(preset)
    assert isinstance(timetable, CronTimetable)
    assert timetable.expression == expression
    assert timetable.summary == preset


def test_summaries() -> None:
    assert timetable_from_schedule(None).summary is None
    assert timetable_from_schedule("@once").summary == "@once"
    assert timetable_from_schedule("0 0 * * *").summary == "0 0 * * *"
    assert timetable_from_schedule(timedelta(days=1)).summary == "1 day, 0:00:00"


@pytest.mark.parametrize(
    ("schedule", "reason"),
    [
        (["s3://bucket/key"], "assets/datasets only"),
        ("@fortnightly", "unknown preset"),
        ("0 0 * *", "columns"),
        ("99 * * * *", "out of range"),
        ("", "empty"),
        (timedelta(0), "positive"),
        (timedelta(hours=-1), "positive"),
        (5, "not int"),
    ],
)
def test_bad_schedules(schedule: object, reason: str) -> None:
    with pytest.raises(InvalidScheduleError, match=reason) as info:
        timetable_from_schedule(schedule, dag_id="d")
    assert info.value.dag_id == "d"
    assert info.value.schedule == schedule


@pytest.mark.parametrize(
    "schedule", [None, "@once", "@daily", "*/5 * * * *", timedelta(hours=6, seconds=1)]
)
def test_specs_round_trip(schedule: object) -> None:
    timetable = timetable_from_schedule(schedule)
    rebuilt = timetable_from_spec(timetable.to_spec())
    assert rebuilt == timetable
    assert rebuilt.summary == timetable.summary
    assert hash(rebuilt) == hash(timetable)


def test_unknown_spec_is_refused() -> None:
    with pytest.raises(InvalidScheduleError):
        timetable_from_spec({"type": "lunar"})


def test_timetable_passes_through() -> None:
    timetable = DeltaTimetable(timedelta(hours=1))
    assert timetable_from_schedule(timetable) is timetable


# -- cron ----------------------------------------------------------------------------------------


def test_cron_first_interval_is_aligned_at_or_after_start_date() -> None:
    daily = timetable_from_schedule("@daily")
    assert daily.next_interval(None, utc(2024, 1, 1)) == iv(utc(2024, 1, 1), utc(2024, 1, 2))
    assert daily.next_interval(None, utc(2024, 1, 1, 0, 0, 1)) == iv(
        utc(2024, 1, 2), utc(2024, 1, 3)
    )
    assert daily.next_interval(None, None) is None


def test_cron_next_interval_follows_the_previous_end() -> None:
    hourly = timetable_from_schedule("30 * * * *")
    first = hourly.next_interval(None, utc(2024, 1, 1, 10, 15))
    assert first == iv(utc(2024, 1, 1, 10, 30), utc(2024, 1, 1, 11, 30))
    assert hourly.next_interval(first.end, utc(2024, 1, 1)) == iv(
        utc(2024, 1, 1, 11, 30), utc(2024, 1, 1, 12, 30)
    )


def test_catchup_style_enumeration_from_start_date() -> None:
    weekly = timetable_from_schedule("@weekly")  # Sundays at midnight
    start = utc(2024, 1, 1)  # a Monday
    intervals = []
    interval = weekly.next_interval(None, start)
    while interval is not None and interval.end <= utc(2024, 1, 29):
        intervals.append(interval)
        interval = weekly.next_interval(interval.end, start)
    assert [i.start.day for i in intervals] == [7, 14, 21]
    assert all(i.end - i.start == timedelta(days=7) for i in intervals)


def test_cron_latest_complete_interval() -> None:
    daily = timetable_from_schedule("@daily")
    now = utc(2024, 5, 10, 13, 0)
    assert daily.latest_complete_interval(now) == iv(utc(2024, 5, 9), utc(2024, 5, 10))
    on_the_dot = utc(2024, 5, 10)
    assert daily.latest_complete_interval(on_the_dot) == iv(utc(2024, 5, 9), utc(2024, 5, 10))
    assert daily.latest_complete_interval(now, start_date=utc(2024, 5, 9)) is not None
    assert daily.latest_complete_interval(now, start_date=utc(2024, 5, 9, 1)) is None


def test_cron_manual_interval_is_the_last_complete_interval() -> None:
    hourly = timetable_from_schedule("@hourly")
    assert hourly.manual_interval(utc(2024, 1, 1, 10, 20)) == iv(
        utc(2024, 1, 1, 9), utc(2024, 1, 1, 10)
    )


def test_naive_and_other_zones_are_treated_as_utc() -> None:
    daily = timetable_from_schedule("@daily")
    naive = daily.next_interval(None, datetime(2024, 1, 1, 12))
    assert naive == iv(utc(2024, 1, 2), utc(2024, 1, 3))
    assert naive is not None and naive.start.tzinfo is UTC
    plus_two = timezone(timedelta(hours=2))
    # 01:00 at +02:00 is 23:00 UTC the previous day
    assert daily.next_interval(None, datetime(2024, 1, 2, 1, tzinfo=plus_two)) == iv(
        utc(2024, 1, 2), utc(2024, 1, 3)
    )


# -- timedelta -----------------------------------------------------------------------------------


def test_delta_intervals_are_laid_from_start_date() -> None:
    every_six = timetable_from_schedule(timedelta(hours=6))
    start = utc(2024, 1, 1, 1)
    first = every_six.next_interval(None, start)
    assert first == iv(start, utc(2024, 1, 1, 7))
    assert every_six.next_interval(first.end, start) == iv(utc(2024, 1, 1, 7), utc(2024, 1, 1, 13))
    assert every_six.next_interval(None, None) is None


def test_delta_latest_complete_and_manual_intervals() -> None:
    every_six = timetable_from_schedule(timedelta(hours=6))
    now = utc(2024, 1, 2, 0, 30)
    assert every_six.latest_complete_interval(now, start_date=utc(2024, 1, 1, 1)) == iv(
        utc(2024, 1, 1, 13), utc(2024, 1, 1, 19)
    )
    assert every_six.latest_complete_interval(now, start_date=utc(2024, 1, 1, 23)) is None
    assert every_six.latest_complete_interval(now) == iv(now - timedelta(hours=6), now)
    assert every_six.manual_interval(now) == iv(now - timedelta(hours=6), now)


# -- @once and None ------------------------------------------------------------------------------


def test_once_runs_once_at_start_date() -> None:
    once: Timetable = OnceTimetable()
    start = utc(2024, 1, 1)
    assert once.next_interval(None, start) == iv(start, start)
    assert once.next_interval(start, start) is None
    assert once.next_interval(None, None) is None
    assert once.latest_complete_interval(utc(2024, 2, 1), start_date=start) == iv(start, start)
    assert once.latest_complete_interval(utc(2023, 2, 1), start_date=start) is None
    assert once.manual_interval(utc(2024, 3, 1)) == iv(utc(2024, 3, 1), utc(2024, 3, 1))


def test_no_schedule_never_runs_by_itself() -> None:
    none: Timetable = NullTimetable()
    assert none.next_interval(None, utc(2024, 1, 1)) is None
    assert none.latest_complete_interval(utc(2024, 1, 1)) is None
    at = datetime(2024, 3, 1, 12)
    assert none.manual_interval(at) == iv(utc(2024, 3, 1, 12), utc(2024, 3, 1, 12))
