"""depends_on_past at planning time: of the tasks the planner would start (a mapped task when it
would expand, or schedule cleared instances again), those whose instances in the previous run
(core/past.py) hold them back stay waiting, are remembered, and are planned again whenever a
run of their DAG changes. Only DAGs with such tasks pay for the previous run's states, and only
for the tasks about to start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from sqlalchemy import Connection

from slipstream.core.dag_plan import DagPlan
from slipstream.core.past import PreviousRun, judge_past
from slipstream.core.planning import RunDecision, plan_run
from slipstream.core.records import Run
from slipstream.core.states import TaskState
from slipstream.scheduler.state import SchedulerState
from slipstream.store import history

log = logging.getLogger(__name__)


def hold_back(
    conn: Connection,
    state: SchedulerState,
    run: Run,
    plan: DagPlan,
    decision: RunDecision,
    states: Mapping[str, TaskState],
    changed: Iterable[str] | None,
) -> RunDecision:
    """`decision`, or the run planned again with the tasks the past holds back kept waiting.
    A mapped task is held whole: before it expands, or, once expanded, its cleared instances
    that would be scheduled again."""
    starting = [
        *decision.schedule,
        *decision.succeed,
        *decision.expand,
        *(t for t, _, target in decision.instance_moves if target is TaskState.SCHEDULED),
    ]
    candidates = [t for t in dict.fromkeys(starting) if t in plan.past_dependent]
    mapped = state.mapped.get(run.id) if plan.mapped else None
    earlier = state.past_held.get(run.id, set())
    still_held = {t for t in earlier if t not in candidates and _still_waiting(t, states, mapped)}
    if not candidates:
        state.hold_for_past(run.id, still_held)
        return decision
    held = _held(conn, run, plan, candidates)
    for task_id in sorted(set(held) - earlier):
        log.info("%s of %s waits: %s", task_id, run.run_id, held[task_id])
    state.hold_for_past(run.id, still_held | set(held))
    if not held:
        return decision
    return plan_run(plan, states, changed, mapped, held=frozenset(held))


def _still_waiting(
    task_id: str,
    states: Mapping[str, TaskState],
    mapped: Mapping[str, Mapping[int, TaskState]] | None,
) -> bool:
    """The task has an instance without a state: its waiting row, or a cleared instance."""
    instances = (mapped or {}).get(task_id)
    if instances:
        return TaskState.NONE in instances.values()
    return states.get(task_id) is TaskState.NONE


def _held(conn: Connection, run: Run, plan: DagPlan, candidates: list[str]) -> dict[str, str]:
    """The candidates the previous run holds back, each with why."""
    found = history.previous_run(
        conn, run.dag_id, run.logical_date, run.id, scheduled_only=plan.catchup
    )
    previous = None
    if found is not None:
        asked = set(candidates)
        for task_id in candidates:
            if plan.tasks[task_id].wait_for_downstream:
                asked.update(plan.tasks[task_id].downstream)
        previous = PreviousRun(found[1], *history.task_states(conn, found[0], asked))
    held: dict[str, str] = {}
    for task_id in candidates:
        spec = plan.tasks[task_id]
        ran_before = False
        if previous is not None and task_id not in previous.states:
            ran_before = history.ran_before(conn, run.dag_id, task_id, run.logical_date)
        verdict = judge_past(spec, previous, catchup=plan.catchup, ran_before=ran_before)
        if not verdict.may_run:
            held[task_id] = verdict.reason
    return held
