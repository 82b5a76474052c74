"""store.users on real SQLite and PostgreSQL: inserting, reading, changing and counting."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from slipstream.errors import UserAlreadyExists
from slipstream.store import users as users_store
from slipstream.store.db import Database
from slipstream.store.tables import users

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def add(db: Database, username: str = "ada", email: str | None = None, **extra: object) -> None:
    with db.write() as conn:
        users_store.insert_user(
            conn,
            username=username,
            email=email or f"{username}@example.com",
            first_name="Ada",
            last_name="Lovelace",
            password_hash=f"hash-of-{username}",
            roles=extra.pop("roles", ["Admin"]),  # type: ignore[arg-type]
            now=NOW,
        )


def test_insert_returns_the_user_without_its_hash(db: Database) -> None:
    with db.write() as conn:
        user = users_store.insert_user(
            conn,
            username="ada",
            email="ada@example.com",
            first_name="Ada",
            last_name="Lovelace",
            password_hash="$argon2id$stored",
            roles=["Admin", "User"],
            now=NOW,
        )
    assert user.username == "ada"
    assert user.roles == ("Admin", "User")
    assert user.active
    assert (user.created_on, user.changed_on, user.last_login) == (NOW, NOW, None)
    assert (user.login_count, user.failed_login_count) == (0, 0)
    assert not hasattr(user, "password_hash")
    with db.read() as conn:
        assert users_store.get_user(conn, "ada") == user
        assert users_store.password_hash_of(conn, "ada") == (user, "$argon2id$stored")
        assert users_store.get_user(conn, "nobody") is None
        assert users_store.password_hash_of(conn, "nobody") is None


def test_a_taken_username_or_email_is_refused_and_the_transaction_goes_on(db: Database) -> None:
    add(db, "ada")
    with db.write() as conn:
        with pytest.raises(UserAlreadyExists) as by_name:
            users_store.insert_user(
                conn,
                username="ada",
                email="other@example.com",
                first_name="",
                last_name="",
                password_hash="h",
                roles=[],
                now=NOW,
            )
        assert (by_name.value.username, by_name.value.email) == ("ada", None)
        with pytest.raises(UserAlreadyExists) as by_email:
            users_store.insert_user(
                conn,
                username="grace",
                email="ada@example.com",
                first_name="",
                last_name="",
                password_hash="h",
                roles=[],
                now=NOW,
            )
        assert by_email.value.email == "ada@example.com"
        # The savepoint kept the transaction usable (PostgreSQL aborts it otherwise).
        assert users_store.get_user(conn, "ada") is not None
    with db.read() as conn:
        assert users_store.list_users(conn)[1] == 1


def test_list_pages_in_creation_order_with_the_total(db: Database) -> None:
    for name in ["c", "a", "b"]:
        add(db, name)
    with db.read() as conn:
        everyone, total = users_store.list_users(conn)
        page, same_total = users_store.list_users(conn, limit=1, offset=1)
    assert [u.username for u in everyone] == ["c", "a", "b"]
    assert total == same_total == 3
    assert [u.username for u in page] == ["a"]


def test_changes_report_whether_the_user_existed(db: Database) -> None:
    add(db, "ada")
    with db.write() as conn:
        assert users_store.set_password_hash(conn, "ada", "new-hash", LATER)
        assert users_store.set_roles(conn, "ada", ["Viewer"], LATER)
        assert users_store.set_active(conn, "ada", False, LATER)
        assert not users_store.set_password_hash(conn, "nobody", "h", LATER)
        assert not users_store.set_roles(conn, "nobody", [], LATER)
        assert not users_store.set_active(conn, "nobody", False, LATER)
    with db.read() as conn:
        found = users_store.password_hash_of(conn, "ada")
    assert found is not None
    user, stored = found
    assert (stored, user.roles, user.active, user.changed_on) == (
        "new-hash",
        ("Viewer",),
        False,
        LATER,
    )
    assert user.created_on == NOW
    with db.write() as conn:
        assert users_store.delete_user(conn, "ada")
        assert not users_store.delete_user(conn, "ada")
        assert users_store.get_user(conn, "ada") is None


def test_get_user_for_update_reads_the_same_user(db: Database) -> None:
    add(db, "ada")
    with db.write() as conn:
        locked = users_store.get_user(conn, "ada", for_update=True)
        assert locked == users_store.get_user(conn, "ada")


def test_record_login_counts_successes_and_failure_streaks(db: Database) -> None:
    add(db, "ada")
    with db.write() as conn:
        users_store.record_login(conn, "ada", success=False, now=NOW)
        users_store.record_login(conn, "ada", success=False, now=NOW)
    with db.read() as conn:
        user = users_store.get_user(conn, "ada")
    assert user is not None
    assert (user.failed_login_count, user.login_count, user.last_login) == (2, 0, None)
    with db.write() as conn:
        users_store.record_login(conn, "ada", success=True, now=LATER)
        users_store.record_login(conn, "nobody", success=True, now=LATER)  # no row: no-op
    with db.read() as conn:
        user = users_store.get_user(conn, "ada")
        row = conn.execute(select(users.c.changed_on)).one()
    assert user is not None
    assert (user.failed_login_count, user.login_count, user.last_login) == (0, 1, LATER)
    assert row.changed_on == NOW  # signing in is not a change to the account
