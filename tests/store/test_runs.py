"""store.runs on real SQLite and PostgreSQL: inserting, finding and listing runs."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import IntegrityError

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run, RunType
from slipstream.core.states import RunState
from slipstream.core.transitions import RunTransition
from slipstream.errors import InvalidInputError, RunAlreadyExists
from slipstream.store import runs as store
from slipstream.store import transitions
from slipstream.store.db import Database
from slipstream.store.tables import runs as runs_table

NOW = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)

AddDag = Callable[..., DagPlan]  # the add_dag fixture in conftest.py


def day(n: int) -> datetime:
    return datetime(2026, 1, n, tzinfo=UTC)


def insert(conn: Connection, dag: DagPlan, run_id: str, **overrides: Any) -> Run:
    fields: dict[str, Any] = {
        "run_type": RunType.MANUAL,
        "logical_date": NOW,
        "data_interval": (NOW - timedelta(days=1), NOW),
        "conf": {},
        "now": NOW,
    }
    fields.update(overrides)
    return store.insert_run(
        conn, dag_id=dag.dag_id, run_id=run_id, version_id=dag.version_id, **fields
    )


def move_run(conn: Connection, pk: int, target: RunState, at: datetime) -> None:
    """The scheduler's own moves of a run, to set up the reads under test."""
    assert transitions.apply_one(conn, RunTransition.natural(pk, target), at)


def count_runs(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(runs_table)).scalar_one())


def test_insert_returns_the_queued_run(db: Database, add_dag: AddDag) -> None:
    dag = add_dag("etl")
    with db.write() as conn:
        run = insert(
            conn,
            dag,
            "manual__1",
            logical_date=day(3),
            data_interval=(day(2), day(3)),
            conf={"n": 1, "nested": {"list": [1, "two", None]}},
            triggered_by="rest_api",
            note="by hand",
        )
    assert run.id > 0
    assert (run.dag_id, run.run_id, run.state) == ("etl", "manual__1", RunState.QUEUED)
    assert run.run_type is RunType.MANUAL
    assert run.logical_date == day(3)
    assert (run.data_interval_start, run.data_interval_end) == (day(2), day(3))
    assert run.conf == {"n": 1, "nested": {"list": [1, "two", None]}}
    assert run.queued_at == NOW
    assert run.start_date is None and run.end_date is None
    assert run.version_id == dag.version_id
    assert run.external_trigger is True
    assert (run.triggered_by, run.note, run.state_reason) == ("rest_api", "by hand", None)
    with db.read() as conn:
        assert store.get_run(conn, "etl", "manual__1") == run
        assert store.get_run_by_pk(conn, run.id) == run
        assert store.runs_by_pk(conn, [run.id, run.id + 1000]) == {run.id: run}
        assert store.runs_by_pk(conn, []) == {}
        assert store.run_id_exists(conn, "etl", "manual__1")
        assert not store.run_id_exists(conn, "etl", "manual__2")
        assert store.get_run(conn, "etl", "manual__2") is None
        assert store.get_run_by_pk(conn, run.id + 1000) is None


def test_a_run_without_a_data_interval(db: Database, add_dag: AddDag) -> None:
    dag = add_dag()
    with db.write() as conn:
        run = insert(conn, dag, "r", logical_date=None, data_interval=None, external_trigger=False)
    assert run.logical_date is None
    assert run.data_interval_start is None and run.data_interval_end is None
    assert run.external_trigger is False


def test_a_duplicate_run_id_is_refused_and_the_transaction_stays_usable(
    db: Database, add_dag: AddDag
) -> None:
    dag = add_dag("etl")
    with db.write() as conn:
        first = insert(conn, dag, "dup")
    with db.write() as conn:
        with pytest.raises(RunAlreadyExists) as excinfo:
            insert(conn, dag, "dup", conf={"second": True})
        assert (excinfo.value.dag_id, excinfo.value.run_id) == ("etl", "dup")
        # On PostgreSQL a failed statement would abort the whole transaction without the
        # savepoint: this insert and the commit below must still work.
        other = insert(conn, dag, "after-conflict")
    with db.read() as conn:
        assert store.get_run(conn, "etl", "dup") == first
        assert store.get_run(conn, "etl", "after-conflict") == other
    assert count_runs(db) == 2


def test_the_same_run_id_may_exist_in_another_dag(db: Database, add_dag: AddDag) -> None:
    one, two = add_dag("one"), add_dag("two")
    with db.write() as conn:
        a = insert(conn, one, "same")
        b = insert(conn, two, "same")
    assert a.id != b.id


