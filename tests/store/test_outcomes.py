"""store/outcomes.py on real SQLite and PostgreSQL: the outbox of tries' outcomes."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import delete, insert

from slipstream.core.records import ExitReason, RunType, TaskFinished, TaskKey
from slipstream.core.states import TaskState
from slipstream.store import outcomes
from slipstream.store import runs as runs_store
from slipstream.store.db import Database
from slipstream.store.tables import runs as runs_table
from slipstream.store.tables import try_outcomes
from tests.store.conftest import AddDag

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def a_run(db: Database, add_dag: AddDag, run_id: str = "r1") -> int:
    plan = add_dag("etl", [{"task_id": "a"}, {"task_id": "b", "upstream": ["a"]}])
    with db.write() as conn:
        run = runs_store.insert_run(
            conn,
            dag_id="etl",
            run_id=run_id,
            run_type=RunType.MANUAL,
            logical_date=None,
            data_interval=None,
            conf={},
            version_id=plan.version_id,
            now=NOW,
        )
    return run.id


def finished(run_pk: int, task_id: str = "a", try_number: int = 1) -> TaskFinished:
    return TaskFinished(
        TaskKey(run_pk, task_id, try_number),
        TaskState.SUCCESS,
        ExitReason.SUCCESS,
        NOW,
        xcoms=(("return_value", "1"),),
    )


def test_recorded_outcomes_are_taken_in_order_and_deleted_once(
    db: Database, add_dag: AddDag
) -> None:
    run_pk = a_run(db, add_dag)
    first, second = finished(run_pk, "a"), finished(run_pk, "b")
    with db.write() as conn:
        assert outcomes.record(conn, [first, second], worker_job_id=7, now=NOW) == 2
    with db.write() as conn:
        taken = outcomes.take(conn)
        assert [(t.dag_id, t.outcome) for t in taken] == [("etl", first), ("etl", second)]
        outcomes.delete(conn, [t.id for t in taken])
    with db.read() as conn:
        assert outcomes.take(conn) == []
        assert outcomes.count(conn) == 0


def test_a_second_record_of_the_same_try_writes_nothing(db: Database, add_dag: AddDag) -> None:
    run_pk = a_run(db, add_dag)
    with db.write() as conn:
        assert outcomes.record(conn, [finished(run_pk)], worker_job_id=1, now=NOW) == 1
    # The same try again (a host retrying a commit whose answer it lost): kept as first written.
    again = TaskFinished(TaskKey(run_pk, "a", 1), TaskState.FAILED, ExitReason.TASK_ERROR, NOW)
    with db.write() as conn:
        assert (
            outcomes.record(conn, [again, finished(run_pk, "a", 2)], worker_job_id=1, now=NOW) == 1
        )
    with db.read() as conn:
        taken = outcomes.take(conn)
    assert [t.outcome for t in taken] == [finished(run_pk), finished(run_pk, "a", 2)]


def test_an_outcome_of_a_deleted_run_has_nowhere_to_go(db: Database, add_dag: AddDag) -> None:
    run_pk = a_run(db, add_dag)
    with db.write() as conn:
        outcomes.record(conn, [finished(run_pk)], worker_job_id=None, now=NOW)
        conn.execute(delete(runs_table).where(runs_table.c.id == run_pk))
    with db.read() as conn:
        assert outcomes.count(conn) == 0  # ON DELETE CASCADE
    with db.write() as conn:
        assert outcomes.record(conn, [finished(run_pk)], worker_job_id=None, now=NOW) == 0


def test_a_rolled_back_take_keeps_its_rows(db: Database, add_dag: AddDag) -> None:
    run_pk = a_run(db, add_dag)
    with db.write() as conn:
        outcomes.record(conn, [finished(run_pk)], worker_job_id=None, now=NOW)
    try:
        with db.write() as conn:
            outcomes.delete(conn, [t.id for t in outcomes.take(conn)])
            raise RuntimeError("the pass failed")
    except RuntimeError:
        pass
    with db.read() as conn:
        assert [t.outcome for t in outcomes.take(conn)] == [finished(run_pk)]


def test_an_unreadable_payload_is_named_and_left_in_place(db: Database, add_dag: AddDag) -> None:
    run_pk = a_run(db, add_dag)
    future = {**finished(run_pk).to_json(), "v": 99}
    with db.write() as conn:
        conn.execute(
            insert(try_outcomes).values(
                run_pk=run_pk,
                dag_id="etl",
                task_id="a",
                map_index=-1,
                try_number=1,
                payload=json.dumps(future),
                created_at=NOW,
            )
        )
    with db.read() as conn:
        (taken,) = outcomes.take(conn)
    assert taken.outcome is None and taken.error is not None and "version 99" in taken.error
