"""Liveness on PostgreSQL: a session advisory lock per running job, and declaring a job lost.

A scheduler or a worker host holds `pg_advisory_lock(LIVENESS_NS, job_id)` on a session it
keeps for its whole life (its control session: store/notify.py's listener). The server frees a
session's locks when the session ends, so a killed process loses its lock within milliseconds
(5 ms after SIGKILL here), long before its heartbeat could go stale. `pg_terminate_backend`
frees it too, but the victim notices at once and locks again on its next session: hence a judge
calls a job dead only when it is unlocked at two checks about a second apart
(scheduler/leases.py), never on one look. Design: docs/design/scale-out.md, 1.7 and 2.2.

PostgreSQL only: SQLite has neither sessions that outlive a transaction nor `pg_locks`, and
one scheduler there needs no liveness proof (its pid is checked instead, store/jobs.py).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

import psycopg
from sqlalchemy import Connection, bindparam, text, update

from slipstream.errors import ConfigError
from slipstream.store.tables import scheduler_jobs as jobs

# The first key of every liveness lock (the two-int form: namespace, job id), so they never
# meet an advisory lock taken for anything else. "slip" in ASCII; it must fit a signed int4
# and be positive, since pg_locks shows it as an oid.
LIVENESS_NS = 0x736C6970

_RUNNING = "running"
_LOST = "lost"

# The two-int form takes int4 keys: cast, since a driver may send a small int as int2 or int8.
_TRY_LOCK_SQL = "SELECT pg_try_advisory_lock(CAST(%(ns)s AS integer), CAST(%(job)s AS integer))"
_UNLOCK_SQL = "SELECT pg_advisory_unlock(CAST(%(ns)s AS integer), CAST(%(job)s AS integer))"
_TRY_LOCK = text("SELECT pg_try_advisory_lock(CAST(:ns AS integer), CAST(:job AS integer))")

# objsubid 2 marks the two-int form; a lock waited for is listed too, with granted false.
_LOCKED = text(
    "SELECT objid::bigint AS job_id FROM pg_locks"
    " WHERE locktype = 'advisory' AND granted AND objsubid = 2"
    " AND classid = CAST(:ns AS oid) AND objid = ANY(CAST(:ids AS oid[]))"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)

# Measured on the server's clock alone, so no machine's clock meets another's.
_UPTIME = text("SELECT now() - pg_postmaster_start_time()")

_DECLARE_LOST = (
    update(jobs)
    .where(jobs.c.id == bindparam("k_job_id"), jobs.c.state == _RUNNING)
    .values(state=_LOST, ended_at=bindparam("v_now", type_=jobs.c.ended_at.type))
)


def require_postgresql(conn: Connection, what: str) -> None:
    """Refuse, by name, work that only PostgreSQL can do."""
    if conn.dialect.name != "postgresql":
        raise ConfigError(
            "SLIPSTREAM_DATABASE_URL",
            f"{what} needs PostgreSQL (several schedulers share DAGs only there);"
            f" this database is {conn.dialect.name}",
        )


def lock(conn: Connection, job_id: int) -> bool:
    """Take `job_id`'s liveness lock on this connection's session, without waiting: False if
    another session holds it (an earlier session of the same job the server has not ended
    yet). The lock lasts as long as the session, past any transaction: the caller keeps the
    connection for its life and never hands it back to a pool."""
    require_postgresql(conn, "a liveness lock")
    return bool(conn.execute(_TRY_LOCK, {"ns": LIVENESS_NS, "job": job_id}).scalar_one())


def lock_session(session: psycopg.Connection[tuple[object, ...]], job_id: int) -> bool:
    """`lock` on a bare psycopg session (the control session is one, outside the pool)."""
    row = session.execute(_TRY_LOCK_SQL, {"ns": LIVENESS_NS, "job": job_id}).fetchone()
    return bool(row and row[0])


def unlock_session(session: psycopg.Connection[tuple[object, ...]], job_id: int) -> bool:
    """Let go of `job_id`'s liveness lock on this session; whether it held it."""
    row = session.execute(_UNLOCK_SQL, {"ns": LIVENESS_NS, "job": job_id}).fetchone()
    return bool(row and row[0])


def unlocked_jobs(conn: Connection, job_ids: Collection[int]) -> set[int]:
    """Those of `job_ids` whose liveness lock no session of this database holds now."""
    require_postgresql(conn, "reading liveness locks")
    wanted = sorted({int(job_id) for job_id in job_ids})
    if not wanted:
        return set()
    held = {int(row.job_id) for row in conn.execute(_LOCKED, {"ns": LIVENESS_NS, "ids": wanted})}
    return set(wanted) - held


def declare_lost(conn: Connection, job_id: int, now: datetime) -> bool:
    """Mark a running job lost; whether this call did it. Several judges may decide at once:
    the row lock and `state = 'running'` let exactly one win, and the winner's declaration
    waits for the job's fence (store/leases.py) if a pass of that job holds it."""
    require_postgresql(conn, "declaring a job lost by its liveness lock")
    return bool(conn.execute(_DECLARE_LOST, {"k_job_id": job_id, "v_now": now}).rowcount == 1)


def server_uptime(conn: Connection) -> timedelta:
    """How long the database server has been up. After a restart every session, hence every
    liveness lock, is new: a judge gives the others time to lock again before judging."""
    require_postgresql(conn, "reading the server's uptime")
    value = conn.execute(_UPTIME).scalar_one()
    return value if isinstance(value, timedelta) else timedelta(0)
