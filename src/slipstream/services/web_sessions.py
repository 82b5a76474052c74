"""Web UI sessions: start one when a person signs in, find the signed-in user behind a
browser's session id on each request, and end sessions (sign-out, expiry).

A session id is 256 random bits the browser keeps in a cookie; only its SHA-256 is stored, so
a copy of the database signs nobody in. A session lasts `lifetime` seconds after it was last
used (each use moves its expiry, written at most once per `touch_interval`), and ends at once
when its user signs out, is disabled or gets a new password (UserService deletes the rows in
the transaction that makes the change; a user disabled by any other path is refused too,
since each lookup reads the user's row).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections.abc import Collection
from datetime import timedelta

from slipstream.clock import Clock
from slipstream.core.records import User, WebSession
from slipstream.store import web_sessions as sessions_store
from slipstream.store.db import Database

# What `secrets.token_urlsafe(32)` makes: anything else is refused before a database read.
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def looks_like_session_id(value: str) -> bool:
    return _SESSION_ID.fullmatch(value) is not None


class WebSessionService:
    """Server-side sessions of the web UI. One instance per process."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        lifetime: float,
        touch_interval: float = 60.0,
        purge_interval: float = 600.0,
    ) -> None:
        self._db = db
        self._clock = clock
        self._lifetime = timedelta(seconds=lifetime)
        self._touch_interval = timedelta(seconds=touch_interval)
        self._purge_interval = purge_interval
        self._lock = threading.Lock()
        self._purged_at: float | None = None

    @property
    def lifetime_seconds(self) -> int:
        return int(self._lifetime.total_seconds())

    def start(self, user: User) -> tuple[str, WebSession]:
        """A new session for a user whose password was just checked: its id (to hand to the
        browser once; kept nowhere here) and the stored session. Expired sessions are purged
        now and then, here."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock.now()
        mono = self._clock.monotonic()
        with self._lock:
            purge = self._purged_at is None or mono - self._purged_at >= self._purge_interval
            if purge:
                self._purged_at = mono
        with self._db.write() as conn:
            if purge:
                sessions_store.purge_expired(conn, now)
            session = sessions_store.insert_session(
                conn,
                session_hash=session_hash(session_id),
                user=user,
                now=now,
                expires_at=now + self._lifetime,
            )
        return session_id, session

    def resolve(self, session_id: str) -> WebSession | None:
        """The live session with this id, its user as stored now; None if there is none, it
        expired, or its user is disabled. Moves the expiry on when a touch is due."""
        if not looks_like_session_id(session_id):
            return None
        digest = session_hash(session_id)
        with self._db.read() as conn:
            session = sessions_store.find(conn, digest)
        now = self._clock.now()
        if session is None or session.expires_at <= now or not session.user.active:
            return None
        if now - session.last_seen_at >= self._touch_interval:
            expires_at = now + self._lifetime
            with self._db.write() as conn:
                sessions_store.touch(conn, session.id, now, expires_at)
            session = WebSession(session.id, session.user, session.created_at, now, expires_at)
        return session

    def live_users(self, session_ids: Collection[str]) -> dict[str, User]:
        """For each of these session ids that is still live, its user as stored now (one read,
        and no expiry moved: a page left open does not keep its session alive)."""
        hashes = {session_hash(s): s for s in session_ids if looks_like_session_id(s)}
        with self._db.read() as conn:
            found = sessions_store.find_many(conn, sorted(hashes))
        now = self._clock.now()
        return {
            hashes[digest]: session.user
            for digest, session in found.items()
            if session.expires_at > now and session.user.active
        }

    def end(self, session_id: str) -> bool:
        """Sign out: delete the session; whether there was one."""
        if not looks_like_session_id(session_id):
            return False
        with self._db.write() as conn:
            return sessions_store.delete_by_hash(conn, session_hash(session_id))

    def end_for_user(self, username: str) -> int:
        """End every session of a user; how many there were."""
        with self._db.write() as conn:
            return sessions_store.delete_for_user(conn, username)
