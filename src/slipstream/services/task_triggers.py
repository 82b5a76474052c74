"""A running task triggering another DAG (TriggerDagRunOperator), through the trigger the API
uses: conf checked against the target's params, an unknown or paused target refused naming
it, an existing run id reset, skipped or refused as asked. Each run started this way records
the try that started it and its depth in such a chain: a chain of DAGs triggering one another
stops at MAX_TRIGGER_DEPTH hops (Airflow has no bound)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection

from slipstream.clock import Clock
from slipstream.core.planning import run_id_for
from slipstream.core.records import Run, RunType
from slipstream.errors import InvalidInputError, RunAlreadyExists
from slipstream.services.run_changes import RunChangeService
from slipstream.services.runs import RunService
from slipstream.store import run_triggers
from slipstream.store import runs as runs_store
from slipstream.store.db import Database

# Hops of task-triggered runs one chain may make: generous for a DAG that re-triggers itself
# to go on with its work, small enough that a cycle of DAGs does not run for ever.
MAX_TRIGGER_DEPTH = 100


@dataclass(frozen=True, slots=True)
class TriggerSource:
    """The try asking: its DAG, run (and the run's primary key) and task."""

    dag_id: str
    run_id: str
    run_pk: int
    task_id: str


@dataclass(frozen=True, slots=True)
class TriggeredRun:
    run_id: str
    logical_date: datetime | None
    outcome: str  # "created", "reset" (an existing run cleared) or "exists" (skipped)


class TaskTriggerService:
    def __init__(self, db: Database, runs: RunService, changes: RunChangeService, clock: Clock):
        self._db = db
        self._runs = runs
        self._changes = changes
        self._clock = clock

    def trigger(
        self,
        source: TriggerSource,
        dag_id: str,
        *,
        run_id: str | None,
        conf: Any,
        logical_date: datetime | None,
        reset_dag_run: bool,
        skip_when_already_exists: bool,
    ) -> TriggeredRun:
        target = self._runs.trigger_params(dag_id).dag  # DagNotFound names an unknown DAG
        if target.is_paused:
            raise InvalidInputError(
                f"DAG {dag_id!r} is paused: unpause it to trigger it from a task",
                field="trigger_dag_id",
            )
        when = (logical_date or self._clock.now()).astimezone(UTC)
        chosen = run_id or run_id_for(RunType.MANUAL, when)
        with self._db.read() as conn:
            existing = runs_store.get_run(conn, dag_id, chosen)
            depth = run_triggers.depth_of(conn, source.run_pk) + 1
        if existing is not None:
            return self._existing(existing, reset_dag_run, skip_when_already_exists, source)
        if depth > MAX_TRIGGER_DEPTH:
            raise InvalidInputError(
                f"refusing to trigger DAG {dag_id!r}: run {source.run_id!r} of "
                f"{source.dag_id!r} is the end of a chain of {depth - 1} runs started by "
                f"TriggerDagRunOperator (at most {MAX_TRIGGER_DEPTH}); DAGs that trigger each "
                "other in a cycle would never stop",
                field="trigger_dag_id",
            )

        def link(conn: Connection, run: Run) -> None:
            run_triggers.link(
                conn,
                run.id,
                source_dag_id=source.dag_id,
                source_run_id=source.run_id,
                source_task_id=source.task_id,
                depth=depth,
            )

        result = self._runs.trigger(
            dag_id,
            conf=conf,
            run_id=chosen,
            logical_date=when,
            triggered_by="operator",
            after_insert=link,
        )
        return TriggeredRun(result.run.run_id, result.run.logical_date, "created")

    def _existing(self, run: Run, reset: bool, skip: bool, source: TriggerSource) -> TriggeredRun:
        if reset:
            self._changes.clear_run(
                run.dag_id, run.run_id, dry_run=False, by=f"{source.dag_id}.{source.task_id}"
            )
            return TriggeredRun(run.run_id, run.logical_date, "reset")
        if skip:
            return TriggeredRun(run.run_id, run.logical_date, "exists")
        raise RunAlreadyExists(run.dag_id, run.run_id)
