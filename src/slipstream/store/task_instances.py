"""Task instances (one row per task per run) and their tries (one row per try): creating and
reading them. Their states change only through store/transitions.py."""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    bindparam,
    func,
    insert,
    select,
    tuple_,
    update,
)

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import ExitReason, Run, TaskInstance, TaskKey, TaskTry, Wait
from slipstream.core.states import ACTIVE_TASK_STATES, TaskState
from slipstream.store.runs import run_from_mapping
from slipstream.store.tables import runs
from slipstream.store.tables import task_instances as ti
from slipstream.store.tables import task_tries as tries


def task_instance_from_row(row: Row[Any]) -> TaskInstance:
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
        pool_slots=m["pool_slots"],
        queue=m["queue"],
        priority_weight=m["priority_weight"],
        map_index=m["map_index"],
        wake_at=m["wake_at"],
        wake_target=TaskState(m["wake_target"]) if m["wake_target"] else None,
        wait=wait_from_text(m["wait"]),
        resumes_try=bool(m["resumes_try"]),
        sensor_started_at=m["sensor_started_at"],
    )


def wait_from_text(text: str | None) -> Wait | None:
    return Wait.from_json(json.loads(text)) if text else None


def wait_to_text(wait: Wait | None) -> str | None:
    return json.dumps(wait.to_json(), sort_keys=True) if wait is not None else None


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
        map_index=m["map_index"],
    )


def create_for_run(
    conn: Connection, run: Run, plan: DagPlan, now: datetime
) -> dict[str, TaskState]:
    """One row per task of the run's DAG version, in state none; a run started before (and
    requeued by a person) keeps the rows it has. Returns every task's state, but for mapped
    tasks already expanded (see run_states)."""
    if plan.mapped:
        states, expanded = run_states(conn, run.id)
    else:
        states, expanded = states_for_run(conn, run.id), {}
    rows = [
        {
            "run_pk": run.id,
            "task_id": spec.task_id,
            "map_index": -1,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "state": TaskState.NONE.value,
            "try_number": 0,
            "max_tries": spec.retries,
            "infra_failures": 0,
            "operator": spec.operator,
            "pool": spec.pool,
            "pool_slots": spec.pool_slots,
            "queue": spec.queue,
            "priority_weight": spec.priority_weight_total,  # effective, as Airflow stores it
            "updated_at": now,
        }
        for spec in (plan.tasks[t] for t in plan.order)
        if spec.task_id not in states and spec.task_id not in expanded
    ]
    if rows:
        conn.execute(insert(ti), rows)
    waiting = (t for t in plan.order if t not in expanded)
    return {**dict.fromkeys(waiting, TaskState.NONE), **states}


_STATES_FOR_RUN = select(ti.c.task_id, ti.c.state).where(
    ti.c.run_pk == bindparam("k_run_pk"), ti.c.map_index == -1
)
_RUN_STATES = select(ti.c.task_id, ti.c.map_index, ti.c.state).where(
    ti.c.run_pk == bindparam("k_run_pk")
)


def states_for_run(conn: Connection, run_pk: int) -> dict[str, TaskState]:
    """The state of each unmapped (or not yet expanded) task instance of a run."""
    rows = conn.execute(_STATES_FOR_RUN, {"k_run_pk": run_pk})
    return {task_id: TaskState(state) for task_id, state in rows}


def run_states(
    conn: Connection, run_pk: int
) -> tuple[dict[str, TaskState], dict[str, dict[int, TaskState]]]:
    """(unmapped task states, expanded mapped tasks' states by map index) of one run."""
    states: dict[str, TaskState] = {}
    mapped: dict[str, dict[int, TaskState]] = {}
    for task_id, map_index, state in conn.execute(_RUN_STATES, {"k_run_pk": run_pk}):
        if map_index < 0:
            states[task_id] = TaskState(state)
        else:
            mapped.setdefault(task_id, {})[map_index] = TaskState(state)
    return states, mapped


def get(conn: Connection, run_pk: int, task_id: str, map_index: int = -1) -> TaskInstance | None:
    query = select(ti).where(
        ti.c.run_pk == run_pk, ti.c.task_id == task_id, ti.c.map_index == map_index
    )
    row = conn.execute(query).first()
    return task_instance_from_row(row) if row else None


def mapped_instances(conn: Connection, run_pk: int, task_id: str) -> list[TaskInstance]:
    """Every instance of one task in a run, by map index (one, at -1, for an unmapped task)."""
    query = (
        select(ti).where(ti.c.run_pk == run_pk, ti.c.task_id == task_id).order_by(ti.c.map_index)
    )
    return [task_instance_from_row(row) for row in conn.execute(query)]


def list_for_run(conn: Connection, run_pk: int) -> list[TaskInstance]:
    rows = conn.execute(
        select(ti).where(ti.c.run_pk == run_pk).order_by(ti.c.task_id, ti.c.map_index)
    )
    return [task_instance_from_row(row) for row in rows]


def list_for_runs(conn: Connection, run_pks: Sequence[int]) -> list[TaskInstance]:
    if not run_pks:
        return []
    rows = conn.execute(select(ti).where(ti.c.run_pk.in_(list(run_pks))))
    return [task_instance_from_row(row) for row in rows]


