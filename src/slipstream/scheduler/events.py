"""How tries end in the database: what the executor reported (starts, ends, XComs, branch
skips), failures by their retry policy, tries lost with a dead scheduler, and stopping tries a
person made unwanted. Each step decides its transitions first, then applies them in one batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from slipstream.core.planning import after_failure, wait_after_loss
from slipstream.core.records import ExitReason, Run, TaskEvent, TaskFinished, TaskKey, TaskStarted
from slipstream.core.states import TaskState
from slipstream.core.transitions import (
    EndTry,
    Moved,
    StartTry,
    TaskTransition,
    Transition,
    branch_skip,
)
from slipstream.executors.base import Executor, Killable
from slipstream.scheduler import assets, callbacks
from slipstream.scheduler.recovery import lost_tries
from slipstream.scheduler.state import SchedulerState
from slipstream.scheduler.try_logs import TryNote
from slipstream.store import task_instances as ti_store
from slipstream.store import transitions
from slipstream.store import xcoms as xcom_store

log = logging.getLogger(__name__)

# A try's end, the run it belongs to, and the report it came from (None for a lost try).
Ending = tuple[EndTry, Run, TaskFinished | None]


def apply_events(
    conn: Connection,
    state: SchedulerState,
    events: Sequence[TaskEvent],
    now: datetime,
    *,
    infra_budget: int,
) -> None:
    # A start that arrives with its own end is written with the end, in one statement pair
    # instead of two: under load (a wide fan-out) most starts come that way.
    finished = {e.key for e in events if isinstance(e, TaskFinished)}
    starts: dict[TaskKey, TaskStarted] = {}
    started: list[StartTry] = []
    endings: list[Ending] = []
    for event in events:
        if isinstance(event, TaskStarted):
            if event.key in finished:
                starts[event.key] = event
            else:
                started.append(StartTry(event.key, event.pid, event.hostname, event.at))
            continue
        ending = _decide_end(conn, state, event, starts.get(event.key), infra_budget)
        if ending is not None:
            endings.append(ending)
    batch: list[Transition] = [*started, *(end for end, _, _ in endings)]
    moved = transitions.apply(conn, batch, now)
    for start, result in zip(started, moved[: len(started)], strict=True):
        state.note(start.key.run_pk, result.task_ids, TaskState.RUNNING, result.map_indexes)
    _record_ends(conn, state, endings, moved[len(started) :], now)


def _decide_end(
    conn: Connection,
    state: SchedulerState,
    event: TaskFinished,
    start: TaskStarted | None,
    infra_budget: int,
) -> Ending | None:
    key = event.key
    flight = state.untrack(key)
    run = state.run(conn, key.run_pk)
    if run is None:
        return None
    if event.state is TaskState.FAILED:
        return decide_failure(
            conn,
            state,
            key,
            event.exit_reason,
            event.error,
            event.at,
            infra_budget=infra_budget,
            infra_failures=flight.infra_failures if flight else 0,
            exit_code=event.exit_code,
            started=start,
            event=event,
        )
    end = EndTry(
        key,
        event.state,
        event.state,
        event.exit_reason,
        event.at,
        error=event.error,
        exit_code=event.exit_code,
        started=start,
        wait=event.wait,
    )
    return end, run, event


def decide_failure(
    conn: Connection,
    state: SchedulerState,
    key: TaskKey,
    reason: ExitReason,
    error: str | None,
    at: datetime,
    *,
    infra_budget: int,
    infra_failures: int | None = None,
    exit_code: int | None = None,
    started: TaskStarted | None = None,
    event: TaskFinished | None = None,
) -> Ending | None:
    """How a failed try ends, by its task's retry policy; None when the try is no longer the
    task's current one (nothing to write)."""
    state.untrack(key)
    run = state.run(conn, key.run_pk)
    current = ti_store.get(conn, key.run_pk, key.task_id, key.map_index)
    if run is None or current is None or current.try_number != key.try_number:
        if run is not None:
            state.forget_states(run.id)
        return None
    if current.wait is not None:
        # A woken try (a poke, a resume): a loss not of its making leaves it waiting.
        again = wait_after_loss(
            current.wait,
            reason=reason,
            error=error or reason.value,
            infra_budget=infra_budget,
            now=at,
        )
        if again is not None:
            end = EndTry(
                key,
                again.state,
                again.state,
                reason,
                at,
                error=error or reason.value,
                exit_code=exit_code,
                started=started,
                wait=again,
            )
            return end, run, event
    plan = state.plan(conn, run.version_id)
    spec = plan.tasks.get(key.task_id) if plan else None
    if spec is None:
        target, retry_at, infra = TaskState.FAILED, None, current.infra_failures
    else:
        decision = after_failure(
            spec,
            try_number=key.try_number,
            max_tries=current.max_tries,
            infra_failures=current.infra_failures if infra_failures is None else infra_failures,
            reason=reason,
            now=at,
            infra_budget=infra_budget,
        )
        target, retry_at, infra = decision.state, decision.next_retry_at, decision.infra_failures
    end = EndTry(
        key,
        target,
        TaskState.FAILED,
        reason,
        at,
        error=error or reason.value,
        exit_code=exit_code,
        next_retry_at=retry_at,
        infra_failures=infra,
        started=started,
    )
    return end, run, event


def apply_failures(
    conn: Connection, state: SchedulerState, endings: Sequence[Ending | None], now: datetime
) -> None:
    """Apply failures decided by decide_failure (tries lost, or given back at shutdown)."""
    decided = [ending for ending in endings if ending is not None]
    moved = transitions.apply(conn, [end for end, _, _ in decided], now)
    _record_ends(conn, state, decided, moved, now)


