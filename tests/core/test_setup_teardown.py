"""core.setup_teardown: Airflow's rules for setups and teardowns, on plain task graphs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from slipstream.core.dag_plan import DagPlan
from slipstream.core.setup_teardown import (
    clear_reach,
    indirect_setups,
    outcome_leaves,
    setup_scopes,
)


def graph(
    pairs: Sequence[tuple[str, str]], tasks: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    upstream: dict[str, list[str]] = {t: [] for t in tasks}
    downstream: dict[str, list[str]] = {t: [] for t in tasks}
    for up, down in pairs:
        downstream[up].append(down)
        upstream[down].append(up)
    return upstream, downstream


# s1 >> w1 >> w2 >> t1, s1 >> t1; s2 (no teardown) >> w2; w2 >> late (outside t1's scope)
TASKS = ["s1", "s2", "w1", "w2", "t1", "late"]
EDGES = [("s1", "w1"), ("w1", "w2"), ("w2", "t1"), ("s1", "t1"), ("s2", "w2"), ("w2", "late")]
SETUPS, TEARDOWNS = {"s1", "s2"}, {"t1"}
UP, DOWN = graph(EDGES, TASKS)


def test_a_setup_s_scope_ends_at_its_teardowns_unless_it_has_none() -> None:
    scopes = setup_scopes(UP, DOWN, SETUPS, TEARDOWNS)
    # late is below s1 but after the work its teardown waits for: not s1's business.
    assert scopes == {"s1": {"w1", "w2"}, "s2": {"w2", "t1", "late"}}


def test_indirect_setups_leave_out_direct_ones_and_teardowns() -> None:
    scopes = setup_scopes(UP, DOWN, SETUPS, TEARDOWNS)
    assert indirect_setups(TASKS, UP, TEARDOWNS, scopes) == {
        "w2": ("s1",),
        "late": ("s2",),
    }


def test_outcome_leaves_set_teardowns_aside_unless_they_fail_the_run() -> None:
    assert outcome_leaves(TASKS, DOWN, TEARDOWNS, set()) == ("late",)
    assert outcome_leaves(TASKS, DOWN, TEARDOWNS, {"t1"}) == ("t1", "late")
    # w2 feeds only a teardown and late: late is not ignorable, so w2 is no leaf.
    _, down = graph([("w", "t")], ["w", "t"])
    assert outcome_leaves(["w", "t"], down, {"t"}, set()) == ("w",)
    assert outcome_leaves(["t"], {"t": []}, {"t"}, set()) == ("t",)


def reach(
    named: Sequence[str], *, with_upstream: bool = False, with_downstream: bool = False
) -> set[str]:
    return clear_reach(
        named,
        upstream=UP,
        downstream=DOWN,
        setups=SETUPS,
        teardowns=TEARDOWNS,
        scopes=setup_scopes(UP, DOWN, SETUPS, TEARDOWNS),
        with_upstream=with_upstream,
        with_downstream=with_downstream,
    )


@pytest.mark.parametrize(
    ("named", "options", "expected"),
    [
        # Work: its relevant setups and their teardowns.
        (["w1"], {}, {"s1", "t1"}),
        (["w2"], {}, {"s1", "t1", "s2"}),
        (["late"], {}, {"s2"}),
        # A teardown: its own setup is not relevant to it, a setup without teardowns is.
        (["t1"], {}, {"s2"}),
        # A setup: its own teardowns, unless its downstream is cleared anyway.
        (["s1"], {}, {"t1"}),
        (["s1"], {"with_downstream": True}, set()),
        # With the upstream: every upstream setup and its teardowns.
        (["late"], {"with_upstream": True}, {"s1", "t1", "s2"}),
    ],
)
def test_what_a_clear_also_reaches(
    named: list[str], options: Mapping[str, bool], expected: set[str]
) -> None:
    assert reach(named, **options) == expected


def test_the_plan_reads_roles_and_derives_what_planning_needs() -> None:
    structure = {
        "dag_id": "d",
        "tasks": [
            {"task_id": "s", "is_setup": True, "downstream": ["w", "t"]},
            {"task_id": "w", "upstream": ["s"], "downstream": ["x", "t"]},
            {"task_id": "x", "upstream": ["w"], "downstream": ["t"]},
            {
                "task_id": "t",
                "upstream": ["s", "w", "x"],
                "is_teardown": True,
                "on_failure_fail_dagrun": True,
                "trigger_rule": "all_done_setup_success",
            },
        ],
    }
    plan = DagPlan.from_structure(structure, version_id=1, version_hash="h")
    assert plan.tasks["s"].is_setup and not plan.tasks["s"].is_teardown
    assert plan.tasks["t"].is_teardown and plan.tasks["t"].on_failure_fail_dagrun
    assert plan.leaves == plan.outcome_leaves == ("t",)
    assert plan.indirect_setups == {"x": ("s",)}
    assert plan.setup_dependents == {"s": ("x",)}
    assert plan.setup_scopes == {"s": frozenset({"w", "x"})}


def test_a_plan_without_roles_has_its_leaves_decide() -> None:
    structure = {
        "dag_id": "d",
        "tasks": [{"task_id": "a", "downstream": ["b"]}, {"task_id": "b", "upstream": ["a"]}],
    }
    plan = DagPlan.from_structure(structure, version_id=1, version_hash="h")
    assert plan.outcome_leaves == plan.leaves == ("b",)
    assert plan.indirect_setups == {} and plan.setup_scopes == {}
