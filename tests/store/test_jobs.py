"""store.jobs on real SQLite and PostgreSQL: scheduler rows and their heartbeats."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from slipstream.store import jobs as store
from slipstream.store.db import Database
from slipstream.store.tables import scheduler_jobs

NOW = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)


def test_a_started_job_is_running(db: Database) -> None:
    with db.write() as conn:
        job_id = store.start_job(conn, hostname="host-a", pid=123, now=NOW)
        (job,) = store.running_jobs(conn)
    assert job == store.JobRecord(
        id=job_id,
        job_type=store.SCHEDULER,
        hostname="host-a",
        pid=123,
        state=store.RUNNING,
        started_at=NOW,
        latest_heartbeat=NOW,
    )


def test_each_kind_of_job_is_looked_up_on_its_own(db: Database) -> None:
    with db.write() as conn:
        scheduler = store.start_job(conn, hostname="h", pid=1, now=NOW)
        processor = store.start_job(
            conn, hostname="h", pid=2, now=NOW + timedelta(seconds=1), job_type=store.DAG_PROCESSOR
        )
        schedulers = [job.id for job in store.running_jobs(conn)]
        processors = [job.id for job in store.running_jobs(conn, store.DAG_PROCESSOR)]
        newest_scheduler_beat = store.latest_heartbeat(conn)
    assert schedulers == [scheduler]
    assert processors == [processor]
    # A DAG processor's heartbeat says nothing about the scheduler's health.
    assert newest_scheduler_beat == NOW


def test_heartbeats_move_only_their_own_job(db: Database) -> None:
    beat = NOW + timedelta(seconds=5)
    with db.write() as conn:
        one = store.start_job(conn, hostname="h", pid=1, now=NOW)
        two = store.start_job(conn, hostname="h", pid=2, now=NOW)
        store.heartbeat(conn, one, beat)
        beats = {job.id: job.latest_heartbeat for job in store.running_jobs(conn)}
    assert beats == {one: beat, two: NOW}


def test_latest_heartbeat_is_the_newest_among_running_jobs(db: Database) -> None:
    with db.write() as conn:
        assert store.latest_heartbeat(conn) is None
        one = store.start_job(conn, hostname="h", pid=1, now=NOW)
        two = store.start_job(conn, hostname="h", pid=2, now=NOW)
        store.heartbeat(conn, one, NOW + timedelta(seconds=10))
        store.heartbeat(conn, two, NOW + timedelta(seconds=20))
        assert store.latest_heartbeat(conn) == NOW + timedelta(seconds=20)
        # An ended job's heartbeat no longer counts.
        store.end_job(conn, two, NOW + timedelta(seconds=30))
        assert store.latest_heartbeat(conn) == NOW + timedelta(seconds=10)


def test_ended_and_lost_jobs_are_not_running(db: Database) -> None:
    ended_at = NOW + timedelta(minutes=1)
    with db.write() as conn:
        ended = store.start_job(conn, hostname="h", pid=1, now=NOW)
        lost = store.start_job(conn, hostname="h", pid=2, now=NOW)
        alive = store.start_job(conn, hostname="h", pid=3, now=NOW)
        store.end_job(conn, ended, ended_at)
        store.end_job(conn, lost, ended_at, state=store.LOST)
        assert [job.id for job in store.running_jobs(conn)] == [alive]
        rows = {
            row.id: (row.state, row.ended_at)
            for row in conn.execute(select(scheduler_jobs)).fetchall()
        }
    assert rows == {
        ended: (store.ENDED, ended_at),
        lost: (store.LOST, ended_at),
        alive: (store.RUNNING, None),
    }
    with db.read() as conn:
        assert store.latest_heartbeat(conn) == NOW


def test_a_job_is_live_while_its_process_runs_and_its_heartbeat_is_fresh() -> None:
    here = socket.gethostname()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()

    def job(pid: int, host: str = here, beat: datetime = NOW) -> store.JobRecord:
        return store.JobRecord(1, store.SCHEDULER, host, pid, store.RUNNING, NOW, beat)

    fresh = NOW - timedelta(seconds=30)
    started_now = datetime.now(UTC)
    ours = store.JobRecord(1, store.SCHEDULER, here, os.getpid(), store.RUNNING, started_now, NOW)
    assert store.is_live(ours, hostname=here, stale_before=fresh)
    # A process registering itself reads its own pid in an older row as its pid's earlier life.
    assert not store.is_live(ours, hostname=here, stale_before=fresh, registering=True)
    assert not store.is_live(job(gone.pid), hostname=here, stale_before=fresh)
    # Another host's process cannot be looked at: its heartbeat decides.
    assert store.is_live(job(gone.pid, "elsewhere"), hostname=here, stale_before=fresh)
    old = NOW - timedelta(minutes=5)
    assert not store.is_live(job(gone.pid, "elsewhere", old), hostname=here, stale_before=fresh)


def test_live_queues_are_those_running_celery_workers_consume(db: Database) -> None:
    with db.write() as conn:
        store.start_job(conn, hostname="w1", pid=1, now=NOW, job_type=store.WORKER,
                        queues=["default", "etl"])  # fmt: skip
        gone = store.start_job(conn, hostname="w2", pid=2, now=NOW, job_type=store.WORKER,
                               queues=["gpu"])  # fmt: skip
        store.start_job(conn, hostname="w3", pid=3, now=NOW, job_type=store.WORKER)
        store.start_job(conn, hostname="s", pid=4, now=NOW)
        store.end_job(conn, gone, NOW, state=store.LOST)
        assert store.live_queues(conn) == {"default", "etl"}
