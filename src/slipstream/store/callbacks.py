"""Callback requests waiting for an executor: inserted in the transaction of the state change
that called for them, deleted once an executor reports them run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from slipstream.store.tables import callback_requests as table
from slipstream.store.tables import scheduler_jobs as jobs


@dataclass(frozen=True, slots=True)
class StoredCallback:
    id: int
    run_pk: int
    kind: str
    task_id: str
    try_number: int
    error: str | None
    reason: str | None
    map_index: int = -1


def add(
    conn: Connection,
    *,
    run_pk: int,
    kind: str,
    task_id: str,
    try_number: int,
    error: str | None,
    reason: str | None,
    now: datetime,
    map_index: int = -1,
) -> int:
    """Store one request; returns its id."""
    result = conn.execute(
        insert(table)
        .values(
            run_pk=run_pk,
            kind=kind,
            task_id=task_id,
            try_number=try_number,
            map_index=map_index,
            error=error,
            reason=reason,
            created_at=now,
        )
        .returning(table.c.id)
    )
    return int(result.scalar_one())


def pending(conn: Connection) -> list[StoredCallback]:
    """Every stored request, oldest first."""
    rows = conn.execute(select(table).order_by(table.c.id))
    return [
        StoredCallback(
            id=row.id,
            run_pk=row.run_pk,
            kind=row.kind,
            task_id=row.task_id,
            try_number=row.try_number,
            error=row.error,
            reason=row.reason,
            map_index=row.map_index,
        )
        for row in rows
    ]


def claim(conn: Connection, request_id: int, *, worker_job_id: int) -> bool:
    """A Celery worker's claim of a request before it runs it: False when another worker
    has it, or it has run (its row is gone): a delivery that must run nothing."""
    claimed = conn.execute(
        update(table)
        .where(table.c.id == request_id, table.c.worker_job_id.is_(None))
        .values(worker_job_id=worker_job_id)
    ).rowcount
    return bool(claimed)


def release_gone_workers(conn: Connection) -> list[int]:
    """Claims of workers whose job is no longer running: the requests are nobody's again
    (they ran at most partly); returns their ids."""
    running = select(jobs.c.id).where(jobs.c.state == "running")
    gone = table.c.worker_job_id.is_not(None) & table.c.worker_job_id.not_in(running)
    ids = [row.id for row in conn.execute(select(table.c.id).where(gone))]
    if ids:
        conn.execute(update(table).where(table.c.id.in_(ids)).values(worker_job_id=None))
    return ids


def remove(conn: Connection, ids: Sequence[int]) -> None:
    if ids:
        conn.execute(delete(table).where(table.c.id.in_(list(ids))))
