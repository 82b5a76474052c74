"""store.roles (and the role-membership helpers of store.users) on real SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from slipstream.errors import RoleAlreadyExists, UserAlreadyExists
from slipstream.store import roles as roles_store
from slipstream.store import users as users_store
from slipstream.store.db import Database
from slipstream.store.tables import roles

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=5)


def add_user(db: Database, username: str, held: list[str]) -> None:
    with db.write() as conn:
        users_store.insert_user(
            conn,
            username=username,
            email=f"{username}@example.com",
            first_name="A",
            last_name="B",
            password_hash="x",
            roles=held,
            now=NOW,
        )


def test_insert_normalizes_pairs_and_reads_back(db: Database) -> None:
    pairs = [("can_read", "DAG:b"), ("can_read", "DAG:a"), ("can_read", "DAG:b")]
    with db.write() as conn:
        role = roles_store.insert_role(conn, "etl", pairs, NOW)
    assert role.permissions == (("can_read", "DAG:a"), ("can_read", "DAG:b"))
    assert not role.is_builtin and role.created_on == NOW
    with db.read() as conn:
        assert roles_store.get_role(conn, "etl") == role
        stored = conn.execute(select(roles.c.permissions)).scalar_one()
    assert stored == [["can_read", "DAG:a"], ["can_read", "DAG:b"]]


def test_a_duplicate_name_is_refused_and_the_transaction_stays_usable(db: Database) -> None:
    with db.write() as conn:
        roles_store.insert_role(conn, "etl", [], NOW)
    with db.write() as conn:
        with pytest.raises(RoleAlreadyExists):
            roles_store.insert_role(conn, "etl", [("can_read", "DAGs")], NOW)
        roles_store.insert_role(conn, "ops", [], NOW)  # still usable after the conflict
    with db.read() as conn:
        assert [r.name for r in roles_store.list_roles(conn)] == ["etl", "ops"]
        assert roles_store.get_role(conn, "etl").permissions == ()  # type: ignore[union-attr]


def test_update_renames_and_replaces_pairs(db: Database) -> None:
    with db.write() as conn:
        roles_store.insert_role(conn, "etl", [("can_read", "DAGs")], NOW)
        roles_store.insert_role(conn, "ops", [], NOW)
    with db.write() as conn:
        updated = roles_store.update_role(
            conn, "etl", LATER, new_name="etl2", pairs=[("can_edit", "DAG:a")]
        )
        assert roles_store.update_role(conn, "missing", LATER) is None
    assert updated is not None
    assert (updated.name, updated.permissions, updated.changed_on) == (
        "etl2",
        (("can_edit", "DAG:a"),),
        LATER,
    )
    with db.write() as conn, pytest.raises(RoleAlreadyExists):
        roles_store.update_role(conn, "etl2", LATER, new_name="ops")
    with db.read() as conn:
        assert roles_store.get_role(conn, "etl") is None
        assert roles_store.get_role(conn, "etl2") is not None


def test_delete(db: Database) -> None:
    with db.write() as conn:
        roles_store.insert_role(conn, "etl", [], NOW)
    with db.write() as conn:
        assert roles_store.delete_role(conn, "etl")
        assert not roles_store.delete_role(conn, "etl")


def test_replace_role_renames_or_removes_it_from_holders_only(db: Database) -> None:
    add_user(db, "ada", ["Viewer", "etl"])
    add_user(db, "bob", ["etl", "etl2"])
    add_user(db, "cy", ["Viewer"])
    with db.write() as conn:
        assert users_store.replace_role(conn, "etl", "etl2", LATER) == ["ada", "bob"]
    with db.read() as conn:
        assert users_store.get_user(conn, "ada").roles == ("Viewer", "etl2")  # type: ignore[union-attr]
        assert users_store.get_user(conn, "bob").roles == ("etl2",)  # type: ignore[union-attr]
        cy = users_store.get_user(conn, "cy")
    assert cy is not None and cy.changed_on == NOW
    with db.write() as conn:
        assert sorted(users_store.replace_role(conn, "etl2", None, LATER)) == ["ada", "bob"]
    with db.read() as conn:
        assert users_store.get_user(conn, "bob").roles == ()  # type: ignore[union-attr]


def test_update_profile_and_its_conflicts(db: Database) -> None:
    add_user(db, "ada", ["Viewer"])
    add_user(db, "bob", ["Viewer"])
    with db.write() as conn:
        user = users_store.update_profile(
            conn, "ada", LATER, {"username": "ada2", "first_name": "Ada", "roles": ["Op"]}
        )
    assert user is not None
    assert (user.username, user.first_name, user.roles, user.changed_on) == (
        "ada2",
        "Ada",
        ("Op",),
        LATER,
    )
    with db.write() as conn:
        with pytest.raises(UserAlreadyExists) as taken:
            users_store.update_profile(conn, "ada2", LATER, {"username": "bob"})
        assert taken.value.email is None
        with pytest.raises(UserAlreadyExists) as used:
            users_store.update_profile(conn, "ada2", LATER, {"email": "bob@example.com"})
        assert used.value.email == "bob@example.com"
        assert users_store.update_profile(conn, "nobody", LATER, {"first_name": "x"}) is None


def test_list_users_orders_by_a_column(db: Database) -> None:
    add_user(db, "cy", [])
    add_user(db, "ada", [])
    add_user(db, "bob", [])
    with db.read() as conn:
        by_name, total = users_store.list_users(conn, order_by="username")
        by_id_desc, _ = users_store.list_users(conn, order_by="id", descending=True, limit=2)
    assert total == 3
    assert [u.username for u in by_name] == ["ada", "bob", "cy"]
    assert [u.username for u in by_id_desc] == ["bob", "ada"]
