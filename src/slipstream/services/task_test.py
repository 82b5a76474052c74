"""`tasks test`: the Workload of one task instance run outside the scheduler (Airflow's
`tasks test`), against an existing run's conf and upstream XComs when one is named, nothing
recorded."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from slipstream.core.log_paths import log_path_for
from slipstream.core.records import Run, RunType, Workload
from slipstream.core.states import RunState
from slipstream.errors import DagNotFound, InvalidInputError, TaskNotFound
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database
from slipstream.store.plans import PlanCache


class TaskTestService:
    def __init__(self, db: Database, plans: PlanCache) -> None:
        self._db = db
        self._plans = plans

    def workload(
        self,
        dag_id: str,
        task_id: str,
        *,
        map_index: int,
        run_id: str | None,
        logical_date: datetime,
        log_folder: Path,
        max_map_length: int,
    ) -> Workload:
        """The try to run: of the run `run_id` when it exists (its conf, its upstream XComs),
        else of a run that exists only for this test, at `logical_date`."""
        with self._db.read() as conn:
            record = dags_store.get_dag(conn, dag_id)
            if record is None or record.version_id is None:
                raise DagNotFound(dag_id)
            run = runs_store.get_run(conn, dag_id, run_id) if run_id is not None else None
            plan = self._plans.get(conn, run.version_id if run else record.version_id)
            if plan is None or task_id not in plan.tasks:
                raise TaskNotFound(dag_id, task_id)
            spec = plan.tasks[task_id]
            if spec.mapped is not None and map_index < 0:
                raise InvalidInputError(
                    f"task {task_id!r} is mapped: give the instance to test with --map-index",
                    field="--map-index",
                )
            if spec.mapped is None and map_index >= 0:
                raise InvalidInputError(
                    f"task {task_id!r} is not mapped: it has no map index {map_index}",
                    field="--map-index",
                )
            paired = plan.paired_upstream.get(task_id, frozenset())
            upstream = (
                xcom_store.for_tasks(conn, run.id, set(spec.upstream) - paired) if run else {}
            )
            if run and paired:
                # Tasks of its mapped group hand on what they pushed at this map index.
                found = xcom_store.for_instances(conn, run.id, {(u, map_index) for u in paired})
                upstream |= {u: found[u, map_index] for u in paired if (u, map_index) in found}
            source = dags_store.get_source(conn, run.version_id) if run else None
        test_run_id = (
            run.run_id if run else f"__slipstream_temporary_run_{logical_date.isoformat()}"
        )
        return Workload(
            run_pk=run.id if run else 0,
            dag_id=dag_id,
            run_id=test_run_id,
            task_id=task_id,
            try_number=1,
            max_tries=spec.retries,
            fileloc=plan.fileloc,
            version_hash=plan.version_hash,
            run_type=run.run_type if run else RunType.MANUAL,
            logical_date=_logical_date(run, logical_date),
            data_interval_start=run.data_interval_start if run else logical_date,
            data_interval_end=run.data_interval_end if run else logical_date,
            conf=run.conf if run else {},
            log_path=str(log_path_for(log_folder, dag_id, test_run_id, task_id, 1, map_index)),
            upstream_xcoms=upstream,
            source=source if record.version_id != plan.version_id else None,
            map_index=map_index,
            map_length_limit=max_map_length if task_id in plan.feeds_mapping else None,
            same_index_upstream=tuple(sorted(paired)),
            run_queued_at=run.queued_at if run else None,
            run_start_date=run.start_date if run else None,
            run_state=run.state if run else RunState.RUNNING,
            run_end_date=run.end_date if run else None,
            version_id=plan.version_id,
            source_sha256=plan.source_sha256,
        )


def _logical_date(run: Run | None, default: datetime) -> datetime | None:
    return run.logical_date if run is not None else default
