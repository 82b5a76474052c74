"""API token use cases: create, list and revoke named tokens, hand out session tokens for
POST /auth/token, and authenticate a bearer token on every request.

`authenticate_token` is on every token-authenticated request, so it is kept cheap: what it
read about a token (the token row and its owner) is remembered for `cache_ttl` seconds (5 by
default), and `last_used_at` is written at most once per `touch_interval` (a minute) per token.
A revocation made through this service takes effect at once in this process; one made by
another process (`slipstream tokens revoke` beside a running server), or disabling the owner,
takes effect here within `cache_ttl`. Expiry is checked on every call, cached or not.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from slipstream.auth.tokens import (
    MAX_NAME_LENGTH,
    SESSION_NAME,
    ApiToken,
    TokenKind,
    looks_like_token,
    new_token,
    token_hash,
)
from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.records import User
from slipstream.errors import (
    InvalidInputError,
    TokenAlreadyExists,
    TokenNotFound,
    UserNotFound,
)
from slipstream.store import tokens as tokens_store
from slipstream.store import users as users_store
from slipstream.store.db import Database
from slipstream.store.event_log import record_event


@dataclass(frozen=True, slots=True)
class _Known:
    token: ApiToken
    user: User
    read_at: float  # the clock's monotonic seconds


class TokenService:
    """API tokens. One instance per process: its caches live on it."""

    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        session_ttl: float,
        cache_ttl: float = 5.0,
        touch_interval: float = 60.0,
        purge_interval: float = 600.0,
        cache_size: int = 4096,
    ) -> None:
        self._db = db
        self._clock = clock
        self._session_ttl = timedelta(seconds=session_ttl)
        self._cache_ttl = cache_ttl
        self._touch_interval = touch_interval
        self._purge_interval = purge_interval
        self._size = cache_size
        self._lock = threading.Lock()
        self._known: OrderedDict[str, _Known] = OrderedDict()  # token hash -> what was read
        self._touched: OrderedDict[int, float] = OrderedDict()  # token id -> last write
        # Bumped by every revocation: a read that began before it must not cache what it saw.
        self._epoch = 0
        self._purged_at: float | None = None

    # ------------------------------------------------------------------ authentication

    def peek_token(self, token: str) -> User | None:
        """The owner if the token is cached as valid and no last-use write is due; None means
        "ask `authenticate_token`", not "refused". Touches no database, so the API may call
        it on its event loop."""
        if not looks_like_token(token):
            return None
        digest = token_hash(token)
        mono = self._clock.monotonic()
        with self._lock:
            known = self._known.get(digest)
            if known is None or mono - known.read_at >= self._cache_ttl:
                return None
            last = self._touched.get(known.token.id)
            if last is None or mono - last >= self._touch_interval:
                return None
        if not known.user.active or not known.token.is_active(self._clock.now()):
            return None
        return known.user

    def authenticate_token(self, token: str) -> User | None:
        """The active owner of an active token, or None (unknown, revoked, expired, or the
        owner is disabled). Never raises for a bad token."""
        if not looks_like_token(token):
            return None
        digest = token_hash(token)
        mono = self._clock.monotonic()
        with self._lock:
            known = self._known.get(digest)
            if known is not None and mono - known.read_at >= self._cache_ttl:
                del self._known[digest]
                known = None
            epoch = self._epoch
        if known is None:
            with self._db.read() as conn:
                found = tokens_store.find_by_hash(conn, digest)
            if found is None:
                return None
            known = _Known(found[0], found[1], mono)
            with self._lock:
                if self._epoch == epoch:
                    self._known[digest] = known
                    while len(self._known) > self._size:
                        self._known.popitem(last=False)
        if not known.user.active or not known.token.is_active(self._clock.now()):
            return None
        if self._touch_due(known.token.id, mono):
            with self._db.write() as conn:
                tokens_store.touch(conn, known.token.id, self._clock.now())
        return known.user

    def _touch_due(self, token_id: int, mono: float) -> bool:
        with self._lock:
            last = self._touched.get(token_id)
            if last is not None and mono - last < self._touch_interval:
                return False
            self._touched.pop(token_id, None)
            self._touched[token_id] = mono
            while len(self._touched) > self._size:
                self._touched.popitem(last=False)
            return True

    def _forget(self, token_ids: Iterable[int]) -> None:
        """Drop cached reads of these tokens; call after the change has committed."""
        ids = set(token_ids)
        with self._lock:
            self._epoch += 1
            for digest in [d for d, k in self._known.items() if k.token.id in ids]:
                del self._known[digest]

    # ------------------------------------------------------------------ use cases

    def create(
        self, username: str, name: str, expires_in: timedelta | None, *, by: str | None = None
    ) -> tuple[str, ApiToken]:
        """A new named token for `username`, expiring after `expires_in` (None: never). The
        token text is returned here once and kept nowhere; TokenAlreadyExists if the user
        already has an active token of this name."""
        _check_name(name)
        if expires_in is not None and expires_in <= timedelta(0):
            raise InvalidInputError("expires must be more than zero", field="expires")
        now = self._clock.now()
        try:
            expires_at = now + expires_in if expires_in is not None else None
        except OverflowError:
            raise InvalidInputError("expires is too far in the future", field="expires") from None
        token = new_token()
        with self._db.write() as conn:
            # Locking the owner's row makes the name check and the insert one step on
            # PostgreSQL (SQLite's write transaction already holds the whole database).
            user = users_store.get_user(conn, username, for_update=True)
            if user is None:
                raise UserNotFound(username)
            if not user.active:
                raise InvalidInputError(
                    f"user {username!r} is disabled; its tokens would not authenticate",
                    field="user",
                )
            if tokens_store.has_active_named(conn, user.id, name, now):
                raise TokenAlreadyExists(username, name)
            record = tokens_store.insert_token(
                conn,
                user=user,
                name=name,
                kind=TokenKind.API,
                token_hash=token_hash(token),
                now=now,
                expires_at=expires_at,
            )
            record_event(
                conn,
                events.TOKEN_CREATE,
                now,
                owner=by,
                extra={"username": username, "token_name": name, "expires_at": expires_at},
            )
        return token, record

    def issue_session(self, user: User) -> tuple[str, datetime]:
        """A short-lived token for a user who has just signed in (POST /auth/token): the token
        and when it expires. Expired session rows are purged now and then, here."""
        now = self._clock.now()
        expires_at = now + self._session_ttl
        token = new_token()
        mono = self._clock.monotonic()
        with self._lock:
            purge = self._purged_at is None or mono - self._purged_at >= self._purge_interval
            if purge:
                self._purged_at = mono
        with self._db.write() as conn:
            if purge:
                tokens_store.purge_sessions(conn, now)
            tokens_store.insert_token(
                conn,
                user=user,
                name=SESSION_NAME,
                kind=TokenKind.SESSION,
                token_hash=token_hash(token),
                now=now,
                expires_at=expires_at,
            )
        return token, expires_at

    def list_tokens(self, username: str | None = None) -> list[ApiToken]:
        """Every stored token (of one user, if named), oldest first; secrets are not kept."""
        with self._db.read() as conn:
            user_id = None
            if username is not None:
                user = users_store.get_user(conn, username)
                if user is None:
                    raise UserNotFound(username)
                user_id = user.id
            return tokens_store.list_tokens(conn, user_id=user_id)

    def revoke(self, username: str, name: str, *, by: str | None = None) -> None:
        """Revoke the user's active token of this name (every session token, for
        `auth/token`); TokenNotFound if there is none."""
        with self._db.write() as conn:
            user = users_store.get_user(conn, username)
            if user is None:
                raise UserNotFound(username)
            now = self._clock.now()
            revoked = tokens_store.revoke(conn, user.id, name, now)
            if not revoked:
                raise TokenNotFound(username, name)
            record_event(
                conn,
                events.TOKEN_REVOKE,
                now,
                owner=by,
                extra={"username": username, "token_name": name, "revoked": len(revoked)},
            )
        self._forget(revoked)


def _check_name(name: str) -> None:
    if not name.strip():
        raise InvalidInputError("name must not be empty", field="name")
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidInputError(f"name is longer than {MAX_NAME_LENGTH} characters", field="name")
    if name == SESSION_NAME:
        raise InvalidInputError(
            f"name {SESSION_NAME!r} is kept for the tokens POST /auth/token hands out",
            field="name",
        )
