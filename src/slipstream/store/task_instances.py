"""Task instances (one row per task per run) and their tries (one row per try).

Every state change here is a compare-and-set: UPDATE ... WHERE state IN (expected), so a late or
duplicate report can never overwrite a state that has moved on.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Integer,
    Row,
    Text,
    and_,
    bindparam,
    func,
    insert,
    select,
    tuple_,
    update,
)

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import ExitReason, Run, TaskInstance, TaskKey, TaskTry
from slipstream.core.states import TaskState
from slipstream.store.runs import run_from_mapping
from slipstream.store.tables import UtcDateTime, runs
from slipstream.store.tables import task_instances as ti
from slipstream.store.tables import task_tries as tries


def _to_ti(row: Row[Any]) -> TaskInstance:
    m = row._mapping
    return TaskInstance(
        run_pk=m["run_pk"],
        dag_id=m["dag_id"],
        run_id=m["run_id"],
        task_id=m["task_id"],
        state=TaskState(m["state"]),
        try_number=m["try_number"],
        max_tries=m["max_tries"],
        operator=m["operator"],
        queued_at=m["queued_at"],
        start_date=m["start_date"],
        end_date=m["end_date"],
        next_retry_at=m["next_retry_at"],
        hostname=m["hostname"],
        pid=m["pid"],
        state_reason=m["state_reason"],
        infra_failures=m["infra_failures"],
        pool=m["pool"],
        queue=m["queue"],
        priority_weight=m["priority_weight"],
    )


def _to_try(row: Row[Any]) -> TaskTry:
    m = row._mapping
    return TaskTry(
        run_pk=m["run_pk"],
        dag_id=m["dag_id"],
        run_id=m["run_id"],
        task_id=m["task_id"],
        try_number=m["try_number"],
        state=TaskState(m["state"]),
        queued_at=m["queued_at"],
        start_date=m["start_date"],
        end_date=m["end_date"],
        hostname=m["hostname"],
        pid=m["pid"],
        exit_reason=ExitReason(m["exit_reason"]) if m["exit_reason"] else None,
        exit_code=m["exit_code"],
        error=m["error"],
    )


def create_for_run(
    conn: Connection, run: Run, plan: DagPlan, now: datetime
) -> dict[str, TaskState]:
    """One row per task of the run's DAG version, in state none; a run started before (and
    requeued by a person) keeps the rows it has. Returns every task's state."""
    states = states_for_run(conn, run.id)
    rows = [
        {
            "run_pk": run.id,
            "task_id": spec.task_id,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "state": TaskState.NONE.value,
            "try_number": 0,
            "max_tries": spec.retries,
            "infra_failures": 0,
            "operator": spec.operator,
            "pool": spec.pool,
            "queue": spec.queue,
            "priority_weight": spec.priority_weight,
            "updated_at": now,
        }
        for spec in (plan.tasks[t] for t in plan.order)
        if spec.task_id not in states
    ]
    if rows:
        conn.execute(insert(ti), rows)
    return {**dict.fromkeys(plan.order, TaskState.NONE), **states}


_STATES_FOR_RUN = select(ti.c.task_id, ti.c.state).where(ti.c.run_pk == bindparam("k_run_pk"))


def states_for_run(conn: Connection, run_pk: int) -> dict[str, TaskState]:
    rows = conn.execute(_STATES_FOR_RUN, {"k_run_pk": run_pk})
    return {task_id: TaskState(state) for task_id, state in rows}


def move(
    conn: Connection,
    run_pk: int,
    task_ids: Collection[str],
    expected: Collection[TaskState],
    target: TaskState,
    now: datetime,
    *,
    reason: str | None = None,
    extra: dict[str, Any] | None = None,
) -> list[str]:
    """Compare-and-set many tasks of one run; returns the task ids that actually moved."""
    if not task_ids:
        return []
    extra = extra or {}
    statement = _move_statement(target, tuple(sorted(extra)))
    params = {
        "k_run_pk": run_pk,
        "k_task_ids": list(task_ids),
        "k_expected": [s.value for s in expected],
        "v_now": now,
        "v_reason": reason,
    } | {f"x_{name}": value for name, value in extra.items()}
    return [row.task_id for row in conn.execute(statement, params)]


