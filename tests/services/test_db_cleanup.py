"""services.db_cleanup (and store.cleanup beneath it) on real SQLite and PostgreSQL, with runs
made by a real scheduler stepped on a frozen clock: old runs go with their task instances,
tries, XComs and log files, newer ones and each DAG's latest non-manual run stay, a dry run
counts exactly what a clean then deletes, and batches of one get there too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from slipstream.core.cleanup import CleanTable, Cutoff, choose_tables
from slipstream.core.records import Run
from slipstream.errors import InvalidInputError
from slipstream.services.db_cleanup import DbCleanupService
from slipstream.services.event_log import EventLogService
from slipstream.store.event_log import record_event
from slipstream.store.tables import log as log_table
from slipstream.store.tables import runs, task_instances, task_tries, xcoms
from tests.scheduler.conftest import START, Harness, harness

__all__ = ["harness"]  # the scheduler tests' fixture: a real scheduler, stepped

# A DAG whose run leaves rows in every run table: an XCom, a task with two tries (the first
# fails), and a log file per try.
ETL = """
from datetime import datetime, timedelta
from slipstream import DAG, task

with DAG("etl", schedule=None, start_date=datetime(2024, 1, 1)):
    @task
    def produce():
        print("producing")
        return 42

    @task(retries=1, retry_delay=timedelta(0))
    def flaky(value, **context):
        if context["ti"].try_number == 1:
            raise RuntimeError("first try fails")
        return value + 1

    flaky(produce())
"""

# Scheduled daily from 2026-01-09 with catchup: without its latest scheduled run, the
# scheduler would make the runs it already made again.
DAILY = """
from datetime import datetime
from slipstream import DAG, task

with DAG("daily", schedule="@daily", start_date=datetime(2026, 1, 9), catchup=True):
    @task
    def only():
        return 1

    only()
