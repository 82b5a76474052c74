"""auth.roles: what each of Airflow's built-in roles allows."""

from __future__ import annotations

import pytest

from slipstream.auth.roles import (
    BUILTIN_ROLES,
    ROLE_DESCRIPTIONS,
    Action,
    allowed,
    permissions_of,
)

READS = [a for a in Action if a.value.endswith(":read")]
ACCOUNTS = [Action.USERS_READ, Action.USERS_EDIT, Action.ROLES_READ, Action.ROLES_EDIT]


def test_the_builtin_roles_are_airflows_five_each_described() -> None:
    assert set(BUILTIN_ROLES) == {"Admin", "Op", "User", "Viewer", "Public"}
    assert set(ROLE_DESCRIPTIONS) == set(BUILTIN_ROLES)


def test_the_actions_are_named_resource_colon_verb() -> None:
    required = {
        "dags:read", "dags:edit", "dags:delete", "runs:read", "runs:create", "runs:edit",
        "runs:delete", "tasks:read", "tasks:edit", "logs:read", "import_errors:read",
        "users:read", "users:edit", "roles:read", "roles:edit",
    }  # fmt: skip
    assert required <= {a.value for a in Action}
    assert Action("runs:create") is Action.RUNS_CREATE


@pytest.mark.parametrize("action", list(Action))
def test_admin_may_do_everything(action: Action) -> None:
    assert allowed(["Admin"], action)


@pytest.mark.parametrize("action", list(Action))
def test_public_may_do_nothing(action: Action) -> None:
    assert not allowed(["Public"], action)
    assert not allowed([], action)


def test_viewer_reads_dags_runs_tasks_and_logs_but_changes_nothing() -> None:
    for action in [Action.DAGS_READ, Action.RUNS_READ, Action.TASKS_READ, Action.LOGS_READ]:
        assert allowed(["Viewer"], action)
    assert allowed(["Viewer"], Action.IMPORT_ERRORS_READ)
    for action in [
        Action.RUNS_CREATE,
        Action.RUNS_EDIT,
        Action.RUNS_DELETE,
        Action.DAGS_EDIT,
        Action.TASKS_EDIT,
        *ACCOUNTS,
    ]:
        assert not allowed(["Viewer"], action)


SECRETS = [a for a in Action if a.value.startswith(("variables:", "connections:"))]


def test_user_triggers_pauses_clears_marks_and_deletes_but_manages_no_accounts() -> None:
    for action in [
        *[
            a
            for a in READS
            if a not in ACCOUNTS and a not in SECRETS and a is not Action.CONFIG_READ
        ],
        Action.RUNS_CREATE,
        Action.RUNS_EDIT,
        Action.RUNS_DELETE,
        Action.DAGS_EDIT,
        Action.DAGS_DELETE,
        Action.TASKS_EDIT,
    ]:
        assert allowed(["User"], action), action
    for action in [*ACCOUNTS, *SECRETS, Action.POOLS_EDIT, Action.CONFIG_READ]:
        assert not allowed(["User"], action)


def test_variables_and_connections_are_admin_and_op_only() -> None:
    # As Airflow's FAB defaults: Op and Admin manage Variables and Connections.
    for action in SECRETS:
        assert allowed(["Admin"], action) and allowed(["Op"], action), action
        for role in ("User", "Viewer", "Public"):
            assert not allowed([role], action), (role, action)


def test_op_is_everything_but_users_and_roles() -> None:
    assert BUILTIN_ROLES["Op"] == frozenset(Action) - set(ACCOUNTS)
    assert BUILTIN_ROLES["User"] < BUILTIN_ROLES["Op"] < BUILTIN_ROLES["Admin"]
    assert BUILTIN_ROLES["Viewer"] < BUILTIN_ROLES["User"]


def test_several_roles_allow_what_any_of_them_allows() -> None:
    assert allowed(["Viewer", "User"], Action.RUNS_CREATE)
    assert permissions_of(["Viewer", "User"]) == BUILTIN_ROLES["User"]
    assert permissions_of(["Viewer", "Admin"]) == frozenset(Action)


def test_unknown_roles_allow_nothing() -> None:
    assert not allowed(["Superuser"], Action.DAGS_READ)
    assert permissions_of(["Superuser"]) == frozenset()


def test_a_custom_role_mapping_can_be_passed_in() -> None:
    custom = {**BUILTIN_ROLES, "Trigger": frozenset({Action.RUNS_CREATE})}
    assert allowed(["Trigger"], Action.RUNS_CREATE, role_permissions=custom)
    assert not allowed(["Trigger"], Action.RUNS_DELETE, role_permissions=custom)
    assert not allowed(["Trigger"], Action.RUNS_CREATE)  # not a built-in role