@functools.cache
def _move_statement(target: TaskState, extra_columns: tuple[str, ...]) -> Any:
    """One prebuilt statement per kind of move (see the note on the hot path below)."""
    now = bindparam("v_now", type_=UtcDateTime)
    values: dict[str, Any] = {
        "state": target.value,
        "updated_at": now,
        "state_reason": bindparam("v_reason", type_=Text),
    }
    if target.is_finished:
        values["end_date"] = now
    if target is TaskState.NONE:
        values.update(start_date=None, end_date=None, queued_at=None, next_retry_at=None)
    for name in extra_columns:
        values[name] = bindparam(f"x_{name}", type_=ti.c[name].type)
    return (
        update(ti)
        .where(
            ti.c.run_pk == bindparam("k_run_pk"),
            ti.c.task_id.in_(bindparam("k_task_ids", expanding=True)),
            ti.c.state.in_(bindparam("k_expected", expanding=True)),
        )
        .values(values)
        .returning(ti.c.task_id)
    )


_QUEUE_TRIES = (
    update(ti)
    .where(
        ti.c.run_pk == bindparam("k_run_pk"),
        ti.c.task_id.in_(bindparam("k_task_ids", expanding=True)),
        ti.c.state == TaskState.SCHEDULED.value,
    )
    .values(
        state=TaskState.QUEUED.value,
        try_number=ti.c.try_number + 1,
        queued_at=bindparam("v_now", type_=UtcDateTime),
        start_date=None,
        end_date=None,
        hostname=None,
        pid=None,
        next_retry_at=None,
        state_reason=None,
        owner_job_id=bindparam("v_owner", type_=Integer),
        updated_at=bindparam("v_now", type_=UtcDateTime),
    )
    .returning(*ti.c)
)
_INSERT_TRY = insert(tries)


def queue_tries(
    conn: Connection,
    run_pk: int,
    task_ids: Collection[str],
    now: datetime,
    owner_job_id: int | None,
) -> list[TaskInstance]:
    """Move scheduled tasks to queued, starting a new try for each; returns the moved ones."""
    if not task_ids:
        return []
    params = {
        "k_run_pk": run_pk,
        "k_task_ids": list(task_ids),
        "v_now": now,
        "v_owner": owner_job_id,
    }
    moved = [_to_ti(row) for row in conn.execute(_QUEUE_TRIES, params)]
    if moved:
        conn.execute(
            _INSERT_TRY,
            [
                {
                    "run_pk": t.run_pk,
                    "task_id": t.task_id,
                    "try_number": t.try_number,
                    "dag_id": t.dag_id,
                    "run_id": t.run_id,
                    "state": TaskState.QUEUED.value,
                    "queued_at": now,
                }
                for t in moved
            ],
        )
    return moved


# The hot path (every try starts and ends through these) uses statements built once: building
# a SQLAlchemy statement costs several times more than executing it on SQLite.
_THIS_TRY = (
    ti.c.run_pk == bindparam("k_run_pk"),
    ti.c.task_id == bindparam("k_task_id"),
    ti.c.try_number == bindparam("k_try_number"),
)
_THIS_TRY_ROW = (
    tries.c.run_pk == bindparam("k_run_pk"),
    tries.c.task_id == bindparam("k_task_id"),
    tries.c.try_number == bindparam("k_try_number"),
)
_START_TI = (
    update(ti)
    .where(*_THIS_TRY, ti.c.state == TaskState.QUEUED.value)
    .values(
        state=TaskState.RUNNING.value,
        start_date=bindparam("v_at", type_=UtcDateTime),
        pid=bindparam("v_pid"),
        hostname=bindparam("v_hostname"),
        updated_at=bindparam("v_at", type_=UtcDateTime),
    )
)
# A try starts once: a duplicate or late start report must not rewrite its history.
_START_TRY = (
    update(tries)
    .where(*_THIS_TRY_ROW, tries.c.end_date.is_(None), tries.c.start_date.is_(None))
    .values(
        state=TaskState.RUNNING.value,
        start_date=bindparam("v_at", type_=UtcDateTime),
        pid=bindparam("v_pid"),
        hostname=bindparam("v_hostname"),
    )
)
_FINISH_TI = (
    update(ti)
    .where(*_THIS_TRY, ti.c.state.in_([TaskState.QUEUED.value, TaskState.RUNNING.value]))
    .values(
        state=bindparam("v_state"),
        end_date=bindparam("v_at", type_=UtcDateTime),
        updated_at=bindparam("v_at", type_=UtcDateTime),
        next_retry_at=bindparam("v_next_retry_at", type_=UtcDateTime),
        state_reason=bindparam("v_reason"),
        infra_failures=func.coalesce(
            bindparam("v_infra_failures", type_=Integer), ti.c.infra_failures
        ),
    )
)
_FINISH_TRY = (
    update(tries)
    .where(*_THIS_TRY_ROW, tries.c.end_date.is_(None))
    .values(
        state=bindparam("v_state"),
        end_date=bindparam("v_at", type_=UtcDateTime),
        exit_reason=bindparam("v_exit_reason"),
        exit_code=bindparam("v_exit_code", type_=Integer),
        error=bindparam("v_error", type_=Text),
    )
)


