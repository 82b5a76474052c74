"""Jobs: one row per long-running process (a scheduler, a DAG processor, a worker) whose
heartbeat proves it is alive. Each kind is looked up on its own: a DAG processor is no rival to
a scheduler."""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, bindparam, func, insert, select, update

from slipstream.lifeline import is_alive
from slipstream.store.tables import scheduler_jobs as jobs

RUNNING = "running"
ENDED = "ended"
LOST = "lost"

SCHEDULER = "scheduler"
DAG_PROCESSOR = "dag_processor"
# A worker host (`slipstream worker`), heartbeating its own row.
WORKER = "worker"


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    job_type: str
    hostname: str
    pid: int
    state: str
    started_at: datetime
    latest_heartbeat: datetime


def is_live(
    job: JobRecord, *, hostname: str, stale_before: datetime, registering: bool = False
) -> bool:
    """Whether the job's process is still at work: on this host, its process must exist (not
    a zombie, not a newer process reusing its pid); anywhere, its heartbeat must be newer than
    `stale_before`. A caller `registering` a job of its own reads its own pid in an older row
    of this host as an earlier process that had the same pid, hence dead."""
    if job.hostname == hostname and (
        (registering and job.pid == os.getpid()) or not is_alive(job.pid, started_at=job.started_at)
    ):
        return False
    return job.latest_heartbeat >= stale_before


def _to_job(row: Row[Any]) -> JobRecord:
    return JobRecord(
        id=row.id,
        job_type=row.job_type,
        hostname=row.hostname,
        pid=row.pid,
        state=row.state,
        started_at=row.started_at,
        latest_heartbeat=row.latest_heartbeat,
    )


def start_job(
    conn: Connection,
    *,
    hostname: str,
    pid: int,
    now: datetime,
    job_type: str = SCHEDULER,
    queues: Collection[str] = (),
) -> int:
    """A new running job; `queues`: those a Celery worker consumes."""
    statement = (
        insert(jobs)
        .values(
            job_type=job_type,
            hostname=hostname,
            pid=pid,
            state=RUNNING,
            started_at=now,
            latest_heartbeat=now,
            queues=",".join(queues) if queues else None,
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
_RUNNING_JOBS = (
    select(jobs)
    .where(jobs.c.state == RUNNING, jobs.c.job_type == bindparam("k_job_type"))
    .order_by(jobs.c.id)
)


def heartbeat(conn: Connection, job_id: int, now: datetime) -> None:
    conn.execute(_HEARTBEAT, {"k_job_id": job_id, "v_now": now})


def heartbeat_many(conn: Connection, job_ids: Collection[int], now: datetime) -> None:
    if job_ids:
        conn.execute(
            update(jobs).where(jobs.c.id.in_(sorted(job_ids))).values(latest_heartbeat=now)
        )


def end_job(conn: Connection, job_id: int, now: datetime, *, state: str = ENDED) -> None:
    conn.execute(update(jobs).where(jobs.c.id == job_id).values(state=state, ended_at=now))


def live_queues(conn: Connection) -> set[str]:
    """The queues running Celery workers consume."""
    rows = conn.execute(
        select(jobs.c.queues).where(
            jobs.c.state == RUNNING, jobs.c.job_type == WORKER, jobs.c.queues.is_not(None)
        )
    )
    return {name for (text,) in rows for name in text.split(",") if name}


def running_jobs(conn: Connection, job_type: str = SCHEDULER) -> list[JobRecord]:
    return [_to_job(row) for row in conn.execute(_RUNNING_JOBS, {"k_job_type": job_type})]


def latest_heartbeat(conn: Connection, job_type: str = SCHEDULER) -> datetime | None:
    query = select(func.max(jobs.c.latest_heartbeat)).where(
        jobs.c.state == RUNNING, jobs.c.job_type == job_type
    )
    value: datetime | None = conn.execute(query).scalar_one_or_none()
    return value
