"""Permissions as Airflow names them, `(action, resource)` pairs, and what a set of them allows.

A role is a set of pairs such as `("can_create", "DAG Runs")`. Acting on a DAG takes two
things, as in Airflow: the resource permission for the action, and access to that DAG, given
for every DAG by `("can_read", "DAGs")` or for one by `("can_read", "DAG:<dag_id>")`.
Slipstream adds `("can_read", "DAG tag:<tag>")` for every DAG carrying a tag.

Who cannot read a DAG is told it does not exist; who can read it but not act on it is told
which permission is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from slipstream.auth.roles import BUILTIN_ROLES, Action

CAN_READ = "can_read"
CAN_EDIT = "can_edit"
CAN_CREATE = "can_create"
CAN_DELETE = "can_delete"
VERBS = (CAN_READ, CAN_EDIT, CAN_CREATE, CAN_DELETE)

DAGS = "DAGs"
DAG_PREFIX = "DAG:"
TAG_PREFIX = "DAG tag:"

# The resource names an Action checks, in Airflow's words.
RESOURCES = (
    DAGS,
    "DAG Runs",
    "Task Instances",
    "Task Logs",
    "XComs",
    "ImportError",
    "Pools",
    "Audit Logs",
    "Configurations",
    "Users",
    "Roles",
    "Variables",
    "Connections",
    "Datasets",
)


@dataclass(frozen=True, slots=True)
class Need:
    """What one Action needs: a resource permission, and on a DAG, that level of DAG access."""

    verb: str
    resource: str
    dag_verb: str | None  # None: the action is not about a DAG

    @property
    def pair(self) -> tuple[str, str]:
        return (self.verb, self.resource)

    def __str__(self) -> str:
        return f"{self.verb} on {self.resource}"


NEEDS: Mapping[Action, Need] = MappingProxyType(
    {
        Action.DAGS_READ: Need(CAN_READ, DAGS, CAN_READ),
        Action.DAGS_EDIT: Need(CAN_EDIT, DAGS, CAN_EDIT),
        Action.DAGS_DELETE: Need(CAN_DELETE, DAGS, CAN_DELETE),
        Action.RUNS_READ: Need(CAN_READ, "DAG Runs", CAN_READ),
        Action.RUNS_CREATE: Need(CAN_CREATE, "DAG Runs", CAN_EDIT),
        Action.RUNS_EDIT: Need(CAN_EDIT, "DAG Runs", CAN_EDIT),
        Action.RUNS_DELETE: Need(CAN_DELETE, "DAG Runs", CAN_DELETE),
        Action.TASKS_READ: Need(CAN_READ, "Task Instances", CAN_READ),
        Action.TASKS_EDIT: Need(CAN_EDIT, "Task Instances", CAN_EDIT),
        Action.LOGS_READ: Need(CAN_READ, "Task Logs", CAN_READ),
        Action.XCOMS_READ: Need(CAN_READ, "XComs", CAN_READ),
        Action.IMPORT_ERRORS_READ: Need(CAN_READ, "ImportError", None),
        Action.POOLS_READ: Need(CAN_READ, "Pools", None),
        Action.POOLS_EDIT: Need(CAN_EDIT, "Pools", None),
        # Entries about a DAG are seen by who may read that DAG; others by every holder.
        Action.AUDIT_LOGS_READ: Need(CAN_READ, "Audit Logs", CAN_READ),
        Action.CONFIG_READ: Need(CAN_READ, "Configurations", None),
        Action.USERS_READ: Need(CAN_READ, "Users", None),
        Action.USERS_EDIT: Need(CAN_EDIT, "Users", None),
        Action.ROLES_READ: Need(CAN_READ, "Roles", None),
        Action.ROLES_EDIT: Need(CAN_EDIT, "Roles", None),
        Action.VARIABLES_READ: Need(CAN_READ, "Variables", None),
        Action.VARIABLES_CREATE: Need(CAN_CREATE, "Variables", None),
        Action.VARIABLES_EDIT: Need(CAN_EDIT, "Variables", None),
        Action.VARIABLES_DELETE: Need(CAN_DELETE, "Variables", None),
        Action.CONNECTIONS_READ: Need(CAN_READ, "Connections", None),
        Action.CONNECTIONS_CREATE: Need(CAN_CREATE, "Connections", None),
        Action.CONNECTIONS_EDIT: Need(CAN_EDIT, "Connections", None),
        Action.CONNECTIONS_DELETE: Need(CAN_DELETE, "Connections", None),
        Action.DATASETS_READ: Need(CAN_READ, "Datasets", None),
        Action.DATASETS_CREATE: Need(CAN_CREATE, "Datasets", None),
        Action.DATASETS_DELETE: Need(CAN_DELETE, "Datasets", None),
    }
)


def check_pair(verb: str, resource: str) -> str | None:
    """Why `(verb, resource)` is not a permission Slipstream knows, or None if it is."""
    if verb not in VERBS:
        return f"unknown action {verb!r}; expected one of {', '.join(VERBS)}"
    if resource in RESOURCES:
        return None
    for prefix in (DAG_PREFIX, TAG_PREFIX):
        if resource.startswith(prefix) and resource[len(prefix) :].strip():
            return None
    return (
        f"unknown resource {resource!r}; expected one of {', '.join(RESOURCES)},"
        f" {DAG_PREFIX}<dag_id> or {TAG_PREFIX}<tag>"
    )


def builtin_pairs(actions: Iterable[Action]) -> frozenset[tuple[str, str]]:
    """The pairs a built-in role holds: its actions, on every DAG."""
    pairs: set[tuple[str, str]] = set()
    for action in actions:
        need = NEEDS[action]
        pairs.add(need.pair)
        if need.dag_verb is not None:
            pairs.add((need.dag_verb, DAGS))
    return frozenset(pairs)


BUILTIN_ROLE_PAIRS: Mapping[str, frozenset[tuple[str, str]]] = MappingProxyType(
    {name: builtin_pairs(actions) for name, actions in BUILTIN_ROLES.items()}
)


@dataclass(frozen=True, slots=True)
class DagScope:
    """The DAGs some access reaches: all of them, or those named or carrying a tag."""

    everything: bool = False
    dag_ids: frozenset[str] = frozenset()
    tags: frozenset[str] = frozenset()

    def covers(self, dag_id: str, tags: Iterable[str] = ()) -> bool:
        return self.everything or dag_id in self.dag_ids or not self.tags.isdisjoint(tags)

    @property
    def is_empty(self) -> bool:
        return not (self.everything or self.dag_ids or self.tags)


@dataclass(frozen=True, slots=True)
class Grants:
    """Everything a user's roles hold together."""

    pairs: frozenset[tuple[str, str]]

    def allows(self, action: Action) -> bool:
        """The resource permission alone, DAG access aside."""
        need = NEEDS[action]
        if need.pair in self.pairs:
            return True
        # On DAGs themselves, access to some DAGs is the permission for those DAGs, as in
        # Airflow: `can_read` on `DAG:etl` alone lets one read etl (and see only it).
        return need.resource == DAGS and not self.dag_scope(need.verb).is_empty

    def dag_scope(self, verb: str = CAN_READ) -> DagScope:
        """The DAGs on which these grants give `verb`."""
        everything = False
        dag_ids: set[str] = set()
        tags: set[str] = set()
        for held_verb, resource in self.pairs:
            if held_verb != verb:
                continue
            if resource == DAGS:
                everything = True
            elif resource.startswith(DAG_PREFIX):
                dag_ids.add(resource[len(DAG_PREFIX) :])
            elif resource.startswith(TAG_PREFIX):
                tags.add(resource[len(TAG_PREFIX) :])
        return DagScope(everything, frozenset(dag_ids), frozenset(tags))

    def sees_dag(self, dag_id: str, tags: Iterable[str]) -> bool:
        """Whether the DAG exists for these grants at all: one they may not read is hidden
        (answered as not found), whatever else they hold."""
        return self.scope_for(Action.DAGS_READ).covers(dag_id, tags)

    def allows_on_dag(self, action: Action, dag_id: str, tags: Iterable[str]) -> bool:
        """Whether `action` is allowed on this DAG: the resource permission, and the DAG
        access the action needs (a DAG they cannot see allows nothing)."""
        tags = list(tags)
        if not self.sees_dag(dag_id, tags) or not self.allows(action):
            return False
        need = NEEDS[action]
        return need.dag_verb is None or self.dag_scope(need.dag_verb).covers(dag_id, tags)

    def scope_for(self, action: Action) -> DagScope:
        """The DAGs on which `action` is allowed: none without the resource permission."""
        need = NEEDS[action]
        if not self.allows(action) or need.dag_verb is None:
            return DagScope()
        return self.dag_scope(need.dag_verb)


def grants_of(roles: Iterable[str], role_pairs: Mapping[str, frozenset[tuple[str, str]]]) -> Grants:
    """What the named roles hold together; unknown names hold nothing."""
    pairs: set[tuple[str, str]] = set()
    for role in roles:
        pairs |= role_pairs.get(role, frozenset())
    return Grants(frozenset(pairs))
