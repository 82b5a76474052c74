"""Scheduled runs: which DAGs have schedules, and creating each run once its interval is over.

The decisions (which interval comes next, catchup) are core.planning's; this keeps the list of
schedulable DAGs and the time the next run falls due, so an idle pass costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Connection

from slipstream.authoring.schedules import DataInterval, Timetable, timetable_from_spec
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
    """`creates_runs=False` keeps schedules from creating any run: `dags test` runs the one run
    it was asked for, as Airflow's does, not a catchup DAG's backlog as well."""

    def __init__(self, *, creates_runs: bool = True) -> None:
        self._creates_runs = creates_runs
        self._schedulable: dict[str, DagPlan] = {}
        self._stale = True
        self._last_refresh: datetime | None = None
        self.next_due: datetime | None = None

    def mark_stale(self) -> None:
        """A DAG changed (parsed, paused, unpaused): read the schedulable DAGs again."""
        self._stale = True

    def is_due(self, now: datetime) -> bool:
        if not self._creates_runs:
            return False
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
            if timetable.is_continuous:
                if budget <= 0:
                    next_due = now
                    continue
                started, due = self._start_continuous(
                    conn, dag_id, plan, timetable, last_end, (start, end), now
                )
                if started:
                    created.add(dag_id)
                    budget -= 1
                if due is not None:
                    next_due = due if next_due is None else min(next_due, due)
                continue

            interval = next_interval_to_schedule(
                timetable,
                last_end=last_end,
                start_date=start,
                end_date=end,
                catchup=plan.catchup,
                now=now,
            )
            while interval is not None and interval.due <= now and budget > 0:
                if self._insert(conn, dag_id, plan, interval, now):
                    created.add(dag_id)
                    budget -= 1
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
                interval.due if interval else None,
                data_interval=(interval.start, interval.end) if interval else None,
            )
            if interval is not None:
                due = interval.due if budget > 0 else now
                next_due = due if next_due is None else min(next_due, due)
        self.next_due = next_due
        return created

    def runs_finished(self, now: datetime) -> None:
        """Some runs ended: a continuous DAG among the schedulable ones may start its next."""
        if any(plan.schedule.get("type") == "continuous" for plan in self._schedulable.values()):
            self.next_due = now if self.next_due is None else min(self.next_due, now)

    def _start_continuous(
        self,
        conn: Connection,
        dag_id: str,
        plan: DagPlan,
        timetable: Timetable,
        last_end: datetime | None,
        bounds: tuple[datetime | None, datetime | None],
        now: datetime,
    ) -> tuple[bool, datetime | None]:
        """@continuous: a run now unless one is queued or running (then runs_finished wakes
        us). Returns whether a run was made and when to look again (None: on a wake-up)."""
        start, end = bounds
        if (end is not None and now > end) or runs_store.has_unfinished_run(conn, dag_id):
            return False, None
        interval = timetable.continuous_interval(last_end, start, now)
        if interval is None or not self._insert(conn, dag_id, plan, interval, now):
            # Its start_date is still ahead, or the last run began this very instant.
            soon = now + timedelta(milliseconds=1)
            return False, start if start is not None and start > soon else soon
        return True, None

    def _insert(
        self, conn: Connection, dag_id: str, plan: DagPlan, interval: DataInterval, now: datetime
    ) -> bool:
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
        except RunAlreadyExists:
            log.debug("scheduled run for %s at %s exists", dag_id, interval.start)
            return False
        return True

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
