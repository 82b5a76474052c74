"""Applying typed transitions (core/transitions.py) as compare-and-set updates.

This is the only module that writes a task instance's or a run's state: each transition becomes
UPDATE ... WHERE state IN (its sources) [AND try_number = ...], and `apply` reports what moved.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Text,
    bindparam,
    case,
    delete,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.sql.dml import Update

from slipstream.core.records import ExitReason, TaskKey, Wait, WakeAction
from slipstream.core.states import RunState, TaskState
from slipstream.core.transitions import (
    NOTHING_MOVED,
    EndTry,
    ExpandTask,
    Moved,
    QueueTries,
    RunTransition,
    StartTry,
    TaskTransition,
    Transition,
    Wake,
    planned,
)
from slipstream.store.runs import run_from_mapping
from slipstream.store.tables import UtcDateTime, runs
from slipstream.store.tables import task_instances as ti
from slipstream.store.tables import task_tries as tries
from slipstream.store.task_instances import task_instance_from_row, wait_to_text


def apply(conn: Connection, transitions: Sequence[Transition], now: datetime) -> list[Moved]:
    """Apply each transition, in order, as a compare-and-set; returns what each one moved."""
    moved: list[Moved] = []
    for transition in transitions:
        # Ordered by how often the scheduler's hot path makes each kind.
        if isinstance(transition, EndTry):
            moved.append(_end_try(conn, transition))
        elif isinstance(transition, StartTry):
            moved.append(_start_try(conn, transition))
        elif isinstance(transition, TaskTransition):
            moved.append(_move_tasks(conn, transition, now))
        elif isinstance(transition, QueueTries):
            moved.append(_queue_tries(conn, transition, now))
        elif isinstance(transition, ExpandTask):
            moved.append(_expand(conn, transition, now))
        elif isinstance(transition, Wake):
            moved.append(_wake(conn, transition, now))
        else:
            moved.append(_move_run(conn, transition, now))
    return moved


def apply_one(conn: Connection, transition: Transition, now: datetime) -> Moved:
    return apply(conn, [transition], now)[0]


def statement_for(transition: Transition) -> Update:
    """The compare-and-set that `apply` issues on task_instances or runs for a transition
    (tests read its WHERE clause to check it against the table). An expansion is a delete and
    inserts (see _expand), not an update."""
    if isinstance(transition, ExpandTask):
        raise TypeError("an expansion replaces its row; it has no update statement")
    if isinstance(transition, Wake):
        return _wake_statement(transition.target, transition.sources)
    if isinstance(transition, EndTry):
        return _end_statements(transition.target, transition.started is not None)[0]
    if isinstance(transition, StartTry):
        return _START_TASK
    if isinstance(transition, TaskTransition):
        return _task_statement(
            transition.target,
            transition.sources,
            transition.try_number is not None,
            transition.max_tries is not None,
            transition.starts_now,
            transition.map_indexes is not None,
        )
    if isinstance(transition, QueueTries):
        return _QUEUE_TASKS if transition.map_indexes is None else _QUEUE_INSTANCES
    return _run_statement(transition.target, transition.sources)


def _state_in(column: Any, sources: frozenset[TaskState] | frozenset[RunState]) -> Any:
    values = sorted(s.value for s in sources)
    return column == values[0] if len(values) == 1 else column.in_(values)


# ----------------------------------------------------------------- many tasks of one run


def _move_tasks(conn: Connection, transition: TaskTransition, now: datetime) -> Moved:
    if not transition.task_ids:
        return NOTHING_MOVED
    statement = statement_for(transition)
    params: dict[str, Any] = {
        "k_run_pk": transition.run_pk,
        "v_now": now,
        "v_reason": transition.reason,
    }
    if transition.map_indexes is None:
        params["k_task_ids"] = list(transition.task_ids)
    else:
        params["k_pairs"] = list(zip(transition.task_ids, transition.map_indexes, strict=True))
    if transition.try_number is not None:
        params["k_try_number"] = transition.try_number
    if transition.max_tries is not None:
        params["v_max_tries"] = transition.max_tries
    rows = conn.execute(statement, params).all()
    if not rows:
        return NOTHING_MOVED
    return Moved(
        task_ids=tuple(r.task_id for r in rows), map_indexes=tuple(r.map_index for r in rows)
    )


# Built once per kind of move: building a SQLAlchemy statement costs several times more than
# executing it on SQLite, and the scheduler makes these on every pass.
@functools.cache
def _task_statement(
    target: TaskState,
    sources: frozenset[TaskState],
    by_try: bool,
    sets_max_tries: bool,
    starts_now: bool,
    by_instance: bool = False,
) -> Update:
    now = bindparam("v_now", type_=UtcDateTime)
    values: dict[str, Any] = {
        "state": target.value,
        "updated_at": now,
        "state_reason": bindparam("v_reason", type_=Text),
    }
    if target.is_finished or target in (TaskState.NONE, TaskState.UP_FOR_RETRY):
        values.update(_NO_WAIT)
    if target.is_finished:
        values["end_date"] = now
        values["next_retry_at"] = None
    if target is TaskState.NONE:
        # Back to no state: the task will run again, as a new try of the same history.
        values.update(
            start_date=None,
            end_date=None,
            queued_at=None,
            next_retry_at=None,
            owner_job_id=None,
            worker_job_id=None,
        )
        # A new set of tries (a clear): a sensor's timeout is counted afresh, as Airflow.
        values["sensor_started_at"] = None
    if starts_now:
        values["start_date"] = now
    if sets_max_tries:
        values["max_tries"] = bindparam("v_max_tries", type_=Integer)
    where: list[ColumnElement[bool]] = [
        ti.c.run_pk == bindparam("k_run_pk"),
        _instances_in()
        if by_instance
        else ti.c.task_id.in_(bindparam("k_task_ids", expanding=True)),
        _state_in(ti.c.state, sources),
    ]
    if by_try:
        where.append(ti.c.try_number == bindparam("k_try_number", type_=Integer))
    return update(ti).where(*where).values(values).returning(ti.c.task_id, ti.c.map_index)


def _instances_in() -> ColumnElement[bool]:
    """(task_id, map_index) among the pairs bound as k_pairs."""
    return tuple_(ti.c.task_id, ti.c.map_index).in_(bindparam("k_pairs", expanding=True))


# A task that stops waiting (it ends, or is cleared) forgets its wait.
_NO_WAIT: dict[str, Any] = {
    "wake_at": None,
    "wake_target": None,
    "wait": None,
    "resumes_try": False,
}

# ----------------------------------------------------------------- tries

_QUEUE_VALUES = dict(
    state=QueueTries.target.value,
    # A task woken from up_for_reschedule or deferred continues the same try (as Airflow).
    try_number=ti.c.try_number + case((ti.c.resumes_try, 0), else_=1),
    queued_at=bindparam("v_now", type_=UtcDateTime),
    start_date=None,
    end_date=None,
    hostname=None,
    pid=None,
    next_retry_at=None,
    state_reason=None,
    owner_job_id=bindparam("v_owner", type_=Integer),
    worker_job_id=None,
    updated_at=bindparam("v_now", type_=UtcDateTime),
)
_QUEUE_TASKS = (
    update(ti)
    .where(
        ti.c.run_pk == bindparam("k_run_pk"),
        ti.c.task_id.in_(bindparam("k_task_ids", expanding=True)),
        _state_in(ti.c.state, QueueTries.sources),
    )
    .values(_QUEUE_VALUES)
    .returning(*ti.c)
)
# Instances of mapped tasks, named by (task_id, map_index).
_QUEUE_INSTANCES = (
    update(ti)
    .where(
        ti.c.run_pk == bindparam("k_run_pk"),
        _instances_in(),
        _state_in(ti.c.state, QueueTries.sources),
    )
    .values(_QUEUE_VALUES)
    .returning(*ti.c)
)
_INSERT_TRY = insert(tries)


def _queue_tries(conn: Connection, transition: QueueTries, now: datetime) -> Moved:
    if not transition.task_ids:
        return NOTHING_MOVED
    params: dict[str, Any] = {
        "k_run_pk": transition.run_pk,
        "v_now": now,
        "v_owner": transition.owner_job_id,
    }
    if transition.map_indexes is None:
        statement, params["k_task_ids"] = _QUEUE_TASKS, list(transition.task_ids)
    else:
        statement = _QUEUE_INSTANCES
        params["k_pairs"] = list(zip(transition.task_ids, transition.map_indexes, strict=True))
    queued = tuple(task_instance_from_row(row) for row in conn.execute(statement, params))
    if not queued:
        return NOTHING_MOVED
    new = [t for t in queued if not t.resumes_try]
    if new:
        conn.execute(
            _INSERT_TRY,
            [
                {
                    "run_pk": t.run_pk,
                    "task_id": t.task_id,
                    "map_index": t.map_index,
                    "try_number": t.try_number,
                    "dag_id": t.dag_id,
                    "run_id": t.run_id,
                    "state": TaskState.QUEUED.value,
                    "queued_at": now,
                }
                for t in new
            ],
        )
    resumed = [t for t in queued if t.resumes_try]
    if resumed:
        conn.execute(
            _RESUME_TRY_ROW,
            [
                {
                    "k_run_pk": t.run_pk,
                    "k_task_id": t.task_id,
                    "k_map_index": t.map_index,
                    "k_try_number": t.try_number,
                }
                for t in resumed
            ],
        )
    return Moved(
        task_ids=tuple(t.task_id for t in queued),
        tries=queued,
        map_indexes=tuple(t.map_index for t in queued),
    )


_THIS_TRY = (
    ti.c.run_pk == bindparam("k_run_pk"),
    ti.c.task_id == bindparam("k_task_id"),
    ti.c.map_index == bindparam("k_map_index"),
    ti.c.try_number == bindparam("k_try_number"),
)
_THIS_TRY_ROW = (
    tries.c.run_pk == bindparam("k_run_pk"),
    tries.c.task_id == bindparam("k_task_id"),
    tries.c.map_index == bindparam("k_map_index"),
    tries.c.try_number == bindparam("k_try_number"),
)
# A woken try runs again under its own row: its last poke's end and start are forgotten (the
# first poke's start, the timeout's origin, is kept in its wait).
_RESUME_TRY_ROW = (
    update(tries)
    .where(*_THIS_TRY_ROW)
    .values(
        state=TaskState.QUEUED.value,
        start_date=None,
        end_date=None,
        pid=None,
        hostname=None,
        exit_reason=None,
        exit_code=None,
        error=None,
    )
)
_STARTED_VALUES = {
    "start_date": bindparam("v_at", type_=UtcDateTime),
    "pid": bindparam("v_pid"),
    "hostname": bindparam("v_hostname"),
}
_START_TASK = (
    update(ti)
    .where(*_THIS_TRY, _state_in(ti.c.state, StartTry.sources))
    .values(state=StartTry.target.value, updated_at=bindparam("v_at", type_=UtcDateTime))
    .values(_STARTED_VALUES)
)
# A try starts once: a duplicate or late start report must not rewrite its history.
_START_TRY_ROW = (
    update(tries)
    .where(*_THIS_TRY_ROW, tries.c.end_date.is_(None), tries.c.start_date.is_(None))
    .values(state=TaskState.RUNNING.value)
    .values(_STARTED_VALUES)
)


def _key_params(transition: StartTry | EndTry) -> dict[str, Any]:
    key = transition.key
    return {
        "k_run_pk": key.run_pk,
        "k_task_id": key.task_id,
        "k_map_index": key.map_index,
        "k_try_number": key.try_number,
    }


def _moved_key(transition: StartTry | EndTry) -> Moved:
    return Moved(task_ids=(transition.key.task_id,), map_indexes=(transition.key.map_index,))


def _start_try(conn: Connection, transition: StartTry) -> Moved:
    params = _key_params(transition) | {
        "v_at": transition.at,
        "v_pid": transition.pid,
        "v_hostname": transition.hostname,
    }
    moved = conn.execute(_START_TASK, params).rowcount
    conn.execute(_START_TRY_ROW, params)
    return _moved_key(transition) if moved else NOTHING_MOVED


@functools.cache
def _end_statements(target: TaskState, with_start: bool) -> tuple[Update, Update]:
    """(task instance, try row) statements ending a try in `target`; with its start too when
    both were reported in one batch, so they are written in one statement pair."""
    at = bindparam("v_at", type_=UtcDateTime)
    task = (
        update(ti)
        .where(*_THIS_TRY, _state_in(ti.c.state, EndTry.sources_for(target)))
        .values(
            state=target.value,
            end_date=at,
            updated_at=at,
            next_retry_at=bindparam("v_next_retry_at", type_=UtcDateTime),
            state_reason=bindparam("v_reason", type_=Text),
            infra_failures=func.coalesce(
                bindparam("v_infra_failures", type_=Integer), ti.c.infra_failures
            ),
            # A try ending waiting stores how to wake it; any other end forgets the wait.
            wake_at=bindparam("v_wake_at", type_=UtcDateTime),
            wake_target=bindparam("v_wake_target", type_=Text),
            wait=bindparam("v_wait", type_=Text),
            resumes_try=False,
            # The first try to wait up_for_reschedule sets where later tries (retries) count a
            # reschedule-mode sensor's timeout from; later waits keep it.
            sensor_started_at=func.coalesce(
                ti.c.sensor_started_at, bindparam("v_sensor_started_at", type_=UtcDateTime)
            ),
        )
    )
    row = (
        update(tries)
        .where(*_THIS_TRY_ROW, tries.c.end_date.is_(None))
        .values(
            state=bindparam("v_try_state"),
            end_date=at,
            exit_reason=bindparam("v_exit_reason"),
            exit_code=bindparam("v_exit_code", type_=Integer),
            error=bindparam("v_error", type_=Text),
        )
    )
    if with_start:
        started = {
            "start_date": bindparam("v_started_at", type_=UtcDateTime),
            "pid": bindparam("v_pid"),
            "hostname": bindparam("v_hostname"),
        }
        task, row = task.values(started), row.values(started)
    return task, row


def _end_try(conn: Connection, transition: EndTry) -> Moved:
    task_statement, row_statement = _end_statements(
        transition.target, transition.started is not None
    )
    params = _key_params(transition)
    if transition.started is not None:
        started = transition.started
        params |= {"v_pid": started.pid, "v_hostname": started.hostname, "v_started_at": started.at}
    failed = transition.target in (TaskState.FAILED, TaskState.UP_FOR_RETRY)
    wait = transition.wait
    wake_at, wake_target = wait.due() if wait is not None else (None, None)
    reason = transition.error if failed else (wait.reason if wait is not None else None)
    moved = conn.execute(
        task_statement,
        params
        | {
            "v_at": transition.at,
            "v_next_retry_at": transition.next_retry_at,
            "v_reason": reason,
            "v_infra_failures": transition.infra_failures,
            "v_wake_at": wake_at,
            "v_wake_target": wake_target.value if wake_target is not None else None,
            "v_wait": wait_to_text(wait),
            "v_sensor_started_at": _sensor_start(wait),
        },
    ).rowcount
    conn.execute(
        row_statement,
        params
        | {
            "v_try_state": transition.try_state.value,
            "v_at": transition.at,
            "v_exit_reason": transition.exit_reason.value,
            "v_exit_code": transition.exit_code,
            "v_error": transition.error,
        },
    )
    return _moved_key(transition) if moved else NOTHING_MOVED


def _sensor_start(wait: Wait | None) -> datetime | None:
    """The first poke's start a try waiting up_for_reschedule reports (deferrals restart their
    timeout in each try, as Airflow's defer(timeout=...), so they set nothing)."""
    if wait is None or wait.deferred or wait.action is not WakeAction.POKE:
        return None
    return wait.started_at


