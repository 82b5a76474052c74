"""Airflow's built-in roles as data: each role is the set of actions it allows.

Custom roles are a later step; `allowed` already takes the role -> actions mapping to use, so a
store-backed mapping can be passed in without changing callers' checks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType


class Action(StrEnum):
    """One permission: `<resource>:<verb>`."""

    DAGS_READ = "dags:read"
    DAGS_EDIT = "dags:edit"  # pause / unpause
    DAGS_DELETE = "dags:delete"
    RUNS_READ = "runs:read"
    RUNS_CREATE = "runs:create"  # trigger
    RUNS_EDIT = "runs:edit"  # mark, clear, note
    RUNS_DELETE = "runs:delete"
    TASKS_READ = "tasks:read"
    TASKS_EDIT = "tasks:edit"
    LOGS_READ = "logs:read"
    XCOMS_READ = "xcoms:read"
    IMPORT_ERRORS_READ = "import_errors:read"
    POOLS_READ = "pools:read"
    POOLS_EDIT = "pools:edit"
    AUDIT_LOGS_READ = "audit_logs:read"  # the event log
    CONFIG_READ = "config:read"
    USERS_READ = "users:read"
    USERS_EDIT = "users:edit"
    ROLES_READ = "roles:read"
    ROLES_EDIT = "roles:edit"
    VARIABLES_READ = "variables:read"
    VARIABLES_CREATE = "variables:create"
    VARIABLES_EDIT = "variables:edit"
    VARIABLES_DELETE = "variables:delete"
    CONNECTIONS_READ = "connections:read"
    CONNECTIONS_CREATE = "connections:create"
    CONNECTIONS_EDIT = "connections:edit"
    CONNECTIONS_DELETE = "connections:delete"
    DATASETS_READ = "datasets:read"
    DATASETS_CREATE = "datasets:create"  # record an asset event by hand
    DATASETS_DELETE = "datasets:delete"  # empty queued asset events


ADMIN = "Admin"
OP = "Op"
USER = "User"
VIEWER = "Viewer"
PUBLIC = "Public"

_VIEWER = frozenset(
    {
        Action.DAGS_READ,
        Action.RUNS_READ,
        Action.TASKS_READ,
        Action.LOGS_READ,
        Action.XCOMS_READ,
        Action.IMPORT_ERRORS_READ,
        Action.POOLS_READ,
        Action.AUDIT_LOGS_READ,
        Action.DATASETS_READ,
    }
)
_USER = _VIEWER | {
    Action.DAGS_EDIT,
    Action.DAGS_DELETE,
    Action.RUNS_CREATE,
    Action.RUNS_EDIT,
    Action.RUNS_DELETE,
    Action.TASKS_EDIT,
    Action.DATASETS_CREATE,
}
_ACCOUNTS = frozenset({Action.USERS_READ, Action.USERS_EDIT, Action.ROLES_READ, Action.ROLES_EDIT})

BUILTIN_ROLES: Mapping[str, frozenset[Action]] = MappingProxyType(
    {
        ADMIN: frozenset(Action),
        OP: frozenset(Action) - _ACCOUNTS,
        USER: _USER,
        VIEWER: _VIEWER,
        PUBLIC: frozenset(),
    }
)

ROLE_DESCRIPTIONS: Mapping[str, str] = MappingProxyType(
    {
        ADMIN: "everything, including users and roles",
        OP: "everything except users and roles (User plus pools, configuration, variables"
        " and connections)",
        USER: "read, and trigger, pause, clear, mark and delete runs and tasks of DAGs",
        VIEWER: "read only",
        PUBLIC: "nothing (anonymous)",
    }
)


def permissions_of(
    roles: Iterable[str], *, role_permissions: Mapping[str, frozenset[Action]] = BUILTIN_ROLES
) -> frozenset[Action]:
    """Everything the given roles allow together; unknown role names allow nothing."""
    allowed_actions: frozenset[Action] = frozenset()
    for role in roles:
        allowed_actions |= role_permissions.get(role, frozenset())
    return allowed_actions


def allowed(
    roles: Iterable[str],
    action: Action,
    *,
    role_permissions: Mapping[str, frozenset[Action]] = BUILTIN_ROLES,
) -> bool:
    """Whether any of `roles` allows `action`; unknown role names allow nothing."""
    return any(action in role_permissions.get(role, frozenset()) for role in roles)
