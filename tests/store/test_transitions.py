"""store.transitions on real SQLite and PostgreSQL: every state change is a compare-and-set on
the states its transition names, and those come from the table in core/states.py."""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import BinaryExpression, BindParameter, Column
from sqlalchemy.sql import operators
from sqlalchemy.sql.dml import Update
from sqlalchemy.sql.visitors import iterate

import slipstream
from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import (
    ExitReason,
    Run,
    RunType,
    TaskInstance,
    TaskKey,
    TaskStarted,
)
from slipstream.core.states import (
    RunState,
    TaskState,
    run_sources,
    task_sources,
)
from slipstream.core.transitions import (
    EndTry,
    ExpandTask,
    QueueTries,
    RunTransition,
    StartTry,
    TaskTransition,
    Transition,
    branch_skip,
    planned,
    retry_due,
)
from slipstream.errors import InvalidStateTransition
from slipstream.store import jobs as jobs_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import transitions as store
from slipstream.store.db import Database
from slipstream.store.tables import runs as runs_table
from slipstream.store.tables import task_instances as ti_table

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
        ti_store.create_for_run(conn, run, plan, NOW)
    return run


def start_job(db: Database, pid: int = 100) -> int:
    with db.write() as conn:
        return jobs_store.start_job(conn, hostname="host", pid=pid, now=NOW)


def schedule(db: Database, run: Run, *task_ids: str) -> None:
    with db.write() as conn:
        moved = store.apply_one(conn, planned(run.id, task_ids, S.SCHEDULED), NOW)
    assert sorted(moved.task_ids) == sorted(task_ids)


def queue(db: Database, run: Run, task_id: str, job_id: int | None = None) -> TaskKey:
    with db.write() as conn:
        moved = store.apply_one(conn, QueueTries(run.id, (task_id,), job_id), NOW)
    (queued,) = moved.tries
    return TaskKey(run.id, task_id, queued.try_number)


def started(key: TaskKey, at: datetime = LATER, pid: int = 1, hostname: str = "h") -> StartTry:
    return StartTry(key, pid, hostname, at)


def ended(
    key: TaskKey,
    target: TaskState,
    *,
    try_state: TaskState | None = None,
    reason: ExitReason = ExitReason.SUCCESS,
    at: datetime = LATER,
    **fields: Any,
) -> EndTry:
    return EndTry(key, target, try_state or target, reason, at, **fields)


def get(db: Database, run: Run, task_id: str) -> TaskInstance:
    with db.read() as conn:
        found = ti_store.get(conn, run.id, task_id)
    assert found is not None
    return found


@pytest.fixture
def plan(add_dag: AddDag) -> DagPlan:
    return add_dag("etl", TASKS)


@pytest.fixture
def run(db: Database, plan: DagPlan) -> Run:
    return start_run(db, plan)


# ----------------------------------------------------------------- many tasks of a run


def test_a_task_transition_is_a_compare_and_set_returning_what_moved(
    db: Database, run: Run
) -> None:
    schedule(db, run, "extract")
    with db.write() as conn:
        skip = TaskTransition.natural(
            run.id, ["extract", "transform", "nope"], S.SKIPPED, seen=S.NONE, reason="branch"
        )
        assert store.apply_one(conn, skip, LATER).task_ids == ("transform",)
        nothing = store.apply_one(conn, planned(run.id, [], S.SKIPPED), LATER)
        assert not nothing and nothing.task_ids == ()
        states = ti_store.states_for_run(conn, run.id)
    skipped = get(db, run, "transform")
    assert states == {"extract": S.SCHEDULED, "transform": S.SKIPPED, "load": S.NONE}
    assert skipped.end_date == LATER  # a finished state is stamped
    assert skipped.state_reason == "branch"


def test_a_task_transition_scopes_to_its_run(db: Database, plan: DagPlan, run: Run) -> None:
    other = start_run(db, plan, "r2")
    schedule(db, run, "extract")
    with db.read() as conn:
        assert ti_store.states_for_run(conn, other.id)["extract"] is S.NONE


