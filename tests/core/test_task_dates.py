"""core.task_dates: a task's own start_date/end_date leave some runs out."""

from __future__ import annotations

from datetime import UTC, datetime

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import RunType
from slipstream.core.task_dates import outside_task_dates


def plan() -> DagPlan:
    structure = {
        "dag_id": "d",
        "tasks": [
            {"task_id": "always"},
            {"task_id": "later", "start_date": "2026-02-01T00:00:00+00:00"},
            {"task_id": "retired", "end_date": "2026-01-15T00:00:00+00:00"},
        ],
    }
    return DagPlan.from_structure(structure, version_id=1, version_hash="h")


def test_tasks_outside_their_dates_are_named() -> None:
    january_10 = datetime(2026, 1, 10, tzinfo=UTC)
    january_20 = datetime(2026, 1, 20, tzinfo=UTC)
    february_2 = datetime(2026, 2, 2, tzinfo=UTC)
    assert plan().dated == ("later", "retired")
    assert outside_task_dates(plan(), january_10, RunType.MANUAL) == ("later",)
    assert outside_task_dates(plan(), january_20, RunType.SCHEDULED) == ("later", "retired")
    assert outside_task_dates(plan(), february_2, RunType.MANUAL) == ("retired",)


def test_backfills_and_runs_without_a_logical_date_run_everything() -> None:
    assert outside_task_dates(plan(), datetime(2025, 1, 1, tzinfo=UTC), RunType.BACKFILL) == ()
    assert outside_task_dates(plan(), None, RunType.MANUAL) == ()
