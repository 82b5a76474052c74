"""Scheduler jobs: one row per scheduler process, whose heartbeat proves it is alive."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update

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


# Built once: a scheduler runs these every few seconds, idle or not, and building a statement
# costs more than running it on SQLite.
_HEARTBEAT = (
    update(jobs)
    .where(jobs.c.id == bindparam("k_job_id"))
    .values(latest_heartbeat=bindparam("v_now", type_=jobs.c.latest_heartbeat.type))
)
_RUNNING_JOBS = select(jobs).where(jobs.c.state == RUNNING).order_by(jobs.c.id)


def heartbeat(conn: Connection, job_id: int, now: datetime) -> None:
    conn.execute(_HEARTBEAT, {"k_job_id": job_id, "v_now": now})


def end_job(conn: Connection, job_id: int, now: datetime, *, state: str = ENDED) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(state=state, ended_at=now))


def running_jobs(conn: Connection) -> list[JobRecord]:
    return [_to_job(row) for row in conn.execute(_RUNNING_JOBS)]


def latest_heartbeat(conn: Connection) -> datetime | None:
    query = select(func.max(jobs.c.latest_heartbeat)).where(jobs.c.state == RUNNING)
    value: datetime | None = conn.execute(query).scalar_one_or_none()
    return value
