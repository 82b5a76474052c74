"""store.db: UTC datetimes on both databases, explicit transactions, and SQLite writers that
queue instead of failing with "database is locked" (threads and forked processes), until the
write lock's budget is spent; and on PostgreSQL, a database gone away is DatabaseUnavailable,
never a hang."""

from __future__ import annotations

import contextlib
import multiprocessing
import socket
import sqlite3
import threading
import time
import traceback
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psycopg
import pytest
from sqlalchemy import Connection, func, insert, select, text, update
from sqlalchemy.exc import OperationalError, StatementError

from slipstream.errors import ConfigError, DatabaseUnavailable
from slipstream.store.db import (
    BUSY_TIMEOUT_MS,
    CONNECT_TIMEOUT_SECONDS,
    POOL_TIMEOUT_SECONDS,
    Database,
)
from slipstream.store.tables import scheduler_jobs as jobs
from tests.conftest import PG_SERVER

NOW = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
JOIN_TIMEOUT = 90.0


def add_job(conn: Connection, hostname: str, pid: int = 0, **values: Any) -> int:
    row = {"hostname": hostname, "pid": pid, "state": "running", "started_at": NOW}
    row["latest_heartbeat"] = NOW
    row.update(values)
    return int(conn.execute(insert(jobs).values(row).returning(jobs.c.id)).scalar_one())


def count_jobs(db: Database) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(jobs)).scalar_one())


# ---------------------------------------------------------------- datetimes


def test_aware_datetimes_come_back_as_the_same_instant_in_utc(db: Database) -> None:
    india = datetime(
        2026, 3, 4, 10, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))
    )
    with db.write() as conn:
        job_id = add_job(conn, "h", started_at=india)
    with db.read() as conn:
        stored = conn.execute(select(jobs.c.started_at).where(jobs.c.id == job_id)).scalar_one()
        # A bound in another zone compares as the same instant.
        found = conn.execute(select(jobs.c.id).where(jobs.c.started_at == india)).scalar_one()
        earlier = india - timedelta(microseconds=1)
        newer = conn.execute(select(jobs.c.id).where(jobs.c.started_at > earlier)).scalar_one()
    assert stored == india
    assert stored.tzinfo is not None and stored.utcoffset() == timedelta(0)
    assert stored == datetime(2026, 3, 4, 5, 0, 15, 123456, tzinfo=UTC)
    assert found == newer == job_id


def test_a_naive_datetime_is_refused_and_nothing_is_written(db: Database) -> None:
    with pytest.raises(StatementError, match="naive datetime"), db.write() as conn:
        add_job(conn, "h", started_at=datetime(2026, 1, 1))
    assert count_jobs(db) == 0


# ---------------------------------------------------------------- transactions


def test_write_commits_on_success_and_rolls_back_on_error(db: Database) -> None:
    with db.write() as conn:
        add_job(conn, "kept")

    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.write() as conn:
        add_job(conn, "discarded")
        raise Boom
    with db.read() as conn:
        assert list(conn.execute(select(jobs.c.hostname)).scalars()) == ["kept"]


def test_bad_urls_are_config_errors() -> None:
    with pytest.raises(ConfigError) as excinfo:
        Database("mysql://localhost/slipstream")
    assert excinfo.value.setting == "SLIPSTREAM_DATABASE_URL"
    with pytest.raises(ConfigError):
        Database("not a url at all")


@pytest.mark.parametrize(
    ("scheme", "driver"),
    [
        ("postgresql", "postgresql+psycopg"),  # psycopg2, SQLAlchemy's default, is not shipped
        ("postgresql+psycopg", "postgresql+psycopg"),
    ],
)
def test_postgresql_urls_use_psycopg(scheme: str, driver: str) -> None:
    # Building the engine connects to nothing.
    database = Database(f"{scheme}://someone@db.invalid:5432/slipstream")
    try:
        assert database.dialect == "postgresql"
        assert database.engine.url.drivername == driver
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_bare_postgresql_url_reaches_the_server(pg_db: Database) -> None:
    bare = pg_db.engine.url.set(drivername="postgresql")
    database = Database(bare.render_as_string(hide_password=False))
    try:
        with database.read() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        database.dispose()


# ---------------------------------------------------------------- SQLite specifics


def sqlite_path(db: Database) -> str:
    path = db.engine.url.database
    assert path is not None
    return path


def test_sqlite_connections_are_set_up_for_concurrency(sqlite_db: Database) -> None:
    with sqlite_db.read() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS


