"""Scheduled runs: which DAGs have schedules, and creating each run once its interval is over.

The decisions (which interval comes next, catchup) are core.planning's; this keeps the list of
schedulable DAGs and the time the next run falls due, so an idle pass costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Connection

from slipstream.authoring.schedules import timetable_from_spec
from slipstream.core.dag_plan import DagPlan
from slipstream.core.planning import next_interval_to_schedule, run_id_for
from slipstream.core.records import RunType
from slipstream.errors import RunAlreadyExists
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store

log = logging.getLogger(__name__)

# A cap per pass keeps one pass short when catchup has years of intervals to create.
MAX_SCHEDULED_RUNS_PER_PASS = 100
# Even without a hint, look again for new or changed schedules this often.
REFRESH_SECONDS = 30.0

PlanLookup = Callable[[Connection, int], DagPlan | None]


class ScheduleKeeper:
    def __init__(self) -> None:
        self._schedulable: dict[str, DagPlan] = {}
        self._stale = True
        self._last_refresh: datetime | None = None
        self.next_due: datetime | None = None

    def mark_stale(self) -> None:
        """A DAG changed (parsed, paused, unpaused): read the schedulable DAGs again."""
        self._stale = True

    def is_due(self, now: datetime) -> bool:
        if self._last_refresh is not None and (
            (now - self._last_refresh).total_seconds() >= REFRESH_SECONDS
        ):
            self._stale = True
        return self._stale or (self.next_due is not None and self.next_due <= now)

    def create_due_runs(self, conn: Connection, now: datetime, plan_for: PlanLookup) -> set[str]:
        """Create every scheduled run now due (up to the cap); returns the DAGs that got one."""
        if self._stale:
            self._refresh(conn, now, plan_for)
        created: set[str] = set()
        next_due: datetime | None = None
        budget = MAX_SCHEDULED_RUNS_PER_PASS
        for dag_id, plan in self._schedulable.items():
            timetable = timetable_from_spec(dict(plan.schedule))
            start = _parse_date(plan.start_date)
            end = _parse_date(plan.end_date)
            last_end = runs_store.latest_scheduled_end(conn, dag_id)

            interval = next_interval_to_schedule(
                timetable,
                last_end=last_end,
                start_date=start,
                end_date=end,
                catchup=plan.catchup,
                now=now,
            )
            while interval is not None and interval.end <= now and budget > 0:
                try:
                    runs_store.insert_run(
                        conn,
                        dag_id=dag_id,
                        run_id=run_id_for(RunType.SCHEDULED, interval.start),
                        run_type=RunType.SCHEDULED,
                        logical_date=interval.start,
                        data_interval=(interval.start, interval.end),
                        conf={},
                        version_id=plan.version_id,
                        now=now,
                        external_trigger=False,
                        triggered_by="scheduler",
                    )
                    created.add(dag_id)
                    budget -= 1
                except RunAlreadyExists:
                    log.debug("scheduled run for %s at %s exists", dag_id, interval.start)
                if timetable.next_interval(interval.end, start) is None:
                    interval = None  # a one-shot schedule (@once) is done
                    break
                interval = next_interval_to_schedule(
                    timetable,
                    last_end=interval.end,
                    start_date=start,
                    end_date=end,
                    catchup=plan.catchup,
                    now=now,
                )
            dags_store.set_next_dagrun_create_after(
                conn,
                dag_id,
                interval.end if interval else None,
                data_interval=(interval.start, interval.end) if interval else None,
            )
            if interval is not None:
                due = interval.end if budget > 0 else now
                next_due = due if next_due is None else min(next_due, due)
        self.next_due = next_due
        return created

    def _refresh(self, conn: Connection, now: datetime, plan_for: PlanLookup) -> None:
        self._schedulable = {}
        for record in dags_store.schedulable_dags(conn):
            plan = plan_for(conn, record.version_id) if record.version_id is not None else None
            if plan is not None:
                self._schedulable[record.dag_id] = plan
        self._stale = False
        self._last_refresh = now


def _parse_date(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
