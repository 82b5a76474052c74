"""Finding what nobody watches any more: tries of schedulers that have died, and the job rows
of dead worker hosts.

A process is dead when it is gone from this host (exited, a zombie, or its pid now someone
else's), or when its heartbeat is older than the lost-after window (its host may be gone). A
dead scheduler's queued and running tries that no worker host held (they were adopted first)
are then lost.
"""

from __future__ import annotations

import socket
from datetime import datetime, timedelta

from sqlalchemy import Connection

from slipstream.core.records import TaskInstance, TaskKey
from slipstream.store import jobs as jobs_store
from slipstream.store import task_instances as ti_store
from slipstream.store.jobs import JobRecord


def live_scheduler(
    conn: Connection, *, hostname: str, lost_after_seconds: float, now: datetime
) -> JobRecord | None:
    """Another scheduler that is still alive, if any (other than this process)."""
    stale_before = now - timedelta(seconds=lost_after_seconds)
    for job in jobs_store.running_jobs(conn):
        if jobs_store.is_live(job, hostname=hostname, stale_before=stale_before, registering=True):
            return job
    return None


def rival_message(job: JobRecord, *, hostname: str, now: datetime) -> str:
    """Why a scheduler refuses to start beside `job`, and how to end the other one."""
    ago = max(0.0, (now - job.latest_heartbeat).total_seconds())
    where = "this host" if job.hostname == hostname else f"host {job.hostname}"
    return (
        f"another scheduler is running for this database: pid {job.pid} on {where}"
        f" (job {job.id}, last heartbeat {ago:.1f} s ago). Stop it first (`kill {job.pid}`"
        f" on {job.hostname}); if that host is gone, its job is given up once its heartbeat"
        " is older than SLIPSTREAM_LOST_AFTER_SECONDS"
    )


def lost_tries(
    conn: Connection,
    *,
    job_id: int,
    hostname: str,
    lost_after_seconds: float,
    now: datetime,
) -> list[TaskKey]:
    """Mark dead schedulers lost and return the tries they left in flight."""
    return [
        TaskKey(ti.run_pk, ti.task_id, ti.try_number, ti.map_index)
        for ti in orphaned_tries(
            conn,
            job_id=job_id,
            hostname=hostname,
            lost_after_seconds=lost_after_seconds,
            now=now,
        )
    ]


def orphaned_tries(
    conn: Connection,
    *,
    job_id: int,
    hostname: str,
    lost_after_seconds: float,
    now: datetime,
) -> list[TaskInstance]:
    """Mark dead schedulers lost and return the task instances of the tries they left in
    flight (queued or running, owned by none alive but `job_id`)."""
    stale_before = now - timedelta(seconds=lost_after_seconds)
    alive: set[int] = set()
    for job in jobs_store.running_jobs(conn):
        if job.id == job_id:
            continue
        if jobs_store.is_live(job, hostname=hostname, stale_before=stale_before, registering=True):
            alive.add(job.id)
        else:
            jobs_store.end_job(conn, job.id, now, state=jobs_store.LOST)
    return [ti for ti, owner in ti_store.owned_by_others(conn, job_id) if owner not in alive]


def end_dead_workers(conn: Connection, *, lost_after_seconds: float, now: datetime) -> list[int]:
    """Mark lost the rows of worker hosts nobody heartbeats any more (killed) or, on this
    host, whose process is gone; returns their job ids."""
    hostname = socket.gethostname()
    stale_before = now - timedelta(seconds=lost_after_seconds)
    ended: list[int] = []
    for job in jobs_store.running_jobs(conn, jobs_store.WORKER):
        if not jobs_store.is_live(job, hostname=hostname, stale_before=stale_before):
            jobs_store.end_job(conn, job.id, now, state=jobs_store.LOST)
            ended.append(job.id)
    return ended