def test_a_missing_sqlite_directory_is_created(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "slipstream.db"
    database = Database(f"sqlite:///{path}")
    try:
        with database.write() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        assert path.exists()
    finally:
        database.dispose()


def test_a_sqlite_write_takes_the_write_lock_when_it_begins(sqlite_db: Database) -> None:
    outsider = sqlite3.connect(sqlite_path(sqlite_db), timeout=0, isolation_level=None)
    try:
        with sqlite_db.write():
            # Nothing written yet, but the lock is already ours: no writer can start now,
            # so none of ours can fail half-way through for want of it.
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                outsider.execute("BEGIN IMMEDIATE")
            # Readers are not blocked (WAL).
            with sqlite_db.read() as reader:
                assert reader.execute(select(func.count()).select_from(jobs)).scalar_one() == 0
        outsider.execute("BEGIN IMMEDIATE")
        outsider.execute("ROLLBACK")
    finally:
        outsider.close()


def increment(conn: Connection, counter_id: int, writer: str, n: int) -> None:
    """A read-modify-write: loses updates unless write transactions are serialised."""
    current = conn.execute(select(jobs.c.pid).where(jobs.c.id == counter_id)).scalar_one()
    conn.execute(update(jobs).where(jobs.c.id == counter_id).values(pid=current + 1))
    add_job(conn, writer, n)


def counter_value(db: Database, counter_id: int) -> int:
    with db.read() as conn:
        return int(conn.execute(select(jobs.c.pid).where(jobs.c.id == counter_id)).scalar_one())


def test_concurrent_threads_never_see_database_is_locked(sqlite_db: Database) -> None:
    threads_count, writes = 8, 50
    with sqlite_db.write() as conn:
        counter_id = add_job(conn, "counter")
    start = threading.Barrier(threads_count + 1)
    errors: list[BaseException] = []
    stop_reading = threading.Event()

    def writer(index: int) -> None:
        try:
            start.wait(timeout=JOIN_TIMEOUT)
            for n in range(writes):
                with sqlite_db.write() as conn:
                    increment(conn, counter_id, f"thread-{index}", n)
        except BaseException as exc:
            errors.append(exc)

    def reader() -> None:
        try:
            start.wait(timeout=JOIN_TIMEOUT)
            while not stop_reading.is_set():
                with sqlite_db.read() as conn:
                    conn.execute(select(func.count()).select_from(jobs)).scalar_one()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=writer, args=(i,)) for i in range(threads_count)]
    reading = threading.Thread(target=reader)
    for thread in [*workers, reading]:
        thread.start()
    for thread in workers:
        thread.join(timeout=JOIN_TIMEOUT)
    stop_reading.set()
    reading.join(timeout=JOIN_TIMEOUT)
    assert not any(t.is_alive() for t in [*workers, reading]), "a thread hung"
    assert errors == []
    assert counter_value(sqlite_db, counter_id) == threads_count * writes
    assert count_jobs(sqlite_db) == 1 + threads_count * writes


def _hammer_from_child(
    url: str, counter_id: int, index: int, writes: int, start: Any, report: Path
) -> None:
    try:
        database = Database(url)  # this process's own engine on the shared file
        start.wait(timeout=JOIN_TIMEOUT)
        for n in range(writes):
            with database.write() as conn:
                increment(conn, counter_id, f"process-{index}", n)
        database.dispose()
    except BaseException:
        report.write_text(traceback.format_exc())
        raise SystemExit(1) from None


def test_concurrent_processes_never_see_database_is_locked(
    sqlite_db: Database, tmp_path: Path
) -> None:
    processes_count, writes = 4, 100
    with sqlite_db.write() as conn:
        counter_id = add_job(conn, "counter")
    # Children build their own Database; none inherits an open SQLite connection.
    sqlite_db.dispose()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(processes_count)
    reports = [tmp_path / f"child-{i}.txt" for i in range(processes_count)]
    children = [
        context.Process(
            target=_hammer_from_child,
            args=(sqlite_db.url, counter_id, i, writes, start, reports[i]),
        )
        for i in range(processes_count)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=JOIN_TIMEOUT)
    hung = [child for child in children if child.is_alive()]
    for child in hung:
        child.kill()
        child.join(timeout=JOIN_TIMEOUT)
    assert not hung, "a child process hung"
    failures = [r.read_text() for r in reports if r.exists()]
    assert failures == []
    assert [child.exitcode for child in children] == [0] * processes_count
    assert counter_value(sqlite_db, counter_id) == processes_count * writes
    assert count_jobs(sqlite_db) == 1 + processes_count * writes


# ---------------------------------------------------------------- SQLite's write lock, retried


def _write_for(url: str, seconds: float, index: int, start: Any, report: Path) -> None:
    """Write one row per transaction for `seconds`; report how many, or the traceback."""
    try:
        database = Database(url)
        start.wait(timeout=JOIN_TIMEOUT)
        deadline = time.monotonic() + seconds
        done = 0
        while time.monotonic() < deadline:
            with database.write() as conn:
                add_job(conn, f"process-{index}", done)
            done += 1
        database.dispose()
        report.write_text(f"ok {done}")
    except BaseException:
        report.write_text(traceback.format_exc())
        raise SystemExit(1) from None


