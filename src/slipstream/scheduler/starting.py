"""Starting queued runs: which queued runs may start (DAG not paused, under max_active_runs,
oldest first), then moving them to running and creating their task instances.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from slipstream.core.records import DagRecord, Run
from slipstream.core.states import RunState
from slipstream.core.transitions import RunTransition
from slipstream.scheduler.state import SchedulerState
from slipstream.scheduler.task_dates import skip_outside_task_dates
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import transitions


def start_queued_runs(conn: Connection, state: SchedulerState, now: datetime) -> int:
    """Start what the hints (or the safety scan) point at; returns how many runs started."""
    startable = _startable(conn, state)
    moves = [RunTransition.natural(run.id, RunState.RUNNING) for run in startable]
    started = 0
    for run, result in zip(startable, transitions.apply(conn, moves, now), strict=True):
        if result.run is None:
            continue
        plan = state.plan(conn, run.version_id)
        assert plan is not None  # _startable only picks runs whose version it could read
        state.states[run.id] = ti_store.create_for_run(conn, result.run, plan, now)
        if plan.mapped:
            # A requeued run keeps the instances its mapped tasks expanded to.
            state.mapped[run.id] = ti_store.run_states(conn, run.id)[1]
        state.runs[run.id] = result.run
        state.watch_timeout(result.run, plan)
        skip_outside_task_dates(conn, state, result.run, plan, now)
        state.mark_dirty(run.id, None)
        started += 1
    return started


def _startable(conn: Connection, state: SchedulerState) -> list[Run]:
    # The safety scan asks the runs index which DAGs have queued runs (usually none),
    # rather than reading every DAG: an idle scheduler does it every few seconds.
    check = runs_store.dags_with_queued_runs(conn) if state.check_all_queued else None
    candidates: dict[str, DagRecord] = {}
    for dag_id in state.check_queued if check is None else check:
        record = dags_store.get_dag(conn, dag_id)
        if record is not None and not record.is_paused:
            candidates[dag_id] = record
    state.check_queued.clear()
    state.check_all_queued = False
    if not candidates:
        return []
    running = runs_store.count_running(conn, candidates)
    startable: list[Run] = []
    for dag_id in sorted(candidates):
        slots = candidates[dag_id].max_active_runs - running.get(dag_id, 0)
        if slots <= 0:
            continue
        startable.extend(
            run
            for run in runs_store.queued_runs(conn, dag_id, slots)
            if state.plan(conn, run.version_id) is not None
        )
    return startable
