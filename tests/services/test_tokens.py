"""services.tokens (and store.tokens beneath it) on real SQLite and PostgreSQL: creating,
authenticating through the short read cache, expiry, revocation, disabled owners, throttled
last_used writes, session tokens, and that the token text is stored nowhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import MetaData, select

from slipstream.auth.tokens import SESSION_NAME, TokenKind, token_hash
from slipstream.clock import FrozenClock
from slipstream.errors import InvalidInputError, TokenAlreadyExists, TokenNotFound, UserNotFound
from slipstream.services.sign_in import SignInService
from slipstream.services.tokens import TokenService
from slipstream.services.users import UserService
from slipstream.store import tokens as tokens_store
from slipstream.store.db import Database
from slipstream.store.tables import api_tokens

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def users(db: Database, clock: FrozenClock) -> UserService:
    service = UserService(db, clock=clock, sign_ins=SignInService(db, clock=clock))
    for name in ("ada", "bob"):
        service.create(
            username=name,
            email=f"{name}@example.com",
            first_name=name,
            last_name="Test",
            role="Admin",
            password="pw-" + name,
        )
    return service


@pytest.fixture
def tokens(db: Database, clock: FrozenClock, users: UserService) -> TokenService:
    return TokenService(db, clock=clock, session_ttl=3600, cache_ttl=5, touch_interval=60)


def row_of(db: Database, name: str) -> dict[str, object]:
    with db.read() as conn:
        row = conn.execute(select(api_tokens).where(api_tokens.c.name == name)).one()
    return dict(row._mapping)


def test_create_returns_the_token_once_and_stores_only_its_hash(
    tokens: TokenService, db: Database
) -> None:
    token, record = tokens.create("ada", "ci", timedelta(days=30))
    assert token.startswith("slp_")
    assert (record.owner, record.name, record.kind) == ("ada", "ci", TokenKind.API)
    assert record.created_at == START
    assert record.expires_at == START + timedelta(days=30)
    assert row_of(db, "ci")["token_hash"] == token_hash(token)
    # Not the text, nor any part of it worth having, in any column of any table.
    secret = token.removeprefix("slp_")
    meta = MetaData()
    with db.read() as conn:
        meta.reflect(conn)
        for table in meta.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    assert secret[:16] not in str(value), table.name


def test_authenticate_a_token(tokens: TokenService) -> None:
    token, _ = tokens.create("ada", "ci", None)
    user = tokens.authenticate_token(token)
    assert user is not None and user.username == "ada"
    assert tokens.authenticate_token(token + "x") is None
    assert tokens.authenticate_token("slp_" + "A" * 43) is None
    assert tokens.authenticate_token("not-a-token") is None
    assert tokens.authenticate_token("") is None


def test_a_token_stops_at_its_expiry_even_when_cached(
    tokens: TokenService, clock: FrozenClock
) -> None:
    token, _ = tokens.create("ada", "short", timedelta(minutes=10))
    assert tokens.authenticate_token(token) is not None
    clock.advance(timedelta(minutes=10) - timedelta(seconds=1))
    assert tokens.authenticate_token(token) is not None
    clock.advance(1)
    assert tokens.authenticate_token(token) is None


def test_revoke_takes_effect_at_once_in_this_process(tokens: TokenService, db: Database) -> None:
    token, _ = tokens.create("ada", "ci", None)
    assert tokens.authenticate_token(token) is not None  # now cached
    tokens.revoke("ada", "ci")
    assert tokens.authenticate_token(token) is None
    assert row_of(db, "ci")["revoked_at"] == START
    with pytest.raises(TokenNotFound):
        tokens.revoke("ada", "ci")  # no active token of that name any more
    # The name is free again.
    again, _ = tokens.create("ada", "ci", None)
    assert tokens.authenticate_token(again) is not None


def test_revoke_by_another_process_takes_effect_within_the_cache_ttl(
    tokens: TokenService, db: Database, clock: FrozenClock
) -> None:
    token, _ = tokens.create("ada", "ci", None)
    assert tokens.authenticate_token(token) is not None
    elsewhere = TokenService(db, clock=clock, session_ttl=3600)
    elsewhere.revoke("ada", "ci")
    clock.advance(4.9)
    assert tokens.authenticate_token(token) is not None  # the documented few seconds
    clock.advance(0.1)
    assert tokens.authenticate_token(token) is None


def test_a_disabled_owner_cannot_use_their_tokens(
    tokens: TokenService, users: UserService, clock: FrozenClock
) -> None:
    token, _ = tokens.create("ada", "ci", None)
    assert tokens.authenticate_token(token) is not None
    users.set_active("ada", False)
    clock.advance(5)
    assert tokens.authenticate_token(token) is None
    users.set_active("ada", True)
    clock.advance(5)
    assert tokens.authenticate_token(token) is not None


def test_a_deleted_owner_takes_their_tokens_along(
    tokens: TokenService, users: UserService, clock: FrozenClock
) -> None:
    token, _ = tokens.create("ada", "ci", None)
    users.delete("ada")
    clock.advance(5)
    assert tokens.authenticate_token(token) is None
    assert tokens.list_tokens() == []


def test_last_used_is_written_at_most_once_a_minute_per_token(
    tokens: TokenService, db: Database, clock: FrozenClock
) -> None:
    token, _ = tokens.create("ada", "ci", None)
    assert row_of(db, "ci")["last_used_at"] is None
    tokens.authenticate_token(token)
    assert row_of(db, "ci")["last_used_at"] == START
    for _ in range(5):
        clock.advance(10)
        assert tokens.authenticate_token(token) is not None
    assert row_of(db, "ci")["last_used_at"] == START  # 50 s later: not written again
    clock.advance(10)
    tokens.authenticate_token(token)
    assert row_of(db, "ci")["last_used_at"] == START + timedelta(seconds=60)


def test_a_duplicate_active_name_is_refused_per_user(tokens: TokenService) -> None:
    tokens.create("ada", "ci", None)
    with pytest.raises(TokenAlreadyExists) as caught:
        tokens.create("ada", "ci", timedelta(days=1))
    assert "ci" in str(caught.value) and "ada" in str(caught.value)
    tokens.create("bob", "ci", None)  # another user may use the name


def test_an_expired_name_may_be_reused(tokens: TokenService, clock: FrozenClock) -> None:
    tokens.create("ada", "ci", timedelta(hours=1))
    clock.advance(timedelta(hours=1))
    tokens.create("ada", "ci", None)
    assert [t.name for t in tokens.list_tokens("ada")] == ["ci", "ci"]


@pytest.mark.parametrize(
    ("name", "expires", "field"),
    [
        ("", None, "name"),
        ("   ", None, "name"),
        ("x" * 251, None, "name"),
        (SESSION_NAME, None, "name"),
        ("ci", timedelta(0), "expires"),
        ("ci", timedelta(days=10**8), "expires"),
    ],
)
def test_bad_input_names_the_field_and_writes_nothing(
    tokens: TokenService, name: str, expires: timedelta | None, field: str
) -> None:
    with pytest.raises(InvalidInputError) as caught:
        tokens.create("ada", name, expires)
    assert caught.value.field == field
    assert tokens.list_tokens() == []


def test_unknown_and_disabled_users(tokens: TokenService, users: UserService) -> None:
    with pytest.raises(UserNotFound):
        tokens.create("nobody", "ci", None)
    with pytest.raises(UserNotFound):
        tokens.list_tokens("nobody")
    with pytest.raises(UserNotFound):
        tokens.revoke("nobody", "ci")
    with pytest.raises(TokenNotFound):
        tokens.revoke("ada", "never-made")
    users.set_active("bob", False)
    with pytest.raises(InvalidInputError) as caught:
        tokens.create("bob", "ci", None)
    assert caught.value.field == "user"


def test_list_tokens(tokens: TokenService, clock: FrozenClock) -> None:
    token, _ = tokens.create("ada", "ci", timedelta(days=1))
    clock.advance(1)
    tokens.create("bob", "laptop", None)
    tokens.authenticate_token(token)
    tokens.revoke("bob", "laptop")
    listed = tokens.list_tokens()
    assert [(t.owner, t.name, t.kind) for t in listed] == [
        ("ada", "ci", TokenKind.API),
        ("bob", "laptop", TokenKind.API),
    ]
    ada, bob = listed
    assert ada.last_used_at == START + timedelta(seconds=1) and ada.revoked_at is None
    assert bob.revoked_at == START + timedelta(seconds=1) and bob.expires_at is None
    assert [t.owner for t in tokens.list_tokens("bob")] == ["bob"]


def test_session_tokens_live_for_the_session_ttl(
    tokens: TokenService, users: UserService, clock: FrozenClock
) -> None:
    ada = users.get("ada")
    token, expires_at = tokens.issue_session(ada)
    assert expires_at == START + timedelta(hours=1)
    assert tokens.authenticate_token(token) == ada
    [record] = tokens.list_tokens("ada")
    assert (record.name, record.kind) == (SESSION_NAME, TokenKind.SESSION)
    clock.advance(3600)
    assert tokens.authenticate_token(token) is None
    # Several sessions may be open at once; revoking `auth/token` ends them all.
    first, _ = tokens.issue_session(ada)
    second, _ = tokens.issue_session(ada)
    tokens.revoke("ada", SESSION_NAME)
    assert tokens.authenticate_token(first) is None
    assert tokens.authenticate_token(second) is None


def test_expired_sessions_are_purged_now_and_then_not_on_every_call(
    db: Database, clock: FrozenClock, users: UserService
) -> None:
    tokens = TokenService(db, clock=clock, session_ttl=60, purge_interval=600)
    ada = users.get("ada")
    tokens.create("ada", "ci", timedelta(seconds=30))  # an api token: never purged
    tokens.issue_session(ada)  # the first call purges (nothing yet)
    clock.advance(120)
    tokens.issue_session(ada)  # within the purge interval: the expired one stays
    assert len(tokens.list_tokens()) == 3
    clock.advance(600)
    tokens.issue_session(ada)  # both earlier sessions have expired: purged now
    assert [(t.kind, t.created_at) for t in tokens.list_tokens()] == [
        (TokenKind.API, START),
        (TokenKind.SESSION, START + timedelta(seconds=720)),
    ]


def test_store_purge_keeps_live_sessions(db: Database, users: UserService) -> None:
    tokens = TokenService(db, clock=FrozenClock(START), session_ttl=60)
    tokens.issue_session(users.get("ada"))
    with db.write() as conn:
        assert tokens_store.purge_sessions(conn, START + timedelta(seconds=59)) == 0
        assert tokens_store.purge_sessions(conn, START + timedelta(seconds=60)) == 1


def test_peek_token_answers_only_from_a_fresh_cache_entry(
    tokens: TokenService, clock: FrozenClock
) -> None:
    token, _ = tokens.create("ada", "ci", None)
    assert tokens.peek_token(token) is None  # never read: ask authenticate_token
    assert tokens.authenticate_token(token) is not None
    peeked = tokens.peek_token(token)
    assert peeked is not None and peeked.username == "ada"
    tokens.revoke("ada", "ci")
    assert tokens.peek_token(token) is None
    other, _ = tokens.create("ada", "other", None)
    assert tokens.authenticate_token(other) is not None
    clock.advance(6)  # past the read cache's life
    assert tokens.peek_token(other) is None