def test_a_batch_reports_each_transition_in_order(db: Database, run: Run) -> None:
    with db.write() as conn:
        moved = store.apply(
            conn,
            [
                planned(run.id, ["extract"], S.SCHEDULED),
                planned(run.id, ["extract"], S.SKIPPED),  # no longer waiting: stays scheduled
                planned(run.id, ["load", "transform"], S.UPSTREAM_FAILED),
            ],
            NOW,
        )
    assert [sorted(m.task_ids) for m in moved] == [["extract"], [], ["load", "transform"]]
    assert [bool(m) for m in moved] == [True, False, True]


def test_an_empty_task_starts_as_it_ends(db: Database, run: Run) -> None:
    with db.write() as conn:
        store.apply_one(conn, planned(run.id, ["extract"], S.SUCCESS, starts_now=True), LATER)
    done = get(db, run, "extract")
    assert (done.state, done.start_date, done.end_date) == (S.SUCCESS, LATER, LATER)


def test_a_due_retry_is_scheduled_only_while_up_for_retry(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    with db.write() as conn:
        retry = ended(key, S.UP_FOR_RETRY, try_state=S.FAILED, reason=ExitReason.TASK_ERROR)
        assert store.apply_one(conn, retry, LATER)
        assert store.apply_one(conn, retry_due(run.id, ["extract", "load"]), LATER).task_ids == (
            "extract",
        )
        assert not store.apply_one(conn, retry_due(run.id, ["extract"]), LATER)
    assert get(db, run, "extract").state is S.SCHEDULED


def test_a_branch_skips_only_tasks_no_worker_has(db: Database, run: Run) -> None:
    schedule(db, run, "extract", "transform")
    queue(db, run, "extract")
    with db.write() as conn:
        moved = store.apply_one(
            conn, branch_skip(run.id, ["extract", "transform", "load"], by="pick"), LATER
        )
    assert sorted(moved.task_ids) == ["load", "transform"]
    assert get(db, run, "extract").state is S.QUEUED
    assert get(db, run, "load").state_reason == "skipped by pick"


def test_clearing_resets_the_try_s_dates_and_keeps_its_history(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    with db.write() as conn:
        retry = ended(
            key,
            S.UP_FOR_RETRY,
            try_state=S.FAILED,
            reason=ExitReason.TASK_ERROR,
            next_retry_at=LATER,
        )
        store.apply_one(conn, retry, LATER)
    retrying = get(db, run, "extract")
    with db.write() as conn:
        clear = TaskTransition.forced(retrying, S.NONE, reason="cleared", max_tries=1 + 2)
        assert store.apply_one(conn, clear, LATER).task_ids == ("extract",)
    cleared = get(db, run, "extract")
    assert cleared.state is S.NONE
    assert (cleared.queued_at, cleared.start_date, cleared.end_date) == (None, None, None)
    assert cleared.next_retry_at is None
    assert cleared.try_number == 1  # the history of tries is kept
    assert (cleared.max_tries, cleared.state_reason) == (3, "cleared")


def test_a_forced_move_is_on_the_state_and_try_it_was_read_in(db: Database, run: Run) -> None:
    read = get(db, run, "extract")  # none, try 0
    schedule(db, run, "extract")  # the scheduler moves it meanwhile
    with db.write() as conn:
        assert not store.apply_one(
            conn, TaskTransition.forced(read, S.FAILED, reason="marked failed by ann"), LATER
        )
    reread = get(db, run, "extract")
    with db.write() as conn:
        assert store.apply_one(
            conn, TaskTransition.forced(reread, S.FAILED, reason="marked failed by ann"), LATER
        )
    assert get(db, run, "extract").state is S.FAILED


# ----------------------------------------------------------------- tries


def test_queueing_starts_a_new_try_for_scheduled_tasks_only(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    job_id = start_job(db)
    with db.write() as conn:
        moved = store.apply_one(conn, QueueTries(run.id, ("extract", "transform"), job_id), LATER)
        assert not store.apply_one(conn, QueueTries(run.id, (), job_id), LATER)
    assert moved.task_ids == ("extract",)
    (extract,) = moved.tries
    assert (extract.state, extract.try_number, extract.queued_at) == (S.QUEUED, 1, LATER)
    with db.read() as conn:
        assert ti_store.get(conn, run.id, "extract") == extract
        (first_try,) = ti_store.tries_for(conn, run.id, "extract")
        assert ti_store.tries_for(conn, run.id, "transform") == []
    assert (first_try.try_number, first_try.state, first_try.queued_at) == (1, S.QUEUED, LATER)
    assert (first_try.dag_id, first_try.run_id) == ("etl", "r1")
    assert first_try.end_date is None and first_try.exit_reason is None


def test_queueing_again_is_refused_until_the_task_is_scheduled_again(
    db: Database, run: Run
) -> None:
    schedule(db, run, "extract")
    first = queue(db, run, "extract")
    with db.write() as conn:
        assert not store.apply_one(conn, QueueTries(run.id, ("extract",), None), LATER)
        failure = ended(
            first,
            S.UP_FOR_RETRY,
            try_state=S.FAILED,
            reason=ExitReason.TASK_ERROR,
            error="boom",
            next_retry_at=LATER,
        )
        store.apply(conn, [failure, retry_due(run.id, ["extract"])], LATER)
    second = queue(db, run, "extract")
    assert second.try_number == 2
    with db.read() as conn:
        tries = ti_store.tries_for(conn, run.id, "extract")
    assert [(t.try_number, t.state) for t in tries] == [(1, S.FAILED), (2, S.QUEUED)]
    assert tries[0].error == "boom"


def test_a_start_compares_the_try_number(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    with db.write() as conn:
        assert store.apply_one(conn, started(key, pid=4321, hostname="worker-1"), LATER)
        # A duplicate start report finds the task running already.
        assert not store.apply_one(conn, started(key, pid=1, hostname="other"), LATER)
        (current_try,) = ti_store.tries_for(conn, run.id, "extract")
    running = get(db, run, "extract")
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
        lost = ended(
            stale,
            S.UP_FOR_RETRY,
            try_state=S.FAILED,
            reason=ExitReason.WORKER_LOST,
            infra_failures=1,
            next_retry_at=LATER,
        )
        assert all(store.apply(conn, [lost, retry_due(run.id, ["extract"])], LATER))
    current = queue(db, run, "extract")
    before = get(db, run, "extract")
    with db.read() as conn:
        tries_before = ti_store.tries_for(conn, run.id, "extract")
    much_later = LATER + timedelta(hours=1)
    with db.write() as conn:
        late = [started(stale, at=much_later, pid=9), ended(stale, S.SUCCESS, at=much_later)]
        assert not any(store.apply(conn, late, much_later))
    with db.read() as conn:
        assert ti_store.tries_for(conn, run.id, "extract") == tries_before
    assert get(db, run, "extract") == before
    assert (before.state, before.try_number, before.infra_failures) == (S.QUEUED, 2, 1)
    assert current.try_number == 2


def test_a_try_ends_once(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    end = LATER + timedelta(seconds=5)
    with db.write() as conn:
        store.apply_one(conn, started(key), LATER)
        assert store.apply_one(conn, ended(key, S.SUCCESS, at=end, exit_code=0), end)
        # The same report again (or a late failure report) cannot overwrite a finished try.
        late = ended(
            key, S.FAILED, reason=ExitReason.TASK_ERROR, at=end + timedelta(seconds=1), error="x"
        )
        assert not store.apply_one(conn, late, end)
        (the_try,) = ti_store.tries_for(conn, run.id, "extract")
    done = get(db, run, "extract")
    assert (done.state, done.end_date, done.state_reason) == (S.SUCCESS, end, None)
    assert (the_try.state, the_try.exit_reason, the_try.exit_code) == (
        S.SUCCESS,
        ExitReason.SUCCESS,
        0,
    )
    assert (the_try.start_date, the_try.end_date, the_try.error) == (LATER, end, None)


def test_a_duplicate_failure_report_does_not_fail_a_task_waiting_to_retry(
    db: Database, run: Run
) -> None:
    # The table lets up_for_retry move to failed, but not by this try's end: it has ended.
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    failure = ended(key, S.UP_FOR_RETRY, try_state=S.FAILED, reason=ExitReason.TASK_ERROR)
    final = ended(key, S.FAILED, reason=ExitReason.TASK_ERROR)
    with db.write() as conn:
        assert [bool(m) for m in store.apply(conn, [failure, final], LATER)] == [True, False]
    assert get(db, run, "extract").state is S.UP_FOR_RETRY


def test_a_try_that_ends_after_its_task_was_cleared_changes_nothing(db: Database, run: Run) -> None:
    # The table lets none move to success (an empty task), but not by a try's end: the clear
    # kept the try number, and only the try's own states (queued, running) are compared.
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    with db.write() as conn:
        store.apply_one(conn, started(key), LATER)
    running = get(db, run, "extract")
    with db.write() as conn:
        store.apply_one(conn, TaskTransition.forced(running, S.NONE, reason="cleared"), LATER)
        assert not store.apply_one(conn, ended(key, S.SUCCESS), LATER)
    cleared = get(db, run, "extract")
    assert (cleared.state, cleared.try_number) == (S.NONE, key.try_number)


def test_a_start_reported_with_its_end_is_written_with_it(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    start = TaskStarted(key, 77, "w", LATER)
    with db.write() as conn:
        skip = ended(key, S.SKIPPED, reason=ExitReason.SKIPPED, started=start)
        assert store.apply_one(conn, skip, LATER)
        (the_try,) = ti_store.tries_for(conn, run.id, "extract")
    skipped = get(db, run, "extract")
    assert (skipped.state, skipped.pid, skipped.start_date) == (S.SKIPPED, 77, LATER)
    assert (the_try.state, the_try.pid, the_try.start_date) == (S.SKIPPED, 77, LATER)


def test_a_failed_try_keeps_its_retry_and_reason(db: Database, run: Run) -> None:
    schedule(db, run, "extract")
    key = queue(db, run, "extract")
    retry_at = LATER + timedelta(minutes=5)
    with db.write() as conn:
        timeout = ended(
            key,
            S.UP_FOR_RETRY,
            try_state=S.FAILED,
            reason=ExitReason.TIMEOUT,
            error="timed out after 60s",
            exit_code=-9,
            next_retry_at=retry_at,
            infra_failures=0,
        )
        assert store.apply_one(conn, timeout, LATER)
        (the_try,) = ti_store.tries_for(conn, run.id, "extract")
        retrying = ti_store.get(conn, run.id, "extract")
        assert ti_store.in_state(conn, [S.UP_FOR_RETRY]) == [retrying]
    assert retrying is not None
    assert (retrying.state, retrying.next_retry_at) == (S.UP_FOR_RETRY, retry_at)
    assert retrying.state_reason == "timed out after 60s"
    assert (the_try.state, the_try.exit_reason, the_try.exit_code) == (
        S.FAILED,
        ExitReason.TIMEOUT,
        -9,
    )


# ----------------------------------------------------------------- runs


def insert_run(db: Database, dag: DagPlan) -> Run:
    with db.write() as conn:
        return runs_store.insert_run(
            conn,
            dag_id=dag.dag_id,
            run_id="r",
            run_type=RunType.MANUAL,
            logical_date=NOW,
            data_interval=(NOW, NOW),
            conf={},
            version_id=dag.version_id,
            now=NOW,
        )


def test_a_run_transition_is_a_compare_and_set(db: Database, add_dag: AddDag) -> None:
    run = insert_run(db, add_dag())
    started_at, ended_at = NOW + timedelta(minutes=1), NOW + timedelta(minutes=5)
    with db.write() as conn:
        moved = store.apply_one(conn, RunTransition.natural(run.id, RunState.RUNNING), started_at)
        # The run is no longer queued: a second, late start changes nothing.
        late = started_at + timedelta(seconds=30)
        assert not store.apply_one(conn, RunTransition.natural(run.id, RunState.RUNNING), late)
    running = moved.run
    assert running is not None
    assert running.state is RunState.RUNNING
    assert running.start_date == started_at
    assert running.end_date is None

    with db.write() as conn:
        fail = RunTransition.natural(run.id, RunState.FAILED, reason="tasks failed: b")
        assert store.apply_one(conn, fail, ended_at)
        succeed = RunTransition.natural(run.id, RunState.SUCCESS)
        assert not store.apply_one(conn, succeed, ended_at)
        missing = RunTransition.natural(run.id + 1000, RunState.FAILED)
        assert not store.apply_one(conn, missing, NOW)
        failed = runs_store.get_run_by_pk(conn, run.id)
    assert failed is not None
    assert failed.state is RunState.FAILED
    assert (failed.start_date, failed.end_date) == (started_at, ended_at)
    assert failed.state_reason == "tasks failed: b"


def test_requeueing_a_finished_run_clears_its_dates(db: Database, add_dag: AddDag) -> None:
    run = insert_run(db, add_dag())
    requeued_at = NOW + timedelta(hours=1)
    with db.write() as conn:
        store.apply(
            conn,
            [
                RunTransition.natural(run.id, RunState.RUNNING),
                RunTransition.natural(run.id, RunState.SUCCESS),
            ],
            NOW,
        )
        done = runs_store.get_run_by_pk(conn, run.id)
        assert done is not None and done.state is RunState.SUCCESS
        requeue = RunTransition.forced(done, RunState.QUEUED, reason="cleared")
        again = store.apply_one(conn, requeue, requeued_at).run
    assert again is not None
    assert again.state is RunState.QUEUED
    assert again.start_date is None and again.end_date is None
    assert again.queued_at == requeued_at
    assert again.state_reason == "cleared"


# ----------------------------------------------------------------- no move bypasses the table


def every_transition() -> Iterator[Transition]:
    """One transition of every shape `apply` can turn into a compare-and-set: every target,
    natural and forced, from every state a decision may have seen, for one try or any."""
    key = TaskKey(1, "t", 1)
    yield QueueTries(1, ("t",), None)
    yield StartTry(key, 1, "h", NOW)
    for target in TaskState:
        if EndTry.sources_for(target) and (target.is_finished or target is S.UP_FOR_RETRY):
            for start in (None, TaskStarted(key, 1, "h", NOW)):
                yield EndTry(key, target, S.FAILED, ExitReason.TASK_ERROR, NOW, started=start)
        if task_sources(target):
            yield TaskTransition.natural(1, ["t"], target)
            yield TaskTransition.natural(1, ["t"], target, starts_now=True)
        for seen in sorted(task_sources(target)):
            yield TaskTransition.natural(1, ["t"], target, seen=seen)
        for seen in sorted(task_sources(target, forced=True)):
            for max_tries in (None, 3):
                current = TaskInstance(1, "d", "r", "t", seen, 1, 0)
                yield TaskTransition.forced(current, target, reason="why", max_tries=max_tries)
    for run_target in RunState:
        if run_sources(run_target):
            yield RunTransition.natural(1, run_target)
        for run_seen in sorted(run_sources(run_target, forced=True)):
            current_run = Run(
                id=1,
                dag_id="d",
                run_id="r",
                state=run_seen,
                run_type=RunType.MANUAL,
                logical_date=None,
                data_interval_start=None,
                data_interval_end=None,
                conf={},
                queued_at=NOW,
                start_date=None,
                end_date=None,
                version_id=1,
            )
            yield RunTransition.forced(current_run, run_target, reason="why")


def compared_states(statement: Update) -> tuple[str, set[str]]:
    """(the value the update sets `state` to, the states its WHERE clause accepts)."""
    table = statement.table
    assert table in (ti_table, runs_table)
    state: Column[Any] = table.c.state  # type: ignore[attr-defined]
    target = statement.compile().params["state"]
    accepted: list[set[str]] = []
    for element in iterate(statement.whereclause):
        if isinstance(element, BinaryExpression) and element.left is state:
            right = element.right
            assert isinstance(right, BindParameter)
            if element.operator is operators.eq:
                accepted.append({right.value})
            else:
                assert element.operator is operators.in_op
                accepted.append(set(right.value))
    assert len(accepted) == 1, f"one comparison of the state in {statement}"
    return target, accepted[0]


def describe(transition: Transition) -> str:
    sources = ",".join(sorted(s.value for s in transition.sources))
    return f"{type(transition).__name__}:{sources}->{transition.target.value}"


@pytest.mark.parametrize("transition", list(every_transition()), ids=describe)
def test_every_compare_and_set_accepts_exactly_its_transition_s_states(
    transition: Transition,
) -> None:
    target, accepted = compared_states(store.statement_for(transition))
    assert target == transition.target.value
    assert accepted == {s.value for s in transition.sources}
    # ... and those are states the table allows the move from (forced moves: any the table
    # allows a person; natural ones: only what the system may do on its own).
    is_forced = getattr(transition, "is_forced", False)
    if isinstance(transition, RunTransition):
        legal = {s.value for s in run_sources(transition.target, forced=is_forced)}
    else:
        legal = {s.value for s in task_sources(transition.target, forced=is_forced)}
    assert accepted <= legal


def test_a_transition_the_table_forbids_cannot_be_built() -> None:
    with pytest.raises(InvalidStateTransition):
        TaskTransition.natural(1, ["t"], S.QUEUED, seen=S.NONE)  # skips scheduling
    with pytest.raises(InvalidStateTransition):
        TaskTransition(1, ("t",), S.RUNNING, frozenset({S.SCHEDULED}))
    with pytest.raises(InvalidStateTransition):
        TaskTransition.natural(1, ["t"], S.SCHEDULED, seen=())
    with pytest.raises(InvalidStateTransition):
        EndTry(TaskKey(1, "t", 1), S.RUNNING, S.RUNNING, ExitReason.SUCCESS, NOW)
    current = TaskInstance(1, "d", "r", "t", S.SUCCESS, 1, 0)
    with pytest.raises(InvalidStateTransition):
        TaskTransition.forced(current, S.SCHEDULED, reason="a person cannot schedule")
    with pytest.raises(ValueError, match="reason"):
        TaskTransition(1, ("t",), S.NONE, frozenset({S.FAILED}), is_forced=True)
    with pytest.raises(InvalidStateTransition):
        RunTransition(1, RunState.RUNNING, frozenset({RunState.SUCCESS}))


SRC = Path(slipstream.__file__).parent
APPLY_MODULE = SRC / "store" / "transitions.py"


def state_writes(path: Path) -> list[int]:
    """Lines of `update(<task_instances or runs>)` statements in a module that set `state`
    (or set values this check cannot read, which count as setting it)."""
    tree = ast.parse(path.read_text())
    tables = set()  # the local names of the two tables
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "slipstream.store.tables":
            for alias in node.names:
                if alias.name in ("task_instances", "runs"):
                    tables.add(alias.asname or alias.name)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr != "values" or not _updates_one_of(node.func.value, tables):
            continue
        if any(_may_set_state(arg) for arg in node.args) or any(
            kw.arg in (None, "state") for kw in node.keywords
        ):
            found.append(node.lineno)
    return found


def _updates_one_of(node: ast.expr, tables: set[str]) -> bool:
    """Whether a chain of calls starts from update(<one of tables>)."""
    while isinstance(node, ast.Call | ast.Attribute):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "update"
        ):
            return (
                bool(node.args)
                and isinstance(node.args[0], ast.Name)
                and (node.args[0].id in tables)
            )
        node = node.func if isinstance(node, ast.Call) else node.value
    return False


def _may_set_state(arg: ast.expr) -> bool:
    if isinstance(arg, ast.Dict):
        return any(
            key is None or not isinstance(key, ast.Constant) or key.value == "state"
            for key in arg.keys
        )
    return True  # a name or a call: it may hold "state"


def test_only_the_apply_module_writes_the_state_of_task_instances_and_runs() -> None:
    writers = {
        str(path.relative_to(SRC)): lines
        for path in sorted(SRC.rglob("*.py"))
        if (lines := state_writes(path)) and path != APPLY_MODULE
    }
    assert writers == {}
    # The check sees the writes it is meant to find: the apply module's own.
    assert len(state_writes(APPLY_MODULE)) >= 5


# ----------------------------------------------------------------- mapped task instances

MAPPED_TASKS = [
    {"task_id": "make"},
    {
        "task_id": "each",
        "upstream": ["make"],
        "retries": 1,
        "mapped": {"kind": "expand", "args": [["x", {"xcom": "make"}]]},
    },
]


@pytest.fixture
def mapped_run(db: Database, add_dag: AddDag) -> Run:
    return start_run(db, add_dag("mapping", MAPPED_TASKS))


def test_a_mapped_task_expands_once_while_its_row_waits(db: Database, mapped_run: Run) -> None:
    with db.write() as conn:
        moved = store.apply_one(conn, ExpandTask(mapped_run.id, "each", 3), NOW)
        again = store.apply_one(conn, ExpandTask(mapped_run.id, "each", 5), NOW)
        instances = ti_store.mapped_instances(conn, mapped_run.id, "each")
        states, expanded = ti_store.run_states(conn, mapped_run.id)
    assert moved.task_ids == ("each",) * 3 and moved.map_indexes == (0, 1, 2)
    assert not again
    assert [(t.map_index, t.state, t.max_tries) for t in instances] == [
        (0, S.SCHEDULED, 1),
        (1, S.SCHEDULED, 1),
        (2, S.SCHEDULED, 1),
    ]
    assert states == {"make": S.NONE}
    assert expanded == {"each": {0: S.SCHEDULED, 1: S.SCHEDULED, 2: S.SCHEDULED}}
    with pytest.raises(ValueError, match="zero: skip"):
        ExpandTask(mapped_run.id, "each", 0)


def test_a_task_of_a_mapped_group_expands_to_waiting_instances(
    db: Database, mapped_run: Run
) -> None:
    with db.write() as conn:
        moved = store.apply_one(conn, ExpandTask(mapped_run.id, "each", 2, waiting=True), NOW)
        waiting = {
            t.map_index: t.state for t in ti_store.mapped_instances(conn, mapped_run.id, "each")
        }
        # All waiting again (cleared), it is revised to a new length and stays waiting.
        again = store.apply_one(conn, ExpandTask(mapped_run.id, "each", 3, waiting=True), NOW)
        revised = {
            t.map_index: t.state for t in ti_store.mapped_instances(conn, mapped_run.id, "each")
        }
        store.apply_one(conn, ExpandTask(mapped_run.id, "each", 1, waiting=True), NOW)
        shrunk = [t.map_index for t in ti_store.mapped_instances(conn, mapped_run.id, "each")]
        # Once one instance has moved on, it is not revised.
        store.apply_one(conn, planned(mapped_run.id, ["each"], S.SCHEDULED, map_indexes=[0]), NOW)
        late = store.apply_one(conn, ExpandTask(mapped_run.id, "each", 4, waiting=True), NOW)
    assert moved.map_indexes == (0, 1) and waiting == {0: S.NONE, 1: S.NONE}
    assert again.map_indexes == (0, 1, 2) and revised == {0: S.NONE, 1: S.NONE, 2: S.NONE}
    assert shrunk == [0]
    assert not late
    assert ExpandTask(mapped_run.id, "each", 2, waiting=True).target is S.NONE
    assert ExpandTask(mapped_run.id, "each", 2).target is S.SCHEDULED


def test_a_branch_in_a_mapped_group_skips_its_own_map_index(db: Database, mapped_run: Run) -> None:
    with db.write() as conn:
        store.apply_one(conn, ExpandTask(mapped_run.id, "each", 3, waiting=True), NOW)
        moved = store.apply_one(
            conn, branch_skip(mapped_run.id, ["each"], by="pick", map_index=1), LATER
        )
        states = {
            t.map_index: t.state for t in ti_store.mapped_instances(conn, mapped_run.id, "each")
        }
    assert moved.task_ids == ("each",) and moved.map_indexes == (1,)
    assert states == {0: S.NONE, 1: S.SKIPPED, 2: S.NONE}


def test_mapped_instances_queue_start_and_end_one_by_one(db: Database, mapped_run: Run) -> None:
    with db.write() as conn:
        store.apply_one(conn, ExpandTask(mapped_run.id, "each", 3), NOW)
        queued = store.apply_one(
            conn, QueueTries(mapped_run.id, ("each", "each"), None, map_indexes=(0, 2)), NOW
        )
    assert [(t.map_index, t.try_number) for t in queued.tries] == [(0, 1), (2, 1)]
    key = TaskKey(mapped_run.id, "each", 1, 2)
    with db.write() as conn:
        assert store.apply_one(conn, started(key), LATER).map_indexes == (2,)
        assert store.apply_one(conn, ended(key, S.UP_FOR_RETRY, try_state=S.FAILED), LATER)
        # The same try number at another index is another instance's try.
        assert not store.apply_one(
            conn, ended(TaskKey(mapped_run.id, "each", 1, 1), S.SUCCESS), LATER
        )
        retried = store.apply_one(conn, retry_due(mapped_run.id, ["each"], [2]), LATER)
        tries = ti_store.tries_for(conn, mapped_run.id, "each", 2)
        states = {
            t.map_index: t.state for t in ti_store.mapped_instances(conn, mapped_run.id, "each")
        }
    assert retried.map_indexes == (2,)
    assert states == {0: S.QUEUED, 1: S.SCHEDULED, 2: S.SCHEDULED}
    assert [(t.map_index, t.try_number, t.state) for t in tries] == [(2, 1, S.FAILED)]


def test_a_forced_move_reaches_one_map_index_only(db: Database, mapped_run: Run) -> None:
    with db.write() as conn:
        store.apply_one(conn, ExpandTask(mapped_run.id, "each", 2), NOW)
        one = ti_store.get(conn, mapped_run.id, "each", 1)
        assert one is not None
        moved = store.apply_one(
            conn, TaskTransition.forced(one, S.SKIPPED, reason="marked by ann"), LATER
        )
        states = {
            t.map_index: t.state for t in ti_store.mapped_instances(conn, mapped_run.id, "each")
        }
    assert moved.map_indexes == (1,)
    assert states == {0: S.SCHEDULED, 1: S.SKIPPED}


def test_a_requeued_run_keeps_its_expanded_instances(db: Database, add_dag: AddDag) -> None:
    plan = add_dag("mapping", MAPPED_TASKS)
    run = start_run(db, plan)
    with db.write() as conn:
        store.apply_one(conn, ExpandTask(run.id, "each", 2), NOW)
        states = ti_store.create_for_run(conn, run, plan, LATER)
        instances = ti_store.mapped_instances(conn, run.id, "each")
    assert states == {"make": S.NONE}
    assert [t.map_index for t in instances] == [0, 1]