"""


def cleanup_of(harness: Harness) -> DbCleanupService:
    return DbCleanupService(harness.db, log_folder=harness.settings.log_folder, clock=harness.clock)


def run_etl(harness: Harness) -> Run:
    run = harness.runs.trigger("etl").run
    harness.settle()
    done = harness.run("etl", run.run_id)
    assert done.state.value == "success", harness.states("etl", run.run_id)
    return done


def two_daily_runs(harness: Harness) -> None:
    """The runs of 2026-01-09 and -10, each started on the day it was due."""
    harness.write_dag("daily", DAILY)
    harness.settle()
    harness.clock.advance(timedelta(days=1))
    harness.settle()
    assert daily_dates(harness) == [day(9), day(10)]


def daily_dates(harness: Harness) -> list[datetime | None]:
    return sorted(run.logical_date for run in harness.runs.list_runs("daily", limit=None)[0])  # type: ignore[type-var]


def day(n: int) -> datetime:
    return datetime(2026, 1, n, tzinfo=UTC)


def rows_of(harness: Harness, run: Run) -> dict[str, int]:
    with harness.db.read() as conn:
        counts = {
            table.name: conn.execute(
                select(func.count()).select_from(table).where(table.c.run_pk == run.id)
            ).scalar_one()
            for table in (task_instances, task_tries, xcoms)
        }
        counts["runs"] = conn.execute(
            select(func.count()).select_from(runs).where(runs.c.id == run.id)
        ).scalar_one()
    return counts


def run_folder(harness: Harness, run: Run) -> Path:
    return harness.settings.log_folder / run.dag_id / run.run_id


def audit_events(harness: Harness) -> list[tuple[str, datetime]]:
    with harness.db.read() as conn:
        rows = conn.execute(select(log_table.c.event, log_table.c.dttm).order_by(log_table.c.id))
        return [(row.event, row.dttm) for row in rows]


def test_old_runs_go_with_all_they_hold_and_newer_ones_stay(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    old = run_etl(harness)
    harness.clock.advance(timedelta(days=10))
    new = run_etl(harness)
    held = {"runs": 1, "task_instances": 2, "task_tries": 3, "xcoms": 2}
    assert rows_of(harness, old) == rows_of(harness, new) == held
    assert (run_folder(harness, old) / "flaky" / "2.log").is_file()
    assert (run_folder(harness, old) / "flaky" / "1.log").is_file()

    cutoff = Cutoff.of(START + timedelta(days=5))
    results = cleanup_of(harness).clean(cutoff, list(CleanTable))
    by_table = {r.table: r for r in results}

    assert rows_of(harness, old) == dict.fromkeys(held, 0)
    assert not run_folder(harness, old).exists()
    assert rows_of(harness, new) == held
    assert (run_folder(harness, new) / "flaky" / "2.log").is_file()
    # The run's rows went with its table's clean (xcom and task_instance_history ran first).
    assert by_table[CleanTable.XCOM].rows == 2
    assert by_table[CleanTable.TASK_INSTANCE_HISTORY].rows == 1  # flaky's first try
    assert by_table[CleanTable.TASK_INSTANCE].rows == 2
    assert by_table[CleanTable.DAG_RUN].rows == 1
    assert by_table[CleanTable.DAG_RUN].log_files == 0  # the task instances' went before
    assert by_table[CleanTable.TASK_INSTANCE].log_files == 2
    # The audit log lost the old trigger's entry and kept the new one's.
    assert [e for e, at in audit_events(harness) if e == "trigger"] == ["trigger"]
    assert by_table[CleanTable.LOG].rows == 1
    assert harness.runs.get("etl", new.run_id).state.value == "success"


def test_a_run_cleaned_alone_takes_its_log_folder(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    old = run_etl(harness)
    harness.clock.advance(timedelta(days=10))
    cutoff = Cutoff.of(harness.clock.now())
    (result,) = cleanup_of(harness).clean(cutoff, [CleanTable.DAG_RUN])
    assert (result.rows, result.with_them) == (
        1,
        {"task_instances": 2, "task_tries": 3, "xcoms": 2},
    )
    assert result.log_files == 3  # produce's try, and flaky's two
    assert rows_of(harness, old) == dict.fromkeys(rows_of(harness, old), 0)
    assert not run_folder(harness, old).exists()
    assert not (harness.settings.log_folder / "etl").exists()  # its last run went


def test_a_dry_run_counts_what_a_clean_deletes_and_changes_nothing(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    olds = [run_etl(harness) for _ in range(3)]
    harness.clock.advance(timedelta(days=10))
    new = run_etl(harness)
    cutoff = Cutoff.of(harness.clock.now() - timedelta(days=1))
    cleanup = cleanup_of(harness)
    tables = [CleanTable.DAG_RUN, CleanTable.LOG]
    counted = cleanup.count(cutoff, tables)
    assert [(r.table, r.rows, r.batches) for r in counted] == [
        (CleanTable.DAG_RUN, 3, 0),
        (CleanTable.LOG, 3, 0),
    ]
    assert counted[0].with_them == {"task_instances": 6, "task_tries": 9, "xcoms": 6}
    for run in olds:
        assert rows_of(harness, run)["runs"] == 1
        assert run_folder(harness, run).is_dir()
    assert len(audit_events(harness)) == 4

    deleted = cleanup.clean(cutoff, tables)
    assert [(r.table, r.rows, r.with_them) for r in deleted] == [
        (r.table, r.rows, r.with_them) for r in counted
    ]
    assert rows_of(harness, new)["runs"] == 1
    assert cleanup.count(cutoff, tables)[0].rows == 0


def test_batches_of_one_delete_everything_one_row_at_a_time(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    olds = [run_etl(harness) for _ in range(3)]
    harness.clock.advance(timedelta(days=10))
    cutoff = Cutoff.of(harness.clock.now())
    cleanup = cleanup_of(harness)
    seen: list[tuple[CleanTable, int, int]] = []
    results = cleanup.clean(
        cutoff,
        [CleanTable.XCOM, CleanTable.DAG_RUN],
        batch_size=1,
        on_batch=lambda table, number, pruned: seen.append((table, number, pruned.rows)),
    )
    assert [(r.table, r.rows, r.batches) for r in results] == [
        (CleanTable.XCOM, 6, 6),
        (CleanTable.DAG_RUN, 3, 3),
    ]
    assert seen == [(CleanTable.XCOM, n, 1) for n in range(1, 7)] + [
        (CleanTable.DAG_RUN, n, 1) for n in range(1, 4)
    ]
    for run in olds:
        assert rows_of(harness, run)["runs"] == 0
        assert not run_folder(harness, run).exists()
    with pytest.raises(InvalidInputError):
        list(cleanup.batches(CleanTable.LOG, cutoff, 0))


def test_tables_of_a_run_can_be_cleaned_without_the_run(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    old = run_etl(harness)
    harness.clock.advance(timedelta(days=10))
    cutoff = Cutoff.of(harness.clock.now())
    cleanup = cleanup_of(harness)
    folder = run_folder(harness, old)

    (history,) = cleanup.clean(cutoff, [CleanTable.TASK_INSTANCE_HISTORY])
    assert (history.rows, history.log_files) == (1, 1)
    assert not (folder / "flaky" / "1.log").exists()
    assert (folder / "flaky" / "2.log").is_file()  # the current try stays
    assert [t.try_number for t in harness.tries("etl", old.run_id, "flaky")] == [2]

    (xcom,) = cleanup.clean(cutoff, [CleanTable.XCOM])
    assert xcom.rows == 2
    assert rows_of(harness, old) == {"runs": 1, "task_instances": 2, "task_tries": 2, "xcoms": 0}

    (instances,) = cleanup.clean(cutoff, [CleanTable.TASK_INSTANCE])
    assert (instances.rows, instances.with_them, instances.log_files) == (
        2,
        {"task_tries": 2, "xcoms": 0},
        2,
    )
    assert rows_of(harness, old) == {"runs": 1, "task_instances": 0, "task_tries": 0, "xcoms": 0}
    assert not (folder / "produce").exists() and not (folder / "flaky").exists()


def test_unfinished_runs_stay_however_old(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    harness.dags.set_paused("etl", True)
    waiting = harness.runs.trigger("etl").run  # queued: its DAG is paused
    harness.settle()
    harness.clock.advance(timedelta(days=100))
    cutoff = Cutoff.of(harness.clock.now())
    counted = cleanup_of(harness).count(cutoff, [CleanTable.DAG_RUN])
    assert counted[0].rows == 0
    cleanup_of(harness).clean(cutoff, [CleanTable.DAG_RUN])
    assert harness.run("etl", waiting.run_id).state.value == "queued"


def test_each_dags_latest_scheduled_run_stays_and_scheduling_continues(
    harness: Harness,
) -> None:
    harness.write_dag("etl", ETL)
    two_daily_runs(harness)
    manual = run_etl(harness)

    harness.clock.advance(timedelta(days=30))
    cutoff = Cutoff.of(harness.clock.now())
    results = cleanup_of(harness).clean(cutoff, [CleanTable.DAG_RUN])
    # The manual run went; of the scheduled ones, the latest stayed.
    assert results[0].rows == 2
    assert daily_dates(harness) == [day(10)]
    assert rows_of(harness, manual)["runs"] == 0

    harness.settle()
    # Catchup goes on from the kept run: the 11th onwards, never the 9th again.
    after = daily_dates(harness)
    assert after[:3] == [day(10), day(11), day(12)]
    assert len(after) == len(set(after))


def test_dag_filters_narrow_what_goes(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    two_daily_runs(harness)
    old = run_etl(harness)
    with harness.db.write() as conn:
        record_event(conn, "paused", harness.clock.now(), dag_id="daily")
        record_event(conn, "login", harness.clock.now())  # about no DAG
    harness.clock.advance(timedelta(days=30))
    before = harness.clock.now()
    cleanup = cleanup_of(harness)
    # daily's first run (its second is kept), etl's run: the kept run's rows are not counted.
    (everything,) = cleanup.count(Cutoff.of(before), [CleanTable.DAG_RUN])
    assert everything.rows == 2
    assert everything.with_them == {"task_instances": 3, "task_tries": 4, "xcoms": 3}
    (xcom,) = cleanup.count(Cutoff.of(before), [CleanTable.XCOM])
    assert xcom.rows == 3
    assert (
        cleanup.count(Cutoff.of(before, exclude_dag_ids=["etl"]), [CleanTable.DAG_RUN])[0].rows == 1
    )
    assert cleanup.count(Cutoff.of(before, dag_ids=["daily"]), [CleanTable.DAG_RUN])[0].rows == 1
    cleanup.clean(Cutoff.of(before, dag_ids=["etl"]), [CleanTable.DAG_RUN, CleanTable.LOG])
    assert rows_of(harness, old)["runs"] == 0
    assert daily_dates(harness) == [day(9), day(10)]
    # Audit entries about other DAGs (or none) stay: only etl's trigger went.
    assert [event for event, _ in audit_events(harness)] == ["paused", "login"]


def test_the_clean_is_audited(harness: Harness) -> None:
    cleanup = cleanup_of(harness)
    cutoff = Cutoff.of(START, dag_ids=["etl"])
    results = cleanup.count(cutoff, [CleanTable.DAG_RUN])
    cleanup.record(
        by="ops", cutoff=cutoff, tables=[CleanTable.DAG_RUN], dry_run=True, results=results
    )
    entries, _ = EventLogService(harness.db).list_events()
    assert [(e.event, e.owner) for e in entries] == [("cli_cleanup_tables", "ops")]
    assert entries[0].extra is not None
    assert '"clean_before_timestamp": "2026-01-10T12:00:00+00:00"' in entries[0].extra
    assert '"dag_ids": ["etl"]' in entries[0].extra
    assert '"rows": {"dag_run": 0}' in entries[0].extra


def test_table_names_are_airflows() -> None:
    everything = choose_tables(None)
    assert everything.tables == tuple(CleanTable)
    chosen = choose_tables(["xcom", " dataset_event", "dag_run", "task_reschedule"])
    assert chosen.tables == (CleanTable.ASSET_EVENT, CleanTable.XCOM, CleanTable.DAG_RUN)
    assert [name for name, _ in chosen.without_rows] == ["task_reschedule"]
    with pytest.raises(InvalidInputError) as caught:
        choose_tables(["dag_run", "task_instances"])
    assert "'task_instances'" in str(caught.value)
    assert "valid tables: _xcom_archive, asset_event" in str(caught.value)
    assert caught.value.field == "tables"
