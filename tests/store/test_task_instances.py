"""store.task_instances on real SQLite and PostgreSQL: rows per run, their tries, and reads.
(Their state changes are store/transitions.py's: see test_transitions.py.)"""

from __future__ import annotations

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run
from slipstream.core.states import TaskState
from slipstream.store import task_instances as store
from slipstream.store import transitions
from slipstream.store.db import Database
from tests.store.test_transitions import (
    LATER,
    ended,
    plan,
    queue,
    run,
    schedule,
    start_job,
    start_run,
    started,
)

S = TaskState
__all__ = ["plan", "run"]  # fixtures shared with test_transitions.py


def test_create_for_run_makes_one_row_per_task(db: Database, plan: DagPlan, run: Run) -> None:
    with db.read() as conn:
        rows = {t.task_id: t for t in store.list_for_run(conn, run.id)}
        assert store.states_for_run(conn, run.id) == dict.fromkeys(plan.order, S.NONE)
    assert set(rows) == {"extract", "transform", "load"}
    extract = rows["extract"]
    assert (extract.run_pk, extract.dag_id, extract.run_id) == (run.id, "etl", "r1")
    assert (extract.state, extract.try_number, extract.max_tries) == (S.NONE, 0, 2)
    assert (extract.pool, extract.queue, extract.priority_weight) == ("io", "fast", 5)
    assert extract.operator == "PythonOperator"
    assert rows["transform"].operator == "BashOperator"
    assert rows["load"].max_tries == 0
    assert rows["load"].pool == "default_pool"
    assert all(t.queued_at is None and t.infra_failures == 0 for t in rows.values())


def test_owned_by_others_finds_in_flight_tries_of_other_schedulers(
    db: Database, plan: DagPlan, run: Run
) -> None:
    me, other = start_job(db, 1), start_job(db, 2)
    second_run = start_run(db, plan, "r2")
    schedule(db, run, "extract", "transform", "load")
    schedule(db, second_run, "extract", "transform")
    queue(db, run, "extract", me)
    theirs = queue(db, run, "transform", other)
    orphan = queue(db, run, "load", None)
    running = queue(db, second_run, "extract", other)
    finished = queue(db, second_run, "transform", other)
    with db.write() as conn:
        transitions.apply(conn, [started(running), ended(finished, S.SUCCESS)], LATER)
    with db.read() as conn:
        found = {(t.run_pk, t.task_id): owner for t, owner in store.owned_by_others(conn, me)}
    assert found == {
        (run.id, theirs.task_id): other,
        (run.id, orphan.task_id): None,
        (second_run.id, running.task_id): other,
    }


def test_reads_across_runs(db: Database, plan: DagPlan, run: Run) -> None:
    second = start_run(db, plan, "r2")
    schedule(db, second, "extract")
    with db.read() as conn:
        everything = store.list_for_runs(conn, [run.id, second.id])
        assert store.list_for_runs(conn, []) == []
        scheduled = store.in_state(conn, [S.SCHEDULED])
        picked = store.keys_of(conn, [(run.id, "load"), (second.id, "extract"), (run.id, "x")])
        assert store.keys_of(conn, []) == []
        assert store.get(conn, run.id, "missing") is None
    assert len(everything) == 6
    assert [(t.run_pk, t.task_id) for t in scheduled] == [(second.id, "extract")]
    assert sorted((t.run_pk, t.task_id) for t in picked) == sorted(
        [(run.id, "load"), (second.id, "extract")]
    )
