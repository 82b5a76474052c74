"""A task's own start_date and end_date: Airflow creates no instance of a task for a run whose
logical date falls before the task's start_date or after its end_date (backfills excepted).
Slipstream keeps the instance, so the run shows why it did not run, and skips it."""

from __future__ import annotations

from datetime import datetime

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import RunType


def outside_task_dates(
    plan: DagPlan, logical_date: datetime | None, run_type: RunType
) -> tuple[str, ...]:
    """Tasks of `plan` whose own dates leave out a run at `logical_date`."""
    if not plan.dated or logical_date is None or run_type is RunType.BACKFILL:
        return ()
    outside = []
    for task_id in plan.dated:
        spec = plan.tasks[task_id]
        if (spec.start_date and logical_date < datetime.fromisoformat(spec.start_date)) or (
            spec.end_date and logical_date > datetime.fromisoformat(spec.end_date)
        ):
            outside.append(task_id)
    return tuple(outside)
