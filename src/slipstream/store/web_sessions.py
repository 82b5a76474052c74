"""Web UI sessions: rows keyed by the SHA-256 of a session id. The id itself never reaches
here; ending a user's sessions is one DELETE, in the caller's transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from slipstream.core.records import User, WebSession
from slipstream.store.tables import users, web_sessions
from slipstream.store.users import PUBLIC_COLUMNS, user_from_mapping

# Built once: every page a signed-in browser asks for reads its session.
_BY_HASH = (
    select(
        web_sessions.c.id.label("session_id"),
        web_sessions.c.created_at.label("session_created_at"),
        web_sessions.c.last_seen_at.label("session_last_seen_at"),
        web_sessions.c.expires_at.label("session_expires_at"),
        *PUBLIC_COLUMNS,
    )
    .join_from(web_sessions, users, web_sessions.c.user_id == users.c.id)
    .where(web_sessions.c.session_hash == bindparam("k_hash"))
)


def insert_session(
    conn: Connection, *, session_hash: str, user: User, now: datetime, expires_at: datetime
) -> WebSession:
    session_id = conn.execute(
        insert(web_sessions)
        .values(
            session_hash=session_hash,
            user_id=user.id,
            created_at=now,
            last_seen_at=now,
            expires_at=expires_at,
        )
        .returning(web_sessions.c.id)
    ).scalar_one()
    return WebSession(session_id, user, now, now, expires_at)


def find(conn: Connection, session_hash: str) -> WebSession | None:
    """The session with this hash and its user (as stored now), whatever their state: the
    caller judges expiry and whether the user is active."""
    row = conn.execute(_BY_HASH, {"k_hash": session_hash}).first()
    if row is None:
        return None
    m = row._mapping
    return WebSession(
        id=m["session_id"],
        user=user_from_mapping(m),
        created_at=m["session_created_at"],
        last_seen_at=m["session_last_seen_at"],
        expires_at=m["session_expires_at"],
    )


def find_many(conn: Connection, session_hashes: list[str]) -> dict[str, WebSession]:
    """The sessions with these hashes and their users, by hash (one read for many: the web
    UI's live streams check their sessions together)."""
    if not session_hashes:
        return {}
    query = (
        select(web_sessions.c.session_hash, *_BY_HASH.selected_columns)
        .join_from(web_sessions, users, web_sessions.c.user_id == users.c.id)
        .where(web_sessions.c.session_hash.in_(session_hashes))
    )
    found = {}
    for row in conn.execute(query):
        m = row._mapping
        found[m["session_hash"]] = WebSession(
            id=m["session_id"],
            user=user_from_mapping(m),
            created_at=m["session_created_at"],
            last_seen_at=m["session_last_seen_at"],
            expires_at=m["session_expires_at"],
        )
    return found


def touch(conn: Connection, session_id: int, now: datetime, expires_at: datetime) -> None:
    conn.execute(
        update(web_sessions)
        .where(web_sessions.c.id == session_id)
        .values(last_seen_at=now, expires_at=expires_at)
    )


def delete_by_hash(conn: Connection, session_hash: str) -> bool:
    result = conn.execute(delete(web_sessions).where(web_sessions.c.session_hash == session_hash))
    return result.rowcount > 0


def delete_for_user(conn: Connection, username: str) -> int:
    """End every session of the user; how many there were."""
    owner = select(users.c.id).where(users.c.username == username).scalar_subquery()
    result = conn.execute(delete(web_sessions).where(web_sessions.c.user_id == owner))
    return int(result.rowcount)


def purge_expired(conn: Connection, now: datetime) -> int:
    """Delete sessions that have expired; how many went."""
    result = conn.execute(delete(web_sessions).where(web_sessions.c.expires_at <= now))
    return int(result.rowcount)


def count_for_user(conn: Connection, username: str) -> int:
    """How many sessions (expired or not) the user has rows for."""
    query = (
        select(web_sessions.c.id)
        .join_from(web_sessions, users, web_sessions.c.user_id == users.c.id)
        .where(users.c.username == username)
    )
    return len(conn.execute(query).all())
