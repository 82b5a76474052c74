"""auth.permissions: a role limited to some DAGs reaches those DAGs, and only those."""

from __future__ import annotations

from slipstream.auth.permissions import BUILTIN_ROLE_PAIRS, Grants, check_pair, grants_of
from slipstream.auth.roles import Action

LIMITED = Grants(
    frozenset(
        {
            ("can_read", "DAG:etl"),
            ("can_edit", "DAG:etl"),
            ("can_read", "DAG tag:finance"),
            ("can_create", "DAG Runs"),
        }
    )
)


def test_dag_level_access_alone_lets_one_read_and_edit_those_dags() -> None:
    assert LIMITED.allows(Action.DAGS_READ)
    assert LIMITED.allows(Action.DAGS_EDIT)
    assert not LIMITED.allows(Action.DAGS_DELETE)  # no can_delete on any DAG
    read = LIMITED.scope_for(Action.DAGS_READ)
    assert not read.everything
    assert read.covers("etl") and read.covers("ledger", ["finance"])
    assert not read.covers("other")
    edit = LIMITED.scope_for(Action.DAGS_EDIT)
    assert edit.covers("etl") and not edit.covers("ledger", ["finance"])


def test_runs_need_their_resource_permission_and_dag_access() -> None:
    assert LIMITED.allows(Action.RUNS_CREATE)
    trigger = LIMITED.scope_for(Action.RUNS_CREATE)  # can_edit on the DAG
    assert trigger.covers("etl") and not trigger.covers("ledger", ["finance"])
    assert not LIMITED.allows(Action.RUNS_READ)  # no can_read on DAG Runs
    assert LIMITED.scope_for(Action.RUNS_READ).is_empty


def test_resource_permissions_other_than_dags_are_not_implied() -> None:
    only_dag = Grants(frozenset({("can_read", "DAG:etl")}))
    assert not only_dag.allows(Action.RUNS_READ)
    assert not only_dag.allows(Action.USERS_READ)
    assert not Grants(frozenset()).allows(Action.DAGS_READ)


def test_builtin_roles_reach_every_dag() -> None:
    viewer = grants_of(["Viewer"], BUILTIN_ROLE_PAIRS)
    assert viewer.scope_for(Action.DAGS_READ).everything
    assert not viewer.allows(Action.DAGS_EDIT)
    assert grants_of(["Admin"], BUILTIN_ROLE_PAIRS).scope_for(Action.RUNS_CREATE).everything


def test_check_pair_names_what_is_wrong() -> None:
    assert check_pair("can_read", "DAG:a") is None
    assert check_pair("can_read", "DAG tag:x") is None
    assert "unknown action" in (check_pair("can_fly", "DAGs") or "")
    assert "unknown resource" in (check_pair("can_read", "DAG:") or "")


def test_dag_questions_for_pages_hide_what_cannot_be_read() -> None:
    grants = Grants(
        frozenset({("can_read", "DAG:etl"), ("can_edit", "DAG:etl"), ("can_read", "DAG tag:team")})
    )
    assert grants.sees_dag("etl", []) and grants.sees_dag("other", ["team"])
    assert not grants.sees_dag("hidden", ["else"])
    assert grants.allows_on_dag(Action.DAGS_EDIT, "etl", [])
    assert not grants.allows_on_dag(Action.DAGS_EDIT, "other", ["team"])  # read only
    assert not grants.allows_on_dag(Action.DAGS_READ, "hidden", [])
    # Runs need the resource permission as well as the DAG access.
    assert not grants.allows_on_dag(Action.RUNS_CREATE, "etl", [])
    viewer = grants_of(["Viewer"], BUILTIN_ROLE_PAIRS)
    assert viewer.allows_on_dag(Action.DAGS_READ, "any", [])
    assert not viewer.allows_on_dag(Action.DAGS_EDIT, "any", [])
