"""services.roles on real SQLite and PostgreSQL: built-in roles stay read-only, custom roles are
validated, renames and deletes reach the users holding them, and `role_pairs` is cached."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipstream.auth.permissions import BUILTIN_ROLE_PAIRS
from slipstream.bootstrap import Accounts, account_services
from slipstream.clock import FrozenClock
from slipstream.errors import InvalidInputError, RoleAlreadyExists, RoleNotFound
from slipstream.services.roles import RoleService
from slipstream.services.sign_in import SignInService
from slipstream.services.users import UserService
from slipstream.store.db import Database

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
PASSWORD = "tr0ub4dor&3-horse"
READ_A = ("can_read", "DAG:a")


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(START)


@pytest.fixture
def accounts(db: Database, clock: FrozenClock) -> Accounts:
    return account_services(db, clock)


@pytest.fixture
def roles(accounts: Accounts) -> RoleService:
    return accounts.roles


@pytest.fixture
def users(accounts: Accounts) -> UserService:
    return accounts.users


@pytest.fixture
def sign_ins(accounts: Accounts) -> SignInService:
    return accounts.sign_ins


def make_user(users: UserService, username: str, role: str) -> None:
    users.create(
        username=username,
        email=f"{username}@example.com",
        first_name="A",
        last_name="B",
        role=role,
        password=PASSWORD,
    )


def test_builtin_roles_are_listed_from_code_and_read_only(roles: RoleService) -> None:
    admin = roles.get("Admin")
    assert admin.is_builtin and set(admin.permissions) == BUILTIN_ROLE_PAIRS["Admin"]
    found, total = roles.list_roles()
    assert [r.name for r in found] == ["Admin", "Op", "Public", "User", "Viewer"]
    assert total == 5
    for change in (
        lambda: roles.add_permissions("Viewer", [("can_edit", "DAGs")]),
        lambda: roles.remove_permissions("Admin", [("can_read", "DAGs")]),
        lambda: roles.update("Op", new_name="Operator"),
        lambda: roles.delete("User"),
    ):
        with pytest.raises(InvalidInputError, match="built in"):
            change()
    with pytest.raises(RoleAlreadyExists):
        roles.create("Admin")
    assert set(roles.get("Viewer").permissions) == BUILTIN_ROLE_PAIRS["Viewer"]


def test_create_validates_name_and_pairs_and_writes_nothing_when_refused(
    roles: RoleService,
) -> None:
    with pytest.raises(InvalidInputError, match="The specified action: 'can_fly'") as bad_verb:
        roles.create("etl", [READ_A, ("can_fly", "DAGs")])
    assert bad_verb.value.field == "action"
    with pytest.raises(InvalidInputError, match="The specified resource: 'Nope'") as bad_res:
        roles.create("etl", [("can_read", "Nope")])
    assert bad_res.value.field == "resource"
    with pytest.raises(InvalidInputError) as empty_dag:
        roles.create("etl", [("can_read", "DAG:  ")])
    assert empty_dag.value.field == "resource"
    with pytest.raises(InvalidInputError) as nul:
        roles.create("etl", [("can_read", "DAG:a\x00")])
    assert nul.value.field == "resource"
    for name in ("", "  ", " etl", "x" * 65, "e\x00tl"):
        with pytest.raises(InvalidInputError) as bad_name:
            roles.create(name)
        assert bad_name.value.field == "name"
    assert not roles.exists("etl")
    role = roles.create("etl", [READ_A, ("can_read", "DAG tag:finance"), READ_A])
    assert role.permissions == (("can_read", "DAG tag:finance"), READ_A)
    with pytest.raises(RoleAlreadyExists):
        roles.create("etl")


def test_add_and_remove_permissions_report_what_changed(roles: RoleService) -> None:
    roles.create("etl", [READ_A])
    role, added = roles.add_permissions("etl", [READ_A, ("can_edit", "DAG:a")])
    assert added == [("can_edit", "DAG:a")]
    assert role.permissions == (("can_edit", "DAG:a"), READ_A)
    role, removed = roles.remove_permissions("etl", [READ_A, ("can_read", "DAGs")])
    assert removed == [READ_A]
    assert role.permissions == (("can_edit", "DAG:a"),)
    with pytest.raises(RoleNotFound):
        roles.add_permissions("missing", [READ_A])


def test_list_pages_and_orders(roles: RoleService) -> None:
    roles.create("zeta")
    roles.create("alpha")
    page, total = roles.list_roles(limit=2, offset=1)
    assert total == 7
    assert [r.name for r in page] == ["Op", "Public"]  # by name, capitals first
    by_id, _ = roles.list_roles(order_by="role_id")
    assert [r.name for r in by_id] == ["Admin", "Public", "Viewer", "User", "Op", "zeta", "alpha"]
    backwards, _ = roles.list_roles(limit=1, descending=True)
    assert [r.name for r in backwards] == ["zeta"]
    with pytest.raises(InvalidInputError) as bad:
        roles.list_roles(order_by="permissions")
    assert bad.value.field == "order_by"


def test_nul_characters_are_refused_before_the_database(users: UserService) -> None:
    with pytest.raises(InvalidInputError) as refused:
        make_user(users, "a\x00b", "Viewer")
    assert refused.value.field == "username"
    make_user(users, "ada", "Viewer")
    with pytest.raises(InvalidInputError) as renamed:
        users.update("ada", first_name="A\x00")
    assert renamed.value.field == "first_name"


def test_users_may_hold_custom_roles(users: UserService, roles: RoleService) -> None:
    with pytest.raises(InvalidInputError, match="etl is not a valid role"):
        make_user(users, "ada", "etl")
    roles.create("etl", [READ_A])
    make_user(users, "ada", "etl")
    assert users.get("ada").roles == ("etl",)
    with pytest.raises(InvalidInputError, match="Unknown roles: 'nope'"):
        users.set_roles("ada", ["etl", "nope"])
    users.set_roles("ada", ["Viewer", "etl"])
    users.remove_role("ada", "etl")
    users.add_role("ada", "etl")
    assert users.get("ada").roles == ("Viewer", "etl")


def test_a_user_service_without_the_role_service_knows_only_builtin_roles(
    db: Database, clock: FrozenClock, roles: RoleService
) -> None:
    roles.create("etl")
    alone = UserService(db, clock=clock, sign_ins=SignInService(db, clock=clock))
    with pytest.raises(InvalidInputError):
        make_user(alone, "ada", "etl")


def test_rename_reaches_the_holders_and_their_cached_sign_ins(
    users: UserService, roles: RoleService, sign_ins: SignInService
) -> None:
    roles.create("etl", [READ_A])
    make_user(users, "ada", "etl")
    assert sign_ins.authenticate("ada", PASSWORD).roles == ("etl",)  # type: ignore[union-attr]
    renamed = roles.update("etl", new_name="pipelines", pairs=[("can_edit", "DAG:b")])
    assert (renamed.name, renamed.permissions) == ("pipelines", (("can_edit", "DAG:b"),))
    assert users.get("ada").roles == ("pipelines",)
    # The cached sign-in was dropped: the user read now carries the new name.
    assert sign_ins.authenticate("ada", PASSWORD).roles == ("pipelines",)  # type: ignore[union-attr]
    assert "etl" not in roles.role_pairs()
    assert roles.role_pairs()["pipelines"] == frozenset({("can_edit", "DAG:b")})
    roles.create("other")
    with pytest.raises(RoleAlreadyExists):
        roles.update("pipelines", new_name="other")
    with pytest.raises(RoleAlreadyExists):
        roles.update("pipelines", new_name="Admin")
    assert users.get("ada").roles == ("pipelines",)


def test_delete_takes_the_role_from_its_holders(
    users: UserService, roles: RoleService, sign_ins: SignInService
) -> None:
    roles.create("etl", [READ_A])
    make_user(users, "ada", "etl")
    make_user(users, "bob", "Viewer")
    assert sign_ins.authenticate("ada", PASSWORD) is not None
    assert roles.delete("etl") == ["ada"]
    assert users.get("ada").roles == ()
    assert sign_ins.authenticate("ada", PASSWORD).roles == ()  # type: ignore[union-attr]
    assert users.get("bob").roles == ("Viewer",)
    with pytest.raises(RoleNotFound):
        roles.delete("etl")
    # A role made later with the same name does not silently reach the old holders.
    roles.create("etl", [("can_read", "DAGs")])
    assert users.get("ada").roles == ()


def test_role_pairs_are_cached_and_changes_elsewhere_show_after_the_ttl(
    db: Database, clock: FrozenClock, roles: RoleService
) -> None:
    assert roles.role_pairs() == dict(BUILTIN_ROLE_PAIRS)
    # Through this service: seen at once.
    roles.create("etl", [READ_A])
    assert roles.role_pairs()["etl"] == frozenset({READ_A})
    # Through another process's service: seen when the cache expires.
    elsewhere = RoleService(db, clock=clock)
    elsewhere.add_permissions("etl", [("can_read", "DAG:b")])
    assert roles.role_pairs()["etl"] == frozenset({READ_A})
    clock.advance(4.9)
    assert roles.role_pairs()["etl"] == frozenset({READ_A})
    clock.advance(0.2)
    assert roles.role_pairs()["etl"] == frozenset({READ_A, ("can_read", "DAG:b")})
