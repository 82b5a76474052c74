"""Hints over PostgreSQL: NOTIFY to send them, LISTEN to receive them.

The datagram of `slipstream.wakeup` reaches a scheduler on the same machine only. On
PostgreSQL an API server, a CLI, a DAG processor or a worker on another machine reaches every
scheduler through the database it already talks to: a notification is delivered to each
listening session when the sending transaction commits, in about 0.03 ms here (design:
docs/design/scale-out.md, appendix A.5). Schedulers listen on both, so a sender that still uses
the datagram on the same machine is heard too.

A hint stays a hint: a notification lost while a listener reconnects costs a look at everything
(`Hint.anything()` after each reconnect), never a missed run.

The listener's session is also the process's control session (design 2.2): given a job id, it
holds that job's liveness lock (store/liveness.py) on the same session, taken again after each
reconnect, so one session per process both hears hints and proves the process alive.
"""

from __future__ import annotations

import contextlib
import logging
import select
import time
from pathlib import Path

import psycopg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from slipstream.errors import DatabaseUnavailable
from slipstream.store import liveness
from slipstream.store.db import Database
from slipstream.wakeup import Hint, HintSender, WakeupSender

log = logging.getLogger(__name__)

CHANNEL = "slipstream"
# PostgreSQL refuses payloads of 8,000 bytes and more; a hint's key is a DAG id or a number.
_MAX_PAYLOAD = 7_999
_RECONNECT_SECONDS = 1.0
_CONNECT_TIMEOUT_SECONDS = 5
_READS_PER_DRAIN = 3


def hint_sender(db: Database, wakeup_path: Path) -> HintSender:
    """NOTIFY on PostgreSQL (every scheduler hears it, wherever it runs), else the datagram."""
    if db.dialect == "postgresql":
        return PgHintSender(db)
    return WakeupSender(wakeup_path)


def _payload(hint: Hint) -> str:
    return hint.encode().decode(errors="ignore")[:_MAX_PAYLOAD]


class PgHintSender:
    """Sends each hint in a transaction of its own, after the change it announces committed."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def notify(self, hint: Hint) -> None:
        try:
            with self._db.engine.connect() as conn:
                conn.execute(
                    text("SELECT pg_notify(:channel, :payload)"),
                    {"channel": CHANNEL, "payload": _payload(hint)},
                )
                conn.commit()
        except (SQLAlchemyError, DatabaseUnavailable) as exc:  # a pool timeout too
            # The change is committed; its hint is not. The safety scan finds it.
            log.debug("could not send hint %s: %s", hint, exc)

    def close(self) -> None:
        """Nothing of its own to close: it borrows the database's pooled connections."""


