"""Setup and teardown tasks in a DAG version's graph, with Airflow 2.7+'s rules: which setups a
task waits for beyond its direct upstream, which tasks decide a run's outcome, and what a clear
reaches besides the tasks it names. Pure functions over task ids and edges.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence

Edges = Mapping[str, Sequence[str]]


def reach(start: Iterable[str], edges: Edges) -> set[str]:
    """Every task reachable from `start` along `edges` (not `start` itself unless on a cycle)."""
    found: set[str] = set()
    stack = list(start)
    while stack:
        for other in edges.get(stack.pop(), ()):
            if other not in found:
                found.add(other)
                stack.append(other)
    return found


def setup_scopes(
    upstream: Edges, downstream: Edges, setups: Collection[str], teardowns: Collection[str]
) -> dict[str, frozenset[str]]:
    """For each setup, the tasks it is relevant to (Airflow's "relevant setups"): those
    downstream of it and, if it has teardowns right after it, upstream of one of them."""
    scopes: dict[str, frozenset[str]] = {}
    for setup in setups:
        below = reach([setup], downstream)
        own_teardowns = [t for t in downstream.get(setup, ()) if t in teardowns]
        if own_teardowns:
            below &= reach(own_teardowns, upstream)
        scopes[setup] = frozenset(below)
    return scopes


def indirect_setups(
    order: Sequence[str],
    upstream: Edges,
    teardowns: Collection[str],
    scopes: Mapping[str, frozenset[str]],
) -> dict[str, tuple[str, ...]]:
    """For each task that is not a teardown, the relevant setups that are not directly
    upstream of it: it runs only once all of them succeeded (skipped with them, and
    upstream_failed if one failed), whatever its own trigger rule says."""
    found: dict[str, list[str]] = {}
    for setup in sorted(scopes):
        for task_id in scopes[setup]:
            if task_id not in teardowns and setup not in upstream.get(task_id, ()):
                found.setdefault(task_id, []).append(setup)
    return {task_id: tuple(found[task_id]) for task_id in order if task_id in found}


def outcome_leaves(
    order: Sequence[str],
    downstream: Edges,
    teardowns: Collection[str],
    failing_teardowns: Collection[str],
) -> tuple[str, ...]:
    """The tasks whose states decide a run's outcome: the leaves once teardowns are set aside,
    except teardowns that say on_failure_fail_dagrun (Airflow's rule)."""

    def ignorable(task_id: str) -> bool:
        return task_id in teardowns and task_id not in failing_teardowns

    leaves = tuple(
        t for t in order if not ignorable(t) and all(ignorable(d) for d in downstream.get(t, ()))
    )
    # A DAG of nothing but teardowns: its plain leaves decide.
    return leaves or tuple(t for t in order if not downstream.get(t))


def clear_reach(
    task_ids: Iterable[str],
    *,
    upstream: Edges,
    downstream: Edges,
    setups: Collection[str],
    teardowns: Collection[str],
    scopes: Mapping[str, frozenset[str]],
    with_upstream: bool,
    with_downstream: bool,
) -> set[str]:
    """What clearing `task_ids` also clears, as Airflow does: the relevant setups of a task
    (all upstream setups when its upstream is cleared too) with their teardowns, and a
    setup's own teardowns."""
    extra: set[str] = set()

    def with_teardowns(setup: str, task_id: str) -> None:
        extra.add(setup)
        extra.update(t for t in downstream.get(setup, ()) if t in teardowns and t != task_id)

    for task_id in task_ids:
        if with_upstream:
            for other in reach([task_id], upstream):
                if other in setups:
                    with_teardowns(other, task_id)
        elif task_id not in setups:
            for setup, scope in scopes.items():
                if task_id in scope:
                    with_teardowns(setup, task_id)
        if task_id in setups and not with_downstream:
            extra.update(t for t in downstream.get(task_id, ()) if t in teardowns)
    return extra
