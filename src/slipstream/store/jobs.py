"""Scheduler jobs: one row per scheduler process, whose heartbeat proves it is alive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, func, insert, select, update

from slipstream.store.tables import scheduler_jobs as jobs

RUNNING = "running"
ENDED = "ended"
LOST = "lost"


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    hostname: str
    pid: int
    state: str
    started_at: datetime
    latest_heartbeat: datetime


def _to_job(row: Row[Any]) -> JobRecord:
    return JobRecord(
        id=row.id,
        hostname=row.hostname,
        pid=row.pid,
        state=row.state,
        started_at=row.started_at,
        latest_heartbeat=row.latest_heartbeat,
    )


def start_job(conn: Connection, *, hostname: str, pid: int, now: datetime) -> int:
    statement = (
        insert(jobs)
        .values(
            job_type="scheduler",
            hostname=hostname,
            pid=pid,
            state=RUNNING,
            started_at=now,
            latest_heartbeat=now,
        )
        .returning(jobs.c.id)
    )
    return int(conn.execute(statement).scalar_one())


def heartbeat(conn: Connection, job_id: int, now: datetime) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(latest_heartbeat=now))


def end_job(conn: Connection, job_id: int, now: datetime, *, state: str = ENDED) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(state=state, ended_at=now))


def running_jobs(conn: Connection) -> list[JobRecord]:
    query = select(jobs).where(jobs.c.state == RUNNING).order_by(jobs.c.id)
    return [_to_job(row) for row in conn.execute(query)]


def latest_heartbeat(conn: Connection) -> datetime | None:
    query = select(func.max(jobs.c.latest_heartbeat)).where(jobs.c.state == RUNNING)
    value: datetime | None = conn.execute(query).scalar_one_or_none()
    return value
