"""store.task_instances on real SQLite and PostgreSQL: rows per run, tries, compare-and-set."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import ExitReason, Run, RunType, TaskKey
from slipstream.core.states import TaskState
from slipstream.store import jobs as jobs_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as store
from slipstream.store.db import Database

AddDag = Callable[..., DagPlan]  # the add_dag fixture in conftest.py

S = TaskState
NOW = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)
TASKS = [
    {"task_id": "extract", "retries": 2, "pool": "io", "queue": "fast", "priority_weight": 5},
    {"task_id": "transform", "upstream": ["extract"], "operator": "BashOperator"},
    {"task_id": "load", "upstream": ["transform"]},
]


def start_run(db: Database, plan: DagPlan, run_id: str = "r1") -> Run:
    with db.write() as conn:
        run = runs_store.insert_run(
            conn,
            dag_id=plan.dag_id,
            run_id=run_id,
            run_type=RunType.MANUAL,
            logical_date=NOW,
            data_interval=(NOW, NOW),
            conf={},
            version_id=plan.version_id,
            now=NOW,
        )
        store.create_for_run(conn, run, plan, NOW)
    return run


@pytest.fixture
def plan(add_dag: AddDag) -> DagPlan:
    return add_dag("etl", TASKS)


@pytest.fixture
def run(db: Database, plan: DagPlan) -> Run:
    return start_run(db, plan)


def schedule(db: Database, run: Run, *task_ids: str) -> None:
    with db.write() as conn:
        assert store.move(conn, run.id, task_ids, [S.NONE], S.SCHEDULED, NOW) == list(task_ids)


def queue(db: Database, run: Run, task_id: str, job_id: int | None = None) -> TaskKey:
    with db.write() as conn:
        (queued,) = store.queue_tries(conn, run.id, [task_id], NOW, job_id)
    return TaskKey(run.id, task_id, queued.try_number)


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


def test_move_is_a_compare_and_set_returning_what_moved(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    with db.write() as conn:
        moved = store.move(
            conn,
            run.id,
            ["extract", "transform", "nope"],
            [S.NONE],
            S.SKIPPED,
            LATER,
            reason="branch",
        )
        assert moved == ["transform"]
        assert store.move(conn, run.id, [], [S.NONE], S.SKIPPED, LATER) == []
    with db.read() as conn:
        states = store.states_for_run(conn, run.id)
        skipped = store.get(conn, run.id, "transform")
    assert states == {"extract": S.SCHEDULED, "transform": S.SKIPPED, "load": S.NONE}
    assert skipped is not None
    assert skipped.end_date == LATER  # a finished state is stamped
    assert skipped.state_reason == "branch"


def test_move_scopes_to_its_run(db: Database, plan: DagPlan, run: Run) -> None:
    other = start_run(db, plan, "r2")
    schedule(db, run, "extract")
    with db.read() as conn:
        assert store.states_for_run(conn, other.id)["extract"] is S.NONE


def test_moving_back_to_none_clears_the_try_s_dates(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    with db.write() as conn:
        store.finish_try(
            conn,
            key,
            state=S.UP_FOR_RETRY,
            try_state=S.FAILED,
            exit_reason=ExitReason.TASK_ERROR,
            at=LATER,
            next_retry_at=LATER,
        )
        assert store.move(conn, run.id, ["extract"], list(TaskState), S.NONE, LATER) == ["extract"]
        cleared = store.get(conn, run.id, "extract")
    assert cleared is not None
    assert cleared.state is S.NONE
    assert (cleared.queued_at, cleared.start_date, cleared.end_date) == (None, None, None)
    assert cleared.next_retry_at is None
    assert cleared.try_number == 1  # the history of tries is kept


def test_move_applies_extra_columns(db: Database, run: Run) -> None:
    with db.write() as conn:
        store.move(
            conn, run.id, ["extract"], [S.NONE], S.SUCCESS, LATER, extra={"start_date": LATER}
        )
        done = store.get(conn, run.id, "extract")
    assert done is not None
    assert (done.state, done.start_date, done.end_date) == (S.SUCCESS, LATER, LATER)


def test_queue_tries_starts_a_new_try_for_scheduled_tasks_only(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    job_id = start_job(db)
    with db.write() as conn:
        queued = store.queue_tries(conn, run.id, ["extract", "transform"], LATER, job_id)
        assert store.queue_tries(conn, run.id, [], LATER, job_id) == []
    assert [t.task_id for t in queued] == ["extract"]
    (extract,) = queued
    assert (extract.state, extract.try_number, extract.queued_at) == (S.QUEUED, 1, LATER)
    with db.read() as conn:
        assert store.get(conn, run.id, "extract") == extract
        assert store.get(conn, run.id, "transform") is not None
        (first_try,) = store.tries_for(conn, run.id, "extract")
        assert store.tries_for(conn, run.id, "transform") == []
    assert (first_try.try_number, first_try.state, first_try.queued_at) == (1, S.QUEUED, LATER)
    assert (first_try.dag_id, first_try.run_id) == ("etl", "r1")
    assert first_try.end_date is None and first_try.exit_reason is None


def test_queueing_again_is_refused_until_the_task_is_scheduled_again(
    db: Database, run: Run
) -> None:
    schedule(db, run, "extract")
    first = queue(db, run, "extract")
    with db.write() as conn:
        assert store.queue_tries(conn, run.id, ["extract"], LATER, None) == []
        store.finish_try(
            conn,
            first,
            state=S.UP_FOR_RETRY,
            try_state=S.FAILED,
            exit_reason=ExitReason.TASK_ERROR,
            at=LATER,
            error="boom",
            next_retry_at=LATER,
        )
        store.move(conn, run.id, ["extract"], [S.UP_FOR_RETRY], S.SCHEDULED, LATER)
    second = queue(db, run, "extract")
    assert second.try_number == 2
    with db.read() as conn:
        tries = store.tries_for(conn, run.id, "extract")
    assert [(t.try_number, t.state) for t in tries] == [(1, S.FAILED), (2, S.QUEUED)]
    assert tries[0].error == "boom"


def test_mark_started_compares_the_try_number(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    with db.write() as conn:
        assert store.mark_started(conn, key, pid=4321, hostname="worker-1", at=LATER)
        # A duplicate start report finds the task running already.
        assert not store.mark_started(conn, key, pid=1, hostname="other", at=LATER)
        running = store.get(conn, run.id, "extract")
        (current_try,) = store.tries_for(conn, run.id, "extract")
    assert running is not None
    assert (running.state, running.pid, running.hostname, running.start_date) == (
        S.RUNNING,
        4321,
        "worker-1",
        LATER,
    )
    assert (current_try.state, current_try.pid, current_try.hostname) == (
        S.RUNNING,
        4321,
        "worker-1",
    )


def test_a_stale_try_s_reports_change_nothing(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    stale = queue(db, run, "extract")
    with db.write() as conn:
        # The first try is declared lost; a second one is queued in its place.
        assert store.finish_try(
            conn,
            stale,
            state=S.UP_FOR_RETRY,
            try_state=S.FAILED,
            exit_reason=ExitReason.WORKER_LOST,
            at=LATER,
            infra_failures=1,
            next_retry_at=LATER,
        )
        store.move(conn, run.id, ["extract"], [S.UP_FOR_RETRY], S.SCHEDULED, LATER)
    current = queue(db, run, "extract")
    with db.read() as conn:
        before = store.get(conn, run.id, "extract")
        tries_before = store.tries_for(conn, run.id, "extract")
    much_later = LATER + timedelta(hours=1)
    with db.write() as conn:
        assert not store.mark_started(conn, stale, pid=9, hostname="ghost", at=much_later)
        assert not store.finish_try(
            conn,
            stale,
            state=S.SUCCESS,
            try_state=S.SUCCESS,
            exit_reason=ExitReason.SUCCESS,
            at=much_later,
        )
    with db.read() as conn:
        assert store.get(conn, run.id, "extract") == before
        assert store.tries_for(conn, run.id, "extract") == tries_before
    assert before is not None
    assert (before.state, before.try_number, before.infra_failures) == (S.QUEUED, 2, 1)
    assert current.try_number == 2


def test_finish_try_records_the_outcome_once(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    end = LATER + timedelta(seconds=5)
    with db.write() as conn:
        store.mark_started(conn, key, pid=1, hostname="h", at=LATER)
        assert store.finish_try(
            conn,
            key,
            state=S.SUCCESS,
            try_state=S.SUCCESS,
            exit_reason=ExitReason.SUCCESS,
            at=end,
            exit_code=0,
        )
        # The same report again (or a late failure report) cannot overwrite a finished try.
        assert not store.finish_try(
            conn,
            key,
            state=S.FAILED,
            try_state=S.FAILED,
            exit_reason=ExitReason.TASK_ERROR,
            at=end + timedelta(seconds=1),
            error="late",
        )
        done = store.get(conn, run.id, "extract")
        (the_try,) = store.tries_for(conn, run.id, "extract")
    assert done is not None
    assert (done.state, done.end_date, done.state_reason) == (S.SUCCESS, end, None)
    assert (the_try.state, the_try.exit_reason, the_try.exit_code) == (
        S.SUCCESS,
        ExitReason.SUCCESS,
        0,
    )
    assert (the_try.start_date, the_try.end_date, the_try.error) == (LATER, end, None)


def test_a_try_may_finish_straight_from_queued(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    with db.write() as conn:
        assert store.finish_try(
            conn,
            key,
            state=S.SKIPPED,
            try_state=S.SKIPPED,
            exit_reason=ExitReason.SKIPPED,
            at=LATER,
        )
        skipped = store.get(conn, run.id, "extract")
    assert skipped is not None and skipped.state is S.SKIPPED


def test_a_failed_try_keeps_its_retry_and_reason(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    retry_at = LATER + timedelta(minutes=5)
    with db.write() as conn:
        assert store.finish_try(
            conn,
            key,
            state=S.UP_FOR_RETRY,
            try_state=S.FAILED,
            exit_reason=ExitReason.TIMEOUT,
            at=LATER,
            error="timed out after 60s",
            exit_code=-9,
            next_retry_at=retry_at,
            infra_failures=0,
        )
        retrying = store.get(conn, run.id, "extract")
        (the_try,) = store.tries_for(conn, run.id, "extract")
        assert store.in_state(conn, [S.UP_FOR_RETRY]) == [retrying]
    assert retrying is not None
    assert (retrying.state, retrying.next_retry_at) == (S.UP_FOR_RETRY, retry_at)
    assert retrying.state_reason == "timed out after 60s"
    assert (the_try.state, the_try.exit_reason, the_try.exit_code) == (
        S.FAILED,
        ExitReason.TIMEOUT,
        -9,
    )


def start_job(db: Database, pid: int = 100) -> int:
    with db.write() as conn:
        return jobs_store.start_job(conn, hostname="host", pid=pid, now=NOW)


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
        store.mark_started(conn, running, pid=1, hostname="h", at=LATER)
        store.finish_try(
            conn,
            finished,
            state=S.SUCCESS,
            try_state=S.SUCCESS,
            exit_reason=ExitReason.SUCCESS,
            at=LATER,
        )
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
