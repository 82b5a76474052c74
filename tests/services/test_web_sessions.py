"""services.web_sessions (and store.web_sessions beneath it) on real SQLite and PostgreSQL:
starting, resolving and ending web UI sessions, sliding expiry, and the changes to a user that
end their sessions (disabled, new password, deleted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from slipstream.clock import FrozenClock
from slipstream.services.sign_in import SignInService
from slipstream.services.users import UserService
from slipstream.services.web_sessions import WebSessionService, session_hash
from slipstream.store import web_sessions as sessions_store
from slipstream.store.db import Database
from slipstream.store.tables import web_sessions

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LIFETIME = 3600.0


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
            role="Viewer",
            password="pw-" + name,
        )
    return service


@pytest.fixture
def sessions(db: Database, clock: FrozenClock, users: UserService) -> WebSessionService:
    return WebSessionService(db, clock=clock, lifetime=LIFETIME, touch_interval=60)


def count(db: Database, username: str) -> int:
    with db.read() as conn:
        return sessions_store.count_for_user(conn, username)


def test_a_started_session_resolves_to_its_user_and_only_a_hash_is_stored(
    sessions: WebSessionService, users: UserService, db: Database
) -> None:
    session_id, session = sessions.start(users.get("ada"))
    found = sessions.resolve(session_id)
    assert found is not None and found.user.username == "ada" and found.id == session.id
    assert found.expires_at == START + timedelta(seconds=LIFETIME)
    with db.read() as conn:
        stored = conn.execute(select(web_sessions.c.session_hash)).scalars().all()
    assert stored == [session_hash(session_id)]
    assert session_id not in stored


@pytest.mark.parametrize("session_id", ["", "nope", "x" * 43 + "!", "a" * 44])
def test_malformed_or_unknown_ids_resolve_to_nobody(
    sessions: WebSessionService, session_id: str
) -> None:
    assert sessions.resolve(session_id) is None
    assert sessions.resolve("A" * 43) is None  # well-formed, unknown


def test_a_session_expires_when_unused_and_each_use_moves_the_expiry(
    sessions: WebSessionService, users: UserService, clock: FrozenClock, db: Database
) -> None:
    session_id, _ = sessions.start(users.get("ada"))
    clock.advance(LIFETIME - 10)
    used = sessions.resolve(session_id)
    assert used is not None
    assert used.expires_at == clock.now() + timedelta(seconds=LIFETIME)
    clock.advance(LIFETIME - 10)  # past the first expiry, within the moved one
    assert sessions.resolve(session_id) is not None
    clock.advance(LIFETIME)
    assert sessions.resolve(session_id) is None


def test_uses_within_the_touch_interval_write_nothing(
    sessions: WebSessionService, users: UserService, clock: FrozenClock, db: Database
) -> None:
    session_id, _ = sessions.start(users.get("ada"))
    clock.advance(30)
    assert sessions.resolve(session_id) is not None
    with db.read() as conn:
        seen = conn.execute(select(web_sessions.c.last_seen_at)).scalar_one()
    assert seen == START
    clock.advance(31)
    assert sessions.resolve(session_id) is not None
    with db.read() as conn:
        seen = conn.execute(select(web_sessions.c.last_seen_at)).scalar_one()
    assert seen == clock.now()


def test_ending_a_session_signs_that_browser_out_only(
    sessions: WebSessionService, users: UserService, db: Database
) -> None:
    first, _ = sessions.start(users.get("ada"))
    second, _ = sessions.start(users.get("ada"))
    assert sessions.end(first) is True
    assert sessions.end(first) is False
    assert sessions.resolve(first) is None
    assert sessions.resolve(second) is not None


def test_a_disabled_user_has_no_session_even_before_rows_are_deleted(
    sessions: WebSessionService, users: UserService, db: Database
) -> None:
    session_id, _ = sessions.start(users.get("ada"))
    other, _ = sessions.start(users.get("bob"))
    users.set_active("ada", False)
    assert sessions.resolve(session_id) is None
    assert count(db, "ada") == 0
    assert sessions.resolve(other) is not None
    users.set_active("ada", True)  # enabling again brings no old session back
    assert sessions.resolve(session_id) is None


def test_a_new_password_ends_every_session_of_its_user(
    sessions: WebSessionService, users: UserService, db: Database
) -> None:
    first, _ = sessions.start(users.get("ada"))
    second, _ = sessions.start(users.get("ada"))
    bobs, _ = sessions.start(users.get("bob"))
    users.reset_password("ada", "a-new-password")
    assert sessions.resolve(first) is None and sessions.resolve(second) is None
    assert count(db, "ada") == 0
    assert sessions.resolve(bobs) is not None
    third, _ = sessions.start(users.get("bob"))
    users.update("bob", password="another-password")
    assert sessions.resolve(bobs) is None and sessions.resolve(third) is None


def test_changes_other_than_the_password_keep_sessions(
    sessions: WebSessionService, users: UserService
) -> None:
    session_id, _ = sessions.start(users.get("ada"))
    users.update("ada", first_name="Ada", roles=["User"])
    found = sessions.resolve(session_id)
    assert found is not None and found.user.roles == ("User",)  # roles read as stored now


def test_deleting_a_user_deletes_their_sessions(
    sessions: WebSessionService, users: UserService, db: Database
) -> None:
    session_id, _ = sessions.start(users.get("ada"))
    users.delete("ada")
    assert sessions.resolve(session_id) is None
    with db.read() as conn:
        assert conn.execute(select(web_sessions.c.id)).all() == []


def test_end_for_user_and_purging_expired_sessions(
    sessions: WebSessionService, users: UserService, clock: FrozenClock, db: Database
) -> None:
    sessions.start(users.get("ada"))
    sessions.start(users.get("ada"))
    assert sessions.end_for_user("ada") == 2
    sessions.start(users.get("bob"))
    clock.advance(LIFETIME + 601)  # expired, and the purge interval has passed
    fresh, _ = sessions.start(users.get("bob"))  # purges on the way
    assert count(db, "bob") == 1
    assert sessions.resolve(fresh) is not None