def test_two_processes_writing_flat_out_both_make_progress(
    sqlite_db: Database, tmp_path: Path
) -> None:
    # Each takes the lock again at once after committing: a waiter that retried too slowly
    # would starve, and a waiter in SQLite's busy handler sleeps up to 25 ms per try.
    sqlite_db.dispose()
    context = multiprocessing.get_context("fork")
    start = context.Barrier(2)
    reports = [tmp_path / f"writer-{i}.txt" for i in range(2)]
    children = [
        context.Process(target=_write_for, args=(sqlite_db.url, 2.0, i, start, reports[i]))
        for i in range(2)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=JOIN_TIMEOUT)
    assert not any(child.is_alive() for child in children), "a writer hung"
    outcomes = [report.read_text() for report in reports]
    assert all(outcome.startswith("ok ") for outcome in outcomes), outcomes
    counts = [int(outcome.split()[1]) for outcome in outcomes]
    assert min(counts) >= 20, counts  # both, not one then the other
    assert count_jobs(sqlite_db) == sum(counts)


def _hold_the_write_lock(path: str, held: Any, release: Any) -> None:
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    held.set()
    release.wait(JOIN_TIMEOUT)
    holder.execute("ROLLBACK")
    holder.close()


def test_a_writer_gives_up_with_database_is_locked_when_its_budget_is_spent(
    sqlite_db: Database,
) -> None:
    context = multiprocessing.get_context("spawn")
    held, release = context.Event(), context.Event()
    holder = context.Process(
        target=_hold_the_write_lock, args=(sqlite_path(sqlite_db), held, release)
    )
    holder.start()
    waiter = Database(sqlite_db.url, write_lock_seconds=0.5)
    try:
        assert held.wait(JOIN_TIMEOUT), "the holder never took the lock"
        began = time.monotonic()
        with (
            pytest.raises(OperationalError, match="database is locked") as excinfo,
            waiter.write(),
        ):
            pass
        waited = time.monotonic() - began
        assert isinstance(excinfo.value.orig, sqlite3.OperationalError)
        assert "BEGIN IMMEDIATE" in str(excinfo.value)
        assert 0.5 <= waited < 5, waited
        release.set()
        holder.join(JOIN_TIMEOUT)
        # The same handle writes once the lock is free, and inside its transaction statements
        # wait on the usual busy timeout (0 was only for trying the lock).
        with waiter.write() as conn:
            add_job(conn, "after")
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == BUSY_TIMEOUT_MS
    finally:
        release.set()
        holder.join(JOIN_TIMEOUT)
        waiter.dispose()
    assert count_jobs(sqlite_db) == 1


# ---------------------------------------------------------------- PostgreSQL gone away


def _end_backends(db: Database, *, only_pid: int | None = None) -> None:
    name = db.engine.url.database
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid() AND (%s::int IS NULL OR pid = %s)",
            (name, only_pid, only_pid),
        )


@pytest.mark.postgres
def test_a_pooled_connection_the_server_ended_is_replaced_unnoticed(pg_db: Database) -> None:
    with pg_db.read() as conn:
        first = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    _end_backends(pg_db)
    with pg_db.write() as conn:
        add_job(conn, "after")
        second = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    assert second != first
    assert count_jobs(pg_db) == 1


@pytest.mark.postgres
def test_a_connection_ended_under_a_unit_of_work_is_database_unavailable(
    pg_db: Database,
) -> None:
    with pytest.raises(DatabaseUnavailable) as excinfo, pg_db.write() as conn:
        add_job(conn, "lost")
        _end_backends(pg_db, only_pid=conn.exec_driver_sql("SELECT pg_backend_pid()").scalar())
        add_job(conn, "never")
    assert "terminating connection due to administrator command" in str(excinfo.value)
    assert isinstance(excinfo.value.__cause__, OperationalError)
    assert count_jobs(pg_db) == 0  # and the next unit of work has a live connection


@pytest.mark.postgres
def test_no_free_pooled_connection_is_database_unavailable_after_the_pool_timeout(
    pg_db: Database,
) -> None:
    with contextlib.ExitStack() as held:
        for _ in range(15):  # pool_size 5 + max_overflow 10, all checked out
            held.enter_context(pg_db.read())
        began = time.monotonic()
        with (
            pytest.raises(DatabaseUnavailable, match="no pooled connection came free"),
            pg_db.read(),
        ):
            pass
        assert POOL_TIMEOUT_SECONDS <= time.monotonic() - began < POOL_TIMEOUT_SECONDS + 5
    assert count_jobs(pg_db) == 0


def test_a_server_that_never_answers_is_given_up_on_after_the_connect_timeout() -> None:
    # A socket that takes the TCP connection (the kernel's backlog) and never says a word,
    # like a PostgreSQL host that hangs: connecting must end, not wait for ever.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        database = Database(f"postgresql://nobody@127.0.0.1:{port}/slipstream")
        try:
            began = time.monotonic()
            with pytest.raises(DatabaseUnavailable), database.read():
                pass
            waited = time.monotonic() - began
        finally:
            database.dispose()
    assert CONNECT_TIMEOUT_SECONDS - 1 <= waited < CONNECT_TIMEOUT_SECONDS + 5, waited
