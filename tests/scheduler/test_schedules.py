"""Schedules through the real scheduler: DAG files parsed in children, a frozen clock stepped
across a DST change, and @continuous runs following each other."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

AMS = ZoneInfo("Europe/Amsterdam")


def test_a_timezone_cron_runs_at_local_time_across_the_spring_change(harness: Harness) -> None:
    harness.clock.advance(datetime(2026, 3, 27, 12, tzinfo=UTC) - harness.clock.now())
    harness.write_dag(
        "morning",
        """
        import pendulum
        from slipstream import DAG, EmptyOperator

        with DAG("morning", schedule="30 2 * * *", catchup=True,
                 start_date=pendulum.datetime(2026, 3, 27, tz="Europe/Amsterdam")) as dag:
            EmptyOperator(task_id="noop")
        """,
    )
    # Step the clock an hour at a time through the night of 29 March (02:00 -> 03:00 CEST).
    for _ in range(24 * 4):
        harness.settle((Hint.dag_changed("morning"),))
        harness.clock.advance(timedelta(hours=1))
    runs, total = harness.runs.list_runs("morning", order_by="logical_date")
    seen = [r.logical_date for r in runs if r.logical_date is not None]
    local = [d.astimezone(AMS) for d in seen]
    assert [(d.day, d.hour, d.minute) for d in local] == [
        (27, 2, 30),
        (28, 2, 30),
        (29, 3, 30),  # 02:30 does not exist that night: Airflow moves it past the gap
        (30, 2, 30),
    ]
    assert total == 4 and {r.state.value for r in runs} == {"success"}
    # Each run's interval ends where the next begins: nothing lost, nothing doubled.
    assert all(a.data_interval_end == b.data_interval_start for a, b in itertools.pairwise(runs))


def test_continuous_starts_the_next_run_when_the_previous_ends(harness: Harness) -> None:
    harness.write_dag(
        "forever",
        """
        from datetime import datetime, timezone
        from slipstream import DAG
        from slipstream.authoring.taskflow import task

        with DAG("forever", schedule="@continuous", max_active_runs=1,
                 start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
            @task
            def work():
                return 1

            work()
        """,
    )
    harness.settle((Hint.dag_changed("forever"),))
    for _ in range(3):
        harness.clock.advance(timedelta(seconds=1))
        harness.settle()
    runs, total = harness.runs.list_runs("forever", order_by="logical_date")
    assert total >= 4
    assert {r.state.value for r in runs} == {"success"}
    # Back to back: each run covers from the end of the previous one.
    assert all(a.data_interval_end == b.data_interval_start for a, b in itertools.pairwise(runs))
    assert runs[0].data_interval_start == datetime(2026, 1, 1, tzinfo=UTC)
    # Never two at once: each run started after the previous one ended.
    assert all(
        a.end_date is not None and b.start_date is not None and a.end_date <= b.start_date
        for a, b in itertools.pairwise(runs)
    )


def test_a_cron_trigger_timetable_from_a_dag_file(harness: Harness) -> None:
    harness.write_dag(
        "triggered",
        """
        from datetime import datetime, timedelta, timezone
        from slipstream import DAG, EmptyOperator
        from slipstream.authoring.timetables import CronTriggerTimetable

        with DAG("triggered", catchup=False,
                 schedule=CronTriggerTimetable("0 9 * * *", timezone="America/New_York",
                                               interval=timedelta(hours=1)),
                 start_date=datetime(2026, 1, 1, tzinfo=timezone.utc)) as dag:
            EmptyOperator(task_id="noop")
        """,
    )
    harness.settle((Hint.dag_changed("triggered"),))
    runs, total = harness.runs.list_runs("triggered")
    # Now is 10 Jan 12:00 UTC = 07:00 in New York: the latest fire is 9 Jan 09:00 EST.
    assert total == 1
    assert runs[0].data_interval_end == datetime(2026, 1, 9, 14, tzinfo=UTC)
    assert runs[0].data_interval_start == datetime(2026, 1, 9, 13, tzinfo=UTC)
    harness.clock.advance(timedelta(hours=2))  # 09:00 in New York
    harness.settle()
    assert harness.runs.list_runs("triggered")[1] == 2