# A try whose start and end reach the scheduler together gets both in one write.
_STARTED_VALUES = {
    "start_date": bindparam("v_started_at", type_=UtcDateTime),
    "pid": bindparam("v_pid"),
    "hostname": bindparam("v_hostname"),
}
_FINISH_TI_STARTED = _FINISH_TI.values(_STARTED_VALUES)
_FINISH_TRY_STARTED = _FINISH_TRY.values(_STARTED_VALUES)


def _key_params(key: TaskKey) -> dict[str, Any]:
    return {"k_run_pk": key.run_pk, "k_task_id": key.task_id, "k_try_number": key.try_number}


def mark_started(conn: Connection, key: TaskKey, *, pid: int, hostname: str, at: datetime) -> bool:
    params = _key_params(key) | {"v_at": at, "v_pid": pid, "v_hostname": hostname}
    moved = conn.execute(_START_TI, params).rowcount
    conn.execute(_START_TRY, params)
    return bool(moved)


def finish_try(
    conn: Connection,
    key: TaskKey,
    *,
    state: TaskState,
    try_state: TaskState,
    exit_reason: ExitReason,
    at: datetime,
    error: str | None = None,
    exit_code: int | None = None,
    next_retry_at: datetime | None = None,
    infra_failures: int | None = None,
    started: tuple[int, str, datetime] | None = None,
) -> bool:
    """End a try: the task instance moves to `state` (success, failed, skipped, up_for_retry),
    the try row keeps what this try ended as. False when the try was no longer current."""
    params = _key_params(key)
    finish_ti, finish_try_row = _FINISH_TI, _FINISH_TRY
    if started is not None:  # (pid, hostname, at) of a start reported in the same batch
        finish_ti, finish_try_row = _FINISH_TI_STARTED, _FINISH_TRY_STARTED
        params |= {"v_pid": started[0], "v_hostname": started[1], "v_started_at": started[2]}
    reason = error if state in (TaskState.FAILED, TaskState.UP_FOR_RETRY) else None
    moved = conn.execute(
        finish_ti,
        params
        | {
            "v_state": state.value,
            "v_at": at,
            "v_next_retry_at": next_retry_at,
            "v_reason": reason,
            "v_infra_failures": infra_failures,
        },
    ).rowcount
    conn.execute(
        finish_try_row,
        params
        | {
            "v_state": try_state.value,
            "v_at": at,
            "v_exit_reason": exit_reason.value,
            "v_exit_code": exit_code,
            "v_error": error,
        },
    )
    return bool(moved)


def _try_is(key: TaskKey) -> Any:
    return and_(
        tries.c.run_pk == key.run_pk,
        tries.c.task_id == key.task_id,
        tries.c.try_number == key.try_number,
    )


def get(conn: Connection, run_pk: int, task_id: str) -> TaskInstance | None:
    row = conn.execute(select(ti).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id)).first()
    return _to_ti(row) if row else None


def list_for_run(conn: Connection, run_pk: int) -> list[TaskInstance]:
    rows = conn.execute(select(ti).where(ti.c.run_pk == run_pk))
    return [_to_ti(row) for row in rows]


def list_for_runs(conn: Connection, run_pks: Sequence[int]) -> list[TaskInstance]:
    if not run_pks:
        return []
    rows = conn.execute(select(ti).where(ti.c.run_pk.in_(list(run_pks))))
    return [_to_ti(row) for row in rows]


def tries_for(conn: Connection, run_pk: int, task_id: str) -> list[TaskTry]:
    query = (
        select(tries)
        .where(tries.c.run_pk == run_pk, tries.c.task_id == task_id)
        .order_by(tries.c.try_number)
    )
    return [_to_try(row) for row in conn.execute(query)]


def in_state(conn: Connection, states: Collection[TaskState]) -> list[TaskInstance]:
    """Task instances in some states, for rebuilding the scheduler's view after a restart."""
    query = select(ti).where(ti.c.state.in_([s.value for s in states]))
    return [_to_ti(row) for row in conn.execute(query)]


def owned_by_others(conn: Connection, job_id: int) -> list[tuple[TaskInstance, int | None]]:
    """Queued or running tries whose owning scheduler is not `job_id`, with their owner."""
    rows = conn.execute(_OWNED_BY_OTHERS, {"k_job_id": job_id})
    return [(_to_ti(row), row.owner_job_id) for row in rows]


