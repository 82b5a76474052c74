"""services.users on real SQLite and PostgreSQL: creating, changing and deleting users and
their roles, and every change ending the user's cached sign-ins in this process."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import String, Text, select

from slipstream.clock import FrozenClock
from slipstream.errors import InvalidInputError, UserAlreadyExists, UserNotFound
from slipstream.services.sign_in import SignInService
from slipstream.services.users import UserService
from slipstream.store.db import Database
from slipstream.store.tables import users

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "tr0ub4dor&3-horse"


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def sign_ins(db: Database, clock: FrozenClock) -> SignInService:
    return SignInService(db, clock=clock, cache_ttl=60)


@pytest.fixture
def service(db: Database, clock: FrozenClock, sign_ins: SignInService) -> UserService:
    return UserService(db, clock=clock, sign_ins=sign_ins)


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


def test_an_inactive_user_never_authenticates(
    service: UserService, sign_ins: SignInService
) -> None:
    make(service)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    disabled = service.set_active("ada", False)
    assert not disabled.active
    assert sign_ins.authenticate("ada", PASSWORD) is None  # the cached sign-in is gone too
    assert service.set_active("ada", True).active
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    with pytest.raises(UserNotFound):
        service.set_active("nobody", False)


def test_reset_password_ends_the_old_password_at_once(
    service: UserService, sign_ins: SignInService
) -> None:
    make(service)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    service.reset_password("ada", "new-password")
    assert sign_ins.authenticate("ada", PASSWORD) is None
    assert sign_ins.authenticate("ada", "new-password") is not None
    with pytest.raises(InvalidInputError):
        service.reset_password("ada", "")
    with pytest.raises(UserNotFound):
        service.reset_password("nobody", "x")


def test_deleting_a_user_ends_their_cached_sign_in(
    service: UserService, sign_ins: SignInService
) -> None:
    make(service)
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    service.delete("ada")
    assert sign_ins.authenticate("ada", PASSWORD) is None
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
    assert sign_ins.authenticate("ada", PASSWORD) is None


def test_role_changes_are_seen_by_the_next_sign_in(
    service: UserService, sign_ins: SignInService
) -> None:
    make(service, role="Viewer")
    first = sign_ins.authenticate("ada", PASSWORD)
    assert first is not None and first.roles == ("Viewer",)
    assert service.add_role("ada", "User").roles == ("Viewer", "User")
    second = sign_ins.authenticate("ada", PASSWORD)
    assert second is not None and second.roles == ("Viewer", "User")
    assert service.remove_role("ada", "Viewer").roles == ("User",)
    third = sign_ins.authenticate("ada", PASSWORD)
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


def test_list_users_pages(service: UserService) -> None:
    for name in ["a", "b", "c"]:
        make(service, name, role="Viewer")
    page, total = service.list_users(limit=2, offset=1)
    assert ([u.username for u in page], total) == (["b", "c"], 3)
    with pytest.raises(InvalidInputError):
        service.list_users(limit=-1)


def test_no_password_reaches_the_logs(
    service: UserService, sign_ins: SignInService, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        make(service)
        sign_ins.authenticate("ada", PASSWORD)
        sign_ins.authenticate("ada", "wrong-guess")
        service.reset_password("ada", "next-password")
    for secret in (PASSWORD, "wrong-guess", "next-password"):
        assert secret not in caplog.text


def test_keep_an_admin_refuses_leaving_no_active_admin(service: UserService) -> None:
    """The web UI's rule (opt-in): no change may leave no active Admin. The API and CLI
    keep Airflow's behaviour and allow it."""
    make(service, "ada", "Admin")
    make(service, "bob", "Viewer")
    with pytest.raises(InvalidInputError, match="ada is the only active Admin") as refused:
        service.set_roles("ada", ["Viewer"], keep_an_admin=True)
    assert refused.value.field == "roles"
    with pytest.raises(InvalidInputError, match="only active Admin") as refused:
        service.set_active("ada", False, keep_an_admin=True)
    assert refused.value.field == "active"
    with pytest.raises(InvalidInputError, match="only active Admin"):
        service.update("ada", roles=["User"], email="new@example.com", keep_an_admin=True)
    ada = service.get("ada")
    assert (ada.roles, ada.active, ada.email) == (("Admin",), True, "ada@example.com")
    # Changes that keep Admin, or to other users, pass.
    service.set_roles("ada", ["Admin", "Viewer"], keep_an_admin=True)
    service.set_active("bob", False, keep_an_admin=True)
    service.update("ada", first_name="A", keep_an_admin=True)
    # A disabled Admin does not count; a second active one does.
    service.set_roles("bob", ["Admin"])
    with pytest.raises(InvalidInputError, match="only active Admin"):
        service.set_active("ada", False, keep_an_admin=True)
    service.set_active("bob", True)
    service.set_active("ada", False, keep_an_admin=True)
    assert not service.get("ada").active
    # Without the rule (the API, the CLI), Airflow's behaviour: allowed.
    service.set_roles("bob", ["Viewer"])
    assert service.get("bob").roles == ("Viewer",)
