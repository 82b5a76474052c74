"""store.claims on real SQLite and PostgreSQL: a remote worker's claim of a try is a
compare-and-set queued -> running that only one delivery wins, and the lookups around it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run, TaskKey
from slipstream.core.states import TaskState
from slipstream.core.transitions import TaskTransition, planned
from slipstream.store import claims
from slipstream.store import task_instances as ti_store
from slipstream.store import transitions as store
from slipstream.store.db import Database
from tests.store.test_transitions import LATER, NOW, queue, schedule, start_run

AddDag = Callable[..., DagPlan]
TASKS = [{"task_id": "a"}, {"task_id": "b", "queue": "gpu"}]


@pytest.fixture
def run(db: Database, add_dag: AddDag) -> Run:
    return start_run(db, add_dag("etl", TASKS))


def forced(db: Database, run: Run, task_id: str, target: TaskState) -> None:
    """A person's mark or clear of one task."""
    with db.write() as conn:
        current = ti_store.get(conn, run.id, task_id)
        assert current is not None
        store.apply_one(conn, TaskTransition.forced(current, target, reason="by hand"), LATER)


def queued(db: Database, run: Run, *task_ids: str) -> list[TaskKey]:
    schedule(db, run, *task_ids)
    return [queue(db, run, task_id, job_id=1) for task_id in task_ids]


def test_only_the_first_claim_of_a_try_wins(db: Database, run: Run) -> None:
    key_a, key_b = queued(db, run, "a", "b")
    with db.write() as conn:
        won = store.claim(conn, [key_a, key_b], worker_job_id=7, hostname="w1", at=LATER)
    assert won == {key_a, key_b}
    with db.write() as conn:
        again = store.claim(conn, [key_a], worker_job_id=8, hostname="w2", at=LATER)
    assert again == set()
    with db.read() as conn:
        ti = ti_store.get(conn, run.id, "a")
        (attempt,) = ti_store.tries_for(conn, run.id, "a")
    assert ti is not None
    assert (ti.state, ti.hostname, ti.start_date, ti.pid) == (TaskState.RUNNING, "w1", LATER, None)
    assert (attempt.state, attempt.hostname, attempt.start_date) == (TaskState.RUNNING, "w1", LATER)
    with db.read() as conn:
        assert {t.task_id for t in claims.held_by(conn, [7])} == {"a", "b"}
        assert claims.held_by(conn, [8]) == []


def test_a_claim_of_another_try_number_or_a_cleared_task_wins_nothing(
    db: Database, run: Run
) -> None:
    (key_a,) = queued(db, run, "a")
    stale = key_a._replace(try_number=key_a.try_number + 1)
    with db.write() as conn:
        assert store.claim(conn, [stale], worker_job_id=7, hostname="w", at=LATER) == set()
    forced(db, run, "a", TaskState.NONE)
    with db.write() as conn:
        assert store.claim(conn, [key_a], worker_job_id=7, hostname="w", at=LATER) == set()


def test_the_pid_is_recorded_while_the_try_is_the_worker_s(db: Database, run: Run) -> None:
    (key_a,) = queued(db, run, "a")
    with db.write() as conn:
        store.claim(conn, [key_a], worker_job_id=7, hostname="w", at=LATER)
        claims.record_pid(conn, key_a, worker_job_id=8, pid=111)  # not its worker: nothing
    with db.read() as conn:
        ti = ti_store.get(conn, run.id, "a")
    assert ti is not None and ti.pid is None
    with db.write() as conn:
        claims.record_pid(conn, key_a, worker_job_id=7, pid=222)
    with db.read() as conn:
        ti = ti_store.get(conn, run.id, "a")
        (attempt,) = ti_store.tries_for(conn, run.id, "a")
    assert ti is not None and (ti.pid, attempt.pid) == (222, 222)


def test_a_try_is_still_wanted_until_its_task_moves_on(db: Database, run: Run) -> None:
    key_a, key_b = queued(db, run, "a", "b")
    with db.write() as conn:
        store.claim(conn, [key_a], worker_job_id=7, hostname="w", at=LATER)
        assert claims.still_wanted(conn, [key_a, key_b]) == {key_a, key_b}
    forced(db, run, "a", TaskState.FAILED)
    with db.read() as conn:
        assert claims.still_wanted(conn, [key_a, key_b]) == {key_b}
        stale = key_b._replace(try_number=key_b.try_number - 1)
        assert claims.still_wanted(conn, [stale]) == set()


def test_unclaimed_tries_are_those_queued_before_the_bound_and_not_started(
    db: Database, run: Run
) -> None:
    key_a, _ = queued(db, run, "a", "b")
    with db.write() as conn:
        store.claim(conn, [key_a], worker_job_id=7, hostname="w", at=LATER)
    with db.read() as conn:
        assert claims.unclaimed(conn, queued_before=NOW) == []  # queued at NOW, not before
        late = claims.unclaimed(conn, queued_before=NOW + timedelta(seconds=1))
        assert [(t.task_id, t.queue) for t in late] == [("b", "gpu")]
        assert claims.unclaimed(conn, queued_before=LATER, dag_ids=["other"]) == []


def test_a_new_try_forgets_the_worker_of_the_last(db: Database, run: Run) -> None:
    (key_a,) = queued(db, run, "a")
    with db.write() as conn:
        store.claim(conn, [key_a], worker_job_id=7, hostname="w", at=LATER)
    forced(db, run, "a", TaskState.NONE)
    with db.write() as conn:
        store.apply_one(conn, planned(run.id, ("a",), TaskState.SCHEDULED), LATER)
    (key_a2,) = [queue(db, run, "a", job_id=1)]
    assert key_a2.try_number == key_a.try_number + 1
    with db.read() as conn:
        assert claims.held_by(conn, [7]) == []


def test_a_callback_request_is_claimed_once_and_released_when_its_worker_is_gone(
    db: Database, run: Run
) -> None:
    from slipstream.store import callbacks as callbacks_store
    from slipstream.store import jobs as jobs_store

    with db.write() as conn:
        live = jobs_store.start_job(conn, hostname="w", pid=1, now=NOW, job_type="worker")
        doomed = jobs_store.start_job(conn, hostname="w", pid=2, now=NOW, job_type="worker")
        first, second = (
            callbacks_store.add(conn, run_pk=run.id, kind="dag_on_success_callback", task_id="",
                                try_number=0, error=None, reason="success", now=NOW)
            for _ in range(2)
        )  # fmt: skip
        assert callbacks_store.claim(conn, first, worker_job_id=live)
        assert not callbacks_store.claim(conn, first, worker_job_id=doomed)  # a second delivery
        assert callbacks_store.claim(conn, second, worker_job_id=doomed)
        assert callbacks_store.release_gone_workers(conn) == []
        jobs_store.end_job(conn, doomed, LATER, state=jobs_store.LOST)
        assert callbacks_store.release_gone_workers(conn) == [second]
        assert callbacks_store.claim(conn, second, worker_job_id=live)
        callbacks_store.remove(conn, [first])
        assert not callbacks_store.claim(conn, first, worker_job_id=live)  # it has run
