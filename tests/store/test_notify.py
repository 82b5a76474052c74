"""Hints over PostgreSQL: a NOTIFY from another process reaches a listening session, a lost
session is reconnected and asks for a look at everything, and an unreachable server neither
raises nor blocks the scheduler's loop."""

from __future__ import annotations

import select
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

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