# ----------------------------------------------------------------- waking waiting tasks


@functools.cache
def _wake_statement(target: TaskState, sources: frozenset[TaskState]) -> Update:
    now = bindparam("v_now", type_=UtcDateTime)
    values: dict[str, Any] = {
        "state": target.value,
        "updated_at": now,
        "wake_at": None,
        "wake_target": None,
    }
    if target is TaskState.SCHEDULED:
        # The same try runs again: it keeps its wait (the first poke's start, the pokes).
        values["resumes_try"] = True
    else:
        values.update(_NO_WAIT, end_date=now, state_reason=bindparam("v_reason", type_=Text))
    if target is TaskState.UP_FOR_RETRY:
        values["next_retry_at"] = bindparam("v_next_retry_at", type_=UtcDateTime)
    return (
        update(ti)
        .where(
            ti.c.run_pk == bindparam("k_run_pk"),
            _instances_in(),
            _state_in(ti.c.state, sources),
            ti.c.wake_at <= now,
        )
        .values(values)
        .returning(ti.c.task_id, ti.c.map_index, ti.c.try_number)
    )


# The try row of a task the scheduler ended while it waited (timeout, or a time sensor's
# moment): that try ends now, with no process.
_END_WAITING_TRY_ROW = (
    update(tries)
    .where(*_THIS_TRY_ROW)
    .values(
        state=bindparam("v_try_state"),
        end_date=bindparam("v_at", type_=UtcDateTime),
        exit_reason=bindparam("v_exit_reason"),
        error=bindparam("v_error", type_=Text),
    )
)
_WAKE_EXIT = {
    TaskState.SUCCESS: ExitReason.SUCCESS,
    TaskState.SKIPPED: ExitReason.SKIPPED,
    TaskState.FAILED: ExitReason.FAIL_NOW,
    TaskState.UP_FOR_RETRY: ExitReason.TASK_ERROR,
}


