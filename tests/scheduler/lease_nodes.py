"""Lease keepers as test nodes: a scheduler job row, a real control session holding its
liveness lock, a keeper, and what it believes it owns; and the helpers they need."""

from __future__ import annotations

import select
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import psycopg
from sqlalchemy import insert
from sqlalchemy import select as sql_select

from slipstream.scheduler.leases import LeaseChange, LeaseKeeper
from slipstream.store import jobs as jobs_store
from slipstream.store import leases as leases_store
from slipstream.store import liveness
from slipstream.store.db import Database
from slipstream.store.notify import PgHintListener
from slipstream.store.tables import dags, scheduler_jobs

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)
LOST_AFTER = 30.0


def libpq_url(db: Database) -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def add_dags(db: Database, dag_ids: Sequence[str], *, active: bool = True) -> None:
    with db.write() as conn:
        conn.execute(
            insert(dags),
            [
                {
                    "dag_id": dag_id,
                    "fileloc": f"/dags/{dag_id}.py",
                    "tags": [],
                    "is_active": active,
                    "created_at": T0,
                }
                for dag_id in dag_ids
            ],
        )


def ids(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n:03d}" for n in range(count)]


def owners(db: Database) -> dict[str, int | None]:
    with db.read() as conn:
        return dict(conn.execute(sql_select(dags.c.dag_id, dags.c.scheduler_job_id)).tuples().all())


def job_state(db: Database, job_id: int) -> str:
    with db.read() as conn:
        state: str = conn.execute(
            sql_select(scheduler_jobs.c.state).where(scheduler_jobs.c.id == job_id)
        ).scalar_one()
    return state


def wait_unlocked(db: Database, job_id: int) -> None:
    """The server ends a session, and frees its locks, a moment after the client hangs up."""
    deadline = time.monotonic() + 10
    while True:
        with db.read() as conn:
            if liveness.unlocked_jobs(conn, [job_id]):
                return
        assert time.monotonic() < deadline, f"job {job_id}'s lock outlived its session"
        time.sleep(0.005)


def terminate_session(db: Database, job_id: int) -> None:
    """pg_terminate_backend of the session holding the job's lock, waiting until it ended."""
    with psycopg.connect(libpq_url(db), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_locks"
            " WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND objsubid = 2"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
            " AS ended",
            (liveness.LIVENESS_NS, job_id),
        ).fetchone()
    assert row == (1,)
    wait_unlocked(db, job_id)


class Node:
    """One scheduler as far as leases go: a job row, a control session (the hint listener)
    holding the job's liveness lock, a keeper, and what it believes it owns."""

    _pids = iter(range(1000, 100_000))

    def __init__(self, db: Database, now: datetime) -> None:
        self.db = db
        self.job_id = self._register(now)
        self.listener = PgHintListener(db.url, liveness_job_id=self.job_id)
        assert self.listener.holds_liveness
        self.keeper = LeaseKeeper(self.job_id, lost_after_seconds=LOST_AFTER)
        self.owns: set[str] = set()

    def _register(self, now: datetime) -> int:
        with self.db.write() as conn:
            return jobs_store.start_job(conn, hostname="elsewhere", pid=next(self._pids), now=now)

    def drain(self) -> None:
        """What the loop does when its control session is readable: a session ended by the
        server is reconnected, and the lock taken again."""
        readable, _, _ = select.select(self.listener.filenos(), [], [], 0)
        if readable or not self.listener.listening:
            self.listener.drain()

    def check(self, now: datetime, *, drain: bool = True) -> LeaseChange:
        if drain:
            self.drain()
        with self.db.write() as conn:
            jobs_store.heartbeat(conn, self.job_id, now)  # as its pass would
            change = self.keeper.check(conn, now)
        assert not set(change.claimed) & set(change.released)
        self.owns |= set(change.claimed)
        self.owns -= set(change.released)
        return change

    def start_over(self, now: datetime) -> None:
        """A deposed scheduler drops its memory and runs as a new job, on the same session."""
        self.job_id = self._register(now)
        assert self.listener.hold_liveness(self.job_id)
        self.keeper = LeaseKeeper(self.job_id, lost_after_seconds=LOST_AFTER)
        self.owns = set()

    def kill(self) -> None:
        """As SIGKILL would: the session ends with the process, nothing is handed back."""
        self.listener.close()
        wait_unlocked(self.db, self.job_id)

    def stop(self) -> list[str]:
        """A graceful stop."""
        with self.db.write() as conn:
            released = self.keeper.release_all(conn)
            jobs_store.end_job(conn, self.job_id, T0)
        self.listener.close()
        return released

    def owned_in_db(self) -> set[str]:
        with self.db.read() as conn:
            return set(leases_store.owned(conn, self.job_id))
