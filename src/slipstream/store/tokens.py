"""API tokens: rows keyed by the SHA-256 of a token. The token text itself never reaches here."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, and_, delete, insert, or_, select, update

from slipstream.auth.tokens import ApiToken, TokenKind
from slipstream.core.records import User
from slipstream.store.tables import api_tokens, users
from slipstream.store.users import get_user

_TOKEN_COLUMNS = [
    api_tokens.c.id,
    users.c.username.label("owner"),
    api_tokens.c.name,
    api_tokens.c.kind,
    api_tokens.c.created_at,
    api_tokens.c.expires_at,
    api_tokens.c.last_used_at,
    api_tokens.c.revoked_at,
]


def _to_token(row: Row[Any]) -> ApiToken:
    m = row._mapping
    return ApiToken(
        id=m["id"],
        owner=m["owner"],
        name=m["name"],
        kind=TokenKind(m["kind"]),
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        last_used_at=m["last_used_at"],
        revoked_at=m["revoked_at"],
    )


def _active(now: datetime) -> Any:
    return and_(
        api_tokens.c.revoked_at.is_(None),
        or_(api_tokens.c.expires_at.is_(None), api_tokens.c.expires_at > now),
    )


def insert_token(
    conn: Connection,
    *,
    user: User,
    name: str,
    kind: TokenKind,
    token_hash: str,
    now: datetime,
    expires_at: datetime | None,
) -> ApiToken:
    token_id = conn.execute(
        insert(api_tokens)
        .values(
            user_id=user.id,
            name=name,
            kind=kind.value,
            token_hash=token_hash,
            created_at=now,
            expires_at=expires_at,
        )
        .returning(api_tokens.c.id)
    ).scalar_one()
    return ApiToken(
        id=token_id,
        owner=user.username,
        name=name,
        kind=kind,
        created_at=now,
        expires_at=expires_at,
        last_used_at=None,
        revoked_at=None,
    )


def has_active_named(conn: Connection, user_id: int, name: str, now: datetime) -> bool:
    query = select(api_tokens.c.id).where(
        api_tokens.c.user_id == user_id, api_tokens.c.name == name, _active(now)
    )
    return conn.execute(query.limit(1)).first() is not None


def find_by_hash(conn: Connection, token_hash: str) -> tuple[ApiToken, User] | None:
    """The token with this hash and its owner, whatever their state: callers judge."""
    query = (
        select(*_TOKEN_COLUMNS)
        .join_from(api_tokens, users, api_tokens.c.user_id == users.c.id)
        .where(api_tokens.c.token_hash == token_hash)
    )
    row = conn.execute(query).first()
    if row is None:
        return None
    token = _to_token(row)
    user = get_user(conn, token.owner)
    return (token, user) if user is not None else None


def list_tokens(conn: Connection, *, user_id: int | None = None) -> list[ApiToken]:
    """Tokens in creation order, of one user or of everyone."""
    query = select(*_TOKEN_COLUMNS).join_from(api_tokens, users, api_tokens.c.user_id == users.c.id)
    if user_id is not None:
        query = query.where(api_tokens.c.user_id == user_id)
    return [_to_token(row) for row in conn.execute(query.order_by(api_tokens.c.id))]


def revoke(conn: Connection, user_id: int, name: str, now: datetime) -> list[int]:
    """Revoke the user's active tokens of this name; the ids revoked (none: nothing matched)."""
    condition = and_(api_tokens.c.user_id == user_id, api_tokens.c.name == name, _active(now))
    ids = [row.id for row in conn.execute(select(api_tokens.c.id).where(condition))]
    if ids:
        conn.execute(update(api_tokens).where(api_tokens.c.id.in_(ids)).values(revoked_at=now))
    return ids


def touch(conn: Connection, token_id: int, now: datetime) -> None:
    conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(last_used_at=now))


def purge_sessions(conn: Connection, now: datetime) -> int:
    """Delete session tokens that have expired or been revoked; how many went."""
    result = conn.execute(
        delete(api_tokens).where(
            api_tokens.c.kind == TokenKind.SESSION.value,
            or_(api_tokens.c.expires_at <= now, api_tokens.c.revoked_at.is_not(None)),
        )
    )
    return int(result.rowcount)
