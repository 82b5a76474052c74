"""Skipping, when a run starts, the tasks whose own start_date/end_date leave its logical date
out (core/task_dates.py); the planner then treats them as any skipped task."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run
from slipstream.core.states import TaskState
from slipstream.core.task_dates import outside_task_dates
from slipstream.core.transitions import planned
from slipstream.scheduler.state import SchedulerState
from slipstream.store import transitions


def skip_outside_task_dates(
    conn: Connection, state: SchedulerState, run: Run, plan: DagPlan, now: datetime
) -> None:
    outside = outside_task_dates(plan, run.logical_date, run.run_type)
    if not outside:
        return
    reason = "the run's logical date is outside the task's start_date/end_date"
    move = planned(run.id, outside, TaskState.SKIPPED, reason=reason)
    moved = transitions.apply_one(conn, move, now)
    state.note(run.id, moved.task_ids, TaskState.SKIPPED)
