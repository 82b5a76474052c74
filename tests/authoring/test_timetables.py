from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum
import pytest

from slipstream.authoring.dag import DAG
from slipstream.authoring.schedules import timetable_from_schedule, timetable_from_spec
from slipstream.authoring.timetables import (
    ContinuousTimetable,
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DataInterval,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    EventsTimetable,
    MultipleCronTriggerTimetable,
    NullTimetable,
    OnceTimetable,
    Timetable,
)
from slipstream.core.planning import next_interval_to_schedule
from slipstream.errors import DagDefinitionError, InvalidScheduleError

AMS = ZoneInfo("Europe/Amsterdam")
NYC = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def walk(timetable: Timetable, start: datetime, count: int) -> list[DataInterval]:
    """Every interval in order from `start`, as a catchup scheduler would create them."""
    found: list[DataInterval] = []
    last_end = None
    for _ in range(count):
        interval = timetable.next_interval(last_end, start)
        assert interval is not None
        found.append(interval)
        last_end = interval.end
    return found


def test_daily_cron_keeps_its_wall_clock_time_across_both_dst_changes() -> None:
    timetable = CronDataIntervalTimetable("0 2 * * *", timezone="Europe/Amsterdam")
    spring = walk(timetable, utc(2024, 3, 29), 4)
    local = [i.start.astimezone(AMS) for i in spring]
    # 02:00 does not exist on 31 March: that run is at 03:00 CEST, as Airflow (pendulum) gives.
    assert [(d.day, d.hour) for d in local] == [(29, 2), (30, 2), (31, 3), (1, 2)]
    assert [i.start for i in spring] == [
        utc(2024, 3, 29, 1),
        utc(2024, 3, 30, 1),
        utc(2024, 3, 31, 1),
        utc(2024, 4, 1, 0),
    ]
    autumn = walk(timetable, utc(2024, 10, 26), 3)
    # 02:00 happens twice on 27 October: the run is at the first one (CEST), once.
    assert [i.start for i in autumn] == [
        utc(2024, 10, 26, 0),
        utc(2024, 10, 27, 0),
        utc(2024, 10, 28, 1),
    ]
    assert all(a.end == b.start for a, b in itertools.pairwise(autumn))


def test_hourly_cron_runs_every_real_hour_across_dst() -> None:
    timetable = CronDataIntervalTimetable("30 * * * *", timezone=NYC)
    for start in (utc(2024, 3, 10, 5), utc(2024, 11, 3, 4)):  # both New York changes
        intervals = walk(timetable, start, 6)
        starts = [i.start for i in intervals]
        assert starts == [start + timedelta(minutes=30, hours=h) for h in range(6)]
        assert len(set(starts)) == 6  # nothing doubled, nothing lost


def test_midnight_in_new_york_is_midnight_local_all_year() -> None:
    timetable = timetable_from_schedule("@daily", timezone=NYC)
    for moment in (utc(2024, 1, 15, 12), utc(2024, 7, 15, 12)):
        interval = timetable.latest_complete_interval(moment)
        assert interval is not None
        assert interval.end.astimezone(NYC).hour == 0
        assert interval.end - interval.start == timedelta(days=1)
    short = walk(timetable, utc(2024, 3, 9, 5), 2)[1]
    assert short.end - short.start == timedelta(hours=23)  # the day of the spring change


def test_a_dag_takes_its_timezone_from_start_date() -> None:
    with DAG(
        "tz_pendulum",
        schedule="0 9 * * *",
        start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam"),
    ) as dag:
        pass
    assert dag.timetable.to_spec()["timezone"] == "Europe/Amsterdam"
    assert dag.start_date == utc(2023, 12, 31, 23)
    first = dag.timetable.next_interval(None, dag.start_date)
    assert first is not None and first.start == utc(2024, 1, 1, 8)
    with DAG("tz_zoneinfo", schedule="@daily", start_date=datetime(2024, 1, 1, tzinfo=NYC)) as d2:
        pass
    assert d2.timetable.to_spec()["timezone"] == "America/New_York"
    fixed = datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    with DAG("tz_fixed", schedule="@daily", start_date=fixed) as d3:
        pass
    assert d3.timetable.to_spec()["timezone"] == "+02:00"
    with DAG("tz_utc", schedule="@daily", start_date=datetime(2024, 1, 1)) as d4:
        pass
    assert "timezone" not in d4.timetable.to_spec()  # the spec of every UTC DAG is unchanged


