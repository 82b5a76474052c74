"""What a running task reads from the database beyond its workload: XComs of its own run, of
earlier runs (include_prior_dates) and of other DAGs, its DAG's previous successful run, and
(for ExternalTaskSensor) the states of another DAG's run and tasks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from slipstream.core.records import Run
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database


class XComReader:
    """Opens its own database handle: it is built inside a task's process, after the fork."""

    def __init__(self, database_url: str) -> None:
        self._db = Database(database_url)

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

    def dag_tasks(self, dag_id: str) -> list[str] | None:
        """The task ids of `dag_id`'s latest version; None when the DAG is not known."""
        with self._db.read() as conn:
            version = dags_store.latest_version(conn, dag_id)
            if version is None:
                return None
            return [t["task_id"] for t in version.structure.get("tasks", ())]

    def close(self) -> None:
        """Let the connections go (a try in a forked child never needs to; an in-process
        try, as with the inline executor, does)."""
        self._db.dispose()
