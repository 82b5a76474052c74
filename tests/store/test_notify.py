"""Hints over PostgreSQL: a NOTIFY from another process reaches a listening session, a lost
session is reconnected and asks for a look at everything, and an unreachable server neither
raises nor blocks the scheduler's loop. The same session holds its job's liveness lock, and
takes it again after a reconnect."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from slipstream.store import jobs as jobs_store
from slipstream.store import liveness
from slipstream.store.db import Database
from slipstream.store.notify import CHANNEL, PgHintListener, PgHintSender, hint_sender
from slipstream.wakeup import Hint, HintKind, WakeupSender

pytestmark = pytest.mark.postgres


def _wait_for_hints(listener: PgHintListener, timeout: float = 10.0) -> list[Hint]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        readable, _, _ = select.select(listener.filenos(), [], [], 0.1)
        if readable:
            hints = listener.drain()
            if hints:
                return hints
    return []


def _libpq_url(db: Database) -> str:
    return db.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)


def test_a_hint_sent_from_another_process_reaches_the_listener(pg_db: Database) -> None:
    listener = PgHintListener(pg_db.url)
    try:
        assert listener.listening
        # Another process, as an API server on another machine would: a plain NOTIFY.
        sent = subprocess.run(
            [
                sys.executable,
                "-c",
                "import psycopg, sys\n"
                "with psycopg.connect(sys.argv[1], autocommit=True) as c:\n"
                "    c.execute(\"SELECT pg_notify(%s, %s)\", (sys.argv[2], 'Qmy_dag'))\n",
                _libpq_url(pg_db),
                CHANNEL,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sent.returncode == 0, sent.stderr
        assert _wait_for_hints(listener) == [Hint.queued_run("my_dag")]
    finally:
        listener.close()


def test_the_sender_delivers_each_hint_once_and_in_order(pg_db: Database) -> None:
    listener = PgHintListener(pg_db.url)
    sender = PgHintSender(pg_db)
    try:
        sender.notify(Hint.queued_run("a"))
        sender.notify(Hint.run_changed(42))
        sender.notify(Hint.pools_changed())
        received: list[Hint] = []
        deadline = time.monotonic() + 10
        while len(received) < 3 and time.monotonic() < deadline:
            received += _wait_for_hints(listener, 1.0)
        assert received == [Hint.queued_run("a"), Hint.run_changed(42), Hint.pools_changed()]
        assert listener.drain() == []  # nothing more, nothing twice
    finally:
        sender.close()
        listener.close()


def test_a_terminated_session_is_reconnected_and_asks_for_a_look_everywhere(
    pg_db: Database,
) -> None:
    listener = PgHintListener(pg_db.url)
    sender = PgHintSender(pg_db)
    try:
        with psycopg.connect(_libpq_url(pg_db), autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = current_database() AND query LIKE 'LISTEN%%'"
                " AND pid <> pg_backend_pid()) AS killed"
            ).fetchone()
        assert row is not None and row[0] == 1
        # The dead session's socket turns readable; draining it reconnects at once.
        hints = _wait_for_hints(listener)
        assert hints == [Hint.anything()]
        assert listener.listening
        sender.notify(Hint.queued_run("after"))
        assert _wait_for_hints(listener) == [Hint.queued_run("after")]
    finally:
        sender.close()
        listener.close()


def test_an_unreachable_server_is_retried_without_raising(pg_db: Database) -> None:
    # Port 1 refuses at once: nothing listens there.
    url = pg_db.engine.url.set(port=1).render_as_string(hide_password=False)
    listener = PgHintListener(url)
    try:
        assert not listener.listening
        assert listener.filenos() == []
        due = listener.next_due()
        assert due is not None and due > time.monotonic() - 0.001
        assert listener.drain() == []  # not yet due: no attempt, no raise
    finally:
        listener.close()


def test_the_sender_never_raises_when_the_server_is_gone(pg_db: Database) -> None:
    gone = Database(pg_db.engine.url.set(port=1).render_as_string(hide_password=False))
    try:
        PgHintSender(gone).notify(Hint.queued_run("lost"))  # logged, not raised
    finally:
        gone.dispose()


def test_each_dialect_gets_its_own_sender(pg_db: Database, sqlite_db: Database) -> None:
    assert isinstance(hint_sender(pg_db, Path("/nowhere")), PgHintSender)
    assert isinstance(hint_sender(sqlite_db, Path("/nowhere")), WakeupSender)


def test_unreadable_payloads_read_as_look_everywhere(pg_db: Database) -> None:
    listener = PgHintListener(pg_db.url)
    try:
        with psycopg.connect(_libpq_url(pg_db), autocommit=True) as conn:
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, "zzz"))
        hints = _wait_for_hints(listener)
        assert [hint.kind for hint in hints] == [HintKind.ANYTHING]
    finally:
        listener.close()


def _liveness_unlocked(db: Database, job_id: int) -> bool:
    with db.read() as conn:
        return liveness.unlocked_jobs(conn, [job_id]) == {job_id}


def _start_job(db: Database) -> int:
    with db.write() as conn:
        return jobs_store.start_job(conn, hostname="h", pid=1, now=datetime.now(UTC))


def test_the_listening_session_proves_its_job_alive(pg_db: Database) -> None:
    job = _start_job(pg_db)
    listener = PgHintListener(pg_db.url, liveness_job_id=job)
    try:
        assert listener.holds_liveness
        assert listener.next_due() is None
        with psycopg.connect(_libpq_url(pg_db), autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s"
                " AND l.objsubid = 2 AND l.granted AND a.query LIKE 'LISTEN%%'"
                " AND a.datname = current_database()",
                (liveness.LIVENESS_NS, job),
            ).fetchone()
        assert row == (1,)  # on the listening session itself: one session per process
        assert not _liveness_unlocked(pg_db, job)
    finally:
        listener.close()
    # The server ends the session, and frees its locks, a moment after the client hangs up.
    deadline = time.monotonic() + 10
    while not _liveness_unlocked(pg_db, job):
        assert time.monotonic() < deadline, "the lock outlived its session"
        time.sleep(0.005)


def test_a_terminated_session_is_unlocked_until_the_next_drain_locks_again(
    pg_db: Database,
) -> None:
    job = _start_job(pg_db)
    listener = PgHintListener(pg_db.url)
    try:
        assert listener.hold_liveness(job)
        assert listener.hold_liveness(job)  # again: nothing changes
        with psycopg.connect(_libpq_url(pg_db), autocommit=True) as admin:
            row = admin.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 5000) FROM pg_locks"
                " WHERE locktype = 'advisory' AND classid = %s AND objid = %s AND objsubid = 2"
                " AND database = (SELECT oid FROM pg_database WHERE datname = current_database()))"
                " AS killed",
                (liveness.LIVENESS_NS, job),
            ).fetchone()
        assert row == (1,)
        assert _liveness_unlocked(pg_db, job)
        # The dead session's socket turns readable; draining it reconnects and locks again.
        assert _wait_for_hints(listener) == [Hint.anything()]
        assert listener.holds_liveness
        assert not _liveness_unlocked(pg_db, job)
    finally:
        listener.close()


def test_a_lock_still_held_elsewhere_is_tried_again_each_second(pg_db: Database) -> None:
    job = _start_job(pg_db)
    # As a previous session of the same job the server has not ended yet.
    with psycopg.connect(_libpq_url(pg_db), autocommit=True) as previous:
        assert liveness.lock_session(previous, job)
        listener = PgHintListener(pg_db.url, liveness_job_id=job)
        try:
            assert listener.listening and not listener.holds_liveness
            due = listener.next_due()
            assert due is not None and due > time.monotonic()
            assert listener.drain() == []  # not due yet: no attempt
            previous.close()
            deadline = time.monotonic() + 10
            while not listener.holds_liveness:
                assert time.monotonic() < deadline, "the listener never took the lock"
                time.sleep(0.05)
                listener.drain()
            assert listener.next_due() is None
            assert not _liveness_unlocked(pg_db, job)
        finally:
            listener.close()


def test_a_new_job_takes_the_place_of_the_previous_one_on_the_session(pg_db: Database) -> None:
    deposed, new = _start_job(pg_db), _start_job(pg_db)
    listener = PgHintListener(pg_db.url, liveness_job_id=deposed)
    try:
        assert listener.holds_liveness
        assert listener.hold_liveness(new)
        with pg_db.read() as conn:
            assert liveness.unlocked_jobs(conn, [deposed, new]) == {deposed}
    finally:
        listener.close()