def _wake(conn: Connection, transition: Wake, now: datetime) -> Moved:
    statement = _wake_statement(transition.target, transition.sources)
    params = {
        "k_run_pk": transition.run_pk,
        "k_pairs": list(zip(transition.task_ids, transition.map_indexes, strict=True)),
        "v_now": now,
        "v_reason": transition.reason,
    }
    if transition.target is TaskState.UP_FOR_RETRY:
        params["v_next_retry_at"] = transition.next_retry_at or now
    rows = conn.execute(statement, params).all()
    if not rows:
        return NOTHING_MOVED
    if transition.target is not TaskState.SCHEDULED:
        failed = transition.target in (TaskState.FAILED, TaskState.UP_FOR_RETRY)
        exit_reason = transition.exit_reason or _WAKE_EXIT[transition.target]
        conn.execute(
            _END_WAITING_TRY_ROW,
            [
                {
                    "k_run_pk": transition.run_pk,
                    "k_task_id": r.task_id,
                    "k_map_index": r.map_index,
                    "k_try_number": r.try_number,
                    # A try the task retries ended failed, as any other (EndTry's try_state).
                    "v_try_state": TaskState.FAILED.value if failed else transition.target.value,
                    "v_at": now,
                    "v_exit_reason": exit_reason.value,
                    "v_error": transition.reason if failed else None,
                }
                for r in rows
            ],
        )
    return Moved(
        task_ids=tuple(r.task_id for r in rows),
        map_indexes=tuple(r.map_index for r in rows),
        try_numbers=tuple(r.try_number for r in rows),
    )


