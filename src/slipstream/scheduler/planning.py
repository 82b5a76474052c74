"""Moving running runs forward: core.planning decides, for each run that changed, which waiting
tasks move and whether the run is over; the moves are applied in one batch, then the run ends
of the runs whose moves all held. Also puts tasks whose retry is due back in the ready queue.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from slipstream.core.planning import RunDecision, plan_run
from slipstream.core.records import Run
from slipstream.core.states import RunState, TaskState
from slipstream.core.transitions import RunTransition, TaskTransition, retry_due
from slipstream.scheduler import callbacks
from slipstream.scheduler.past import hold_back
from slipstream.scheduler.state import SchedulerState
from slipstream.store import transitions


def plan_dirty_runs(conn: Connection, state: SchedulerState, now: datetime) -> int:
    """Plan every run marked dirty; returns how many runs finished."""
    dirty, state.dirty = state.dirty, {}
    past_only, state.past_only = state.past_only, set()
    # DAGs with a run that changed: tasks depends_on_past holds in their runs look again.
    touched: set[str] = set()
    decided: list[tuple[Run, RunDecision, list[TaskTransition]]] = []
    for run_pk, changed in dirty.items():
        run = state.run(conn, run_pk)
        if run is not None and run_pk not in past_only:
            touched.add(run.dag_id)
        if run is None or run.state is not RunState.RUNNING:
            state.forget_run(run_pk)
            continue
        plan = state.plan(conn, run.version_id)
        if plan is None:
            continue
        states = state.task_states(conn, run_pk)
        decision = plan_run(plan, states, changed)
        if plan.past_dependent:
            decision = hold_back(conn, state, run, plan, decision, states, changed)
        decided.append((run, decision, decision.task_transitions(run_pk)))
    moved = iter(transitions.apply(conn, [t for _, _, ts in decided for t in ts], now))
    endings: list[tuple[Run, RunTransition]] = []
    for run, decision, moves in decided:
        complete = True
        for move in moves:
            result = next(moved)
            state.note(run.id, result.task_ids, move.target)
            if move.target is TaskState.SCHEDULED:
                for task_id in result.task_ids:
                    state.add_ready(run.dag_id, run.id, task_id)
            complete = complete and len(result.task_ids) == len(move.task_ids)
            if result.task_ids:
                touched.add(run.dag_id)
        if not complete:
            # Someone else moved some of these tasks: what we remembered is stale.
            state.forget_states(run.id)
            continue
        ending = decision.run_transition(run.id)
        if ending is not None:
            endings.append((run, ending))
    finished = 0
    for (run, ending), result in zip(
        endings, transitions.apply(conn, [e for _, e in endings], now), strict=True
    ):
        if result:
            callbacks.note_run_end(state, run, ending.target, ending.reason)
            finished += 1
            state.forget_run(run.id)
            state.check_queued.add(run.dag_id)
    if state.past_held and touched:
        state.recheck_past(touched)
    return finished


def release_retries(conn: Connection, state: SchedulerState, now: datetime) -> None:
    """Tasks whose retry delay is over become ready again (if nobody moved them meanwhile)."""
    due: dict[int, tuple[str, list[str]]] = {}
    for run_pk, dag_id, task_id in state.pop_due_retries(now):
        due.setdefault(run_pk, (dag_id, []))[1].append(task_id)
    moves = [retry_due(run_pk, task_ids) for run_pk, (_, task_ids) in due.items()]
    for move, result in zip(moves, transitions.apply(conn, moves, now), strict=True):
        dag_id = due[move.run_pk][0]
        for task_id in result.task_ids:
            state.add_ready(dag_id, move.run_pk, task_id)
        state.note(move.run_pk, result.task_ids, TaskState.SCHEDULED)
