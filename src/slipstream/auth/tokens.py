"""API tokens as values: how a token is made and hashed, the record a stored token is read
into, and the `30d`/`12h`/`90m`/`never` lifetimes the CLI takes.

A token is `slp_` and 256 random bits; only its SHA-256 is kept. A fast hash is enough (unlike
passwords) because the secret is random and too long to guess, so nothing is gained by slowing
down the check every request makes.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from slipstream.errors import InvalidInputError

PREFIX = "slp_"
SESSION_NAME = "auth/token"  # the name every POST /auth/token token carries
MAX_NAME_LENGTH = 250  # api_tokens.name


class TokenKind(StrEnum):
    API = "api"  # named, long-lived, made with `slipstream tokens create`
    SESSION = "session"  # short-lived, handed out by POST /auth/token


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """What the database keeps of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def looks_like_token(token: str) -> bool:
    """A cheap first check before any hashing or database work."""
    return token.startswith(PREFIX) and 16 <= len(token) <= 512


@dataclass(frozen=True, slots=True)
class ApiToken:
    """A stored token, without its secret: the owner's username, its name and its life."""

    id: int
    owner: str
    name: str
    kind: TokenKind
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None

    def is_active(self, now: datetime) -> bool:
        """Not revoked and not expired at `now`."""
        return self.revoked_at is None and (self.expires_at is None or now < self.expires_at)


_LIFETIME = re.compile(r"^\s*(\d+)\s*([dhms])\s*$", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_lifetime(raw: str, *, field: str = "expires") -> timedelta | None:
    """`30d`, `12h`, `90m`, `45s` -> a timedelta; `never` -> None (the token does not expire)."""
    if raw.strip().lower() == "never":
        return None
    match = _LIFETIME.match(raw)
    if match is None:
        raise InvalidInputError(
            f"{field} must be a number with a unit (30d, 12h, 90m, 45s) or never, not {raw!r}",
            field=field,
        )
    amount = int(match.group(1))
    if amount <= 0:
        raise InvalidInputError(f"{field} must be more than zero, not {raw!r}", field=field)
    try:
        return timedelta(**{_UNITS[match.group(2).lower()]: amount})
    except OverflowError:
        raise InvalidInputError(f"{field} is too far in the future: {raw!r}", field=field) from None