def _record_ends(
    conn: Connection,
    state: SchedulerState,
    endings: Sequence[Ending],
    moved: Sequence[Moved],
    now: datetime,
) -> None:
    """Remember what the ends changed, write the XComs of those that counted, and skip what
    branches chose to skip."""
    skips: list[TaskTransition] = []
    for (end, run, event), result in zip(endings, moved, strict=True):
        task_id = end.key.task_id
        if not result:
            # A person marked or cleared the task while this try ran (or deleted the run):
            # their state stands, and what we remember of the run may be stale.
            state.forget_states(run.id)
            continue
        state.note(run.id, result.task_ids, end.target, result.map_indexes)
        if end.exit_reason.is_infrastructure:
            _say_what_follows(state, run, end)
        if event is None or not event.callbacks_done:
            callbacks.note_try_end(
                state,
                run,
                task_id,
                end.key.try_number,
                end.target,
                end.error,
                end.key.map_index,
            )
        if end.target is TaskState.UP_FOR_RETRY:
            state.add_retry(
                end.next_retry_at or end.at, run.id, run.dag_id, task_id, end.key.map_index
            )
            continue
        if end.wait is not None:
            # Waiting without a process: the scheduler wakes it (planning.release_waits).
            at, target = end.wait.due()
            state.add_wait(at, target, run.id, run.dag_id, task_id, end.key.map_index)
        else:
            state.mark_dirty(run.id, (task_id,))
        if event is None or event.state is TaskState.FAILED:
            continue
        if event.xcoms:
            xcom_store.write(
                conn,
                run_pk=run.id,
                dag_id=run.dag_id,
                run_id=run.run_id,
                task_id=task_id,
                items=event.xcoms,
                now=event.at,
                map_index=end.key.map_index,
            )
        if event.state is TaskState.SUCCESS and event.key.task_id:
            assets.record_outlets(conn, state, run, event)
        if event.map_length is not None:
            xcom_store.record_length(conn, run.id, task_id, end.key.map_index, event.map_length)
        if event.skip_downstream:
            skips.append(_branch_skip(conn, state, run, end.key, event.skip_downstream))
    for skip, result in zip(skips, transitions.apply(conn, skips, now), strict=True):
        state.note(skip.run_pk, result.task_ids, TaskState.SKIPPED, result.map_indexes)
        state.mark_dirty(skip.run_pk, result.task_ids)


def _say_what_follows(state: SchedulerState, run: Run, end: EndTry) -> None:
    """A try lost with its process (or its worker, or its scheduler) wrote nothing about its
    end: say in its log why it ended and what comes next."""
    if end.wait is not None:
        level, message = "WARNING", end.wait.reason
    elif end.target is TaskState.UP_FOR_RETRY:
        level = "WARNING"
        message = f"{end.error}; the task is retried as try {end.key.try_number + 1}"
    else:
        level, message = "ERROR", f"{end.error}; the task failed (no retries left)"
    state.try_notes.append(TryNote(run, end.key, level, message, end.at))


def _branch_skip(
    conn: Connection, state: SchedulerState, run: Run, key: TaskKey, task_ids: Sequence[str]
) -> TaskTransition:
    """What a branch's choice skips. A branch inside a mapped task group decides for its own
    map index: the tasks of its group at that index (as Airflow, which skips by task id and
    map index; tasks outside the group are left to their trigger rules)."""
    plan = state.plan(conn, run.version_id)
    spec = plan.tasks.get(key.task_id) if plan is not None else None
    if plan is None or spec is None or spec.map_group is None or key.map_index < 0:
        return branch_skip(run.id, task_ids, by=key.task_id)
    same_group = [
        t for t in task_ids if t in plan.tasks and plan.tasks[t].map_group == spec.map_group
    ]
    return branch_skip(run.id, same_group, by=key.task_id, map_index=key.map_index)


def recover_lost(
    conn: Connection,
    state: SchedulerState,
    now: datetime,
    *,
    job_id: int,
    hostname: str,
    lost_after_seconds: float,
    infra_budget: int,
) -> None:
    """Fail, by their retry policy, tries whose scheduler died: nobody watches them now."""
    reason = "its scheduler stopped while the try was in flight"
    keys = lost_tries(
        conn,
        job_id=job_id,
        hostname=hostname,
        lost_after_seconds=lost_after_seconds,
        now=now,
    )
    endings = [
        decide_failure(
            conn, state, key, ExitReason.SCHEDULER_LOST, reason, now, infra_budget=infra_budget
        )
        for key in keys
    ]
    apply_failures(conn, state, endings, now)
    for key in keys:
        log.warning("recovered lost try %s: %s", key, reason)


def stop_unwanted_tries(conn: Connection, state: SchedulerState, executor: Executor) -> None:
    """Kill tries in flight whose task a person marked or cleared: its new state stands
    (a finishing try can no longer overwrite it), so the try's work is unwanted."""
    runs, state.recheck = state.recheck, set()
    keys = [key for key in state.in_flight if key.run_pk in runs]
    if not keys:
        return
    current = {
        (ti.run_pk, ti.task_id, ti.map_index): ti
        for ti in ti_store.keys_of(conn, [(k.run_pk, k.task_id, k.map_index) for k in keys])
    }
    unwanted = []
    for key in keys:
        ti = current.get((key.run_pk, key.task_id, key.map_index))
        if ti is None or ti.try_number != key.try_number or not ti.state.is_active:
            unwanted.append(key)
    if unwanted and isinstance(executor, Killable):
        log.info("stopping %d tries a person marked or cleared", len(unwanted))
        executor.kill(unwanted)
