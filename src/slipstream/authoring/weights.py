"""Effective priority of each task (Airflow's priority_weight_total), from its own
priority_weight and its weight_rule: downstream (own + every task below), upstream (own +
every task above) or absolute (own). Computed once, when the DAG is serialized."""

from __future__ import annotations

from collections.abc import Sequence

from slipstream.authoring.task import BaseOperator

# Airflow keeps priorities in a 32-bit column and clamps the sums into it.
_MIN_PRIORITY = -(2**31)
_MAX_PRIORITY = 2**31 - 1


def priority_totals(ordered: Sequence[BaseOperator]) -> dict[str, int]:
    """Each task's effective priority; `ordered` is the DAG's tasks in topological order."""
    index = {task.task_id: i for i, task in enumerate(ordered)}
    weights = [task.priority_weight for task in ordered]
    rules = {task.weight_rule for task in ordered}
    below = _reach(ordered, index, downstream=True) if "downstream" in rules else None
    above = _reach(ordered, index, downstream=False) if "upstream" in rules else None
    same = len(set(weights)) <= 1
    totals: dict[str, int] = {}
    for i, task in enumerate(ordered):
        total = weights[i]
        reach = below if task.weight_rule == "downstream" else above
        if reach is not None and task.weight_rule != "absolute":
            bits = reach[i]
            total += weights[i] * bits.bit_count() if same else _sum_of(bits, weights)
        totals[task.task_id] = max(_MIN_PRIORITY, min(_MAX_PRIORITY, total))
    return totals


def _reach(
    ordered: Sequence[BaseOperator], index: dict[str, int], *, downstream: bool
) -> list[int]:
    """For each task, a bitset of the tasks reachable from it (below, or above it), built in
    one sweep over the topological order: a chain of N tasks costs N unions, not N walks."""
    reach = [0] * len(ordered)
    positions = range(len(ordered) - 1, -1, -1) if downstream else range(len(ordered))
    for i in positions:
        task = ordered[i]
        bits = 0
        for relative in task.downstream_task_ids if downstream else task.upstream_task_ids:
            j = index[relative]
            bits |= reach[j] | (1 << j)
        reach[i] = bits
    return reach


def _sum_of(bits: int, weights: Sequence[int]) -> int:
    total = 0
    while bits:
        lowest = bits & -bits
        total += weights[lowest.bit_length() - 1]
        bits ^= lowest
    return total
