"""Ready tasks that can never get a slot (more pool_slots than the pool has, core/admission.py:
never_fits): rather than wait for ever in silence, each is given a try that fails at once,
without retries, with the reason in that try's log and as its error; its failure callbacks
run as for any try that ended without running them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection

from slipstream.core.records import ExitReason, TaskKey
from slipstream.core.states import TaskState
from slipstream.core.transitions import QueueTries
from slipstream.scheduler.events import Ending, apply_failures, decide_failure
from slipstream.scheduler.state import SchedulerState
from slipstream.scheduler.try_logs import TryNote
from slipstream.store import transitions

log = logging.getLogger(__name__)

# A task instance the scheduler refuses: (run, task, map index, why).
Refusal = tuple[int, str, int, str]


def fail_refused(
    conn: Connection,
    state: SchedulerState,
    refused: Sequence[Refusal],
    now: datetime,
    *,
    job_id: int | None,
) -> None:
    """Queue a try for each refused task instance and fail it at once, saying why."""
    if not refused:
        return
    by_run: dict[int, list[Refusal]] = {}
    for refusal in refused:
        by_run.setdefault(refusal[0], []).append(refusal)
    moves = [
        QueueTries(
            run_pk,
            tuple(task_id for _, task_id, _, _ in items),
            job_id,
            tuple(index for _, _, index, _ in items),
        )
        for run_pk, items in by_run.items()
    ]
    endings: list[Ending | None] = []
    for move, result in zip(moves, transitions.apply(conn, moves, now), strict=True):
        run = state.run(conn, move.run_pk)
        if run is None or not result.tries:
            continue  # a person moved them meanwhile: nothing to refuse
        state.note(run.id, result.task_ids, TaskState.QUEUED, result.map_indexes)
        reasons = {(task_id, index): why for _, task_id, index, why in by_run[run.id]}
        for ti in result.tries:
            why = reasons[ti.task_id, ti.map_index]
            key = TaskKey(run.id, ti.task_id, ti.try_number, ti.map_index)
            state.try_notes.append(TryNote(run, key, "ERROR", why, now))
            log.error("%s of %s in %s failed: %s", ti.task_id, run.run_id, run.dag_id, why)
            endings.append(
                decide_failure(conn, state, key, ExitReason.FAIL_NOW, why, now, infra_budget=0)
            )
    apply_failures(conn, state, endings, now)