def tries_for(conn: Connection, run_pk: int, task_id: str, map_index: int = -1) -> list[TaskTry]:
    query = (
        select(tries)
        .where(
            tries.c.run_pk == run_pk,
            tries.c.task_id == task_id,
            tries.c.map_index == map_index,
        )
        .order_by(tries.c.try_number)
    )
    return [_to_try(row) for row in conn.execute(query)]


def in_state(conn: Connection, states: Collection[TaskState]) -> list[TaskInstance]:
    """Task instances in some states, for rebuilding the scheduler's view after a restart."""
    query = select(ti).where(ti.c.state.in_([s.value for s in states]))
    return [task_instance_from_row(row) for row in conn.execute(query)]


def owned_by_others(conn: Connection, job_id: int) -> list[tuple[TaskInstance, int | None]]:
    """Queued or running tries whose owning scheduler is not `job_id`, with their owner."""
    rows = conn.execute(_OWNED_BY_OTHERS, {"k_job_id": job_id})
    return [(task_instance_from_row(row), row.owner_job_id) for row in rows]


# Built once: the scheduler's lost-try check runs it every few seconds.
_OWNED_BY_OTHERS = select(ti).where(
    ti.c.state.in_(sorted(s.value for s in ACTIVE_TASK_STATES)),
    (ti.c.owner_job_id != bindparam("k_job_id")) | ti.c.owner_job_id.is_(None),
)


# A try another scheduler queued, still queued or running at the same try number.
_ADOPT = (
    update(ti)
    .where(
        ti.c.run_pk == bindparam("k_run_pk"),
        ti.c.task_id == bindparam("k_task_id"),
        ti.c.map_index == bindparam("k_map_index"),
        ti.c.try_number == bindparam("k_try_number"),
        ti.c.state.in_(sorted(s.value for s in ACTIVE_TASK_STATES)),
    )
    .values(owner_job_id=bindparam("v_owner"))
)


def adopt(conn: Connection, keys: Sequence[TaskKey], job_id: int) -> None:
    """Make scheduler `job_id` the owner of these tries (a worker host runs them for it now):
    the lost-try check then leaves them be. Only tries still active at that number move."""
    if keys:
        conn.execute(
            _ADOPT,
            [
                {
                    "k_run_pk": key.run_pk,
                    "k_task_id": key.task_id,
                    "k_map_index": key.map_index,
                    "k_try_number": key.try_number,
                    "v_owner": job_id,
                }
                for key in keys
            ],
        )


def keys_of(
    conn: Connection, keys: Sequence[tuple[int, str] | tuple[int, str, int]]
) -> list[TaskInstance]:
    """Task instances by (run_pk, task_id[, map_index]); map index -1 when not given."""
    if not keys:
        return []
    full = [key if len(key) == 3 else (*key, -1) for key in keys]
    rows = conn.execute(
        select(ti).where(tuple_(ti.c.run_pk, ti.c.task_id, ti.c.map_index).in_(full))
    )
    return [task_instance_from_row(row) for row in rows]


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
    map_indexes: Sequence[int] | None = None,
    mapped_only: bool = False,
    states: Sequence[TaskState] | None = None,
    pools: Sequence[str] | None = None,
    queues: Sequence[str] | None = None,
    bounds: Mapping[str, tuple[datetime | None, datetime | None]] | None = None,
    duration: tuple[float | None, float | None] = (None, None),
    limit: int | None = None,
    offset: int = 0,
    order_by: Sequence[tuple[str, bool]] = (),
) -> tuple[list[tuple[TaskInstance, Run]], int]:
    """A page of task instances with their runs, and the total that match. `bounds` maps
    `logical_date`, `start_date`, `end_date` or `updated_at` to (low, high), both inclusive.
    `order_by` is (column, descending) pairs of task-instance columns, before the default order."""
    conditions: list[ColumnElement[bool]] = []
    if dag_ids is not None:
        conditions.append(ti.c.dag_id.in_(list(dag_ids)))
    if run_ids is not None:
        conditions.append(ti.c.run_id.in_(list(run_ids)))
    if task_ids is not None:
        conditions.append(ti.c.task_id.in_(list(task_ids)))
    if map_indexes is not None:
        conditions.append(ti.c.map_index.in_(list(map_indexes)))
    if mapped_only:
        conditions.append(ti.c.map_index >= 0)
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
        .order_by(
            *[(ti.c[name].desc() if descending else ti.c[name]) for name, descending in order_by],
            ti.c.run_pk,
            ti.c.task_id,
            ti.c.map_index,
        )
    )
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    found = []
    for row in conn.execute(query):
        m = row._mapping
        run_row = {c.name: m[f"r__{c.name}"] for c in runs.c}
        found.append((task_instance_from_row(row), run_from_mapping(run_row)))
    return found, int(total)


def count_by_state(conn: Connection) -> dict[TaskState, int]:
    """How many task instances are in each state: one GROUP BY walking the leading column of
    ix_task_instances_state_dag_id (an index-only scan on PostgreSQL)."""
    rows = conn.execute(select(ti.c.state, func.count()).group_by(ti.c.state))
    return {TaskState(state): int(count) for state, count in rows}
