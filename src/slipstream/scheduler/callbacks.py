"""Callback requests: what the scheduler asks the executor to run when no try's process could,
the failure or retry callbacks of a try that ended unreported (killed, its worker or scheduler
lost) and a DAG's on_success_callback / on_failure_callback when a run ends by itself.

Steps note an intent when their transition holds; at the end of the pass the intents wanted
(their task or DAG has such callbacks) are stored in the pass's transaction and become requests,
submitted after it commits; a request's row goes once the executor reports it run, so one that
a restart interrupted is submitted again by the next scheduler (at least once, as in Airflow 3,
whose callback requests wait in the database too). Nothing here runs user code or changes a
task's or a run's state.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection

from slipstream.core.dag_plan import DagPlan
from slipstream.core.log_paths import dag_callbacks_log_path, log_path_for
from slipstream.core.records import CallbackKind, CallbackRequest, Run, Workload
from slipstream.core.states import RunState, TaskState
from slipstream.scheduler.state import SchedulerState
from slipstream.store import callbacks as callbacks_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store

log = logging.getLogger(__name__)

# The arguments that make a kind of request worth a process.
_WANTED = {
    CallbackKind.TASK_FAILURE: frozenset({"on_failure_callback", "email_on_failure"}),
    CallbackKind.TASK_RETRY: frozenset({"on_retry_callback", "email_on_retry"}),
    CallbackKind.TASK_SKIPPED: frozenset({"on_skipped_callback"}),
    CallbackKind.DAG_SUCCESS: frozenset({"on_success_callback"}),
    CallbackKind.DAG_FAILURE: frozenset({"on_failure_callback"}),
}


@dataclass(frozen=True, slots=True)
class CallbackIntent:
    kind: CallbackKind
    run: Run
    task_id: str = ""
    try_number: int = 0
    error: str | None = None
    reason: str | None = None
    stored_id: int | None = None  # its row, when read back at start
    map_index: int = -1


def note_try_end(
    state: SchedulerState,
    run: Run,
    task_id: str,
    try_number: int,
    target: TaskState,
    error: str | None,
    map_index: int = -1,
) -> None:
    """A try's end was recorded without its process having run the callbacks: a lost try's
    failure, or a wait the scheduler ended itself (failed or skipped at a sensor's timeout).
    A wait ended in success needs none: a time sensor with an on_success_callback resumes in a
    process instead, and `end_from_trigger` ends a task without returning to a worker, as in
    Airflow."""
    if target is TaskState.FAILED:
        kind = CallbackKind.TASK_FAILURE
    elif target is TaskState.UP_FOR_RETRY:
        kind = CallbackKind.TASK_RETRY
    elif target is TaskState.SKIPPED:
        kind = CallbackKind.TASK_SKIPPED
    else:
        return
    state.callback_intents.append(
        CallbackIntent(kind, run, task_id, try_number, error=error, map_index=map_index)
    )


def note_run_end(
    state: SchedulerState, run: Run, outcome: RunState, reason: str | None, ended_at: datetime
) -> None:
    """A run ended by itself (never by a person's mark: Airflow calls no DAG callback then), at
    `ended_at`: its callbacks see it ended (`dag_run.state`, `dag_run.end_date`)."""
    if outcome is RunState.SUCCESS:
        kind = CallbackKind.DAG_SUCCESS
    elif outcome is RunState.FAILED:
        kind = CallbackKind.DAG_FAILURE
    else:
        return
    ended = replace(run, state=outcome, end_date=ended_at)
    state.callback_intents.append(CallbackIntent(kind, ended, reason=dag_reason(outcome, reason)))


def dag_reason(outcome: RunState, reason: str | None) -> str:
    """Airflow's `reason` in a DAG callback's context: success, task_failure, timed_out or
    all_tasks_deadlocked."""
    if outcome is RunState.SUCCESS:
        return "success"
    text = (reason or "").lower()
    if text.startswith("deadlock"):
        return "all_tasks_deadlocked"
    if "timed out" in text or "timed_out" in text or "dagrun_timeout" in text:
        return "timed_out"
    return "task_failure"


def build_requests(
    conn: Connection, state: SchedulerState, log_folder: Path, now: datetime
) -> list[CallbackRequest]:
    """Turn the pass's intents into stored requests, keeping those whose task or DAG has
    something to call; the intents are consumed."""
    intents, state.callback_intents = state.callback_intents, []
    requests: list[CallbackRequest] = []
    for intent in intents:
        plan = state.plan(conn, intent.run.version_id)
        request = _request(conn, state, plan, intent, log_folder, now) if plan else None
        if request is not None:
            requests.append(request)
        elif intent.stored_id is not None:
            callbacks_store.remove(conn, [intent.stored_id])
    return requests


def restore(conn: Connection, state: SchedulerState, running: Collection[int] = ()) -> None:
    """At start: the requests a previous scheduler stored and saw no end of, to submit again,
    but for those `running` on the worker host still (their end is reported as usual)."""
    for stored in callbacks_store.pending(conn):
        if stored.id in running:
            continue
        run = runs_store.get_run_by_pk(conn, stored.run_pk)
        try:
            kind = CallbackKind(stored.kind)
        except ValueError:
            kind = None
        if run is None or kind is None:
            callbacks_store.remove(conn, [stored.id])
            continue
        state.callback_intents.append(
            CallbackIntent(
                kind,
                run,
                stored.task_id,
                stored.try_number,
                error=stored.error,
                reason=stored.reason,
                stored_id=stored.id,
                map_index=stored.map_index,
            )
        )


def forget(conn: Connection, ids: list[int]) -> None:
    """Requests the executor has run (or given up on): their rows go."""
    callbacks_store.remove(conn, ids)


def _request(
    conn: Connection,
    state: SchedulerState,
    plan: DagPlan,
    intent: CallbackIntent,
    log_folder: Path,
    now: datetime,
) -> CallbackRequest | None:
    run = intent.run
    wanted = _WANTED[intent.kind]
    if intent.kind.is_dag_level:
        if not wanted & plan.callbacks:
            return None
        # Airflow builds a DAG callback's context from the run's last task instance by task id.
        task_id = max(plan.tasks, key=_natural_key, default="")
        log_path = dag_callbacks_log_path(log_folder, run.dag_id, run.run_id)
    else:
        spec = plan.tasks.get(intent.task_id)
        if spec is None or not wanted & spec.callbacks:
            return None
        task_id = intent.task_id
        log_path = log_path_for(
            log_folder, run.dag_id, run.run_id, task_id, intent.try_number, intent.map_index
        )
    ti = ti_store.get(conn, run.id, task_id, intent.map_index) if task_id else None
    try_number = intent.try_number or (ti.try_number if ti is not None else 0)
    request_id = intent.stored_id
    if request_id is None:
        request_id = callbacks_store.add(
            conn,
            run_pk=run.id,
            kind=intent.kind.value,
            task_id=intent.task_id,
            try_number=try_number,
            error=intent.error,
            reason=intent.reason,
            now=now,
            map_index=intent.map_index,
        )
    return CallbackRequest(
        id=request_id,
        kind=intent.kind,
        workload=Workload(
            run_pk=run.id,
            dag_id=run.dag_id,
            run_id=run.run_id,
            task_id=task_id,
            try_number=try_number,
            max_tries=ti.max_tries if ti is not None else 0,
            fileloc=plan.fileloc,
            version_hash=plan.version_hash,
            run_type=run.run_type,
            logical_date=run.logical_date,
            data_interval_start=run.data_interval_start,
            data_interval_end=run.data_interval_end,
            conf=run.conf,
            log_path=str(log_path),
            source=state.pinned_source(conn, run),
            infra_failures=ti.infra_failures if ti is not None else 0,
            map_index=intent.map_index,
            run_queued_at=run.queued_at,
            run_start_date=run.start_date,
            run_state=run.state,
            run_end_date=run.end_date,
            version_id=plan.version_id,
            source_sha256=plan.source_sha256,
        ),
        log_path=str(log_path),
        error=intent.error,
        reason=intent.reason,
    )


def _natural_key(text: str) -> list[tuple[int, int | str]]:
    # natsort's order: digit runs compare as numbers (task_10 after task_9).
    return [(0, int(part)) if part.isdigit() else (1, part) for part in re.split(r"(\d+)", text)]