@pytest.mark.parametrize(
    "timetable",
    [
        NullTimetable(),
        OnceTimetable(),
        CronDataIntervalTimetable("0 2 * * *", timezone="Europe/Amsterdam"),
        DeltaDataIntervalTimetable(timedelta(hours=6)),
        CronTriggerTimetable("@daily", timezone="America/New_York", interval=timedelta(hours=1)),
        CronTriggerTimetable("*/5 * * * *", timezone="UTC", run_immediately=timedelta(minutes=1)),
        MultipleCronTriggerTimetable("0 8 * * *", "30 17 * * 1-5", timezone="Europe/Amsterdam"),
        DeltaTriggerTimetable(timedelta(minutes=45), interval=timedelta(minutes=45)),
        EventsTimetable(
            [utc(2024, 5, 1), datetime(2024, 1, 1, tzinfo=AMS)],
            restrict_to_events=True,
            description="releases",
        ),
        ContinuousTimetable(),
    ],
)
def test_every_timetable_survives_its_spec(timetable: Timetable) -> None:
    rebuilt = timetable_from_spec(timetable.to_spec())
    assert type(rebuilt) is type(timetable)
    assert rebuilt == timetable and rebuilt.summary == timetable.summary
    moment = utc(2024, 6, 3, 12, 7)
    assert rebuilt.next_interval(moment, utc(2024, 1, 1)) == timetable.next_interval(
        moment, utc(2024, 1, 1)
    )
    assert rebuilt.latest_complete_interval(moment) == timetable.latest_complete_interval(moment)


def test_cron_trigger_runs_at_each_fire_time() -> None:
    timetable = CronTriggerTimetable("0 6 * * *", timezone="Europe/Amsterdam")
    runs = walk(timetable, utc(2024, 3, 30), 3)
    assert [r.due.astimezone(AMS).hour for r in runs] == [6, 6, 6]
    assert [r.start for r in runs] == [utc(2024, 3, 30, 5), utc(2024, 3, 31, 4), utc(2024, 4, 1, 4)]
    assert all(r.start == r.end == r.due for r in runs)  # zero-length: logical date = fire
    with_interval = CronTriggerTimetable("0 6 * * *", timezone="UTC", interval=timedelta(hours=6))
    run = with_interval.next_interval(None, utc(2024, 1, 1))
    assert run == DataInterval(utc(2024, 1, 1), utc(2024, 1, 1, 6), run_after=utc(2024, 1, 1, 6))


def test_cron_trigger_without_catchup_runs_the_latest_past_fire() -> None:
    timetable = CronTriggerTimetable("0 * * * *", timezone="UTC")
    now = utc(2024, 6, 1, 10, 20)
    chosen = next_interval_to_schedule(
        timetable, last_end=None, start_date=utc(2024, 1, 1), end_date=None, catchup=False, now=now
    )
    assert chosen is not None and chosen.due == utc(2024, 6, 1, 10)
    caught = next_interval_to_schedule(
        timetable, last_end=None, start_date=utc(2024, 1, 1), end_date=None, catchup=True, now=now
    )
    assert caught is not None and caught.due == utc(2024, 1, 1)


@pytest.mark.parametrize(
    ("run_immediately", "now", "expected"),
    [
        (True, utc(2024, 6, 1, 11, 59), utc(2024, 6, 1)),
        (False, utc(2024, 6, 1, 11, 59), utc(2024, 6, 2)),
        (False, utc(2024, 6, 1, 2), utc(2024, 6, 1)),  # within a tenth of the day
        (timedelta(hours=12), utc(2024, 6, 1, 11, 59), utc(2024, 6, 1)),
    ],
)
def test_run_immediately_for_a_dag_without_start_date(
    run_immediately: bool | timedelta, now: datetime, expected: datetime
) -> None:
    timetable = CronTriggerTimetable("@daily", timezone="UTC", run_immediately=run_immediately)
    chosen = next_interval_to_schedule(
        timetable, last_end=None, start_date=None, end_date=None, catchup=False, now=now
    )
    assert chosen is not None and chosen.due == expected


def test_multiple_cron_triggers_merge_their_fire_times() -> None:
    timetable = MultipleCronTriggerTimetable("0 8 * * *", "30 17 * * *", timezone="UTC")
    runs = walk(timetable, utc(2024, 6, 1), 4)
    assert [r.due for r in runs] == [
        utc(2024, 6, 1, 8),
        utc(2024, 6, 1, 17, 30),
        utc(2024, 6, 2, 8),
        utc(2024, 6, 2, 17, 30),
    ]
    latest = timetable.latest_complete_interval(utc(2024, 6, 3, 12))
    assert latest is not None and latest.due == utc(2024, 6, 3, 8)


def test_delta_trigger_fires_on_the_start_date_grid() -> None:
    timetable = DeltaTriggerTimetable(timedelta(minutes=45))
    runs = walk(timetable, utc(2024, 6, 1), 3)
    assert [r.due for r in runs] == [
        utc(2024, 6, 1),
        utc(2024, 6, 1, 0, 45),
        utc(2024, 6, 1, 1, 30),
    ]
    latest = timetable.latest_complete_interval(utc(2024, 6, 1, 2), start_date=utc(2024, 6, 1))
    assert latest is not None and latest.due == utc(2024, 6, 1, 1, 30)


