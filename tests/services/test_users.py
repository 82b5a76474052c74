"""services.users on real SQLite and PostgreSQL: creating users, signing in through the
credential cache, and every change that must end a cached sign-in."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import String, Text, select

from slipstream.auth.passwords import verify_password
from slipstream.clock import FrozenClock
from slipstream.errors import InvalidInputError, UserAlreadyExists, UserNotFound
from slipstream.services import users as users_service
from slipstream.services.users import UserService
from slipstream.store import users as users_store
from slipstream.store.db import Database
from slipstream.store.tables import users

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "tr0ub4dor&3-horse"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def service(db: Database, clock: FrozenClock) -> UserService:
    return UserService(db, clock=clock, cache_ttl=60)


def make(service: UserService, username: str = "ada", role: str = "Admin") -> None:
    service.create(
        username=username,
        email=f"{username}@example.com",
        first_name="Ada",
        last_name="Lovelace",
        role=role,
        password=PASSWORD,
    )


def test_create_stores_an_argon2id_hash_and_never_the_password(
    service: UserService, db: Database
) -> None:
    service.create(
        username="ada",
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        role="Admin",
        password=PASSWORD,
    )
    user = service.get("ada")
    assert (user.username, user.email, user.roles, user.active) == (
        "ada",
        "ada@example.com",
        ("Admin",),
        True,
    )
    assert user.created_on == START
    text_columns = [c for c in users.c if isinstance(c.type, String | Text)]
    with db.read() as conn:
        row = conn.execute(select(users)).one()._mapping
        stored_hash = row["password_hash"]
        every_text = [str(row[c.name]) for c in text_columns] + [str(row["roles"])]
    assert stored_hash.startswith("$argon2id$")
    assert not any(PASSWORD in value for value in every_text)


def test_create_refuses_an_unknown_role_in_airflows_words(service: UserService) -> None:
    with pytest.raises(InvalidInputError) as refused:
        make(service, role="Superuser")
    assert refused.value.field == "role"
    assert str(refused.value) == (
        "Superuser is not a valid role."
        " Valid roles are: ['Admin', 'Op', 'Public', 'User', 'Viewer']"
    )
    assert service.list_users() == ([], 0)


@pytest.mark.parametrize(
    ("field", "values"),
    [
        ("username", {"username": ""}),
        ("username", {"username": "  "}),
        ("password", {"password": ""}),
        ("email", {"email": ""}),
        ("username", {"username": "x" * 257}),
    ],
)
def test_create_refuses_empty_or_oversized_fields_naming_them(
    service: UserService, field: str, values: dict[str, str]
) -> None:
    fields = {
        "username": "ada",
        "email": "ada@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "role": "User",
        "password": PASSWORD,
        **values,
    }
    with pytest.raises(InvalidInputError) as refused:
        service.create(**fields)
    assert refused.value.field == field


def test_a_taken_username_or_email_is_a_conflict(service: UserService) -> None:
    make(service, "ada")
    with pytest.raises(UserAlreadyExists):
        make(service, "ada")
    with pytest.raises(UserAlreadyExists) as by_email:
        service.create(
            username="grace",
            email="ada@example.com",
            first_name="",
            last_name="",
            role="User",
            password=PASSWORD,
        )
    assert by_email.value.email == "ada@example.com"


def test_authenticate_accepts_the_password_only(service: UserService) -> None:
    make(service)
    user = service.authenticate("ada", PASSWORD)
    assert user is not None and user.username == "ada"
    assert service.authenticate("ada", PASSWORD + "x") is None
    assert service.authenticate("ada", "") is None
    assert service.authenticate("nobody", PASSWORD) is None
    assert service.authenticate("", PASSWORD) is None


def test_an_inactive_user_never_authenticates(service: UserService) -> None:
    make(service)
    assert service.authenticate("ada", PASSWORD) is not None
    disabled = service.set_active("ada", False)
    assert not disabled.active
    assert service.authenticate("ada", PASSWORD) is None  # the cached sign-in is gone too
    assert service.set_active("ada", True).active
    assert service.authenticate("ada", PASSWORD) is not None
    with pytest.raises(UserNotFound):
        service.set_active("nobody", False)


def test_the_cache_makes_repeat_checks_much_faster(service: UserService) -> None:
    # A relative check, not a timed target: 20 cached checks together must take less than
    # 1/20 of the one check that verified the argon2id hash.
    make(service)
    started = time.perf_counter()
    assert service.authenticate("ada", PASSWORD) is not None
    uncached = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(20):
        assert service.authenticate("ada", PASSWORD) is not None
    cached_twenty = time.perf_counter() - started
    assert cached_twenty * 20 < uncached, (uncached, cached_twenty)


def test_reset_password_ends_the_old_password_at_once(service: UserService) -> None:
    make(service)
    assert service.authenticate("ada", PASSWORD) is not None
    service.reset_password("ada", "new-password")
    assert service.authenticate("ada", PASSWORD) is None
    assert service.authenticate("ada", "new-password") is not None
    with pytest.raises(InvalidInputError):
        service.reset_password("ada", "")
    with pytest.raises(UserNotFound):
        service.reset_password("nobody", "x")


def test_deleting_a_user_ends_their_cached_sign_in(service: UserService) -> None:
    make(service)
    assert service.authenticate("ada", PASSWORD) is not None
    service.delete("ada")
    assert service.authenticate("ada", PASSWORD) is None
    with pytest.raises(UserNotFound):
        service.get("ada")
    with pytest.raises(UserNotFound):
        service.delete("ada")
    # Re-created under the same name with another password: the old password stays dead.
    service.create(
        username="ada",
        email="ada@example.com",
        first_name="",
        last_name="",
        role="User",
        password="another",
    )
    assert service.authenticate("ada", PASSWORD) is None


def test_role_changes_are_seen_by_the_next_sign_in(service: UserService) -> None:
    make(service, role="Viewer")
    first = service.authenticate("ada", PASSWORD)
    assert first is not None and first.roles == ("Viewer",)
    assert service.add_role("ada", "User").roles == ("Viewer", "User")
    second = service.authenticate("ada", PASSWORD)
    assert second is not None and second.roles == ("Viewer", "User")
    assert service.remove_role("ada", "Viewer").roles == ("User",)
    third = service.authenticate("ada", PASSWORD)
    assert third is not None and third.roles == ("User",)


def test_role_changes_are_checked(service: UserService) -> None:
    make(service, role="Viewer")
    with pytest.raises(InvalidInputError, match="already a member"):
        service.add_role("ada", "Viewer")
    with pytest.raises(InvalidInputError, match="not a valid role"):
        service.add_role("ada", "Superuser")
    with pytest.raises(InvalidInputError, match="not a member"):
        service.remove_role("ada", "Admin")
    with pytest.raises(UserNotFound):
        service.add_role("nobody", "User")
    with pytest.raises(InvalidInputError, match="Unknown roles: 'X', 'Y'") as unknown:
        service.set_roles("ada", ["User", "X", "Y"])
    assert unknown.value.field == "roles"
    assert service.set_roles("ada", ["Op", "User", "Op"]).roles == ("Op", "User")
    assert service.get("ada").roles == ("Op", "User")


def test_cached_entries_expire_after_the_ttl(
    service: UserService, db: Database, clock: FrozenClock
) -> None:
    make(service)
    assert service.authenticate("ada", PASSWORD) is not None
    # Another process changes the password behind this service's back...
    with db.write() as conn:
        users_store.set_password_hash(conn, "ada", "$argon2id$elsewhere", START)
    clock.advance(4)
    assert service.authenticate("ada", PASSWORD) is not None  # ...not seen at once,
    clock.advance(1)
    assert service.authenticate("ada", PASSWORD) is None  # but at the next recheck (5 s)


def test_a_verified_password_is_checked_again_after_the_ttl(
    service: UserService, clock: FrozenClock
) -> None:
    make(service)
    assert service.authenticate("ada", PASSWORD) is not None
    clock.advance(59)
    assert service.authenticate("ada", PASSWORD) is not None
    clock.advance(1)
    assert service.peek("ada", PASSWORD) is None  # the full argon2id check is due again
    assert service.authenticate("ada", PASSWORD) is not None


def test_sign_ins_are_recorded_at_most_once_per_ttl_window(
    service: UserService, clock: FrozenClock
) -> None:
    make(service)
    for _ in range(5):
        assert service.authenticate("ada", PASSWORD) is not None
    user = service.get("ada")
    assert (user.login_count, user.last_login) == (1, START)
    clock.advance(30)
    assert service.authenticate("ada", PASSWORD) is not None
    assert service.get("ada").login_count == 1
    clock.advance(30)
    assert service.authenticate("ada", PASSWORD) is not None
    user = service.get("ada")
    assert (user.login_count, user.last_login) == (2, clock.now())


def test_failed_sign_ins_are_counted_each_time(service: UserService) -> None:
    make(service)
    for _ in range(3):
        assert service.authenticate("ada", "wrong") is None
    assert service.get("ada").failed_login_count == 3
    assert service.authenticate("ada", PASSWORD) is not None
    assert service.get("ada").failed_login_count == 0


def test_the_cache_is_bounded(db: Database, clock: FrozenClock) -> None:
    service = UserService(db, clock=clock, cache_size=1)
    make(service, "ada")
    make(service, "grace")
    assert service.authenticate("ada", PASSWORD) is not None
    assert service.authenticate("grace", PASSWORD) is not None
    assert len(service._verified) == 1


def test_the_cache_holds_no_password(service: UserService) -> None:
    make(service)
    assert service.authenticate("ada", PASSWORD) is not None
    (key,) = service._verified
    assert PASSWORD.encode() not in key and len(key) == 32


def test_an_outdated_hash_is_upgraded_on_sign_in(service: UserService, db: Database) -> None:
    from argon2 import PasswordHasher

    make(service)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with db.write() as conn:
        users_store.set_password_hash(conn, "ada", weak, START)
    assert service.authenticate("ada", PASSWORD) is not None
    with db.read() as conn:
        found = users_store.password_hash_of(conn, "ada")
    assert found is not None and found[1] != weak and found[1].startswith("$argon2id$")


def test_list_users_pages(service: UserService) -> None:
    for name in ["a", "b", "c"]:
        make(service, name, role="Viewer")
    page, total = service.list_users(limit=2, offset=1)
    assert ([u.username for u in page], total) == (["b", "c"], 3)
    with pytest.raises(InvalidInputError):
        service.list_users(limit=-1)


def test_no_password_reaches_the_logs(
    service: UserService, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        make(service)
        service.authenticate("ada", PASSWORD)
        service.authenticate("ada", "wrong-guess")
        service.reset_password("ada", "next-password")
    for secret in (PASSWORD, "wrong-guess", "next-password"):
        assert secret not in caplog.text


def test_peek_answers_only_from_a_fresh_cache_entry(
    service: UserService, clock: FrozenClock
) -> None:
    make(service)
    assert service.peek("ada", PASSWORD) is None  # never verified: ask authenticate
    assert service.authenticate("ada", PASSWORD) is not None
    peeked = service.peek("ada", PASSWORD)
    assert peeked is not None and peeked.username == "ada"
    assert service.peek("ada", "wrong") is None
    service.reset_password("ada", "n3w-secret-pass")
    assert service.peek("ada", PASSWORD) is None  # the change forgot the entry
    assert service.authenticate("ada", "n3w-secret-pass") is not None
    clock.advance(61)
    assert service.peek("ada", "n3w-secret-pass") is None  # expired, and a login is due


def test_a_change_made_by_another_process_is_seen_within_the_recheck(
    db: Database, clock: FrozenClock
) -> None:
    server = UserService(db, clock=clock, cache_ttl=60, recheck_after=5)
    cli = UserService(db, clock=clock)  # another process: its changes cannot reach our cache
    make(cli)
    make(cli, "bob", role="Viewer")
    assert server.authenticate("ada", PASSWORD) is not None
    assert server.authenticate("bob", PASSWORD) is not None
    cli.reset_password("ada", "n3w-secret-pass")
    cli.set_active("bob", False)
    cli.add_role("ada", "Viewer")
    assert server.authenticate("ada", PASSWORD) is not None  # within the recheck window
    clock.advance(5)
    assert server.authenticate("ada", PASSWORD) is None
    assert server.peek("ada", PASSWORD) is None
    assert server.authenticate("bob", PASSWORD) is None
    fresh = server.authenticate("ada", "n3w-secret-pass")
    assert fresh is not None and set(fresh.roles) == {"Admin", "Viewer"}


def test_an_unchanged_row_keeps_the_cached_sign_in_and_refreshes_roles(
    db: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = UserService(db, clock=clock, cache_ttl=60, recheck_after=5)
    cli = UserService(db, clock=clock)
    make(cli)
    assert server.authenticate("ada", PASSWORD) is not None
    cli.add_role("ada", "Viewer")
    clock.advance(6)
    # Count the argon2id checks (each still runs) rather than time them: a timing bound fails
    # on a busy machine, where tests run in parallel.
    checks: list[str] = []

    def counted(stored_hash: str, plain: str) -> bool:
        checks.append(stored_hash)
        return verify_password(stored_hash, plain)

    monkeypatch.setattr(users_service, "verify_password", counted)
    user = server.authenticate("ada", PASSWORD)
    assert checks == []  # a row read, not an argon2id check
    assert user is not None and set(user.roles) == {"Admin", "Viewer"}
    assert server.peek("ada", PASSWORD) is not None
