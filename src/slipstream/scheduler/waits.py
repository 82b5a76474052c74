"""Waking tasks that wait without a process (up_for_reschedule, deferred): at the wake-up time
their try stored, each moves to the state that try chose for then: scheduled again (another
poke, or a deferral's resume, under the same try number), success (a time sensor's moment has
come: nothing is left to run), or the timeout's outcome: a sensor's fails (or skips with
soft_fail); any other operator's deferral fails as TaskDeferralTimeout, which its retry policy
decides (up_for_retry after retry_delay, or failed). No user code is needed to decide: it is
all data the try reported and the task's retry policy. An end decided so is said in the try's
log, since no process of the try saw it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection

from slipstream.core.planning import after_failure
from slipstream.core.records import ExitReason, TaskKey
from slipstream.core.states import TaskState
from slipstream.core.transitions import Wake
from slipstream.scheduler import callbacks
from slipstream.scheduler.state import SchedulerState
from slipstream.scheduler.try_logs import TryNote
from slipstream.store import task_instances as ti_store
from slipstream.store import transitions

log = logging.getLogger(__name__)

_REASONS = {
    TaskState.FAILED: "AirflowSensorTimeout: the sensor's timeout passed while it waited",
    TaskState.SKIPPED: "the sensor's timeout passed while it waited (soft_fail: skipped)",
    TaskState.SUCCESS: "the time it waited for has come",
}
# Airflow's words for a deferral whose timeout passed (its trigger's failure reason).
_DEFERRAL_TIMEOUT = (
    "TaskDeferralTimeout: Trigger/execution timeout (the deferral's timeout passed while it waited)"
)
# What the try's log says of the end no process of its own saw (and how loudly).
_LOG_LINES = {
    TaskState.FAILED: ("ERROR", "; the task failed (a sensor's timeout is not retried)"),
    TaskState.SKIPPED: ("WARNING", "; the task is skipped"),
    TaskState.SUCCESS: ("INFO", "; the task succeeded"),
}


class _Outcome(NamedTuple):
    """Where a due wait goes; waits of one run with the same outcome move in one statement."""

    run_pk: int
    target: TaskState
    reason: str | None
    next_retry_at: datetime | None = None
    exit_reason: ExitReason | None = None


def release_waits(conn: Connection, state: SchedulerState, now: datetime) -> None:
    """Wake every waiting task whose time has come (if it still waits for that time)."""
    due: dict[_Outcome, tuple[str, list[str], list[int]]] = {}
    for run_pk, dag_id, task_id, map_index, target in state.pop_due_waits(now):
        if target is TaskState.UP_FOR_RETRY:
            outcome = _deferral_timeout(conn, state, run_pk, task_id, map_index, now)
            if outcome is None:
                continue  # cleared or marked meanwhile, or waiting anew for something else
        else:
            outcome = _Outcome(run_pk, target, _REASONS.get(target))
        entry = due.setdefault(outcome, (dag_id, [], []))
        entry[1].append(task_id)
        entry[2].append(map_index)
    moves = [
        Wake(
            o.run_pk,
            tuple(task_ids),
            tuple(indexes),
            o.target,
            reason=o.reason,
            next_retry_at=o.next_retry_at,
            exit_reason=o.exit_reason,
        )
        for o, (_, task_ids, indexes) in due.items()
    ]
    outcomes = list(due)
    for outcome, move, result in zip(
        outcomes, moves, transitions.apply(conn, moves, now), strict=True
    ):
        if not result:
            continue  # cleared or marked meanwhile, or waiting anew for a later time
        dag_id = due[outcome][0]
        state.note(move.run_pk, result.task_ids, move.target, result.map_indexes)
        if move.target is TaskState.SCHEDULED:
            for task_id, map_index in zip(result.task_ids, result.map_indexes, strict=True):
                state.add_ready(dag_id, move.run_pk, task_id, map_index)
            continue
        retried = move.target is TaskState.UP_FOR_RETRY
        if not retried:
            state.mark_dirty(move.run_pk, result.task_ids)
        run = state.run(conn, move.run_pk)
        for task_id, map_index, try_number in zip(
            result.task_ids, result.map_indexes, result.try_numbers, strict=True
        ):
            log.info("%s.%s ended %s: %s", dag_id, task_id, move.target.value, move.reason)
            if retried:
                state.add_retry(move.next_retry_at or now, move.run_pk, dag_id, task_id, map_index)
            if run is not None:
                level, outcome_text = _log_line(move, try_number)
                key = TaskKey(run.id, task_id, try_number, map_index)
                note = TryNote(run, key, level, f"{move.reason}{outcome_text}", now)
                state.try_notes.append(note)
                # No process ran the failure (or retry) callbacks: the executor is asked to.
                callbacks.note_try_end(
                    state, run, task_id, try_number, move.target, move.reason, map_index
                )


def _deferral_timeout(
    conn: Connection,
    state: SchedulerState,
    run_pk: int,
    task_id: str,
    map_index: int,
    now: datetime,
) -> _Outcome | None:
    """A non-sensor's deferral timed out: a failure of its try, which the task's retries decide
    as for any other (Airflow's TaskDeferralTimeout). None when the task no longer waits so."""
    current = ti_store.get(conn, run_pk, task_id, map_index)
    if (
        current is None
        or current.state is not TaskState.DEFERRED
        or current.wake_target is not TaskState.UP_FOR_RETRY
    ):
        return None
    run = state.run(conn, run_pk)
    plan = state.plan(conn, run.version_id) if run is not None else None
    spec = plan.tasks.get(task_id) if plan is not None else None
    if spec is None:
        return _Outcome(run_pk, TaskState.FAILED, _DEFERRAL_TIMEOUT, None, ExitReason.TASK_ERROR)
    decision = after_failure(
        spec,
        try_number=current.try_number,
        max_tries=current.max_tries,
        infra_failures=current.infra_failures,
        reason=ExitReason.TASK_ERROR,
        now=now,
        infra_budget=0,  # not an infrastructure loss: the task's own retries decide
    )
    return _Outcome(
        run_pk, decision.state, _DEFERRAL_TIMEOUT, decision.next_retry_at, ExitReason.TASK_ERROR
    )


def _log_line(move: Wake, try_number: int) -> tuple[str, str]:
    """(level, what follows) for the try's log of a wait the scheduler ended."""
    if move.target is TaskState.UP_FOR_RETRY:
        at = move.next_retry_at.isoformat() if move.next_retry_at else "once due"
        return "ERROR", f"; the task is retried as try {try_number + 1} at {at}"
    if move.target is TaskState.FAILED and move.exit_reason is ExitReason.TASK_ERROR:
        return "ERROR", "; the task failed (no retries left)"
    return _LOG_LINES[move.target]
