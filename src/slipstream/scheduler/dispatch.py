"""Handing ready tasks to the executor: which ones get the free slots (fairly across DAGs,
within each DAG's max_active_tasks), queueing their tries, and the workloads that carry
everything a worker needs. The workloads are submitted only after the pass commits.
"""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from pathlib import Path

from sqlalchemy import Connection

from slipstream.core.dag_plan import DagPlan
from slipstream.core.log_paths import log_path_for
from slipstream.core.planning import pick_fair
from slipstream.core.records import Run, TaskInstance, Workload
from slipstream.core.states import TaskState
from slipstream.core.transitions import QueueTries
from slipstream.scheduler.state import SchedulerState
from slipstream.store import transitions
from slipstream.store import xcoms as xcom_store


def dispatch(
    conn: Connection,
    state: SchedulerState,
    now: datetime,
    *,
    free: int,
    job_id: int | None,
    log_folder: Path,
) -> list[tuple[Workload, int]]:
    """Queue up to `free` ready tries; returns their workloads with each task's count of
    infrastructure failures so far."""
    if free <= 0 or not state.has_ready():
        return []
    limits = {
        dag_id: max(
            0,
            state.current_version(conn, dag_id).max_active_tasks
            - state.active_per_dag.get(dag_id, 0),
        )
        for dag_id in state.ready
    }
    window = {
        dag_id: list(islice(queue, 0, min(len(queue), free)))
        for dag_id, queue in state.ready.items()
        if queue
    }
    by_run: dict[int, list[str]] = {}
    for dag_id, (run_pk, task_id) in pick_fair(window, free, limits):
        state.ready[dag_id].popleft()
        by_run.setdefault(run_pk, []).append(task_id)
    for dag_id in [d for d, q in state.ready.items() if not q]:
        del state.ready[dag_id]
    runs: list[tuple[Run, DagPlan]] = []
    for run_pk in by_run:
        run = state.run(conn, run_pk)
        plan = state.plan(conn, run.version_id) if run else None
        if run is not None and plan is not None:
            runs.append((run, plan))
    moves = [QueueTries(run.id, tuple(by_run[run.id]), job_id) for run, _ in runs]
    workloads: list[tuple[Workload, int]] = []
    for (run, plan), result in zip(runs, transitions.apply(conn, moves, now), strict=True):
        if result.tries:
            state.note(run.id, result.task_ids, TaskState.QUEUED)
            workloads.extend(_workloads(conn, state, run, plan, result.tries, log_folder))
    return workloads


def _workloads(
    conn: Connection,
    state: SchedulerState,
    run: Run,
    plan: DagPlan,
    queued: tuple[TaskInstance, ...],
    log_folder: Path,
) -> list[tuple[Workload, int]]:
    source = state.pinned_source(conn, run)
    upstream_ids = {u for ti in queued for u in plan.tasks[ti.task_id].upstream}
    upstream_xcoms = xcom_store.for_tasks(conn, run.id, upstream_ids)
    workloads = []
    for ti in queued:
        spec = plan.tasks[ti.task_id]
        workload = Workload(
            run_pk=run.id,
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=ti.task_id,
            try_number=ti.try_number,
            max_tries=ti.max_tries,  # the task's retries, raised when a person clears it
            fileloc=plan.fileloc,
            version_hash=plan.version_hash,
            run_type=run.run_type,
            logical_date=run.logical_date,
            data_interval_start=run.data_interval_start,
            data_interval_end=run.data_interval_end,
            conf=run.conf,
            log_path=str(
                log_path_for(log_folder, run.dag_id, run.run_id, ti.task_id, ti.try_number)
            ),
            execution_timeout=spec.execution_timeout,
            queue=spec.queue,
            upstream_xcoms={u: upstream_xcoms[u] for u in spec.upstream if u in upstream_xcoms},
            source=source,
            infra_failures=ti.infra_failures,
        )
        workloads.append((workload, ti.infra_failures))
    return workloads
