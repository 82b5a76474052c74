"""Handing ready tasks to the executor: which ones get the free slots (highest priority first,
fairly across DAGs where priorities tie, within each DAG's max_active_tasks, the pool's slots
and each task's concurrency limits: core/admission.py), queueing their tries, and the
workloads that carry everything a worker needs. The workloads are submitted only after the
pass commits. A task that could never fit in the pool is failed instead (refusals.py).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from slipstream.core.admission import Candidate, admit, never_fits
from slipstream.core.dag_plan import DagPlan
from slipstream.core.log_paths import log_path_for
from slipstream.core.records import Run, TaskInstance, Workload
from slipstream.core.states import TaskState
from slipstream.core.transitions import QueueTries
from slipstream.scheduler.refusals import Refusal, fail_refused
from slipstream.scheduler.state import SchedulerState
from slipstream.store import pools as pools_store
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
    """Queue up to `free` ready tries, within every pool's slots (`state.pool_sizes`, read
    when pools changed); returns their workloads with each task's count of infrastructure
    failures so far."""
    if free <= 0 or not state.has_ready():
        return []
    refused = _order_arrivals(conn, state)
    fail_refused(conn, state, refused, now, job_id=job_id)
    room = {
        dag_id: max(
            0,
            state.current_version(conn, dag_id).max_active_tasks
            - state.active_per_dag.get(dag_id, 0),
        )
        for dag_id in state.waiting
    }
    admission = admit(
        {dag_id: _drawn(heap) for dag_id, heap in state.waiting.items()},
        free=free,
        dag_room=room,
        pool_room=_pool_room(conn, state),
        task_active=state.task_active,
        run_task_active=state.run_task_active,
    )
    for dag_id, candidate in admission.passed_over:
        heapq.heappush(state.waiting[dag_id], (candidate.rank, candidate))
    for dag_id in [d for d, heap in state.waiting.items() if not heap]:
        del state.waiting[dag_id]
    # What is left waits for a limit that only a try's end (or a new DAG version) can lift.
    state.dispatch_blocked = True
    by_run: dict[int, list[str]] = {}
    indexes_by_run: dict[int, list[int]] = {}
    for _, candidate in admission.taken:
        by_run.setdefault(candidate.run_pk, []).append(candidate.task_id)
        indexes_by_run.setdefault(candidate.run_pk, []).append(candidate.map_index)
    runs: list[tuple[Run, DagPlan]] = []
    for run_pk in by_run:
        run = state.run(conn, run_pk)
        plan = state.plan(conn, run.version_id) if run else None
        if run is not None and plan is not None:
            runs.append((run, plan))
    moves = [
        QueueTries(run.id, tuple(by_run[run.id]), job_id, _instances(indexes_by_run[run.id]))
        for run, _ in runs
    ]
    workloads: list[tuple[Workload, int]] = []
    for (run, plan), result in zip(runs, transitions.apply(conn, moves, now), strict=True):
        if result.tries:
            state.note(run.id, result.task_ids, TaskState.QUEUED, result.map_indexes)
            workloads.extend(workloads_for(conn, state, run, plan, result.tries, log_folder))
    if len(workloads) < len(admission.taken):
        # Some taken tasks had moved on (a person marked them): their slots are still free.
        state.dispatch_blocked = False
    return workloads


def _pool_room(conn: Connection, state: SchedulerState) -> dict[str, int]:
    """Each pool's free slots: its size less the tries in flight, and, in a pool that counts
    them (include_deferred), less its deferred tasks, read only when such a pool exists."""
    deferred = (
        pools_store.deferred_held(conn, state.pools_counting_deferred)
        if state.pools_counting_deferred
        else {}
    )
    return {
        name: size - state.pool_used.get(name, 0) - deferred.get(name, 0)
        for name, size in state.pool_sizes.items()
    }


def _order_arrivals(conn: Connection, state: SchedulerState) -> list[Refusal]:
    """Move newly ready tasks into their DAG's admission heap, ranked by effective priority,
    then the run's logical date, then arrival; returns those that could never fit in their
    pool (or whose pool does not exist), with why."""
    # A wide fan-out readies a thousand tasks of one run at once: look the run up once.
    seen: dict[int, tuple[Run | None, DagPlan | None]] = {}
    refused: list[Refusal] = []
    sizes_reread = False
    for dag_id, queue in state.ready.items():
        heap = state.waiting.setdefault(dag_id, [])
        while queue:
            run_pk, task_id, map_index = queue.popleft()
            if run_pk not in seen:
                found = state.run(conn, run_pk)
                seen[run_pk] = (found, state.plan(conn, found.version_id) if found else None)
            run, plan = seen[run_pk]
            spec = plan.tasks.get(task_id) if plan is not None else None
            state.arrivals += 1
            if run is None or spec is None:
                # Nothing to rank it by: let QueueTries find out what became of it.
                rank = (-1, 0.0, state.arrivals)
                heapq.heappush(heap, (rank, Candidate(run_pk, task_id, rank, map_index=map_index)))
                continue
            if spec.pool not in state.pool_sizes and not sizes_reread:
                # Before failing a task for want of its pool, make sure it was not made a
                # moment ago (a wake-up lost, or sent from another host): one small read.
                state.pool_sizes = pools_store.sizes(conn)
                state.pools_counting_deferred = pools_store.counting_deferred(conn)
                sizes_reread = True
            why = never_fits(spec.pool_slots, spec.pool, state.pool_sizes.get(spec.pool))
            if why is not None:
                refused.append((run_pk, task_id, map_index, why))
                continue
            when = run.logical_date.timestamp() if run.logical_date is not None else 0.0
            rank = (-spec.priority_weight_total, when, state.arrivals)
            candidate = Candidate(
                run_pk,
                task_id,
                rank,
                pool=spec.pool,
                pool_slots=spec.pool_slots,
                max_per_dag=spec.max_active_tis_per_dag,
                max_per_run=spec.max_active_tis_per_dagrun,
                map_index=map_index,
            )
            heapq.heappush(heap, (rank, candidate))
    state.ready.clear()
    return refused


def _drawn(heap: list[tuple[tuple[int, float, int], Candidate]]) -> Iterator[Candidate]:
    """The heap's candidates best first, each removed as it is drawn (admission puts back
    what it passed over)."""
    while heap:
        yield heapq.heappop(heap)[1]


def _instances(map_indexes: list[int]) -> tuple[int, ...] | None:
    """The map indexes to queue by, or None when every task is unmapped (the cheaper query)."""
    return tuple(map_indexes) if max(map_indexes) >= 0 else None


def workloads_again(
    conn: Connection, state: SchedulerState, tis: Sequence[TaskInstance], log_folder: Path
) -> list[Workload]:
    """The workloads of tries already queued (to send or publish again), tracked as in flight
    unless they are already; a run whose version or tasks are gone is left out."""
    by_run: dict[int, list[TaskInstance]] = {}
    for ti in tis:
        by_run.setdefault(ti.run_pk, []).append(ti)
    workloads: list[Workload] = []
    for run_pk, queued in by_run.items():
        run = state.run(conn, run_pk)
        plan = state.plan(conn, run.version_id) if run is not None else None
        if run is None or plan is None or any(ti.task_id not in plan.tasks for ti in queued):
            continue
        for workload, infra_failures in workloads_for(
            conn, state, run, plan, tuple(queued), log_folder
        ):
            if workload.key not in state.in_flight:
                state.track(
                    workload.key,
                    workload.dag_id,
                    infra_failures,
                    pool=workload.pool,
                    pool_slots=workload.pool_slots,
                )
            workloads.append(workload)
    return workloads


def workloads_for(
    conn: Connection,
    state: SchedulerState,
    run: Run,
    plan: DagPlan,
    queued: tuple[TaskInstance, ...],
    log_folder: Path,
) -> list[tuple[Workload, int]]:
    """The workloads of queued tries of one run (as their rows now say), each with its
    task's infrastructure failures so far."""
    source = state.pinned_source(conn, run)
    paired = plan.paired_upstream
    upstream_ids = {
        u
        for ti in queued
        for u in plan.tasks[ti.task_id].upstream
        if u not in paired.get(ti.task_id, ())
    }
    upstream_xcoms = xcom_store.for_tasks(conn, run.id, upstream_ids)
    same_index = (
        xcom_store.for_instances(
            conn, run.id, {(u, ti.map_index) for ti in queued for u in paired.get(ti.task_id, ())}
        )
        if paired
        else {}
    )
    workloads = []
    for ti in queued:
        spec = plan.tasks[ti.task_id]
        pairs = paired.get(ti.task_id, frozenset())
        carried = {u: upstream_xcoms[u] for u in spec.upstream if u in upstream_xcoms}
        for u in pairs:
            carried.pop(u, None)
            if (u, ti.map_index) in same_index:
                carried[u] = same_index[u, ti.map_index]
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
                log_path_for(
                    log_folder, run.dag_id, run.run_id, ti.task_id, ti.try_number, ti.map_index
                )
            ),
            execution_timeout=spec.execution_timeout,
            queue=spec.queue,
            pool=spec.pool,
            pool_slots=spec.pool_slots,
            upstream_xcoms=carried,
            source=source,
            infra_failures=ti.infra_failures,
            map_index=ti.map_index,
            map_length_limit=state.max_map_length if ti.task_id in plan.feeds_mapping else None,
            same_index_upstream=tuple(sorted(pairs)),
            # Woken from up_for_reschedule/deferred: the same try, with what it reported.
            wait=ti.wait if ti.resumes_try else None,
            sensor_started_at=ti.sensor_started_at,
            run_queued_at=run.queued_at,
            run_start_date=run.start_date,
            version_id=plan.version_id,
            source_sha256=plan.source_sha256,
        )
        workloads.append((workload, ti.infra_failures))
    return workloads
