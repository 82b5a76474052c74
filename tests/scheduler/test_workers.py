"""scheduler/workers.py on real SQLite and PostgreSQL: worker job rows kept by the scheduler."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from slipstream.scheduler.workers import WorkerJobs, end_dead_workers
from slipstream.store import jobs
from slipstream.store.db import Database

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _workers(db: Database) -> dict[int, jobs.JobRecord]:
    with db.read() as conn:
        return {job.pid: job for job in jobs.running_jobs(conn, jobs.WORKER)}


def test_sync_registers_heartbeats_and_ends_worker_rows(db: Database) -> None:
    keeper = WorkerJobs()
    with db.write() as conn:
        keeper.sync(conn, [101, 102], NOW)
    assert set(_workers(db)) == {101, 102}
    later = NOW + timedelta(seconds=5)
    with db.write() as conn:
        keeper.sync(conn, [102, 103], later)  # 101 died and 103 replaced it
    rows = _workers(db)
    assert set(rows) == {102, 103}
    assert rows[102].latest_heartbeat == later
    assert rows[102].started_at == NOW
    with db.write() as conn:
        keeper.end_all(conn, later)
    assert _workers(db) == {}


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
