"""The scheduler's duties toward tries run by remote workers that claim them (the Celery
executor, design 3.x): a try is not lost with its scheduler, only with the worker that claimed
it; and a try nobody claims is published again, then failed after the queued timeout.

- At start, the queued and running tries a dead scheduler left are adopted (tracked, owned by
  this scheduler), not failed: they are in the broker or on a worker.
- In the lost check, running tries claimed by a worker whose job is no longer running (found
  dead by its heartbeat or its pid) fail `worker_lost`, on the infrastructure budget.
- Tries queued longer than the republish bound and still unclaimed are published again (a
  broker that restarted empty lost them; a duplicate dies at the claim); past the queued
  timeout they fail, naming their queue and what live workers consume.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import Connection

from slipstream.core.records import ExitReason, TaskInstance, TaskKey, Workload
from slipstream.core.unclaimed import UnclaimedTry, judge_unclaimed
from slipstream.executors.base import Publishing
from slipstream.scheduler import callbacks, events
from slipstream.scheduler.dispatch import workloads_again
from slipstream.scheduler.recovery import orphaned_tries
from slipstream.scheduler.state import SchedulerState
from slipstream.store import callbacks as callbacks_store
from slipstream.store import claims
from slipstream.store import jobs as jobs_store
from slipstream.store import task_instances as ti_store

log = logging.getLogger(__name__)


def _key(ti: TaskInstance) -> TaskKey:
    return TaskKey(ti.run_pk, ti.task_id, ti.try_number, ti.map_index)


def adopt_orphans(
    conn: Connection,
    state: SchedulerState,
    *,
    job_id: int,
    hostname: str,
    lost_after_seconds: float,
    now: datetime,
) -> None:
    """Make the in-flight tries of dead schedulers this one's, and track them."""
    orphans = orphaned_tries(
        conn, job_id=job_id, hostname=hostname, lost_after_seconds=lost_after_seconds, now=now
    )
    keys = []
    for ti in orphans:
        key = _key(ti)
        if key not in state.in_flight:
            state.track(key, ti.dag_id, ti.infra_failures, pool=ti.pool, pool_slots=ti.pool_slots)
        keys.append(key)
    ti_store.adopt(conn, keys, job_id)
    if keys:
        log.info("adopted %d tries in flight on Celery workers or in the broker", len(keys))


def fail_lost_workers(
    conn: Connection, state: SchedulerState, now: datetime, *, infra_budget: int
) -> list[TaskKey]:
    """Fail the running tries of workers found gone; returns them."""
    lost = claims.held_by_gone_workers(conn)
    endings = [
        events.decide_failure(
            conn,
            state,
            _key(ti),
            ExitReason.WORKER_LOST,
            f"the Celery worker on {ti.hostname} running the try was lost",
            now,
            infra_budget=infra_budget,
            infra_failures=ti.infra_failures,
        )
        for ti in lost
    ]
    events.apply_failures(conn, state, endings, now)
    for ti in lost:
        log.warning("try %s: its Celery worker on %s was lost", _key(ti), ti.hostname)
    released = callbacks_store.release_gone_workers(conn)
    if released:
        # Every stored request is sent again; those live workers hold lose their claim.
        log.warning("sending again %d callback requests of lost Celery workers", len(released))
        callbacks.restore(conn, state)
    return [_key(ti) for ti in lost]


def check_unclaimed(
    conn: Connection,
    state: SchedulerState,
    executor: Publishing,
    now: datetime,
    *,
    log_folder: Path,
    infra_budget: int,
) -> list[Workload]:
    """Fail tries past the queued timeout; return those to publish again (once this commits)."""
    bound = min(executor.republish_after, executor.queued_timeout)
    waiting = claims.unclaimed(conn, queued_before=now - timedelta(seconds=bound))
    published = executor.published_at()
    unclaimed_keys = {_key(ti) for ti in waiting}
    executor.forget([key for key in published if key not in unclaimed_keys])
    if not waiting:
        return []
    by_key = {_key(ti): ti for ti in waiting}
    verdict = judge_unclaimed(
        [UnclaimedTry(_key(ti), ti.queue, ti.queued_at or now) for ti in waiting],
        now=now,
        republish_after=executor.republish_after,
        queued_timeout=executor.queued_timeout,
        published_at=published,
        live_queues=jobs_store.live_queues(conn),
    )
    endings = []
    for key, reason in verdict.expire:
        log.warning("try %s: %s", key, reason)
        endings.append(
            events.decide_failure(
                conn,
                state,
                key,
                ExitReason.QUEUED_TIMEOUT,
                reason,
                now,
                infra_budget=infra_budget,
                infra_failures=by_key[key].infra_failures,
            )
        )
    events.apply_failures(conn, state, endings, now)
    workloads = workloads_again(conn, state, [by_key[key] for key in verdict.republish], log_folder)
    if workloads:
        log.warning(
            "publishing again %d tries no worker claimed within %g s (a broker that lost its"
            " messages; a duplicate runs nothing)",
            len(workloads),
            executor.republish_after,
        )
    return workloads