def test_a_conflict_that_is_not_a_duplicate_is_not_reported_as_one(db: Database) -> None:
    # No such DAG: the foreign key refuses the row. That is not "run already exists".
    ghost = DagPlan.from_structure(
        {"dag_id": "ghost", "tasks": []}, version_id=999, version_hash="h"
    )
    with db.write() as conn, pytest.raises(IntegrityError):
        insert(conn, ghost, "r")
    assert count_runs(db) == 0


def test_idempotency_keys(db: Database, add_dag: AddDag) -> None:
    etl, other = add_dag("etl"), add_dag("other")
    with db.write() as conn:
        run = insert(conn, etl, "r1", idempotency_key="key-1")
        insert(conn, other, "r1", idempotency_key="key-1")  # keys are per DAG
        with pytest.raises(RunAlreadyExists):
            insert(conn, etl, "r2", idempotency_key="key-1")
    with db.read() as conn:
        assert store.find_by_idempotency_key(conn, "etl", "key-1") == run
        assert store.find_by_idempotency_key(conn, "etl", "key-2") is None
        assert not store.run_id_exists(conn, "etl", "r2")


def test_queued_runs_come_oldest_first_per_dag(db: Database, add_dag: AddDag) -> None:
    etl, other = add_dag("etl"), add_dag("other")
    with db.write() as conn:
        ids = [insert(conn, etl, f"r{n}").id for n in range(4)]
        insert(conn, other, "x")
        move_run(conn, ids[1], RunState.RUNNING, NOW)
    with db.read() as conn:
        assert [r.id for r in store.queued_runs(conn, "etl", 10)] == [ids[0], ids[2], ids[3]]
        assert [r.id for r in store.queued_runs(conn, "etl", 2)] == [ids[0], ids[2]]
        assert store.queued_runs(conn, "missing", 10) == []
        assert store.dags_with_queued_runs(conn, ["etl", "other", "missing"]) == {"etl", "other"}
        assert store.dags_with_queued_runs(conn, []) == set()
        assert store.dags_with_queued_runs(conn) == {"etl", "other"}  # of every DAG


def test_count_running_and_running_runs(db: Database, add_dag: AddDag) -> None:
    etl, other, idle = add_dag("etl"), add_dag("other"), add_dag("idle")
    with db.write() as conn:
        etl_runs = [insert(conn, etl, f"r{n}") for n in range(3)]
        other_run = insert(conn, other, "x")
        insert(conn, idle, "queued-only")
        for run in [*etl_runs, other_run]:
            move_run(conn, run.id, RunState.RUNNING, NOW)
        move_run(conn, etl_runs[0].id, RunState.SUCCESS, NOW)
    with db.read() as conn:
        assert store.count_running(conn, ["etl", "other", "idle"]) == {"etl": 2, "other": 1}
        assert store.count_running(conn, ["other"]) == {"other": 1}
        assert store.count_running(conn, []) == {}
        running = store.running_runs(conn)
    assert [r.id for r in running] == [etl_runs[1].id, etl_runs[2].id, other_run.id]
    assert all(r.state is RunState.RUNNING for r in running)


def test_list_runs_filters(db: Database, add_dag: AddDag) -> None:
    etl, other = add_dag("etl"), add_dag("other")
    with db.write() as conn:
        r1 = insert(conn, etl, "r1", logical_date=day(1))
        r2 = insert(conn, etl, "r2", logical_date=day(2))
        insert(conn, etl, "r3", logical_date=day(3))
        insert(conn, other, "o1", logical_date=day(2))
        move_run(conn, r1.id, RunState.RUNNING, day(10))
        move_run(conn, r1.id, RunState.SUCCESS, day(11))
        move_run(conn, r2.id, RunState.RUNNING, day(12))

    with db.read() as conn:

        def ids(**kwargs: Any) -> tuple[list[str], int]:
            found, total = store.list_runs(conn, **kwargs)
            return [r.run_id for r in found], total

        assert ids() == (["r1", "r2", "r3", "o1"], 4)
        assert ids(dag_ids=["etl"]) == (["r1", "r2", "r3"], 3)
        assert ids(dag_ids=["etl", "other"]) == (["r1", "r2", "r3", "o1"], 4)
        assert ids(dag_ids=[]) == ([], 0)
        assert ids(states=["running", "success"]) == (["r1", "r2"], 2)
        assert ids(states=["queued"], dag_ids=["etl"]) == (["r3"], 1)
        assert ids(logical_date_gte=day(2)) == (["r2", "r3", "o1"], 3)
        assert ids(logical_date_lte=day(2)) == (["r1", "r2", "o1"], 3)
        assert ids(logical_date_gte=day(2), logical_date_lte=day(2)) == (["r2", "o1"], 2)
        assert ids(start_date_gte=day(11)) == (["r2"], 1)
        assert ids(start_date_lte=day(11)) == (["r1"], 1)
        assert ids(end_date_gte=day(11), end_date_lte=day(11)) == (["r1"], 1)
        # A bound in another time zone is the same instant.
        tokyo = day(2).astimezone(ZoneInfo("Asia/Tokyo"))
        assert ids(logical_date_gte=tokyo, dag_ids=["etl"]) == (["r2", "r3"], 2)