# Built once: the scheduler's lost-try check runs it every few seconds.
_OWNED_BY_OTHERS = select(ti).where(
    ti.c.state.in_([TaskState.QUEUED.value, TaskState.RUNNING.value]),
    (ti.c.owner_job_id != bindparam("k_job_id")) | ti.c.owner_job_id.is_(None),
)


def keys_of(conn: Connection, keys: Sequence[tuple[int, str]]) -> list[TaskInstance]:
    if not keys:
        return []
    rows = conn.execute(select(ti).where(tuple_(ti.c.run_pk, ti.c.task_id).in_(list(keys))))
    return [_to_ti(row) for row in rows]


def force(
    conn: Connection,
    current: TaskInstance,
    target: TaskState,
    now: datetime,
    *,
    reason: str,
    max_tries: int | None = None,
) -> bool:
    """A person's move of one task instance, compare-and-set on the state and try it was read
    in: False when the scheduler moved it meanwhile (nothing written)."""
    values: dict[str, Any] = {"state": target.value, "updated_at": now, "state_reason": reason}
    if target is TaskState.NONE:
        values.update(
            start_date=None, end_date=None, queued_at=None, next_retry_at=None, owner_job_id=None
        )
    elif target.is_finished:
        values["end_date"] = now
        values["next_retry_at"] = None
    if max_tries is not None:
        values["max_tries"] = max_tries
    result = conn.execute(
        update(ti)
        .where(
            ti.c.run_pk == current.run_pk,
            ti.c.task_id == current.task_id,
            ti.c.state == current.state.value,
            ti.c.try_number == current.try_number,
        )
        .values(values)
    )
    return result.rowcount == 1


def _duration(conn: Connection) -> Any:
    if conn.dialect.name == "sqlite":
        return (func.julianday(ti.c.end_date) - func.julianday(ti.c.start_date)) * 86400.0
    return func.extract("epoch", ti.c.end_date - ti.c.start_date)


def search(
    conn: Connection,
    *,
    dag_ids: Sequence[str] | None = None,
    run_ids: Sequence[str] | None = None,
    task_ids: Sequence[str] | None = None,
    states: Sequence[TaskState] | None = None,
    pools: Sequence[str] | None = None,
    queues: Sequence[str] | None = None,
    bounds: Mapping[str, tuple[datetime | None, datetime | None]] | None = None,
    duration: tuple[float | None, float | None] = (None, None),
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[tuple[TaskInstance, Run]], int]:
    """A page of task instances with their runs, and the total that match. `bounds` maps
    `logical_date`, `start_date`, `end_date` or `updated_at` to (low, high), both inclusive."""
    conditions: list[ColumnElement[bool]] = []
    if dag_ids is not None:
        conditions.append(ti.c.dag_id.in_(list(dag_ids)))
    if run_ids is not None:
        conditions.append(ti.c.run_id.in_(list(run_ids)))
    if task_ids is not None:
        conditions.append(ti.c.task_id.in_(list(task_ids)))
    if states:
        conditions.append(ti.c.state.in_([s.value for s in states]))
    if pools:
        conditions.append(ti.c.pool.in_(list(pools)))
    if queues:
        conditions.append(ti.c.queue.in_(list(queues)))
    columns = {
        "logical_date": runs.c.logical_date,
        "start_date": ti.c.start_date,
        "end_date": ti.c.end_date,
        "updated_at": ti.c.updated_at,
    }
    for name, (low, high) in (bounds or {}).items():
        if low is not None:
            conditions.append(columns[name] >= low)
        if high is not None:
            conditions.append(columns[name] <= high)
    if duration != (None, None):
        length = _duration(conn)
        if duration[0] is not None:
            conditions.append(length >= duration[0])
        if duration[1] is not None:
            conditions.append(length <= duration[1])
    joined = ti.join(runs, runs.c.id == ti.c.run_pk)
    total = conn.execute(select(func.count()).select_from(joined).where(*conditions)).scalar_one()
    query = (
        select(ti, *[c.label(f"r__{c.name}") for c in runs.c])
        .select_from(joined)
        .where(*conditions)
        .order_by(ti.c.run_pk, ti.c.task_id)
    )
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    found = []
    for row in conn.execute(query):
        m = row._mapping
        run_row = {c.name: m[f"r__{c.name}"] for c in runs.c}
        found.append((_to_ti(row), run_from_mapping(run_row)))
    return found, int(total)
