"""Waking tasks that wait without a process (up_for_reschedule, deferred): at the wake-up time
their try stored, each moves to the state that try chose for then: scheduled again (another
poke, or a deferral's resume, under the same try number), success (a time sensor's moment has
come: nothing is left to run), or the sensor timeout's outcome (failed, or skipped with
soft_fail). No user code is needed to decide: it is all data the try reported. An end decided
so is said in the try's log, since no process of the try saw it.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import Connection

from slipstream.core.records import TaskKey
from slipstream.core.states import TaskState
from slipstream.core.transitions import Wake
from slipstream.scheduler import callbacks
from slipstream.scheduler.state import SchedulerState
from slipstream.scheduler.try_logs import TryNote
from slipstream.store import transitions

log = logging.getLogger(__name__)

_REASONS = {
    TaskState.FAILED: "AirflowSensorTimeout: the sensor's timeout passed while it waited",
    TaskState.SKIPPED: "the sensor's timeout passed while it waited (soft_fail: skipped)",
    TaskState.SUCCESS: "the time it waited for has come",
}
# What the try's log says of the end no process of its own saw (and how loudly).
_LOG_LINES = {
    TaskState.FAILED: ("ERROR", "; the task failed (a sensor's timeout is not retried)"),
    TaskState.SKIPPED: ("WARNING", "; the task is skipped"),
    TaskState.SUCCESS: ("INFO", "; the task succeeded"),
}


def release_waits(conn: Connection, state: SchedulerState, now: datetime) -> None:
    """Wake every waiting task whose time has come (if it still waits for that time)."""
    due: dict[tuple[int, TaskState], tuple[str, list[str], list[int]]] = {}
    for run_pk, dag_id, task_id, map_index, target in state.pop_due_waits(now):
        entry = due.setdefault((run_pk, target), (dag_id, [], []))
        entry[1].append(task_id)
        entry[2].append(map_index)
    moves = [
        Wake(run_pk, tuple(task_ids), tuple(indexes), target, reason=_REASONS.get(target))
        for (run_pk, target), (_, task_ids, indexes) in due.items()
    ]
    for move, result in zip(moves, transitions.apply(conn, moves, now), strict=True):
        if not result:
            continue  # cleared or marked meanwhile, or waiting anew for a later time
        dag_id = due[move.run_pk, move.target][0]
        state.note(move.run_pk, result.task_ids, move.target, result.map_indexes)
        if move.target is TaskState.SCHEDULED:
            for task_id, map_index in zip(result.task_ids, result.map_indexes, strict=True):
                state.add_ready(dag_id, move.run_pk, task_id, map_index)
            continue
        state.mark_dirty(move.run_pk, result.task_ids)
        run = state.run(conn, move.run_pk)
        for task_id, map_index, try_number in zip(
            result.task_ids, result.map_indexes, result.try_numbers, strict=True
        ):
            log.info("%s.%s ended %s: %s", dag_id, task_id, move.target.value, move.reason)
            if run is not None:
                level, outcome = _LOG_LINES[move.target]
                key = TaskKey(run.id, task_id, try_number, map_index)
                state.try_notes.append(TryNote(run, key, level, f"{move.reason}{outcome}", now))
                # No process ran the failure callbacks: the executor is asked to.
                callbacks.note_try_end(
                    state, run, task_id, try_number, move.target, move.reason, map_index
                )
