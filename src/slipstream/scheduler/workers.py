"""The local executor's worker processes as job rows, so that health lists each worker with a
heartbeat: the scheduler supervising them registers, heartbeats and ends their rows."""

from __future__ import annotations

import socket
from collections.abc import Iterable
from datetime import datetime, timedelta

from sqlalchemy import Connection

from slipstream.store import jobs as jobs_store


class WorkerJobs:
    """This scheduler's workers' rows, by worker pid. A worker's row is heartbeated while the
    scheduler sees the process alive (it watches each worker's pidfd), and ended when the
    worker is gone, so a worker that died shows as ended within one heartbeat."""

    def __init__(self) -> None:
        self._hostname = socket.gethostname()
        self._jobs: dict[int, int] = {}

    def sync(self, conn: Connection, pids: Iterable[int], now: datetime) -> None:
        current = set(pids)
        for pid in sorted(self._jobs.keys() - current):
            jobs_store.end_job(conn, self._jobs.pop(pid), now)
        beat = [job_id for pid, job_id in self._jobs.items() if pid in current]
        jobs_store.heartbeat_many(conn, beat, now)
        for pid in sorted(current - self._jobs.keys()):
            self._jobs[pid] = jobs_store.start_job(
                conn, hostname=self._hostname, pid=pid, now=now, job_type=jobs_store.WORKER
            )

    def end_all(self, conn: Connection, now: datetime) -> None:
        for job_id in self._jobs.values():
            jobs_store.end_job(conn, job_id, now)
        self._jobs.clear()

    def forget(self) -> None:
        """After a failed pass rolled back: rows this pass started were never written."""
        self._jobs.clear()


def end_dead_workers(conn: Connection, *, lost_after_seconds: float, now: datetime) -> list[int]:
    """Mark lost the rows of workers nobody heartbeats any more (their scheduler was killed)
    or, on this host, whose process is gone; returns their job ids."""
    hostname = socket.gethostname()
    stale_before = now - timedelta(seconds=lost_after_seconds)
    ended: list[int] = []
    for job in jobs_store.running_jobs(conn, jobs_store.WORKER):
        if not jobs_store.is_live(job, hostname=hostname, stale_before=stale_before):
            jobs_store.end_job(conn, job.id, now, state=jobs_store.LOST)
            ended.append(job.id)
    return ended
