"""services.sign_in on real SQLite and PostgreSQL: checking passwords, the cache of verified
credentials (its life, its rechecks against the stored row, its bounds), peeking without I/O,
recording sign-ins, and re-hashing outdated hashes."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from slipstream.auth.passwords import verify_password
from slipstream.clock import FrozenClock
from slipstream.services import sign_in as sign_in_module
from slipstream.services.sign_in import SignInService
from slipstream.services.users import UserService
from slipstream.store import users as users_store
from slipstream.store.db import Database

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "tr0ub4dor&3-horse"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def sign_ins(db: Database, clock: FrozenClock) -> SignInService:
    return SignInService(db, clock=clock, cache_ttl=60)


@pytest.fixture
def users(db: Database, clock: FrozenClock, sign_ins: SignInService) -> UserService:
    return UserService(db, clock=clock, sign_ins=sign_ins)


def make(users: UserService, username: str = "ada", role: str = "Admin") -> None:
    users.create(
        username=username,
        email=f"{username}@example.com",
        first_name="Ada",
        last_name="Lovelace",
        role=role,
        password=PASSWORD,
    )


def test_authenticate_accepts_the_password_only(
    users: UserService, sign_ins: SignInService
) -> None:
    make(users)
    user = sign_ins.authenticate("ada", PASSWORD)
    assert user is not None and user.username == "ada"
    assert sign_ins.authenticate("ada", PASSWORD + "x") is None
    assert sign_ins.authenticate("ada", "") is None
    assert sign_ins.authenticate("nobody", PASSWORD) is None
    assert sign_ins.authenticate("", PASSWORD) is None


def test_the_cache_makes_repeat_checks_much_faster(
    users: UserService, sign_ins: SignInService
) -> None:
    # A relative check, not a timed target: 20 cached checks together must take less than
    # 1/20 of the one check that verified the argon2id hash.
    make(users)
    started = time.perf_counter()
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    uncached = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(20):
        assert sign_ins.authenticate("ada", PASSWORD) is not None
    cached_twenty = time.perf_counter() - started
    assert cached_twenty * 20 < uncached, (uncached, cached_twenty)


def test_cached_entries_expire_after_the_ttl(
    users: UserService, sign_ins: SignInService, db: Database, clock: FrozenClock
) -> None:
    make(users)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    # Another process changes the password behind this service's back...
    with db.write() as conn:
        users_store.set_password_hash(conn, "ada", "$argon2id$elsewhere", START)
    clock.advance(4)
    assert sign_ins.authenticate("ada", PASSWORD) is not None  # ...not seen at once,
    clock.advance(1)
    assert sign_ins.authenticate("ada", PASSWORD) is None  # but at the next recheck (5 s)


def test_a_verified_password_is_checked_again_after_the_ttl(
    users: UserService, sign_ins: SignInService, clock: FrozenClock
) -> None:
    make(users)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    clock.advance(59)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    clock.advance(1)
    assert sign_ins.peek("ada", PASSWORD) is None  # the full argon2id check is due again
    assert sign_ins.authenticate("ada", PASSWORD) is not None


def test_sign_ins_are_recorded_at_most_once_per_ttl_window(
    users: UserService, sign_ins: SignInService, clock: FrozenClock
) -> None:
    make(users)
    for _ in range(5):
        assert sign_ins.authenticate("ada", PASSWORD) is not None
    user = users.get("ada")
    assert (user.login_count, user.last_login) == (1, START)
    clock.advance(30)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    assert users.get("ada").login_count == 1
    clock.advance(30)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    user = users.get("ada")
    assert (user.login_count, user.last_login) == (2, clock.now())


def test_failed_sign_ins_are_counted_each_time(users: UserService, sign_ins: SignInService) -> None:
    make(users)
    for _ in range(3):
        assert sign_ins.authenticate("ada", "wrong") is None
    assert users.get("ada").failed_login_count == 3
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    assert users.get("ada").failed_login_count == 0


def test_the_cache_is_bounded(db: Database, clock: FrozenClock) -> None:
    sign_ins = SignInService(db, clock=clock, cache_size=1)
    users = UserService(db, clock=clock, sign_ins=sign_ins)
    make(users, "ada")
    make(users, "grace")
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    assert sign_ins.authenticate("grace", PASSWORD) is not None
    assert len(sign_ins._verified) == 1


def test_the_cache_holds_no_password(users: UserService, sign_ins: SignInService) -> None:
    make(users)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    (key,) = sign_ins._verified
    assert PASSWORD.encode() not in key and len(key) == 32


def test_an_outdated_hash_is_upgraded_on_sign_in(
    users: UserService, sign_ins: SignInService, db: Database
) -> None:
    from argon2 import PasswordHasher

    make(users)
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    with db.write() as conn:
        users_store.set_password_hash(conn, "ada", weak, START)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    with db.read() as conn:
        found = users_store.password_hash_of(conn, "ada")
    assert found is not None and found[1] != weak and found[1].startswith("$argon2id$")


def test_peek_answers_only_from_a_fresh_cache_entry(
    users: UserService, sign_ins: SignInService, clock: FrozenClock
) -> None:
    make(users)
    assert sign_ins.peek("ada", PASSWORD) is None  # never verified: ask authenticate
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    peeked = sign_ins.peek("ada", PASSWORD)
    assert peeked is not None and peeked.username == "ada"
    assert sign_ins.peek("ada", "wrong") is None
    users.reset_password("ada", "n3w-secret-pass")
    assert sign_ins.peek("ada", PASSWORD) is None  # the change forgot the entry
    assert sign_ins.authenticate("ada", "n3w-secret-pass") is not None
    clock.advance(61)
    assert sign_ins.peek("ada", "n3w-secret-pass") is None  # expired, and a login is due


def test_a_change_made_by_another_process_is_seen_within_the_recheck(
    db: Database, clock: FrozenClock
) -> None:
    server = SignInService(db, clock=clock, cache_ttl=60, recheck_after=5)
    # Another process: its changes cannot reach our cache.
    cli = UserService(db, clock=clock, sign_ins=SignInService(db, clock=clock))
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
    server = SignInService(db, clock=clock, cache_ttl=60, recheck_after=5)
    cli = UserService(db, clock=clock, sign_ins=SignInService(db, clock=clock))
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

    monkeypatch.setattr(sign_in_module, "verify_password", counted)
    user = server.authenticate("ada", PASSWORD)
    assert checks == []  # a row read, not an argon2id check
    assert user is not None and set(user.roles) == {"Admin", "Viewer"}
    assert server.peek("ada", PASSWORD) is not None
