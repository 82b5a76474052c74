"""Signing in with a password: the check against the stored argon2id hash, and the short-lived
cache of credentials verified a moment ago (HMAC-keyed, rechecked against the stored row every
few seconds, re-hashed when the hash parameters are outdated)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from slipstream.auth.passwords import hash_password, needs_rehash, verify_password
from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.records import User
from slipstream.store import users as users_store
from slipstream.store.db import Database
from slipstream.store.event_log import record_event


@dataclass(frozen=True, slots=True)
class _Verified:
    user: User
    verified_at: float  # the clock's monotonic seconds
    password_hash: str  # the stored hash the password was verified against
    checked_at: float  # when the stored row was last seen unchanged


class SignInService:
    """Password sign-in. One instance per process: its credential cache lives on it.

    Checking an argon2id hash takes a deliberate fraction of a second, too slow to repeat on
    every HTTP Basic request, so `authenticate` remembers credentials it has verified for
    `cache_ttl` seconds. Changes made in this process call `forget` at once; changes made by
    another process (a CLI command beside a running API server) are seen within
    `recheck_after` seconds, when a cached entry is next compared with the stored row.
    """

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        cache_ttl: float = 60.0,
        recheck_after: float = 5.0,
        cache_size: int = 1024,
    ) -> None:
        self._db = db
        self._clock = clock
        self._ttl = cache_ttl
        # A cached sign-in is compared with the stored row this often (a cheap read, no hash):
        # a password changed or a user disabled by another process (the CLI beside a running
        # server) stops working within this many seconds.
        self._recheck = recheck_after
        self._size = cache_size
        # Cache keys are HMAC-SHA256 digests under a key that lives only in this process, so
        # neither passwords nor plain digests of them (cheap to guess offline) are held.
        self._digest_key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._verified: OrderedDict[bytes, _Verified] = OrderedDict()
        self._login_recorded: OrderedDict[str, float] = OrderedDict()
        # Bumped by every change that forgets entries: a check that started before a change
        # must not cache what it verified against the old row.
        self._epoch = 0
        self._decoy_hash: str | None = None

    def _key(self, username: str, password: str) -> bytes:
        return hmac.new(
            self._digest_key,
            f"{len(username)}:{username}:{password}".encode(),
            hashlib.sha256,
        ).digest()

    def peek(self, username: str, password: str) -> User | None:
        """The user if these credentials were verified within the cache's life and nothing is
        due to be written; None means "ask `authenticate`", not "wrong". Touches no database,
        so the API may call it on its event loop."""
        if not username or not password:
            return None
        key = self._key(username, password)
        now = self._clock.monotonic()
        with self._lock:
            hit = self._verified.get(key)
            if hit is None or now - hit.verified_at >= self._ttl:
                return None
            if now - hit.checked_at >= self._recheck:
                return None  # due a look at the stored row: that is a read
            last = self._login_recorded.get(username)
            if last is None or now - last >= self._ttl:
                return None  # a sign-in is due to be recorded: that is a write
            self._verified.move_to_end(key)
            return hit.user

    def authenticate(self, username: str, password: str) -> User | None:
        """The active user with these credentials, or None. Never raises for bad credentials."""
        if not username or not password:
            return None
        key = self._key(username, password)
        now = self._clock.monotonic()
        with self._lock:
            hit = self._verified.get(key)
            if hit is not None and now - hit.verified_at >= self._ttl:
                del self._verified[key]
                hit = None
            if hit is not None:
                self._verified.move_to_end(key)
                record = self._login_due(username, now)
            epoch = self._epoch
        if hit is not None and now - hit.checked_at >= self._recheck:
            hit = self._recheck_row(key, hit, now, epoch)
        if hit is not None:
            if record:
                self._record_login(username, success=True)
            return hit.user

        with self._db.read() as conn:
            found = users_store.password_hash_of(conn, username)
        if found is None:
            # Spend the same time as a real check, so timing does not tell who has an account.
            verify_password(self._decoy(), password)
            self._record_unknown(username)
            return None
        user, stored_hash = found
        if not verify_password(stored_hash, password):
            self._record_login(username, success=False)
            return None
        if not user.active:
            self._record_login(username, success=False)
            return None
        if needs_rehash(stored_hash):
            self._rehash(username, stored_hash, password)
        with self._lock:
            if self._epoch == epoch:
                self._verified[key] = _Verified(user, now, stored_hash, now)
                while len(self._verified) > self._size:
                    self._verified.popitem(last=False)
            record = self._login_due(username, now)
        if record:
            self._record_login(username, success=True)
        return user

    def forget(self, username: str) -> None:
        """Drop every cached credential of `username`; call after a change to the user has
        committed."""
        with self._lock:
            self._epoch += 1
            for key in [k for k, v in self._verified.items() if v.user.username == username]:
                del self._verified[key]

    def forget_everyone(self) -> None:
        """Drop every cached sign-in: roles were renamed or deleted under the users holding
        them, and cached users carry their role names."""
        with self._lock:
            self._epoch += 1
            self._verified.clear()

    def _recheck_row(self, key: bytes, hit: _Verified, now: float, epoch: int) -> _Verified | None:
        """The cached entry if the stored row still has the hash it was verified against and
        the user is active (with the row's current roles), else None, the entry dropped."""
        with self._db.read() as conn:
            found = users_store.password_hash_of(conn, hit.user.username)
        with self._lock:
            if found is None or found[1] != hit.password_hash or not found[0].active:
                self._verified.pop(key, None)
                return None
            fresh = _Verified(found[0], hit.verified_at, hit.password_hash, now)
            if self._epoch == epoch and key in self._verified:
                self._verified[key] = fresh
            return fresh

    def _login_due(self, username: str, now: float) -> bool:
        """Whether a success should be written: at most once per TTL window per user, so a
        busy Basic-auth client does not write on every request. Call holding the lock."""
        last = self._login_recorded.get(username)
        if last is not None and now - last < self._ttl:
            return False
        self._login_recorded.pop(username, None)
        self._login_recorded[username] = now
        while len(self._login_recorded) > self._size:
            self._login_recorded.popitem(last=False)
        return True

    def _record_login(self, username: str, *, success: bool) -> None:
        """Count the sign-in on the user's row and audit it, in one transaction."""
        now = self._clock.now()
        with self._db.write() as conn:
            users_store.record_login(conn, username, success=success, now=now)
            record_event(
                conn, events.SIGN_IN if success else events.SIGN_IN_FAILED, now, owner=username
            )

    def _record_unknown(self, username: str) -> None:
        """A failed sign-in with a username nobody has: audited, no row to count it on."""
        with self._db.write() as conn:
            record_event(
                conn,
                events.SIGN_IN_FAILED,
                self._clock.now(),
                owner=username[:500],
                extra={"reason": "unknown user"},
            )

    def _rehash(self, username: str, old_hash: str, password: str) -> None:
        new_hash = hash_password(password)
        with self._db.write() as conn:
            # Only if nobody changed the password meanwhile.
            found = users_store.password_hash_of(conn, username)
            if found is not None and found[1] == old_hash:
                users_store.set_password_hash(conn, username, new_hash, self._clock.now())

    def _decoy(self) -> str:
        if self._decoy_hash is None:
            self._decoy_hash = hash_password(secrets.token_urlsafe(16))
        return self._decoy_hash
