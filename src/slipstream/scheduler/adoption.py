"""Reconciling an attachment to a worker host with the database: which tries this scheduler
takes over, which it stops, and which are lost.

Run in a pass's transaction right after the outbox and the events are applied, so that every
try the host finished is already recorded. Then a try this scheduler has in flight that the
host does not hold never reached it (or the host that had it was replaced): lost to the worker
host. A try the host holds that this scheduler does not track is adopted if the database still
has it queued or running at that try number (a previous scheduler queued it), else stopped.

At start, a try a dead scheduler left queued that the host does not hold, with no outcome,
never reached the host (the scheduler died between the commit that queued it and sending it):
it is sent again, under the same try number, rather than failed.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from slipstream.core.records import ExitReason, TaskInstance, TaskKey, TaskStarted, Workload
from slipstream.core.states import TaskState
from slipstream.executors.base import Attachment
from slipstream.scheduler import events
from slipstream.scheduler.dispatch import workloads_again
from slipstream.scheduler.state import SchedulerState
from slipstream.store import task_instances as ti_store

log = logging.getLogger(__name__)

NOT_HELD = (
    "the worker host does not hold this try: it never reached the host, or that host was replaced"
)


def reconcile(
    conn: Connection,
    state: SchedulerState,
    attachment: Attachment,
    *,
    job_id: int | None,
    now: datetime,
    infra_budget: int,
) -> list[TaskKey]:
    """Adopt, fail or stop as above; returns the held tries to stop (after the commit)."""
    held = attachment.held
    missing = [key for key in state.in_flight if key not in held]
    endings = [
        events.decide_failure(
            conn, state, key, ExitReason.WORKER_LOST, NOT_HELD, now, infra_budget=infra_budget
        )
        for key in missing
    ]
    events.apply_failures(conn, state, endings, now)
    for key in missing:
        log.warning("try %s: %s", key, NOT_HELD)
    # Every held try the database still wants is made this scheduler's (again, for those it
    # tracks already: a failed pass may have tracked them and rolled the owner back).
    current = {
        (ti.run_pk, ti.task_id, ti.map_index): ti
        for ti in ti_store.keys_of(conn, [(k.run_pk, k.task_id, k.map_index) for k in held])
    }
    adopted: list[TaskKey] = []
    stop: list[TaskKey] = []
    queued_here: set[TaskKey] = set()
    for key in sorted(held):
        ti = current.get((key.run_pk, key.task_id, key.map_index))
        if ti is None or ti.try_number != key.try_number or not ti.state.is_active:
            stop.append(key)
            continue
        if ti.state is TaskState.QUEUED:
            queued_here.add(key)
        if key in state.in_flight:
            continue
        adopted.append(key)
        state.track(key, ti.dag_id, ti.infra_failures, pool=ti.pool, pool_slots=ti.pool_slots)
    if job_id is not None:
        ti_store.adopt(conn, sorted(held - set(stop)), job_id)
    # Running on the host, still queued here: the start its scheduler never applied.
    starts: list[TaskStarted] = [s for s in attachment.running if s.key in queued_here]
    if starts:
        events.apply_events(conn, state, starts, now, infra_budget=infra_budget)
    if adopted:
        log.info("adopted %d tries the worker host runs", len(adopted))
    if stop:
        log.info("stopping %d tries the worker host runs that are no longer wanted", len(stop))
    return stop


def resend_unsent(
    conn: Connection,
    state: SchedulerState,
    attachment: Attachment,
    orphans: list[TaskInstance],
    *,
    job_id: int,
    log_folder: Path,
) -> list[Workload]:
    """Of the tries dead schedulers left (`orphans`), those still queued that the attached
    host does not hold: adopted, tracked, and returned to be sent once this commits. The rest
    are left to the lost-try recovery."""
    held = attachment.held
    unsent = [
        ti
        for ti in orphans
        if ti.state is TaskState.QUEUED
        and TaskKey(ti.run_pk, ti.task_id, ti.try_number, ti.map_index) not in held
    ]
    workloads = workloads_again(conn, state, unsent, log_folder)
    ti_store.adopt(conn, [workload.key for workload in workloads], job_id)
    if workloads:
        log.warning(
            "sending again %d tries a dead scheduler queued that never reached the worker host",
            len(workloads),
        )
    return workloads
