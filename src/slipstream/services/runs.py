"""Run use cases: trigger (with conf checked against the DAG's params), read, wait, mark.

Every entry point (CLI, REST API, web UI) triggers through here, so conf is validated the same
way everywhere and a refused trigger writes nothing.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from slipstream.authoring.params import conf_problems, resolve_params
from slipstream.authoring.schedules import timetable_from_spec
from slipstream.clock import Clock
from slipstream.core import event_log as events
from slipstream.core.dag_plan import DagPlan
from slipstream.core.planning import run_id_for
from slipstream.core.records import DagRecord, Run, RunType, TaskInstance, TaskTry, XComEntry
from slipstream.core.states import TaskState
from slipstream.errors import (
    ConflictError,
    DagNotFound,
    InvalidInputError,
    RunAlreadyExists,
    RunNotFound,
    TaskInstanceNotFound,
    TaskNotFound,
)
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database
from slipstream.store.event_log import record_event
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint, HintSender

# Attempts at a free generated run id. Only triggers in the same microsecond share a base id,
# and a random suffix then finds a free one at the first try in all but freak cases.
_RUN_ID_ATTEMPTS = 8

# Airflow's [scheduler] allowed_run_id_pattern: a run id also appears in URL paths.
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9_.~:+-]+$")


def check_run_id(run_id: str) -> None:
    """Refuse a run id a caller chose that Airflow's pattern does not allow, naming it."""
    if not RUN_ID_PATTERN.match(run_id):
        raise InvalidInputError(
            f"The provided run ID '{run_id}' is invalid. It does not match the pattern"
            f" '{RUN_ID_PATTERN.pattern}' - 'dag_run_id'",
            field="dag_run_id",
        )


@dataclass(frozen=True, slots=True)
class TriggerParams:
    """What a trigger form is built from: the DAG, and the serialized params (each with its
    JSON Schema, description and default) of the version a trigger now would run."""

    dag: DagRecord
    params: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class TriggerResult:
    run: Run
    created: bool  # False when an idempotency key matched an earlier run
    dag_is_paused: bool

    @property
    def message(self) -> str:
        if self.dag_is_paused:
            return (
                f"DAG {self.run.dag_id!r} is paused: run {self.run.run_id!r} is queued and will"
                " start when the DAG is unpaused"
            )
        return f"run {self.run.run_id!r} of DAG {self.run.dag_id!r} is queued"