class PgHintListener:
    """A session of its own that LISTENs; `filenos()` goes into the scheduler's select().

    When the session is lost (PostgreSQL restarted, `pg_terminate_backend`), it reconnects once
    a second from `drain()`, which the loop calls when `next_due()` says so, and then asks for a
    look at everything: notifications sent meanwhile were lost with the session.

    With `liveness_job_id` (or after `hold_liveness`), each session it opens also takes that
    job's liveness lock. A lock still held by the previous session (which the server has not
    ended yet) is tried again once a second, from `drain()` as well.
    """

    def __init__(
        self, url: str, *, channel: str = CHANNEL, liveness_job_id: int | None = None
    ) -> None:
        parsed = make_url(url).set(drivername="postgresql")
        self._conninfo = parsed.render_as_string(hide_password=False)
        self._safe = parsed.render_as_string(hide_password=True)
        self._channel = channel
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None
        self._retry_at = 0.0
        self._liveness_job_id = liveness_job_id
        self._holds_liveness = False
        # Failing to connect is said once per outage, not every second of it.
        self._refused = False
        self._connect()

    @property
    def listening(self) -> bool:
        return self._conn is not None

    @property
    def holds_liveness(self) -> bool:
        """Whether the current session holds the liveness lock of the job it was given."""
        return self._holds_liveness

    def hold_liveness(self, job_id: int) -> bool:
        """Hold `job_id`'s liveness lock on this session from now on, and on every session
        after a reconnect; whether it is held now. A process proves one job alive: a new job
        (a deposed scheduler starting over) replaces the previous one, whose lock is let go."""
        previous = self._liveness_job_id
        if previous == job_id:
            if self._conn is not None and not self._holds_liveness:
                self._lock_liveness()
            return self._holds_liveness
        if previous is not None and self._conn is not None and self._holds_liveness:
            try:
                liveness.unlock_session(self._conn, previous)
            except psycopg.Error as exc:
                # The session is gone, and the lock with it; drain() reconnects.
                log.warning("cannot let go of job %s's liveness lock (%s)", previous, exc)
        self._liveness_job_id = job_id
        self._holds_liveness = False
        if self._conn is not None:
            self._lock_liveness()
        return self._holds_liveness

    def filenos(self) -> list[int]:
        return [self._conn.fileno()] if self._conn is not None else []

    def next_due(self) -> float | None:
        """While disconnected, or connected without the liveness lock it should hold: when to
        try again (monotonic); else never unless readable."""
        if self._conn is not None and (self._liveness_job_id is None or self._holds_liveness):
            return None
        return self._retry_at

    def drain(self) -> list[Hint]:
        if self._conn is None:
            if time.monotonic() < self._retry_at or not self._connect():
                return []
            log.info("listening for hints on %s again", self._safe)
            return [Hint.anything()]
        try:
            hints = self._read_notifies(self._conn)
        except psycopg.Error as exc:
            log.warning("lost the hint session to %s (%s); reconnecting", self._safe, exc)
            self._refused = True  # said: a reconnection refused now need not be said again
            self._close()
            self._connect()
            return [Hint.anything()]
        lock_due = self._liveness_job_id is not None and not self._holds_liveness
        if lock_due and time.monotonic() >= self._retry_at:
            self._lock_liveness()
        return hints

    def close(self) -> None:
        self._close()

    @staticmethod
    def _read_notifies(conn: psycopg.Connection[tuple[object, ...]]) -> list[Hint]:
        """What has arrived, without waiting. A session the server ended delivers its last
        message first and its end of file on a second read, so while the socket stays
        readable it is read again (a few times at most): the end shows in this drain, not in
        the loop's next turn, and a liveness lock is taken again at once."""
        hints: list[Hint] = []
        for _ in range(_READS_PER_DRAIN):
            hints += [Hint.decode(n.payload.encode()) for n in conn.notifies(timeout=0)]
            readable, _, _ = select.select([conn.fileno()], [], [], 0)
            if not readable:
                break
        return hints

    def _connect(self) -> bool:
        try:
            conn = psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECONDS
            )
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            log.log(
                logging.DEBUG if self._refused else logging.WARNING,
                "cannot listen for hints on %s (%s); retrying every %.0f s",
                self._safe,
                first,
                _RECONNECT_SECONDS,
            )
            self._refused = True
            self._retry_at = time.monotonic() + _RECONNECT_SECONDS
            return False
        self._conn = conn
        if self._liveness_job_id is not None:
            self._lock_liveness()
        try:
            conn.execute(f'LISTEN "{self._channel}"')
        except psycopg.Error:
            self._close()
            return False
        self._refused = False
        return True

    def _lock_liveness(self) -> None:
        """Take the liveness lock on the current session; on failure, try again in a second
        (the session is kept: a lost session shows itself in `drain()`)."""
        assert self._conn is not None and self._liveness_job_id is not None
        self._retry_at = time.monotonic() + _RECONNECT_SECONDS
        try:
            self._holds_liveness = liveness.lock_session(self._conn, self._liveness_job_id)
        except psycopg.Error as exc:
            self._holds_liveness = False
            log.warning("cannot take the liveness lock on %s (%s)", self._safe, exc)
            return
        if not self._holds_liveness:
            log.warning(
                "the liveness lock of job %s is held by another session; retrying in %.0f s",
                self._liveness_job_id,
                _RECONNECT_SECONDS,
            )

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        self._holds_liveness = False
        self._retry_at = time.monotonic() + _RECONNECT_SECONDS
        if conn is not None:
            with contextlib.suppress(psycopg.Error):
                conn.close()