def test_list_runs_orders_and_pages(db: Database, add_dag: AddDag) -> None:
    dag = add_dag()
    dates = [day(3), day(1), day(2), day(1)]
    with db.write() as conn:
        made = [insert(conn, dag, f"r{n}", logical_date=d) for n, d in enumerate(dates)]
    by_id = [r.run_id for r in made]
    with db.read() as conn:

        def ids(**kwargs: Any) -> list[str]:
            return [r.run_id for r in store.list_runs(conn, **kwargs)[0]]

        assert ids() == by_id
        assert ids(order_by="-id") == by_id[::-1]
        # Ties on the column are broken by id, in the same direction.
        assert ids(order_by="logical_date") == ["r1", "r3", "r2", "r0"]
        assert ids(order_by="-logical_date") == ["r0", "r2", "r3", "r1"]
        assert ids(order_by="execution_date") == ids(order_by="logical_date")
        assert ids(order_by="-run_id") == ["r3", "r2", "r1", "r0"]

        page, total = store.list_runs(conn, order_by="-id", limit=2)
        assert ([r.run_id for r in page], total) == (["r3", "r2"], 4)
        page, total = store.list_runs(conn, order_by="-id", limit=2, offset=2)
        assert ([r.run_id for r in page], total) == (["r1", "r0"], 4)
        page, total = store.list_runs(conn, order_by="-id", limit=2, offset=4)
        assert (page, total) == ([], 4)
        assert ids(offset=3) == ["r3"]


def test_list_runs_refuses_an_unknown_order(db: Database) -> None:
    with db.read() as conn, pytest.raises(InvalidInputError) as excinfo:
        store.list_runs(conn, order_by="-conf")
    assert excinfo.value.field == "order_by"


def test_notes_and_deletion(db: Database, add_dag: AddDag) -> None:
    dag = add_dag()
    later = NOW + timedelta(hours=1)
    with db.write() as conn:
        run = insert(conn, dag, "r")
        keep = insert(conn, dag, "keep")
        store.set_note(conn, run.id, "looked at it", later)
        noted = store.get_run_by_pk(conn, run.id)
        assert noted is not None and noted.note == "looked at it"
        store.set_note(conn, run.id, None, later)
        cleared = store.get_run_by_pk(conn, run.id)
        assert cleared is not None and cleared.note is None
        assert store.delete_run(conn, run.id)
        assert not store.delete_run(conn, run.id)
    with db.read() as conn:
        assert store.get_run_by_pk(conn, run.id) is None
        assert store.get_run_by_pk(conn, keep.id) == keep


def test_latest_scheduled_end_counts_scheduled_and_backfill_runs(
    db: Database, add_dag: AddDag
) -> None:
    dag, other = add_dag("etl"), add_dag("other")
    with db.read() as conn:
        assert store.latest_scheduled_end(conn, "etl") is None
    with db.write() as conn:
        insert(conn, dag, "s1", run_type=RunType.SCHEDULED, data_interval=(day(1), day(2)))
        insert(conn, dag, "s2", run_type=RunType.SCHEDULED, data_interval=(day(2), day(3)))
        insert(conn, other, "o", run_type=RunType.SCHEDULED, data_interval=(day(8), day(9)))
        # A manual run covers no scheduled interval, however late its interval ends.
        insert(conn, dag, "m", run_type=RunType.MANUAL, data_interval=(day(20), day(21)))
    with db.read() as conn:
        latest = store.latest_scheduled_end(conn, "etl")
    assert latest == day(3)
    assert latest is not None and latest.tzinfo is not None
    with db.write() as conn:
        insert(conn, dag, "b", run_type=RunType.BACKFILL, data_interval=(day(3), day(4)))
    with db.read() as conn:
        assert store.latest_scheduled_end(conn, "etl") == day(4)


def test_logical_dates_taken(db: Database, add_dag: AddDag) -> None:
    dag, other = add_dag("etl"), add_dag("other")
    with db.write() as conn:
        insert(conn, dag, "a", logical_date=day(1))
        insert(conn, dag, "b", logical_date=day(3))
        insert(conn, other, "c", logical_date=day(2))
    with db.read() as conn:
        taken = store.logical_dates_taken(conn, "etl", [day(1), day(2), day(3), day(4)])
        assert taken == {day(1), day(3)}
        assert store.logical_dates_taken(conn, "etl", []) == set()
