"""Moving running runs forward: core.planning decides, for each run that changed, which waiting
tasks move and whether the run is over; the moves are applied in one batch, then the run ends
of the runs whose moves all held, then the expansions of mapped tasks that may run (their
lengths read from what their upstream tasks recorded). Also puts tasks whose retry is due back
in the ready queue.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from slipstream.core.dag_plan import DagPlan
from slipstream.core.mapping import Expansion, decide_expansion, referenced_tasks
from slipstream.core.planning import RunDecision, plan_run
from slipstream.core.records import Run
from slipstream.core.states import RunState, TaskState
from slipstream.core.transitions import (
    ExpandTask,
    RunTransition,
    TaskTransition,
    planned,
    retry_due,
)
from slipstream.scheduler import callbacks
from slipstream.scheduler.past import hold_back
from slipstream.scheduler.state import SchedulerState
from slipstream.store import transitions
from slipstream.store import xcoms as xcom_store


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
        mapped = state.mapped.get(run_pk) if plan.mapped else None
        decision = plan_run(plan, states, changed, mapped)
        if plan.past_dependent:
            decision = hold_back(conn, state, run, plan, decision, states, changed)
        decided.append((run, decision, decision.task_transitions(run_pk)))
    moved = iter(transitions.apply(conn, [t for _, _, ts in decided for t in ts], now))
    endings: list[tuple[Run, RunTransition]] = []
    expanding: list[tuple[Run, DagPlan, RunDecision]] = []
    for run, decision, moves in decided:
        complete = True
        for move in moves:
            result = next(moved)
            state.note(run.id, result.task_ids, move.target, result.map_indexes)
            if move.target is TaskState.SCHEDULED:
                indexes = result.map_indexes or (-1,) * len(result.task_ids)
                for task_id, map_index in zip(result.task_ids, indexes, strict=True):
                    state.add_ready(run.dag_id, run.id, task_id, map_index)
            complete = complete and len(result.task_ids) == len(move.task_ids)
            if result.task_ids:
                touched.add(run.dag_id)
        if not complete:
            # Someone else moved some of these tasks: what we remembered is stale.
            state.forget_states(run.id)
            continue
        if decision.expand or decision.expand_waiting:
            plan = state.plan(conn, run.version_id)
            assert plan is not None  # it was read above to make this decision
            expanding.append((run, plan, decision))
        ending = decision.run_transition(run.id)
        if ending is not None:
            endings.append((run, ending))
    finished = 0
    for (run, ending), result in zip(
        endings, transitions.apply(conn, [e for _, e in endings], now), strict=True
    ):
        if result:
            callbacks.note_run_end(state, run, ending.target, ending.reason, now)
            finished += 1
            state.forget_run(run.id)
            state.check_queued.add(run.dag_id)
    if state.past_held and touched:
        state.recheck_past(touched)
    if expanding:
        _expand_mapped(conn, state, expanding, now)
    return finished


def _expand_mapped(
    conn: Connection,
    state: SchedulerState,
    expanding: list[tuple[Run, DagPlan, RunDecision]],
    now: datetime,
) -> None:
    """Expand mapped tasks that may run: their instances become ready, or their waiting row is
    skipped (nothing to map over), failed (over max_map_length) or upstream-failed. Tasks of a
    mapped task group that depend on others of it expand to waiting instances (or, when the
    group has nothing to expand to, are skipped or upstream-failed with it)."""
    moves: list[tuple[Run, ExpandTask | TaskTransition]] = []
    for run, plan, decision in expanding:
        decided: dict[str, Expansion] = {}  # by task, or once for a mapped task group
        for task_id in decision.expand:
            expansion = _expansion(conn, state, run, plan, task_id, decided)
            if expansion.target is TaskState.SCHEDULED:
                moves.append((run, ExpandTask(run.id, task_id, expansion.length)))
            else:
                moves.append(
                    (run, planned(run.id, [task_id], expansion.target, reason=expansion.reason))
                )
        for task_id in decision.expand_waiting:
            expansion = _expansion(conn, state, run, plan, task_id, decided)
            if expansion.target is TaskState.SCHEDULED:
                moves.append((run, ExpandTask(run.id, task_id, expansion.length, waiting=True)))
                continue
            # Nothing to expand to: skipped with an empty group, else it cannot run.
            target = expansion.target
            if target is not TaskState.SKIPPED:
                target = TaskState.UPSTREAM_FAILED
            moves.append((run, planned(run.id, [task_id], target, reason=expansion.reason)))
    for (run, move), result in zip(
        moves, transitions.apply(conn, [m for _, m in moves], now), strict=True
    ):
        if not result:
            state.forget_states(run.id)
            continue
        if isinstance(move, ExpandTask):
            state.note_expanded(run.id, move.task_id, move.length, move.target)
            if not move.waiting:
                for map_index in result.map_indexes:
                    state.add_ready(run.dag_id, run.id, move.task_id, map_index)
        else:
            # Its waiting row, or (expanded before, all cleared) each of its instances.
            state.note(run.id, result.task_ids, move.target, result.map_indexes)
        state.mark_dirty(run.id, result.task_ids[:1])


def _expansion(
    conn: Connection,
    state: SchedulerState,
    run: Run,
    plan: DagPlan,
    task_id: str,
    decided: dict[str, Expansion],
) -> Expansion:
    spec = plan.tasks[task_id]
    assert spec.mapped is not None  # the planner expands mapped tasks only
    key = spec.map_group or task_id
    if key not in decided:
        lengths = _upstream_lengths(conn, run.id, plan, referenced_tasks(spec.mapped))
        decided[key] = decide_expansion(spec.mapped, lengths, state.max_map_length)
    return decided[key]


def _upstream_lengths(
    conn: Connection, run_pk: int, plan: DagPlan, task_ids: set[str]
) -> dict[str, int | None]:
    """How many items each task hands on: a mapped task, its instances' pushed values; an
    unmapped one, the length its try recorded (None when it recorded none)."""
    lengths: dict[str, int | None] = dict.fromkeys(task_ids)
    lengths.update(xcom_store.recorded_lengths(conn, run_pk, task_ids - plan.mapped))
    for task_id in task_ids & plan.mapped:
        lengths[task_id] = xcom_store.pushed_count(conn, run_pk, task_id, "return_value")
    return lengths


def release_retries(conn: Connection, state: SchedulerState, now: datetime) -> None:
    """Tasks whose retry delay is over become ready again (if nobody moved them meanwhile)."""
    due: dict[int, tuple[str, list[str], list[int]]] = {}
    for run_pk, dag_id, task_id, map_index in state.pop_due_retries(now):
        entry = due.setdefault(run_pk, (dag_id, [], []))
        entry[1].append(task_id)
        entry[2].append(map_index)
    moves = [
        # Unmapped tasks only: the cheaper statement; mapped ones by (task, map index).
        retry_due(run_pk, task_ids, None if max(indexes) < 0 else indexes)
        for run_pk, (_, task_ids, indexes) in due.items()
    ]
    for move, result in zip(moves, transitions.apply(conn, moves, now), strict=True):
        dag_id = due[move.run_pk][0]
        indexes = result.map_indexes or (-1,) * len(result.task_ids)
        for task_id, map_index in zip(result.task_ids, indexes, strict=True):
            state.add_ready(dag_id, move.run_pk, task_id, map_index)
        state.note(move.run_pk, result.task_ids, TaskState.SCHEDULED, result.map_indexes)
