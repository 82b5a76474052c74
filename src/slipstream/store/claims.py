"""Around the claims of tries by remote workers (the Celery executor, design 1.5; the claim
itself, a state change, is `store/transitions.claim` like every other): the lookups the
scheduler and the workers make (tries of dead workers, tries nobody claimed, tries a worker
should still run) and the try's pid, which the claim cannot write since it comes before the
fork: the worker records it once the try's process exists (`record_pid`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import Connection, select, tuple_, update

from slipstream.core.records import TaskInstance, TaskKey
from slipstream.core.states import TaskState
from slipstream.store.tables import scheduler_jobs as jobs
from slipstream.store.tables import task_instances as ti
from slipstream.store.tables import task_tries as tries
from slipstream.store.task_instances import task_instance_from_row

_ACTIVE = (TaskState.QUEUED.value, TaskState.RUNNING.value)


def _keys(keys: Collection[TaskKey]) -> list[tuple[int, str, int, int]]:
    return sorted({(k.run_pk, k.task_id, k.map_index, k.try_number) for k in keys})


_TI_KEY = tuple_(ti.c.run_pk, ti.c.task_id, ti.c.map_index, ti.c.try_number)
_TRY_KEY = tuple_(tries.c.run_pk, tries.c.task_id, tries.c.map_index, tries.c.try_number)


def record_pid(conn: Connection, key: TaskKey, *, worker_job_id: int, pid: int) -> None:
    """The claimed try's process is running as `pid` (while the try is still this worker's)."""
    conn.execute(
        update(ti)
        .where(
            _TI_KEY.in_(_keys([key])),
            ti.c.state == TaskState.RUNNING.value,
            ti.c.worker_job_id == worker_job_id,
        )
        .values(pid=pid)
    )
    conn.execute(
        update(tries)
        .where(
            _TRY_KEY.in_(_keys([key])),
            tries.c.end_date.is_(None),
        )
        .values(pid=pid)
    )


def still_wanted(conn: Connection, keys: Collection[TaskKey]) -> set[TaskKey]:
    """Of these tries, those their task instance still holds (that try number, queued or
    running): a worker stops the others (a person marked or cleared the task, or it timed
    out)."""
    if not keys:
        return set()
    rows = conn.execute(
        select(ti.c.run_pk, ti.c.task_id, ti.c.map_index, ti.c.try_number).where(
            _TI_KEY.in_(_keys(keys)), ti.c.state.in_(_ACTIVE)
        )
    )
    return {TaskKey(row.run_pk, row.task_id, row.try_number, row.map_index) for row in rows}


def held_by(conn: Connection, worker_job_ids: Collection[int]) -> list[TaskInstance]:
    """Running tries these workers claimed (their task instances)."""
    if not worker_job_ids:
        return []
    rows = conn.execute(
        select(ti).where(
            ti.c.worker_job_id.in_(sorted(worker_job_ids)),
            ti.c.state == TaskState.RUNNING.value,
        )
    )
    return [task_instance_from_row(row) for row in rows]


def held_by_gone_workers(conn: Connection) -> list[TaskInstance]:
    """Running tries claimed by workers whose job is no longer running (lost or ended):
    nobody runs them any more."""
    running = select(jobs.c.id).where(jobs.c.state == "running")
    rows = conn.execute(
        select(ti).where(
            ti.c.state == TaskState.RUNNING.value,
            ti.c.worker_job_id.is_not(None),
            ti.c.worker_job_id.not_in(running),
        )
    )
    return [task_instance_from_row(row) for row in rows]


def unclaimed(
    conn: Connection, *, queued_before: datetime, dag_ids: Sequence[str] | None = None
) -> list[TaskInstance]:
    """Tries queued before `queued_before` that no worker has claimed yet, oldest first."""
    query = select(ti).where(
        ti.c.state == TaskState.QUEUED.value,
        ti.c.start_date.is_(None),
        ti.c.queued_at < queued_before,
    )
    if dag_ids is not None:
        query = query.where(ti.c.dag_id.in_(sorted(dag_ids)))
    rows = conn.execute(query.order_by(ti.c.queued_at))
    return [task_instance_from_row(row) for row in rows]
