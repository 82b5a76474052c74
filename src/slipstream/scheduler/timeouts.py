"""dagrun_timeout: a run still running when its DAG's dagrun_timeout has passed since it started
fails, as in Airflow: its unfinished tasks are skipped, and the tries it has in flight are
stopped. The scheduler wakes for the earliest deadline (SchedulerState.deadlines), not a poll.
"""

from __future__ import annotations

import heapq
import logging
from datetime import datetime, timedelta

from sqlalchemy import Connection

from slipstream.core.records import TaskKey
from slipstream.core.states import RunState, TaskState
from slipstream.core.transitions import RunTransition, TaskTransition
from slipstream.scheduler import callbacks
from slipstream.scheduler.state import SchedulerState
from slipstream.store import task_instances as ti_store
from slipstream.store import transitions

log = logging.getLogger(__name__)


def expire_runs(conn: Connection, state: SchedulerState, now: datetime) -> list[TaskKey]:
    """Fail every running run whose dagrun_timeout has passed; returns the tries in flight
    of those runs, for the executor to stop once this pass has committed."""
    stop: list[TaskKey] = []
    while state.deadlines and state.deadlines[0][0] <= now:
        _, run_pk = heapq.heappop(state.deadlines)
        run = state.run(conn, run_pk)
        if run is None or run.state is not RunState.RUNNING or run.start_date is None:
            continue
        plan = state.plan(conn, run.version_id)
        if plan is None or plan.dagrun_timeout is None:
            continue
        deadline = run.start_date + timedelta(seconds=plan.dagrun_timeout)
        if deadline > now:
            # The run started again (a person requeued it) since this deadline was set.
            heapq.heappush(state.deadlines, (deadline, run_pk))
            continue
        reason = f"dagrun_timeout of {plan.dagrun_timeout:g}s exceeded"
        unfinished = [t for t in ti_store.list_for_run(conn, run_pk) if not t.state.is_finished]
        moves: list[TaskTransition | RunTransition] = [
            TaskTransition.forced(t, TaskState.SKIPPED, reason=f"skipped: the run's {reason}")
            for t in unfinished
        ]
        moves.append(RunTransition.natural(run_pk, RunState.FAILED, reason=reason))
        moved = transitions.apply(conn, moves, now)
        if not moved[-1]:
            state.forget_states(run_pk)  # someone else moved the run meanwhile
            continue
        log.warning("run %s of %s failed: %s", run.run_id, run.dag_id, reason)
        callbacks.note_run_end(state, run, RunState.FAILED, reason, now)  # Airflow's "timed_out"
        stop.extend(key for key in state.in_flight if key.run_pk == run_pk)
        state.forget_run(run_pk)
        state.check_queued.add(run.dag_id)  # a slot under max_active_runs is free
        state.schedules.runs_finished(now)  # a @continuous DAG starts its next run
    return stop