class RunService:
    def __init__(
        self,
        db: Database,
        *,
        clock: Clock,
        wakeup: HintSender | None = None,
        plans: PlanCache | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._wakeup = wakeup
        # Reading and decoding a version's structure on every trigger was half its cost.
        self._plans = plans if plans is not None else PlanCache()

    def trigger(
        self,
        dag_id: str,
        *,
        conf: Any = None,
        run_id: str | None = None,
        logical_date: datetime | None = None,
        note: str | None = None,
        triggered_by: str = "cli",
        idempotency_key: str | None = None,
        run_type: RunType = RunType.MANUAL,
        data_interval: tuple[datetime, datetime] | None = None,
        unique_logical_date: bool = False,
        by: str | None = None,
        after_insert: Callable[[Connection, Run], None] | None = None,
    ) -> TriggerResult:
        """Create a queued run, or refuse with a named reason and write nothing.
        `unique_logical_date` refuses a logical date another run of the DAG has (Airflow's
        REST rule when the caller names the date). `after_insert` writes what belongs with
        the new run in its transaction (and may still refuse it by raising)."""
        if conf is None:
            conf = {}
        if not isinstance(conf, Mapping):
            raise InvalidInputError(
                f"conf must be a JSON object, not {type(conf).__name__}", field="conf"
            )
        if logical_date is not None and logical_date.tzinfo is None:
            raise InvalidInputError(
                "logical_date must include a timezone, e.g. 2024-01-01T00:00:00+00:00",
                field="logical_date",
            )
        if run_id is not None and not run_id.strip():
            raise InvalidInputError("run_id must not be empty", field="dag_run_id")
        now = self._clock.now()
        with self._db.write() as conn:
            dag, plan = self._active_dag(conn, dag_id)
            if idempotency_key is not None:
                earlier = runs_store.find_by_idempotency_key(conn, dag_id, idempotency_key)
                if earlier is not None:
                    return TriggerResult(earlier, created=False, dag_is_paused=dag.is_paused)
            resolve_params(plan.params, conf)  # raises InvalidConf naming the field
            when = (logical_date or now).astimezone(UTC)
            if unique_logical_date and runs_store.find_at_logical_date(conn, dag_id, when):
                raise ConflictError(
                    f"DAGRun with DAG ID: '{dag_id}' and DAGRun logical date:"
                    f" '{when.isoformat(sep=' ')}' already exists"
                )
            interval = data_interval or _manual_interval(plan, when)
            try:
                run = self._insert(
                    conn,
                    dag_id=dag_id,
                    run_id=run_id,
                    run_type=run_type,
                    logical_date=when,
                    data_interval=interval,
                    conf=dict(conf),
                    version_id=plan.version_id,
                    now=now,
                    triggered_by=triggered_by,
                    note=note,
                    idempotency_key=idempotency_key,
                )
            except RunAlreadyExists:
                # Two requests with one idempotency key raced (PostgreSQL): the first one won.
                earlier = (
                    runs_store.find_by_idempotency_key(conn, dag_id, idempotency_key)
                    if idempotency_key is not None
                    else None
                )
                if earlier is None:
                    raise
                return TriggerResult(earlier, created=False, dag_is_paused=dag.is_paused)
            # The audit entry, in the run's own transaction: one more INSERT on this path.
            record_event(
                conn,
                events.TRIGGER,
                now,
                owner=by,
                dag_id=dag_id,
                run_id=run.run_id,
                logical_date=when,
                extra={"triggered_by": triggered_by, "run_type": run_type.value},
            )
            if after_insert is not None:
                after_insert(conn, run)
        # A paused DAG's run waits for the unpause, which wakes the scheduler itself: waking
        # it now would only cost it a pass per trigger. (An unpause racing this trigger is
        # caught by the scheduler's periodic scan of queued runs, within seconds.)
        if self._wakeup is not None and not dag.is_paused:
            self._wakeup.notify(Hint.queued_run(dag_id))
        return TriggerResult(run, created=True, dag_is_paused=dag.is_paused)

    def trigger_params(self, dag_id: str) -> TriggerParams:
        """The DAG's declared params, read from the version `trigger` checks a conf against."""
        with self._db.read() as conn:
            dag, plan = self._active_dag(conn, dag_id)
        return TriggerParams(dag, plan.params)

    def conf_problems(self, dag_id: str, conf: Mapping[str, Any]) -> dict[str, str]:
        """Every declared param `conf` breaks, with why (empty when a trigger would accept
        it): the check `trigger` makes, all at once, for a form to show beside each field."""
        with self._db.read() as conn:
            _, plan = self._active_dag(conn, dag_id)
        return conf_problems(plan.params, conf)

    def _insert(self, conn: Connection, *, run_id: str | None, **fields: Any) -> Run:
        if run_id is not None:
            return runs_store.insert_run(conn, run_id=run_id, **fields)
        base = run_id_for(fields["run_type"], fields["logical_date"])
        key = fields.get("idempotency_key")
        for attempt in range(_RUN_ID_ATTEMPTS):
            candidate = base if attempt == 0 else f"{base}.{secrets.token_hex(4)}"
            try:
                return runs_store.insert_run(conn, run_id=candidate, **fields)
            except RunAlreadyExists:
                if key is not None and runs_store.find_by_idempotency_key(
                    conn, fields["dag_id"], key
                ):
                    raise  # the key is taken, not the id: trigger() returns the earlier run
        raise RunAlreadyExists(fields["dag_id"], base)

    def _active_dag(self, conn: Connection, dag_id: str) -> tuple[DagRecord, DagPlan]:
        dag = dags_store.get_dag(conn, dag_id)
        if dag is None or not dag.is_active or dag.version_id is None:
            raise DagNotFound(dag_id)
        plan = self._plans.get(conn, dag.version_id)
        if plan is None:
            raise DagNotFound(dag_id)
        return dag, plan

    def backfill(
        self, dag_id: str, start: datetime, end: datetime, *, conf: Mapping[str, Any] | None = None
    ) -> list[Run]:
        """Queue a backfill run for every scheduled interval whose logical date is in
        [start, end], skipping logical dates that already have a run."""
        if start.tzinfo is None or end.tzinfo is None:
            raise InvalidInputError("start and end must include a timezone", field="start_date")
        if end < start:
            raise InvalidInputError("end date is before start date", field="end_date")
        now = self._clock.now()
        created: list[Run] = []
        with self._db.write() as conn:
            _, plan = self._active_dag(conn, dag_id)
            timetable = timetable_from_spec(dict(plan.schedule))
            if timetable.summary is None:
                raise InvalidInputError(
                    f"DAG {dag_id!r} has no schedule, so it has no intervals to backfill",
                    field="dag_id",
                )
            resolve_params(plan.params, conf or {})
            intervals = []
            interval = timetable.next_interval(None, start)
            while interval is not None and interval.start <= end:
                intervals.append(interval)
                interval = timetable.next_interval(interval.end, start)
                if interval is not None and intervals and interval.start <= intervals[-1].start:
                    break  # a one-shot timetable repeats no further
            taken = runs_store.logical_dates_taken(conn, dag_id, [i.start for i in intervals])
            for interval in intervals:
                if interval.start in taken:
                    continue
                created.append(
                    self._insert(
                        conn,
                        dag_id=dag_id,
                        run_id=None,
                        run_type=RunType.BACKFILL,
                        logical_date=interval.start,
                        data_interval=(interval.start, interval.end),
                        conf=dict(conf or {}),
                        version_id=plan.version_id,
                        now=now,
                        triggered_by="backfill",
                        external_trigger=False,
                    )
                )
        if created and self._wakeup is not None:
            self._wakeup.notify(Hint.queued_run(dag_id))
        return created

    # ----------------------------------------------------------------- reads

    def get(self, dag_id: str, run_id: str) -> Run:
        with self._db.read() as conn:
            run = runs_store.get_run(conn, dag_id, run_id)
        if run is None:
            raise RunNotFound(dag_id, run_id)
        return run

    def list_runs(
        self,
        dag_id: str | None = None,
        *,
        states: Sequence[str] | None = None,
        limit: int | None = 100,
        offset: int = 0,
        order_by: str = "-id",
    ) -> tuple[list[Run], int]:
        with self._db.read() as conn:
            if dag_id is not None and dags_store.get_dag(conn, dag_id) is None:
                raise DagNotFound(dag_id)
            return runs_store.list_runs(
                conn,
                dag_ids=[dag_id] if dag_id else None,
                states=states,
                limit=limit,
                offset=offset,
                order_by=order_by,
            )

    def find_runs(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        states: Sequence[str] | None = None,
        run_types: Sequence[RunType] | None = None,
        bounds: Mapping[str, tuple[datetime | None, datetime | None]] | None = None,
        limit: int | None = 100,
        offset: int = 0,
        order_by: str = "id",
    ) -> tuple[list[Run], int]:
        """A page of runs of any DAGs (an unknown DAG simply has none) and the total that
        match. `bounds` maps logical_date, start_date, end_date or updated_at to (low, high)."""
        limits: dict[str, datetime | None] = {}
        for name, (low, high) in (bounds or {}).items():
            limits[f"{name}_gte"], limits[f"{name}_lte"] = low, high
        with self._db.read() as conn:
            return runs_store.list_runs(
                conn,
                dag_ids=dag_ids,
                states=states,
                run_types=run_types,
                limit=limit,
                offset=offset,
                order_by=order_by,
                **limits,
            )

    def find_task_instances(
        self,
        *,
        dag_ids: Sequence[str] | None = None,
        run_ids: Sequence[str] | None = None,
        task_ids: Sequence[str] | None = None,
        states: Sequence[TaskState] | None = None,
        pools: Sequence[str] | None = None,
        queues: Sequence[str] | None = None,
        bounds: Mapping[str, tuple[datetime | None, datetime | None]] | None = None,
        duration: tuple[float | None, float | None] = (None, None),
        limit: int | None = 100,
        offset: int = 0,
        map_indexes: Sequence[int] | None = None,
        mapped_only: bool = False,
        order_by: Sequence[tuple[str, bool]] = (),
    ) -> tuple[list[tuple[TaskInstance, Run]], int]:
        """A page of task instances, each with its run, and the total that match."""
        with self._db.read() as conn:
            return ti_store.search(
                conn,
                dag_ids=dag_ids,
                run_ids=run_ids,
                task_ids=task_ids,
                map_indexes=map_indexes,
                mapped_only=mapped_only,
                order_by=order_by,
                states=states,
                pools=pools,
                queues=queues,
                bounds=bounds,
                duration=duration,
                limit=limit,
                offset=offset,
            )

    def task_instance(
        self, dag_id: str, run_id: str, task_id: str, map_index: int = -1
    ) -> tuple[TaskInstance, Run]:
        with self._db.read() as conn:
            run = runs_store.get_run(conn, dag_id, run_id)
            if run is None:
                raise RunNotFound(dag_id, run_id)
            ti = ti_store.get(conn, run.id, task_id, map_index)
        if ti is None:
            raise TaskInstanceNotFound(dag_id, run_id, task_id, map_index=map_index)
        return ti, run

    def xcom_entries(
        self,
        dag_id: str,
        run_id: str,
        task_id: str,
        *,
        map_index: int | None = None,
        key: str | None = None,
        limit: int | None = 100,
        offset: int = 0,
    ) -> tuple[list[XComEntry], int, Run]:
        """A page of one task's XComs in a run, their total, and the run."""
        with self._db.read() as conn:
            run = runs_store.get_run(conn, dag_id, run_id)
            if run is None:
                raise RunNotFound(dag_id, run_id)
            found, total = xcom_store.entries(
                conn, run.id, task_id, map_index=map_index, key=key, limit=limit, offset=offset
            )
        return found, total, run

    def is_mapped(self, dag_id: str, run_id: str, task_id: str) -> bool:
        """Whether the task is mapped in the version the run is pinned to (TaskNotFound when
        that version has no such task)."""
        with self._db.read() as conn:
            run = runs_store.get_run(conn, dag_id, run_id)
            if run is None:
                raise RunNotFound(dag_id, run_id)
            plan = self._plans.get(conn, run.version_id)
        if plan is None or task_id not in plan.tasks:
            raise TaskNotFound(dag_id, task_id)
        return task_id in plan.mapped

    def at_logical_date(self, dag_id: str, logical_date: datetime) -> Run | None:
        """The newest run of a DAG at exactly this logical date, or None."""
        with self._db.read() as conn:
            if dags_store.get_dag(conn, dag_id) is None:
                raise DagNotFound(dag_id)
            found, _ = runs_store.list_runs(
                conn,
                dag_ids=[dag_id],
                logical_date_gte=logical_date,
                logical_date_lte=logical_date,
                limit=1,
                order_by="-id",
            )
        return found[0] if found else None

    def latest_per_dag(self) -> list[Run]:
        """Each active DAG's run with the latest logical date, for DAGs that have runs."""
        with self._db.read() as conn:
            dags, _ = dags_store.list_dags(conn, only_active=True)
            latest = []
            for dag in dags:
                found, _ = runs_store.list_runs(
                    conn, dag_ids=[dag.dag_id], limit=1, order_by="-logical_date"
                )
                latest.extend(found)
        return latest

    def task_instances(self, dag_id: str, run_id: str) -> list[TaskInstance]:
        with self._db.read() as conn:
            run = runs_store.get_run(conn, dag_id, run_id)
            if run is None:
                raise RunNotFound(dag_id, run_id)
            found = ti_store.list_for_run(conn, run.id)
            plan_order = self._order(conn, run)
        rank = {task_id: i for i, task_id in enumerate(plan_order)}
        return sorted(found, key=lambda t: rank.get(t.task_id, len(rank)))

    def _order(self, conn: Connection, run: Run) -> tuple[str, ...]:
        plan = self._plans.get(conn, run.version_id)
        return plan.order if plan else ()

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> list[TaskTry]:
        with self._db.read() as conn:
            run = runs_store.get_run(conn, dag_id, run_id)
            if run is None:
                raise RunNotFound(dag_id, run_id)
            found = ti_store.tries_for(conn, run.id, task_id, map_index)
            if not found and ti_store.get(conn, run.id, task_id, map_index) is None:
                raise TaskInstanceNotFound(dag_id, run_id, task_id, map_index=map_index)
        return found

    def try_hostname(
        self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int = -1
    ) -> str | None:
        """The machine a try ran (or runs) on; None before it started."""
        tries = self.tries(dag_id, run_id, task_id, map_index)
        return next((t.hostname for t in tries if t.try_number == try_number), None)

    def wait(self, dag_id: str, run_id: str, *, timeout: float | None = None) -> Run:
        """Return the run once it has finished, or as it is when `timeout` seconds pass."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            run = self.get(dag_id, run_id)
            if run.state.is_finished:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                return run
            # Back off from 5 ms to 100 ms: short runs return fast, long ones cost little.
            wait = pause if deadline is None else min(pause, max(0.0, deadline - time.monotonic()))
            time.sleep(wait)
            pause = min(pause * 2, 0.1)


def _manual_interval(plan: DagPlan, when: datetime) -> tuple[datetime, datetime]:
    interval = timetable_from_spec(dict(plan.schedule)).manual_interval(when)
    return interval.start, interval.end
