"""store.liveness on real PostgreSQL: a job's advisory lock is seen in pg_locks while its
session lives, freed within milliseconds of a SIGKILL, scoped to this database, and a lost
job is declared by exactly one judge. SQLite is refused by name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from sqlalchemy import select

from slipstream.errors import ConfigError
from slipstream.store import jobs as jobs_store
from slipstream.store import liveness
from slipstream.store.db import Database
from slipstream.store.tables import scheduler_jobs
from tests.conftest import PG_SERVER

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def libpq_url(db: Database) -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def start_jobs(db: Database, count: int) -> list[int]:
    with db.write() as conn:
        return [
            jobs_store.start_job(conn, hostname="h", pid=100 + n, now=NOW) for n in range(count)
        ]


def unlocked(db: Database, job_ids: list[int]) -> set[int]:
    with db.read() as conn:
        return liveness.unlocked_jobs(conn, job_ids)


@pytest.mark.postgres
def test_a_lock_is_seen_while_its_session_lives(pg_db: Database) -> None:
    one, two = start_jobs(pg_db, 2)
    assert unlocked(pg_db, [one, two]) == {one, two}
    with pg_db.engine.connect() as session:
        assert liveness.lock(session, one)
        session.commit()  # a session lock outlives the transaction it was taken in
        assert unlocked(pg_db, [one, two]) == {two}
        # Another session cannot take it; the holder may take it again.
        with psycopg.connect(libpq_url(pg_db), autocommit=True) as other:
            assert not liveness.lock_session(other, one)
            assert liveness.lock_session(other, two)
            assert unlocked(pg_db, [one, two]) == set()
        assert unlocked(pg_db, [one, two]) == {two}
        session.invalidate()  # closes the session itself, not back to the pool
    # The server ends the session, and frees its locks, a moment after the client hangs up.
    deadline = time.monotonic() + 10
    while unlocked(pg_db, [one, two]) != {one, two}:
        assert time.monotonic() < deadline, "the lock outlived its session"
        time.sleep(0.005)
    assert unlocked(pg_db, []) == set()


@pytest.mark.postgres
def test_the_same_key_in_another_database_proves_nothing(pg_db: Database) -> None:
    (job,) = start_jobs(pg_db, 1)
    with psycopg.connect(PG_SERVER, autocommit=True) as elsewhere:
        assert liveness.lock_session(elsewhere, job)
        assert unlocked(pg_db, [job]) == {job}


@pytest.mark.postgres
def test_a_lock_of_the_other_form_or_namespace_proves_nothing(pg_db: Database) -> None:
    (job,) = start_jobs(pg_db, 1)
    with psycopg.connect(libpq_url(pg_db), autocommit=True) as session:
        session.execute("SELECT pg_advisory_lock(%s)", (job,))  # one bigint key: objsubid 1
        session.execute("SELECT pg_advisory_lock(%s, %s)", (liveness.LIVENESS_NS + 1, job))
        assert unlocked(pg_db, [job]) == {job}


@pytest.mark.postgres
def test_a_killed_process_loses_its_lock_within_milliseconds(pg_db: Database) -> None:
    (job,) = start_jobs(pg_db, 1)
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import psycopg, sys, time\n"
            "from slipstream.store.liveness import lock_session\n"
            "conn = psycopg.connect(sys.argv[1], autocommit=True)\n"
            "assert lock_session(conn, int(sys.argv[2]))\n"
            "print('locked', flush=True)\n"
            "time.sleep(120)\n",
            libpq_url(pg_db),
            str(job),
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            assert unlocked(pg_db, [job]) == set()
            os.kill(holder.pid, signal.SIGKILL)
            killed_at = time.monotonic()
            holder.wait(timeout=10)
            while unlocked(pg_db, [job]) != {job}:
                assert time.monotonic() - killed_at < 5, "the lock outlived its process"
                time.sleep(0.005)
            freed_after = time.monotonic() - killed_at
        finally:
            holder.kill()
    # 5 ms here when measured (design, appendix A); generous for a loaded machine.
    assert freed_after < 2.0


@pytest.mark.postgres
def test_a_terminated_session_frees_its_lock(pg_db: Database) -> None:
    (job,) = start_jobs(pg_db, 1)
    with psycopg.connect(libpq_url(pg_db), autocommit=True) as session:
        assert liveness.lock_session(session, job)
        pid = session.info.backend_pid
        with psycopg.connect(libpq_url(pg_db), autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
        assert unlocked(pg_db, [job]) == {job}


@pytest.mark.postgres
def test_exactly_one_judge_declares_a_job_lost(pg_db: Database) -> None:
    (job,) = start_jobs(pg_db, 1)
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def judge() -> None:
        barrier.wait()
        with pg_db.write() as conn:
            wins.append(liveness.declare_lost(conn, job, NOW + timedelta(seconds=5)))

    judges = [threading.Thread(target=judge) for _ in range(4)]
    for thread in judges:
        thread.start()
    for thread in judges:
        thread.join(timeout=30)
    assert sorted(wins) == [False, False, False, True]
    with pg_db.read() as conn:
        row = conn.execute(select(scheduler_jobs).where(scheduler_jobs.c.id == job)).one()
    assert (row.state, row.ended_at) == ("lost", NOW + timedelta(seconds=5))


@pytest.mark.postgres
def test_an_ended_job_is_not_declared_lost(pg_db: Database) -> None:
    (job,) = start_jobs(pg_db, 1)
    with pg_db.write() as conn:
        jobs_store.end_job(conn, job, NOW)
        assert not liveness.declare_lost(conn, job, NOW)
        assert jobs_store.running_jobs(conn) == []


@pytest.mark.postgres
def test_the_server_uptime_is_positive(pg_db: Database) -> None:
    with pg_db.read() as conn:
        assert liveness.server_uptime(conn) > timedelta(0)


def test_sqlite_is_refused_by_name(sqlite_db: Database) -> None:
    with sqlite_db.write() as conn:
        for call in (
            lambda: liveness.lock(conn, 1),
            lambda: liveness.unlocked_jobs(conn, [1]),
            lambda: liveness.declare_lost(conn, 1, NOW),
            lambda: liveness.server_uptime(conn),
        ):
            with pytest.raises(ConfigError, match=r"needs PostgreSQL.*this database is sqlite"):
                call()