# ----------------------------------------------------------------- expanding mapped tasks

_TAKE_WAITING_ROW = (
    delete(ti)
    .where(
        ti.c.run_pk == bindparam("k_run_pk"),
        ti.c.task_id == bindparam("k_task_id"),
        ti.c.map_index == -1,
        _state_in(ti.c.state, ExpandTask.sources),
    )
    .returning(*ti.c)
)


_CLEARED_INSTANCES = (
    select(ti)
    .where(
        ti.c.run_pk == bindparam("k_run_pk"),
        ti.c.task_id == bindparam("k_task_id"),
        ti.c.map_index >= 0,
    )
    .order_by(ti.c.map_index)
)
_DROP_INSTANCES = delete(ti).where(
    ti.c.run_pk == bindparam("k_run_pk"),
    ti.c.task_id == bindparam("k_task_id"),
    ti.c.map_index >= bindparam("k_length"),
    _state_in(ti.c.state, ExpandTask.sources),
)


def _expand(conn: Connection, transition: ExpandTask, now: datetime) -> Moved:
    """The waiting row is taken (a compare-and-set by deletion) and its instances written;
    or, for a task expanded before whose instances all wait again, they are revised."""
    params = {"k_run_pk": transition.run_pk, "k_task_id": transition.task_id}
    row = conn.execute(_TAKE_WAITING_ROW, params).first()
    if row is None:
        return _expand_again(conn, transition, now)
    base = dict(row._mapping)
    base.update(
        state=transition.target.value,
        try_number=0,
        queued_at=None,
        start_date=None,
        end_date=None,
        next_retry_at=None,
        hostname=None,
        pid=None,
        state_reason=None,
        owner_job_id=None,
        updated_at=now,
    )
    indexes = tuple(range(transition.length))
    conn.execute(insert(ti), [{**base, "map_index": index} for index in indexes])
    return Moved(task_ids=(transition.task_id,) * len(indexes), map_indexes=indexes)


