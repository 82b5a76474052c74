"""Task instances (one row per task per run) and their tries (one row per try).

Every state change here is a compare-and-set: UPDATE ... WHERE state IN (expected), so a late or
duplicate report can never overwrite a state that has moved on.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, insert, select, tuple_, update

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import ExitReason, Run, TaskInstance, TaskKey, TaskTry
from slipstream.core.states import TaskState
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


def create_for_run(conn: Connection, run: Run, plan: DagPlan, now: datetime) -> None:
    """One row per task of the run's DAG version, all in state none."""
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
    ]
    if rows:
        conn.execute(insert(ti), rows)


def states_for_run(conn: Connection, run_pk: int) -> dict[str, TaskState]:
    query = select(ti.c.task_id, ti.c.state).where(ti.c.run_pk == run_pk)
    return {task_id: TaskState(state) for task_id, state in conn.execute(query)}


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
    values: dict[str, Any] = {"state": target.value, "updated_at": now, "state_reason": reason}
    if target.is_finished:
        values["end_date"] = now
    if target is TaskState.NONE:
        values.update(start_date=None, end_date=None, queued_at=None, next_retry_at=None)
    values.update(extra or {})
    statement = (
        update(ti)
        .where(
            ti.c.run_pk == run_pk,
            ti.c.task_id.in_(list(task_ids)),
            ti.c.state.in_([s.value for s in expected]),
        )
        .values(values)
        .returning(ti.c.task_id)
    )
    return [row.task_id for row in conn.execute(statement)]


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
    statement = (
        update(ti)
        .where(
            ti.c.run_pk == run_pk,
            ti.c.task_id.in_(list(task_ids)),
            ti.c.state == TaskState.SCHEDULED.value,
        )
        .values(
            state=TaskState.QUEUED.value,
            try_number=ti.c.try_number + 1,
            queued_at=now,
            start_date=None,
            end_date=None,
            hostname=None,
            pid=None,
            next_retry_at=None,
            state_reason=None,
            owner_job_id=owner_job_id,
            updated_at=now,
        )
        .returning(*ti.c)
    )
    moved = [_to_ti(row) for row in conn.execute(statement)]
    if moved:
        conn.execute(
            insert(tries),
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


def mark_started(conn: Connection, key: TaskKey, *, pid: int, hostname: str, at: datetime) -> bool:
    moved = conn.execute(
        update(ti)
        .where(
            ti.c.run_pk == key.run_pk,
            ti.c.task_id == key.task_id,
            ti.c.try_number == key.try_number,
            ti.c.state == TaskState.QUEUED.value,
        )
        .values(
            state=TaskState.RUNNING.value, start_date=at, pid=pid, hostname=hostname, updated_at=at
        )
    ).rowcount
    # A try starts once: a duplicate or late start report must not rewrite its history.
    conn.execute(
        update(tries)
        .where(_try_is(key), tries.c.end_date.is_(None), tries.c.start_date.is_(None))
        .values(state=TaskState.RUNNING.value, start_date=at, pid=pid, hostname=hostname)
    )
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
) -> bool:
    """End a try: the task instance moves to `state` (success, failed, skipped, up_for_retry),
    the try row keeps what this try ended as. False when the try was no longer current."""
    values: dict[str, Any] = {
        "state": state.value,
        "end_date": at,
        "updated_at": at,
        "next_retry_at": next_retry_at,
        "state_reason": error if state in (TaskState.FAILED, TaskState.UP_FOR_RETRY) else None,
    }
    if infra_failures is not None:
        values["infra_failures"] = infra_failures
    moved = conn.execute(
        update(ti)
        .where(
            ti.c.run_pk == key.run_pk,
            ti.c.task_id == key.task_id,
            ti.c.try_number == key.try_number,
            ti.c.state.in_([TaskState.QUEUED.value, TaskState.RUNNING.value]),
        )
        .values(values)
    ).rowcount
    conn.execute(
        update(tries)
        .where(_try_is(key), tries.c.end_date.is_(None))
        .values(
            state=try_state.value,
            end_date=at,
            exit_reason=exit_reason.value,
            exit_code=exit_code,
            error=error,
        )
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
    query = select(ti).where(
        ti.c.state.in_([TaskState.QUEUED.value, TaskState.RUNNING.value]),
        (ti.c.owner_job_id != job_id) | ti.c.owner_job_id.is_(None),
    )
    return [(_to_ti(row), row.owner_job_id) for row in conn.execute(query)]


def keys_of(conn: Connection, keys: Sequence[tuple[int, str]]) -> list[TaskInstance]:
    if not keys:
        return []
    rows = conn.execute(select(ti).where(tuple_(ti.c.run_pk, ti.c.task_id).in_(list(keys))))
    return [_to_ti(row) for row in rows]
