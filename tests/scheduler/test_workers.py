"""Worker hosts' job rows on real SQLite and PostgreSQL: a dead host's row is marked lost by
the next scheduler's check (or the next host's start), a live one is left running."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from slipstream.scheduler.recovery import end_dead_workers
from slipstream.store import jobs
from slipstream.store.db import Database


def _workers(db: Database) -> dict[int, jobs.JobRecord]:
    with db.read() as conn:
        return {job.pid: job for job in jobs.running_jobs(conn, jobs.WORKER)}


def test_rows_of_dead_or_silent_workers_are_marked_lost(db: Database) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    here = socket.gethostname()
    now = datetime.now(UTC)
    with db.write() as conn:
        gone = jobs.start_job(conn, hostname=here, pid=dead.pid, now=now, job_type=jobs.WORKER)
        silent = jobs.start_job(
            conn, hostname="elsewhere", pid=5, now=now - timedelta(seconds=60), job_type=jobs.WORKER
        )
        fresh = jobs.start_job(conn, hostname="elsewhere", pid=6, now=now, job_type=jobs.WORKER)
        alive = jobs.start_job(conn, hostname=here, pid=os.getpid(), now=now, job_type=jobs.WORKER)
        ended = end_dead_workers(conn, lost_after_seconds=30, now=now)
    assert sorted(ended) == sorted([gone, silent])
    assert {job.id for job in _workers(db).values()} == {fresh, alive}