def _expand_again(conn: Connection, transition: ExpandTask, now: datetime) -> Moved:
    params = {"k_run_pk": transition.run_pk, "k_task_id": transition.task_id}
    found = conn.execute(_CLEARED_INSTANCES, params).all()
    if not found or any(r.state not in {s.value for s in ExpandTask.sources} for r in found):
        return NOTHING_MOVED
    conn.execute(_DROP_INSTANCES, params | {"k_length": transition.length})
    kept = [r.map_index for r in found if r.map_index < transition.length]
    if kept and not transition.waiting:
        schedule = planned(
            transition.run_pk,
            [transition.task_id] * len(kept),
            transition.target,
            map_indexes=kept,
        )
        moved = _move_tasks(conn, schedule, now)
        if len(moved.task_ids) != len(kept):
            raise StaleExpansion(transition.task_id)
    base = dict(found[0]._mapping)
    base.update(
        state=transition.target.value,
        try_number=0,
        infra_failures=0,
        hostname=None,
        pid=None,
        updated_at=now,
        state_reason=None,
    )
    added = tuple(i for i in range(transition.length) if i not in kept)
    if added:
        conn.execute(insert(ti), [{**base, "map_index": index} for index in added])
    indexes = tuple(sorted([*kept, *added]))
    return Moved(task_ids=(transition.task_id,) * len(indexes), map_indexes=indexes)


