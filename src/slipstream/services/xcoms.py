"""What a running task reads from the database beyond its workload: XComs of its own run, of
earlier runs (include_prior_dates) and of other DAGs, its DAG's previous successful run, and
(for ExternalTaskSensor) the states of another DAG's run and tasks, and (for
TriggerDagRunOperator's wait) the state of the run a task triggered; the asset events that
triggered its run; and the one thing a task writes through it: a run of another DAG
(TriggerDagRunOperator)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from slipstream.clock import SystemClock
from slipstream.core.records import Run
from slipstream.services.run_changes import RunChangeService
from slipstream.services.runs import RunService
from slipstream.services.task_triggers import TaskTriggerService, TriggerSource
from slipstream.store import assets as assets_store
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database
from slipstream.store.notify import hint_sender


class XComReader:
    """Opens its own database handle: it is built inside a task's process, after the fork."""

    def __init__(self, database_url: str, wakeup_path: str | None = None) -> None:
        self._db = Database(database_url)
        self._wakeup_path = wakeup_path

    def trigger_dag_run(
        self,
        *,
        source: tuple[str, str, int, str],
        dag_id: str,
        run_id: str | None,
        conf: Any,
        logical_date: datetime | None,
        reset_dag_run: bool,
        skip_when_already_exists: bool,
    ) -> tuple[str, datetime | None, str]:
        """TriggerDagRunOperator's trigger (services/task_triggers.py): (run id, logical
        date, outcome) of the run it started, reset or found."""
        clock = SystemClock()
        wakeup = hint_sender(self._db, Path(self._wakeup_path)) if self._wakeup_path else None
        runs = RunService(self._db, clock=clock, wakeup=wakeup)
        changes = RunChangeService(self._db, clock=clock, wakeup=wakeup)
        try:
            done = TaskTriggerService(self._db, runs, changes, clock).trigger(
                TriggerSource(*source),
                dag_id,
                run_id=run_id,
                conf=conf,
                logical_date=logical_date,
                reset_dag_run=reset_dag_run,
                skip_when_already_exists=skip_when_already_exists,
            )
        finally:
            if wakeup is not None:
                wakeup.close()
        return done.run_id, done.logical_date, done.outcome

    def pull(
        self, run_pk: int, task_ids: Sequence[str], key: str | None, map_index: int | None = None
    ) -> dict[str, str]:
        with self._db.read() as conn:
            return xcom_store.pull(conn, run_pk, task_ids, key, map_index)

    def pull_across_runs(
        self,
        *,
        dag_id: str,
        key: str,
        task_ids: Sequence[str] | None,
        run_id: str | None = None,
        logical_date_at_most: datetime | None = None,
        map_index: int | None = None,
    ) -> dict[str, str]:
        with self._db.read() as conn:
            return xcom_store.pull_across_runs(
                conn,
                dag_id=dag_id,
                key=key,
                task_ids=task_ids,
                run_id=run_id,
                logical_date_at_most=logical_date_at_most,
                map_index=map_index,
            )

    def previous_success(self, dag_id: str, before: datetime) -> Run | None:
        with self._db.read() as conn:
            return runs_store.previous_successful(conn, dag_id, before)

    def external_states(
        self, dag_id: str, logical_date: datetime
    ) -> tuple[str, dict[str, list[str]]] | None:
        """The state of `dag_id`'s run at `logical_date` and each of its tasks' instance
        states (ExternalTaskSensor); None when there is no such run."""
        with self._db.read() as conn:
            run = runs_store.find_at_logical_date(conn, dag_id, logical_date)
            if run is None:
                return None
            tasks: dict[str, list[str]] = {}
            for ti in ti_store.list_for_run(conn, run.id):
                tasks.setdefault(ti.task_id, []).append(ti.state.value)
            return run.state.value, tasks

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        """The state of run `run_id` of `dag_id` (TriggerDagRunOperator's wait for the run it
        triggered); None when there is no such run."""
        with self._db.read() as conn:
            run = runs_store.get_run(conn, dag_id, run_id)
        return None if run is None else run.state.value

    def dag_tasks(self, dag_id: str) -> list[str] | None:
        """The task ids of `dag_id`'s latest version; None when the DAG is not known."""
        with self._db.read() as conn:
            version = dags_store.latest_version(conn, dag_id)
            if version is None:
                return None
            return [t["task_id"] for t in version.structure.get("tasks", ())]

    def triggering_asset_events(self, run_pk: int) -> list[dict[str, Any]]:
        with self._db.read() as conn:
            return [event.as_context() for event in assets_store.events_of_run(conn, run_pk)]

    def close(self) -> None:
        """Let the connections go (a try in a forked child never needs to; an in-process
        try, as with the inline executor, does)."""
        self._db.dispose()