def test_events_run_at_each_event_then_stop() -> None:
    events = [utc(2024, 3, 1), utc(2024, 1, 1), utc(2024, 2, 1)]
    timetable = EventsTimetable(events, description="month starts")
    assert timetable.summary == "month starts"
    assert EventsTimetable(events).summary == "3 events"
    runs = walk(timetable, utc(2023, 1, 1), 3)
    assert [r.start for r in runs] == sorted(events)
    assert timetable.next_interval(runs[-1].end, utc(2023, 1, 1)) is None
    later = timetable.next_interval(None, utc(2024, 1, 15))
    assert later is not None and later.start == utc(2024, 2, 1)
    assert timetable.manual_interval(utc(2024, 2, 10)).start == utc(2024, 2, 10)
    restricted = EventsTimetable(events, restrict_to_events=True)
    assert restricted.manual_interval(utc(2024, 2, 10)).start == utc(2024, 2, 1)


def test_continuous_needs_one_active_run_and_covers_since_the_last() -> None:
    timetable = timetable_from_schedule("@continuous")
    assert isinstance(timetable, ContinuousTimetable) and timetable.is_continuous
    assert timetable.next_interval(None, utc(2024, 1, 1)) is None
    first = timetable.continuous_interval(None, utc(2024, 1, 1), utc(2024, 6, 1))
    assert first == DataInterval(utc(2024, 1, 1), utc(2024, 6, 1), run_after=utc(2024, 6, 1))
    after = timetable.continuous_interval(utc(2024, 6, 1), None, utc(2024, 6, 1, 0, 5))
    assert after is not None and after.start == utc(2024, 6, 1)
    assert timetable.continuous_interval(None, utc(2025, 1, 1), utc(2024, 6, 1)) is None
    assert timetable.continuous_interval(utc(2024, 6, 1), None, utc(2024, 6, 1)) is None
    with pytest.raises(DagDefinitionError, match="max_active_runs=1"):
        DAG("busy_continuous", schedule="@continuous", start_date=utc(2024, 1, 1))
    with DAG(
        "continuous", schedule="@continuous", max_active_runs=1, start_date=utc(2024, 1, 1)
    ) as dag:
        pass
    assert dag.timetable.summary == "@continuous"


def test_timetable_argument_is_airflow_2s_spelling_of_schedule() -> None:
    timetable = CronTriggerTimetable("0 3 * * *", timezone="UTC")
    with DAG("by_timetable", timetable=timetable, start_date=utc(2024, 1, 1)) as dag:
        pass
    assert dag.timetable is timetable
    with pytest.raises(DagDefinitionError, match="only one of"):
        DAG("both", timetable=timetable, schedule="@daily")


def test_a_custom_timetable_class_is_refused_by_name() -> None:
    class NextWorkday(CronTriggerTimetable):
        pass

    with pytest.raises(InvalidScheduleError, match=r"custom timetable class .*NextWorkday"):
        DAG("custom", schedule=NextWorkday("0 0 * * *"), start_date=utc(2024, 1, 1))


def test_look_alike_assets_as_a_schedule_are_refused_by_name() -> None:
    class Dataset:  # not Slipstream's: a schedule on it would never run
        def __init__(self, uri: str) -> None:
            self.uri = uri

    with pytest.raises(InvalidScheduleError, match=r"assets/datasets only, not Dataset"):
        DAG("on_data", schedule=[Dataset("s3://bucket/key")], start_date=utc(2024, 1, 1))
    with pytest.raises(InvalidScheduleError, match="Dataset"):
        DAG("on_one", schedule=Dataset("s3://bucket/key"), start_date=utc(2024, 1, 1))


def test_bad_timezones_and_crons_are_definition_errors() -> None:
    with pytest.raises(InvalidScheduleError, match="unknown timezone"):
        CronTriggerTimetable("0 0 * * *", timezone="Mars/Olympus")
    with pytest.raises(InvalidScheduleError):
        CronTriggerTimetable("61 * * * *", timezone="UTC")
    with pytest.raises(InvalidScheduleError, match="interval"):
        CronTriggerTimetable("@daily", interval=timedelta(hours=-1))


def test_a_fire_moved_past_the_gap_is_still_found_from_its_own_instant() -> None:
    timetable = CronDataIntervalTimetable("30 2 * * *", timezone=AMS)
    runs = walk(timetable, utc(2026, 3, 27), 4)
    local = [(r.start.astimezone(AMS).day, r.start.astimezone(AMS).hour) for r in runs]
    assert local == [(27, 2), (28, 2), (29, 3), (30, 2)]
    moved = utc(2026, 3, 29, 1, 30)  # 03:30 CEST, where 02:30 was moved to
    interval = timetable.next_interval(moved, None)
    assert interval is not None and interval.start == moved
    latest = timetable.latest_complete_interval(utc(2026, 3, 30, 12))
    assert latest == DataInterval(moved, utc(2026, 3, 30, 0, 30))


def test_airflow_constructor_forms() -> None:
    assert CronDataIntervalTimetable("@daily", "Europe/Amsterdam").to_spec()["timezone"] == (
        "Europe/Amsterdam"
    )
    assert CronDataIntervalTimetable("@daily", "UTC").summary == "@daily"
    with pytest.raises(InvalidScheduleError, match=r"datetime\.timedelta"):
        DeltaDataIntervalTimetable(30)  # type: ignore[arg-type]