class StaleExpansion(RuntimeError):
    """A cleared mapped task's instances changed while being expanded again: the pass is
    rolled back and planned anew from the database."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"instances of mapped task {task_id!r} changed during expansion")


# ----------------------------------------------------------------- runs


@functools.cache
def _run_statement(target: RunState, sources: frozenset[RunState]) -> Update:
    now = bindparam("v_now", type_=UtcDateTime)
    values: dict[str, Any] = {
        "state": target.value,
        "updated_at": now,
        "state_reason": bindparam("v_reason", type_=Text),
    }
    if target is RunState.RUNNING:
        values.update(start_date=now, end_date=None)
    elif target.is_finished:
        values["end_date"] = now
    else:  # queued again, to run anew
        values.update(start_date=None, end_date=None, queued_at=now)
    return (
        update(runs)
        .where(runs.c.id == bindparam("k_run_pk"), _state_in(runs.c.state, sources))
        .values(values)
        .returning(*runs.c)
    )


def _move_run(conn: Connection, transition: RunTransition, now: datetime) -> Moved:
    statement = _run_statement(transition.target, transition.sources)
    params = {"k_run_pk": transition.run_pk, "v_now": now, "v_reason": transition.reason}
    row = conn.execute(statement, params).first()
    return Moved(run=run_from_mapping(row._mapping)) if row is not None else NOTHING_MOVED


# ----------------------------------------------------------------- claims


def _claim_keys(keys: Collection[TaskKey]) -> list[tuple[int, str, int, int]]:
    return sorted({(k.run_pk, k.task_id, k.map_index, k.try_number) for k in keys})


def claim(
    conn: Connection,
    keys: Collection[TaskKey],
    *,
    worker_job_id: int,
    hostname: str,
    at: datetime,
) -> set[TaskKey]:
    """A remote worker's claim (the Celery executor, design 1.5): move each of these tries
    from queued to running for this worker, before any fork, writing no pid; returns those it
    won. A try not won (started by another delivery, cleared, marked, or a later try number)
    must not run."""
    if not keys:
        return set()
    won = conn.execute(
        update(ti)
        .where(
            tuple_(ti.c.run_pk, ti.c.task_id, ti.c.map_index, ti.c.try_number).in_(
                _claim_keys(keys)
            ),
            ti.c.state == TaskState.QUEUED.value,
        )
        .values(
            state=TaskState.RUNNING.value,
            start_date=at,
            hostname=hostname,
            pid=None,
            worker_job_id=worker_job_id,
            updated_at=at,
        )
        .returning(ti.c.run_pk, ti.c.task_id, ti.c.map_index, ti.c.try_number)
    ).all()
    claimed = {TaskKey(row.run_pk, row.task_id, row.try_number, row.map_index) for row in won}
    if claimed:
        # The try's own row starts once, as `StartTry` does it.
        conn.execute(
            update(tries)
            .where(
                tuple_(tries.c.run_pk, tries.c.task_id, tries.c.map_index, tries.c.try_number).in_(
                    _claim_keys(claimed)
                ),
                tries.c.start_date.is_(None),
                tries.c.end_date.is_(None),
            )
            .values(state=TaskState.RUNNING.value, start_date=at, hostname=hostname, pid=None)
        )
    return claimed
