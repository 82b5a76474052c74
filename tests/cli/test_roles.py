"""`slipstream roles ...` in-process against a real SQLite home: Airflow's shapes and messages."""

from __future__ import annotations

import json

import pytest

from slipstream.api.errors import ApiError
from slipstream.api.security import Principal
from slipstream.auth.permissions import grants_of
from slipstream.auth.roles import Action
from slipstream.bootstrap import account_services
from slipstream.clock import SystemClock
from slipstream.errors import DagNotFound
from slipstream.store.db import Database
from tests.cli.conftest import Cli


def listed(slipstream: Cli, *extra: str) -> list[dict[str, str]]:
    result = slipstream("roles", "list", "--output", "json", *extra)
    assert result.exit_code == 0, result.output
    rows: list[dict[str, str]] = json.loads(result.stdout)
    return rows


def test_create_several_and_list(slipstream: Cli) -> None:
    result = slipstream("roles", "create", "etl", "ops", "Admin")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Added 2 role(s)"
    assert "Role 'Admin' already exists" in result.stderr
    names = [row["name"] for row in listed(slipstream)]
    assert names == ["Admin", "Op", "Public", "User", "Viewer", "etl", "ops"]


def test_add_perms_takes_several_values_per_flag(slipstream: Cli) -> None:
    slipstream("roles", "create", "etl", "ops")
    result = slipstream(
        "roles", "add-perms", "etl", "ops",
        "-r", "DAG:a", "DAG tag:finance", "-a", "can_read", "can_edit",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Added can_read on DAG:a to role etl" in result.stdout
    assert result.stdout.strip().endswith("Added 8 permission(s)")
    again = slipstream("roles", "add-perms", "etl", "--resource", "DAG:a", "--action", "can_read")
    assert again.stdout.strip() == "Added 0 permission(s)"
    rows = [r for r in listed(slipstream, "--permission") if r["name"] == "etl"]
    assert rows == [
        {"name": "etl", "resource": "DAG tag:finance", "action": "can_edit,can_read"},
        {"name": "etl", "resource": "DAG:a", "action": "can_edit,can_read"},
    ]


def test_del_perms_with_and_without_actions(slipstream: Cli) -> None:
    slipstream("roles", "create", "etl")
    slipstream("roles", "add-perms", "etl", "-r", "DAG:a", "DAGs", "-a", "can_read", "can_edit")
    result = slipstream("roles", "del-perms", "etl", "-r", "DAGs", "-a", "can_edit")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Deleted can_edit on DAGs from role etl",
        "Deleted 1 permission(s)",
    ]
    result = slipstream("roles", "del-perms", "etl", "-r", "DAG:a")
    assert result.stdout.strip().endswith("Deleted 2 permission(s)")
    rows = [r for r in listed(slipstream, "-p") if r["name"] == "etl"]
    assert rows == [{"name": "etl", "resource": "DAGs", "action": "can_read"}]


def test_bad_input_changes_nothing(slipstream: Cli) -> None:
    slipstream("roles", "create", "etl")
    unknown_resource = slipstream("roles", "add-perms", "etl", "-r", "Nope", "-a", "can_read")
    assert unknown_resource.exit_code == 2
    assert "The specified resource: 'Nope' was not found" in unknown_resource.stderr
    unknown_action = slipstream("roles", "add-perms", "etl", "-r", "DAGs", "-a", "can_fly")
    assert unknown_action.exit_code == 2
    assert "The specified action: 'can_fly' was not found" in unknown_action.stderr
    # One unknown role among several: none is changed.
    missing = slipstream("roles", "add-perms", "etl", "nope", "-r", "DAGs", "-a", "can_read")
    assert missing.exit_code == 3
    assert "role 'nope' not found" in missing.stderr
    builtin = slipstream("roles", "add-perms", "etl", "Viewer", "-r", "DAGs", "-a", "can_edit")
    assert builtin.exit_code == 2
    assert "built in" in builtin.stderr
    assert [r for r in listed(slipstream, "-p") if r["name"] == "etl"] == []
    assert "can_edit" not in {
        r["action"] for r in listed(slipstream, "-p") if r["name"] == "Viewer"
    }


def test_delete_takes_the_role_from_users(slipstream: Cli) -> None:
    slipstream("roles", "create", "etl", "ops")
    created = slipstream(
        "users", "create", "-u", "ada", "-e", "a@x.org", "-f", "A", "-l", "L", "-r", "etl",
        "-p", "s3cret-Pa55",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    refused = slipstream("roles", "delete", "ops", "Admin")
    assert refused.exit_code == 2
    assert "ops" in [r["name"] for r in listed(slipstream)]
    result = slipstream("roles", "delete", "etl", "ops")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "Deleted 2 role(s)"
    assert "Role 'etl' was taken from: ada" in result.stderr
    users = json.loads(slipstream("users", "list", "-o", "json").stdout)
    assert users[0]["roles"] == []
    missing = slipstream("roles", "delete", "etl")
    assert missing.exit_code == 3


def test_users_add_role_accepts_a_custom_role(slipstream: Cli) -> None:
    slipstream(
        "users", "create", "-u", "ada", "-e", "a@x.org", "-f", "A", "-l", "L", "-r", "Viewer",
        "-p", "s3cret-Pa55",
    )  # fmt: skip
    refused = slipstream("users", "add-role", "-u", "ada", "-r", "etl")
    assert refused.exit_code == 2
    slipstream("roles", "create", "etl")
    added = slipstream("users", "add-role", "-u", "ada", "-r", "etl")
    assert added.exit_code == 0, added.output
    users = json.loads(slipstream("users", "list", "-o", "json").stdout)
    assert users[0]["roles"] == ["Viewer", "etl"]


def test_a_role_made_here_limits_its_user_to_one_dag(slipstream: Cli) -> None:
    """What the API's Security builds for a user holding a CLI-made role (the HTTP routes
    listing DAGs are checked in tests/api once they exist)."""
    slipstream("roles", "create", "only_a")
    slipstream(
        "roles", "add-perms", "only_a", "-r", "DAG:a", "-a", "can_read", "can_edit",
    )  # fmt: skip
    slipstream("roles", "add-perms", "only_a", "-r", "DAG Runs", "-a", "can_read", "can_create")
    slipstream(
        "users", "create", "-u", "ada", "-e", "a@x.org", "-f", "A", "-l", "L", "-r", "only_a",
        "-p", "s3cret-Pa55",
    )  # fmt: skip
    db = Database(slipstream.env["SLIPSTREAM_DATABASE_URL"])
    try:
        accounts = account_services(db, SystemClock())
        user = accounts.sign_ins.authenticate("ada", "s3cret-Pa55")
        assert user is not None
        principal = Principal(user, grants_of(user.roles, accounts.roles.role_pairs()))
    finally:
        db.dispose()
    principal.check_dag(Action.DAGS_READ, "a", [])
    principal.check_dag(Action.RUNS_CREATE, "a", [])
    scope = principal.scope_for(Action.DAGS_READ)
    assert scope.covers("a") and not scope.covers("b") and not scope.everything
    with pytest.raises(DagNotFound):
        principal.check_dag(Action.DAGS_READ, "b", [])
    with pytest.raises(ApiError) as denied:
        principal.check_dag(Action.DAGS_DELETE, "a", [])
    assert denied.value.status == 403
    assert denied.value.message == "user 'ada' lacks the permission can_delete on DAGs"
