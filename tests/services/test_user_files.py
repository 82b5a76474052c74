"""services.user_files' import on real SQLite and PostgreSQL: cached sign-ins see the imported
roles at once, and a refusal met while writing leaves every user as they were."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipstream.bootstrap import Accounts, account_services
from slipstream.clock import FrozenClock
from slipstream.errors import UserAlreadyExists
from slipstream.services.user_files import UserEntry
from slipstream.store.db import Database

PASSWORD = "tr0ub4dor&3-horse"


@pytest.fixture
def accounts(db: Database) -> Accounts:
    return account_services(db, FrozenClock(datetime(2026, 3, 1, tzinfo=UTC)))


def make(accounts: Accounts, username: str) -> None:
    accounts.users.create(
        username=username,
        email=f"{username}@example.com",
        first_name=username,
        last_name="Smith",
        role="Viewer",
        password=PASSWORD,
    )


def entry(username: str, email: str, *roles: str) -> UserEntry:
    return UserEntry(username, email, username, "Smith", roles or ("Viewer",))


def test_an_update_ends_cached_sign_ins(accounts: Accounts) -> None:
    make(accounts, "ada")
    cached = accounts.sign_ins.authenticate("ada", PASSWORD)
    assert cached is not None and cached.roles == ("Viewer",)
    result = accounts.user_files.import_users([entry("ada", "ada@example.com", "Op")])
    assert (result.created, result.updated, result.unchanged) == ([], ["ada"], [])
    again = accounts.sign_ins.authenticate("ada", PASSWORD)
    assert again is not None and again.roles == ("Op",)


def test_a_conflict_while_writing_changes_nothing(accounts: Accounts) -> None:
    make(accounts, "ada")
    make(accounts, "bob")
    before = accounts.users.list_users(limit=None)
    # Swapping two emails passes every check but collides on the first update.
    swap = [
        entry("ada", "bob@example.com", "Op"),
        entry("bob", "ada@example.com"),
        entry("cy", "c@x"),
    ]
    with pytest.raises(UserAlreadyExists):
        accounts.user_files.import_users(swap)
    assert accounts.users.list_users(limit=None) == before
