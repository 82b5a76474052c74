"""One scheduling pass: read what changed, decide with core.planning, write, then submit.

A pass costs in proportion to what changed since the last one (finished tries, new triggers,
due retries and schedules), never to history. Each pass is one short write transaction; work
goes to the executor only after it is committed, so a worker never runs an unrecorded try.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import islice

from sqlalchemy import Connection

from slipstream.clock import Clock
from slipstream.config import Settings
from slipstream.core.dag_plan import DagPlan
from slipstream.core.log_paths import log_path_for
from slipstream.core.planning import (
    after_failure,
    pick_fair,
    plan_run,
)
from slipstream.core.records import (
    ExitReason,
    Run,
    TaskEvent,
    TaskFinished,
    TaskKey,
    TaskStarted,
    Workload,
)
from slipstream.core.states import RunState, TaskState
from slipstream.errors import ConfigError
from slipstream.executors.base import Executor, Killable
from slipstream.scheduler.recovery import live_scheduler, lost_tries, rival_message
from slipstream.scheduler.schedules import ScheduleKeeper
from slipstream.scheduler.state import SchedulerState
from slipstream.store import dags as dags_store
from slipstream.store import jobs as jobs_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store import xcoms as xcom_store
from slipstream.store.db import Database

log = logging.getLogger(__name__)

# A safety net, not the mechanism: hints wake the scheduler at once; this catches lost ones.
SAFETY_SCAN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class TickReport:
    events: int = 0
    runs_started: int = 0
    runs_finished: int = 0
    queued: int = 0


class Scheduler:
    """Decides and records what runs next. Steppable: `tick()` is one whole pass."""

    def __init__(
        self, db: Database, executor: Executor, *, clock: Clock, settings: Settings
    ) -> None:
        self._db = db
        self._executor = executor
        self._clock = clock
        self._settings = settings
        self._state = SchedulerState()
        self._job_id: int | None = None
        self._hostname = socket.gethostname()
        self._schedules = ScheduleKeeper()
        self._last_heartbeat = clock.monotonic()
        self._last_safety_scan = clock.monotonic()
        self._last_lost_check = clock.monotonic()
        self._pending_events: list[TaskEvent] = []
        self._dag_info: dict[str, tuple[int, int | None]] = {}
        self._sources: dict[int, str | None] = {}
        self._recheck: set[int] = set()  # runs a person changed: are their tries still wanted?

    @property
    def job_id(self) -> int | None:
        return self._job_id

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Register this scheduler, take over what dead schedulers left, rebuild memory."""
        now = self._clock.now()
        with self._db.write() as conn:
            other = live_scheduler(
                conn,
                hostname=self._hostname,
                lost_after_seconds=self._settings.lost_after_seconds,
                now=now,
            )
            if other is not None:
                # One scheduler per database for now: two would race for the same runs.
                raise ConfigError(
                    "scheduler", rival_message(other, hostname=self._hostname, now=now)
                )
            self._job_id = jobs_store.start_job(
                conn, hostname=self._hostname, pid=os.getpid(), now=now
            )
            self._recover_lost(conn, now)
            self._rebuild(conn)
        self._last_heartbeat = self._clock.monotonic()

    def stop(self) -> None:
        """Stop the executor, record what finished, give back the rest (it will be retried
        on the infrastructure budget) and end this job."""
        self._executor.shutdown(graceful=False)
        self._pending_events.extend(self._executor.events())
        now = self._clock.now()
        with self._db.write() as conn:
            self._apply_events(conn, self._pending_events, now)
            self._pending_events = []
            for key in list(self._state.in_flight):
                self._fail_try(conn, key, ExitReason.SCHEDULER_LOST, "scheduler shut down", now)
            if self._job_id is not None:
                jobs_store.end_job(conn, self._job_id, now)

    def _rebuild(self, conn: Connection) -> None:
        state = self._state
        for run in runs_store.running_runs(conn):
            state.runs[run.id] = run
            state.mark_dirty(run.id, None)
        for ti in ti_store.in_state(conn, [TaskState.SCHEDULED]):
            state.add_ready(ti.dag_id, ti.run_pk, ti.task_id)
        for ti in ti_store.in_state(conn, [TaskState.UP_FOR_RETRY]):
            state.add_retry(ti.next_retry_at or self._clock.now(), ti.run_pk, ti.dag_id, ti.task_id)
        state.check_all_queued = True
        self._schedules.mark_stale()

    # ----------------------------------------------------------------- the pass

    def has_immediate_work(self) -> bool:
        state = self._state
        free = self._executor.capacity - len(state.in_flight)
        return bool(state.dirty) or (free > 0 and state.has_ready())

    def seconds_until_due(self) -> float:
        """How long the loop may wait before a timed duty (retry, schedule, heartbeat) is due."""
        if self.has_immediate_work():
            return 0.0
        now = self._clock.now()
        mono = self._clock.monotonic()
        waits = [
            self._settings.heartbeat_seconds - (mono - self._last_heartbeat),
            SAFETY_SCAN_SECONDS - (mono - self._last_safety_scan),
        ]
        if self._state.retries:
            waits.append((self._state.retries[0][0] - now).total_seconds())
        if self._schedules.next_due is not None:
            waits.append((self._schedules.next_due - now).total_seconds())
        return max(0.0, min(waits))

    def tick(self, hints: Iterable[str] = ()) -> TickReport:
        """One pass. If it fails, nothing it wrote is kept: the events it was applying are
        kept for the next pass and memory is rebuilt from the database."""
        self._pending_events.extend(self._executor.events())
        self._absorb_hints(hints)
        try:
            return self._pass()
        except Exception:
            self._reset_memory()
            raise

    def _reset_memory(self) -> None:
        in_flight = self._state.in_flight
        self._state = SchedulerState()
        for key, flight in in_flight.items():
            self._state.track(key, flight.dag_id, flight.infra_failures)
        with self._db.read() as conn:
            self._rebuild(conn)

    def _pass(self) -> TickReport:
        events = self._pending_events
        now = self._clock.now()
        mono = self._clock.monotonic()
        state = self._state
        if mono - self._last_safety_scan >= SAFETY_SCAN_SECONDS:
            self._last_safety_scan = mono
            state.check_all_queued = True
        heartbeat_due = mono - self._last_heartbeat >= self._settings.heartbeat_seconds
        lost_check_due = mono - self._last_lost_check >= self._settings.lost_after_seconds / 3
        schedule_due = self._schedules.is_due(now)
        retries_due = bool(state.retries) and state.retries[0][0] <= now
        if not (
            events
            or state.dirty
            or state.check_queued
            or state.check_all_queued
            or schedule_due
            or retries_due
            or heartbeat_due
            or lost_check_due
            or (state.has_ready() and self._executor.capacity > len(state.in_flight))
        ):
            return TickReport()
        runs_started = runs_finished = 0
        with self._db.write() as conn:
            self._apply_events(conn, events, now)
            if self._recheck:
                self._stop_unwanted_tries(conn)
            if schedule_due:
                state.check_queued |= self._schedules.create_due_runs(conn, now, self._plan)
            if state.check_queued or state.check_all_queued:
                runs_started = self._start_queued_runs(conn, now)
            if retries_due:
                self._release_retries(conn, now)
            runs_finished = self._plan_dirty_runs(conn, now)
            if runs_finished:
                runs_started += self._start_queued_runs(conn, now)
                runs_finished += self._plan_dirty_runs(conn, now)
            dispatched = self._dispatch(conn, now)
            if lost_check_due:
                self._last_lost_check = mono
                self._recover_lost(conn, now)
            if heartbeat_due and self._job_id is not None:
                jobs_store.heartbeat(conn, self._job_id, now)
                self._last_heartbeat = mono
        self._pending_events = []
        workloads = [workload for workload, _ in dispatched]
        for workload, infra_failures in dispatched:
            state.track(workload.key, workload.dag_id, infra_failures)
        if workloads:
            self._executor.submit(workloads)
        return TickReport(len(events), runs_started, runs_finished, len(workloads))

    def _absorb_hints(self, hints: Iterable[str]) -> None:
        for hint in hints:
            kind, _, value = hint.partition(":")
            if kind == "dag" and value:
                # The DAG may have a new version, with new limits.
                self._dag_info.pop(value, None)
            elif kind == "dag":
                self._dag_info.clear()
            if kind == "run" and value:
                self._state.check_queued.add(value)
            elif kind == "dag":
                self._schedules.mark_stale()
                if value:
                    self._state.check_queued.add(value)
                else:
                    self._state.check_all_queued = True
            elif kind == "runpk" and value.isdigit():
                # Someone changed this run by hand: forget what we cached and look again,
                # and stop tries of it whose task was marked or cleared while they ran.
                self._state.runs.pop(int(value), None)
                self._forget_states(int(value))
                self._state.check_all_queued = True
                self._recheck.add(int(value))
            else:
                self._state.check_all_queued = True

    # ----------------------------------------------------------------- events

    def _apply_events(self, conn: Connection, events: Sequence[TaskEvent], now: datetime) -> None:
        # A start that arrives with its own end is written with the end, in one statement pair
        # instead of two: under load (a wide fan-out) most starts come that way.
        finished = {e.key for e in events if isinstance(e, TaskFinished)}
        starts: dict[TaskKey, TaskStarted] = {}
        for event in events:
            if isinstance(event, TaskStarted):
                if event.key in finished:
                    starts[event.key] = event
                elif ti_store.mark_started(
                    conn, event.key, pid=event.pid, hostname=event.hostname, at=event.at
                ):
                    self._state.note(event.key.run_pk, [event.key.task_id], TaskState.RUNNING)
            else:
                self._apply_finished(conn, event, now, starts.get(event.key))

    def _apply_finished(
        self,
        conn: Connection,
        event: TaskFinished,
        now: datetime,
        start: TaskStarted | None = None,
    ) -> None:
        key = event.key
        flight = self._state.untrack(key)
        run = self._run(conn, key.run_pk)
        if run is None:
            return
        if event.state is TaskState.FAILED:
            if start is not None:  # failures are rare: record the start the usual way
                ti_store.mark_started(
                    conn, key, pid=start.pid, hostname=start.hostname, at=start.at
                )
            infra = flight.infra_failures if flight else 0
            self._fail_try(
                conn, key, event.exit_reason, event.error, event.at, infra, event.exit_code
            )
            return
        moved = ti_store.finish_try(
            conn,
            key,
            state=event.state,
            try_state=event.state,
            exit_reason=event.exit_reason,
            at=event.at,
            error=event.error,
            exit_code=event.exit_code,
            started=(start.pid, start.hostname, start.at) if start else None,
        )
        if not moved:
            # A person marked or cleared the task while this try ran (or deleted the run):
            # their state stands, and what we remember of the run may be stale.
            self._forget_states(run.id)
            return
        if event.xcoms:
            xcom_store.write(
                conn,
                run_pk=run.id,
                dag_id=run.dag_id,
                run_id=run.run_id,
                task_id=key.task_id,
                items=event.xcoms,
                now=event.at,
            )
        self._state.note(run.id, [key.task_id], event.state)
        changed = {key.task_id}
        if event.skip_downstream:
            skipped = ti_store.move(
                conn,
                run.id,
                event.skip_downstream,
                [TaskState.NONE, TaskState.SCHEDULED],
                TaskState.SKIPPED,
                now,
                reason=f"skipped by {key.task_id}",
            )
            self._state.note(run.id, skipped, TaskState.SKIPPED)
            changed.update(skipped)
        self._state.mark_dirty(run.id, changed)

    def _forget_states(self, run_pk: int) -> None:
        """Drop the remembered task states of a run and plan it again from the database."""
        self._state.states.pop(run_pk, None)
        self._state.mark_dirty(run_pk, None)

    def _stop_unwanted_tries(self, conn: Connection) -> None:
        """Kill tries in flight whose task a person marked or cleared: its new state stands
        (a finishing try can no longer overwrite it), so the try's work is unwanted."""
        runs, self._recheck = self._recheck, set()
        keys = [key for key in self._state.in_flight if key.run_pk in runs]
        if not keys:
            return
        current = {
            (ti.run_pk, ti.task_id): ti
            for ti in ti_store.keys_of(conn, [(k.run_pk, k.task_id) for k in keys])
        }
        unwanted = []
        for key in keys:
            ti = current.get((key.run_pk, key.task_id))
            if ti is None or ti.try_number != key.try_number or not ti.state.is_active:
                unwanted.append(key)
        if unwanted and isinstance(self._executor, Killable):
            log.info("stopping %d tries a person marked or cleared", len(unwanted))
            self._executor.kill(unwanted)

    def _fail_try(
        self,
        conn: Connection,
        key: TaskKey,
        reason: ExitReason,
        error: str | None,
        at: datetime,
        infra_failures: int | None = None,
        exit_code: int | None = None,
    ) -> None:
        self._state.untrack(key)
        run = self._run(conn, key.run_pk)
        current = ti_store.get(conn, key.run_pk, key.task_id)
        if run is None or current is None or current.try_number != key.try_number:
            if run is not None:
                self._forget_states(run.id)
            return
        plan = self._plan(conn, run.version_id)
        spec = plan.tasks.get(key.task_id) if plan else None
        if spec is None:
            decision_state, retry_at, infra = TaskState.FAILED, None, current.infra_failures
        else:
            decision = after_failure(
                spec,
                try_number=key.try_number,
                max_tries=current.max_tries,
                infra_failures=current.infra_failures if infra_failures is None else infra_failures,
                reason=reason,
                now=at,
                infra_budget=self._settings.infra_retries,
            )
            decision_state, retry_at, infra = (
                decision.state,
                decision.next_retry_at,
                decision.infra_failures,
            )
        moved = ti_store.finish_try(
            conn,
            key,
            state=decision_state,
            try_state=TaskState.FAILED,
            exit_reason=reason,
            at=at,
            error=error or reason.value,
            exit_code=exit_code,
            next_retry_at=retry_at,
            infra_failures=infra,
        )
        if not moved:
            self._forget_states(run.id)
            return
        self._state.note(run.id, [key.task_id], decision_state)
        if decision_state is TaskState.UP_FOR_RETRY:
            self._state.add_retry(retry_at or at, run.id, run.dag_id, key.task_id)
        else:
            self._state.mark_dirty(run.id, {key.task_id})

    # ----------------------------------------------------------------- runs

    def _run(self, conn: Connection, run_pk: int) -> Run | None:
        run = self._state.runs.get(run_pk)
        if run is None:
            run = runs_store.get_run_by_pk(conn, run_pk)
            if run is not None and run.state is RunState.RUNNING:
                self._state.runs[run_pk] = run
        return run

    def _plan(self, conn: Connection, version_id: int) -> DagPlan | None:
        plan = self._state.plans.get(version_id)
        if plan is None:
            version = dags_store.get_version(conn, version_id)
            if version is None:
                return None
            plan = DagPlan.from_structure(
                version.structure, version_id=version.id, version_hash=version.version_hash
            )
            self._state.plans[version_id] = plan
        return plan

    def _start_queued_runs(self, conn: Connection, now: datetime) -> int:
        state = self._state
        # The safety scan asks the runs index which DAGs have queued runs (usually none),
        # rather than reading every DAG: an idle scheduler does it every few seconds.
        check = runs_store.dags_with_queued_runs(conn) if state.check_all_queued else None
        candidates = {}
        for dag_id in state.check_queued if check is None else check:
            record = dags_store.get_dag(conn, dag_id)
            if record is not None and not record.is_paused:
                candidates[dag_id] = record
        wanted = set(candidates)
        state.check_queued.clear()
        state.check_all_queued = False
        if not wanted:
            return 0
        running = runs_store.count_running(conn, wanted)
        started = 0
        for dag_id in sorted(wanted):
            slots = candidates[dag_id].max_active_runs - running.get(dag_id, 0)
            if slots <= 0:
                continue
            for run in runs_store.queued_runs(conn, dag_id, slots):
                plan = self._plan(conn, run.version_id)
                if plan is None:
                    continue
                if not runs_store.move_run(conn, run.id, [RunState.QUEUED], RunState.RUNNING, now):
                    continue
                state.states[run.id] = ti_store.create_for_run(conn, run, plan, now)
                state.runs[run.id] = runs_store.get_run_by_pk(conn, run.id) or run
                state.mark_dirty(run.id, None)
                started += 1
        return started

    def _plan_dirty_runs(self, conn: Connection, now: datetime) -> int:
        state = self._state
        finished = 0
        dirty, state.dirty = state.dirty, {}
        for run_pk, changed in dirty.items():
            run = self._run(conn, run_pk)
            if run is None or run.state is not RunState.RUNNING:
                state.forget_run(run_pk)
                continue
            plan = self._plan(conn, run.version_id)
            if plan is None:
                continue
            states = state.states.get(run_pk)
            if states is None:
                states = state.states[run_pk] = ti_store.states_for_run(conn, run_pk)
            decision = plan_run(plan, states, changed)
            moved = ti_store.move(
                conn, run_pk, decision.schedule, [TaskState.NONE], TaskState.SCHEDULED, now
            )
            for task_id in moved:
                state.add_ready(run.dag_id, run_pk, task_id)
            state.note(run_pk, moved, TaskState.SCHEDULED)
            applied = len(moved)
            applied += self._move_and_note(
                conn, run_pk, decision.succeed, TaskState.SUCCESS, now, extra={"start_date": now}
            )
            applied += self._move_and_note(
                conn, run_pk, decision.skip, TaskState.SKIPPED, now, reason="trigger rule"
            )
            applied += self._move_and_note(
                conn,
                run_pk,
                decision.upstream_failed,
                TaskState.UPSTREAM_FAILED,
                now,
                reason="an upstream task failed",
            )
            intended = (
                len(decision.schedule)
                + len(decision.succeed)
                + len(decision.skip)
                + len(decision.upstream_failed)
            )
            if applied != intended:
                # Someone else moved some of these tasks: what we remembered is stale.
                state.states.pop(run_pk, None)
                state.mark_dirty(run_pk, None)
                continue
            if decision.outcome is not None and runs_store.move_run(
                conn, run_pk, [RunState.RUNNING], decision.outcome, now, reason=decision.reason
            ):
                finished += 1
                state.forget_run(run_pk)
                state.check_queued.add(run.dag_id)
        return finished

    def _move_and_note(
        self,
        conn: Connection,
        run_pk: int,
        task_ids: Sequence[str],
        target: TaskState,
        now: datetime,
        *,
        reason: str | None = None,
        extra: dict[str, object] | None = None,
    ) -> int:
        """Move waiting (none) tasks of a run straight to a final state; returns how many."""
        moved = ti_store.move(
            conn, run_pk, task_ids, [TaskState.NONE], target, now, reason=reason, extra=extra
        )
        self._state.note(run_pk, moved, target)
        return len(moved)

    def _release_retries(self, conn: Connection, now: datetime) -> None:
        for run_pk, dag_id, task_id in self._state.pop_due_retries(now):
            if ti_store.move(
                conn, run_pk, [task_id], [TaskState.UP_FOR_RETRY], TaskState.SCHEDULED, now
            ):
                self._state.add_ready(dag_id, run_pk, task_id)
                self._state.note(run_pk, [task_id], TaskState.SCHEDULED)

    # ----------------------------------------------------------------- dispatch

    def _dispatch(self, conn: Connection, now: datetime) -> list[tuple[Workload, int]]:
        state = self._state
        free = self._executor.capacity - len(state.in_flight)
        if free <= 0 or not state.has_ready():
            return []
        limits = {
            dag_id: max(
                0, self._max_active_tasks(conn, dag_id) - state.active_per_dag.get(dag_id, 0)
            )
            for dag_id in state.ready
        }
        window = {
            dag_id: list(islice(queue, 0, min(len(queue), free)))
            for dag_id, queue in state.ready.items()
            if queue
        }
        picked = pick_fair(window, free, limits)
        by_run: dict[int, list[str]] = {}
        for dag_id, (run_pk, task_id) in picked:
            state.ready[dag_id].popleft()
            by_run.setdefault(run_pk, []).append(task_id)
        for dag_id in [d for d, q in state.ready.items() if not q]:
            del state.ready[dag_id]
        workloads: list[tuple[Workload, int]] = []
        for run_pk, task_ids in by_run.items():
            run = self._run(conn, run_pk)
            plan = self._plan(conn, run.version_id) if run else None
            if run is None or plan is None:
                continue
            queued = ti_store.queue_tries(conn, run_pk, task_ids, now, self._job_id)
            if not queued:
                continue
            state.note(run_pk, [ti.task_id for ti in queued], TaskState.QUEUED)
            source = self._pinned_source(conn, run)
            upstream_ids = {u for ti in queued for u in plan.tasks[ti.task_id].upstream}
            upstream_xcoms = xcom_store.for_tasks(conn, run_pk, upstream_ids)
            for ti in queued:
                spec = plan.tasks[ti.task_id]
                workload = Workload(
                    run_pk=run_pk,
                    dag_id=run.dag_id,
                    run_id=run.run_id,
                    task_id=ti.task_id,
                    try_number=ti.try_number,
                    max_tries=spec.retries,
                    fileloc=plan.fileloc,
                    version_hash=plan.version_hash,
                    run_type=run.run_type,
                    logical_date=run.logical_date,
                    data_interval_start=run.data_interval_start,
                    data_interval_end=run.data_interval_end,
                    conf=run.conf,
                    log_path=str(
                        log_path_for(
                            self._settings.log_folder,
                            run.dag_id,
                            run.run_id,
                            ti.task_id,
                            ti.try_number,
                        )
                    ),
                    execution_timeout=spec.execution_timeout,
                    queue=spec.queue,
                    upstream_xcoms={
                        u: upstream_xcoms[u] for u in spec.upstream if u in upstream_xcoms
                    },
                    source=source,
                )
                workloads.append((workload, ti.infra_failures))
        return workloads

    def _current(self, conn: Connection, dag_id: str) -> tuple[int, int | None]:
        """(max_active_tasks, version id) of the DAG's current version; cached, since it is
        read on every pass, and forgotten when a `dag:` hint says the DAG changed."""
        info = self._dag_info.get(dag_id)
        if info is None:
            record = dags_store.get_dag(conn, dag_id)
            version_id = record.version_id if record else None
            plan = self._plan(conn, version_id) if version_id is not None else None
            info = self._dag_info[dag_id] = (plan.max_active_tasks if plan else 16, version_id)
        return info

    def _max_active_tasks(self, conn: Connection, dag_id: str) -> int:
        return self._current(conn, dag_id)[0]

    def _pinned_source(self, conn: Connection, run: Run) -> str | None:
        """The file text of the run's version when the DAG file has moved on since the run
        started (None when the file still holds that version): the run keeps its code."""
        if self._current(conn, run.dag_id)[1] in (None, run.version_id):
            return None
        if run.version_id not in self._sources:
            self._sources[run.version_id] = dags_store.get_source(conn, run.version_id)
        return self._sources[run.version_id]

    # ----------------------------------------------------------------- recovery

    def _recover_lost(self, conn: Connection, now: datetime) -> None:
        """Fail, by their retry policy, tries whose scheduler died: nobody watches them now."""
        if self._job_id is None:
            return
        reason = "its scheduler stopped while the try was in flight"
        for key in lost_tries(
            conn,
            job_id=self._job_id,
            hostname=self._hostname,
            lost_after_seconds=self._settings.lost_after_seconds,
            now=now,
        ):
            self._fail_try(conn, key, ExitReason.SCHEDULER_LOST, reason, now)
            log.warning("recovered lost try %s: %s", key, reason)
