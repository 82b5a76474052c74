"""One scheduling pass, steppable: `Scheduler.tick(hints)`. It only orchestrates: each step
(events, schedules, starting, planning, dispatch) decides its transitions, then applies them, in
one short write transaction; work goes to the executor only after it commits.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection

from slipstream.clock import Clock
from slipstream.config import Settings
from slipstream.core.records import CallbackRequest, ExitReason, TaskEvent, TaskKey, Workload
from slipstream.errors import ConfigError
from slipstream.executors.base import (
    Acknowledging,
    Attaching,
    Attachment,
    CallbackRunner,
    Executor,
    Killable,
    Publishing,
)
from slipstream.scheduler import adoption, assets, callbacks, events, remote
from slipstream.scheduler.dispatch import dispatch
from slipstream.scheduler.outcomes import TakenOutcomes, take_outcomes
from slipstream.scheduler.planning import plan_dirty_runs, release_retries
from slipstream.scheduler.recovery import (
    end_dead_workers,
    live_scheduler,
    orphaned_tries,
    rival_message,
)
from slipstream.scheduler.schedules import ScheduleKeeper
from slipstream.scheduler.starting import start_queued_runs
from slipstream.scheduler.state import SchedulerState
from slipstream.scheduler.timeouts import expire_runs
from slipstream.scheduler.try_logs import write_notes
from slipstream.scheduler.waits import release_waits
from slipstream.store import jobs as jobs_store
from slipstream.store import pools as pools_store
from slipstream.store.db import Database
from slipstream.store.outcomes import TAKE_LIMIT
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint

log = logging.getLogger(__name__)

# A safety net, not the mechanism: hints wake the scheduler at once; this catches lost ones.
SAFETY_SCAN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class TickReport:
    events: int = 0
    runs_started: int = 0
    runs_finished: int = 0
    queued: int = 0
    # Nothing was due: the pass returned before opening a transaction (metrics leave such
    # passes out of pass time and lag, which would otherwise be mostly idle wake-ups).
    idle: bool = False


class Scheduler:
    """Decides and records what runs next. Steppable: `tick()` is one whole pass, costing in
    proportion to what changed since the last one (finished tries, new triggers, due retries
    and schedules), never to history; a worker never runs a try that was not recorded."""

    def __init__(
        self,
        db: Database,
        executor: Executor,
        *,
        clock: Clock,
        settings: Settings,
        plans: PlanCache | None = None,
        creates_scheduled_runs: bool = True,
    ) -> None:
        self._db = db
        self._executor = executor
        self._clock = clock
        self._settings = settings
        self._state = SchedulerState(
            plans=plans if plans is not None else PlanCache(),
            max_map_length=settings.max_map_length,
            schedules=ScheduleKeeper(creates_runs=creates_scheduled_runs),
        )
        self._job_id: int | None = None
        # The worker host's latest answer to an attach, until a pass has reconciled it.
        self._attachment: Attachment | None = None
        self._hostname = socket.gethostname()
        self._last_heartbeat = clock.monotonic()
        self._last_safety_scan = clock.monotonic()
        self._last_lost_check = clock.monotonic()
        # A failed pass could not read memory back (the database was unreachable): the next
        # pass does that first, or it would go on as if nothing were in progress.
        self._memory_stale = False
        self._callbacks_to_forget: list[int] = []

    @property
    def job_id(self) -> int | None:
        return self._job_id

    @property
    def in_flight(self) -> int:
        """Tries handed to the executor and not yet reported finished."""
        return len(self._state.in_flight)

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Register this scheduler, attach to the worker host, rebuild memory, then apply what
        the host kept in the outbox, adopt the tries it still runs, and take over what dead
        schedulers left that no host runs."""
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
            job_id = self._job_id = jobs_store.start_job(
                conn, hostname=self._hostname, pid=os.getpid(), now=now
            )
        attachment: Attachment | None = None
        if isinstance(self._executor, Attaching):
            try:
                # Before any recovery: what the host still runs is not lost.
                self._executor.attach(job_id)
            except BaseException:
                with self._db.write() as conn:
                    jobs_store.end_job(conn, job_id, self._clock.now())
                raise
            attachment = self._executor.take_attachment()
        now = self._clock.now()
        stop: list[TaskKey] = []
        resend: list[Workload] = []
        with self._db.write() as conn:
            pools_store.ensure_default_pool(conn, self._settings.default_pool_slots, now)
            self._state.rebuild(conn, now)
            taken = take_outcomes(conn)
            self._apply(conn, taken, [], now)
            if attachment is not None:
                stop = self._reconcile(conn, attachment, now)
                orphans = orphaned_tries(
                    conn,
                    job_id=job_id,
                    hostname=self._hostname,
                    lost_after_seconds=self._settings.lost_after_seconds,
                    now=now,
                )
                resend = adoption.resend_unsent(
                    conn,
                    self._state,
                    attachment,
                    orphans,
                    job_id=job_id,
                    log_folder=self._settings.log_folder,
                )
            if isinstance(self._executor, Publishing):
                # Before the lost-try recovery: they are in the broker or on a worker.
                remote.adopt_orphans(
                    conn,
                    self._state,
                    job_id=job_id,
                    hostname=self._hostname,
                    lost_after_seconds=self._settings.lost_after_seconds,
                    now=now,
                )
            self._recover_lost(conn, now)
            # Store what the lost tries call for, then read back every stored request (an
            # earlier scheduler's too): the first pass submits them, once the executor runs.
            callbacks.build_requests(conn, self._state, self._settings.log_folder, now)
            callbacks.restore(conn, self._state, running=attachment.callbacks if attachment else ())
        self._write_try_notes()
        if stop and isinstance(self._executor, Killable):
            self._executor.kill(stop)
        if resend:
            self._executor.submit(resend)
        self._last_heartbeat = self._clock.monotonic()

    def stop(self) -> None:
        """Record what finished and end this job. Tries in flight on a worker host keep
        running there (the next scheduler adopts them); any other executor is stopped, and
        what it still ran is given back (retried on the infrastructure budget)."""
        if isinstance(self._executor, Attaching):
            self._detach()
            return
        if isinstance(self._executor, Publishing):
            self._leave_to_workers()
            return
        self._executor.shutdown(graceful=False)
        state = self._state
        state.pending_events.extend(self._executor.events())
        self._note_callbacks_done()
        now = self._clock.now()
        infra_budget = self._settings.infra_retries
        with self._db.write() as conn:
            events.apply_events(conn, state, state.pending_events, now, infra_budget=infra_budget)
            state.pending_events = []
            given_back = [
                events.decide_failure(
                    conn,
                    state,
                    key,
                    ExitReason.SCHEDULER_LOST,
                    "scheduler shut down",
                    now,
                    infra_budget=infra_budget,
                )
                for key in list(state.in_flight)
            ]
            events.apply_failures(conn, state, given_back, now)
            # Stored for the next scheduler to submit: this one's executor has stopped.
            callbacks.build_requests(conn, state, self._settings.log_folder, now)
            if self._job_id is not None:
                jobs_store.end_job(conn, self._job_id, now)
        self._write_try_notes()

    def _leave_to_workers(self) -> None:
        """Stop on purpose, leaving the tries to the remote workers that run them (the next
        scheduler adopts them and reads their outcomes from the outbox)."""
        self._executor.shutdown(graceful=True)
        now = self._clock.now()
        with self._db.write() as conn:
            callbacks.build_requests(conn, self._state, self._settings.log_folder, now)
            if self._job_id is not None:
                jobs_store.end_job(conn, self._job_id, now)
        self._write_try_notes()

    def _detach(self) -> None:
        """Stop on purpose, leaving the tries to the worker host: apply what it reported,
        acknowledge it, detach. What it reports later goes to the outbox."""
        assert isinstance(self._executor, Attaching)
        state = self._state
        state.pending_events.extend(self._executor.events())
        self._note_callbacks_done()
        now = self._clock.now()
        with self._db.write() as conn:
            events.apply_events(
                conn, state, state.pending_events, now, infra_budget=self._settings.infra_retries
            )
            state.pending_events = []
            # Stored for the next scheduler to submit.
            callbacks.build_requests(conn, state, self._settings.log_folder, now)
            if self._job_id is not None:
                jobs_store.end_job(conn, self._job_id, now)
        self._write_try_notes()
        if isinstance(self._executor, Acknowledging):
            self._executor.acknowledge()
        self._executor.detach()

    # ----------------------------------------------------------------- the pass

    def has_immediate_work(self) -> bool:
        state = self._state
        free = self._executor.capacity - len(state.in_flight)
        return (
            self._memory_stale
            or bool(state.dirty or state.callback_intents)
            or (free > 0 and state.has_ready())
        )

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
        if isinstance(self._executor, Attaching):
            retry = self._executor.wake_in()  # a worker host to reach again
            if retry is not None:
                waits.append(retry)
        if self._state.retries:
            waits.append((self._state.retries[0][0] - now).total_seconds())
        if self._state.waits:
            waits.append((self._state.waits[0][0] - now).total_seconds())
        if self._state.deadlines:
            waits.append((self._state.deadlines[0][0] - now).total_seconds())
        next_schedule = self._state.schedules.next_due
        if next_schedule is not None:
            waits.append((next_schedule - now).total_seconds())
        return max(0.0, min(waits))

    def tick(self, hints: Iterable[Hint] = ()) -> TickReport:
        """One pass. If it fails, nothing it wrote is kept: the events it was applying are
        kept for the next pass and memory is rebuilt from the database."""
        self._state.pending_events.extend(self._executor.events())
        self._note_callbacks_done()
        self._state.absorb(hints)
        try:
            if self._memory_stale:
                self._rebuild_memory()
            return self._pass()
        except Exception:
            self._state = self._state.reset()
            self._memory_stale = True
            with contextlib.suppress(Exception):
                # Fails too when the database is what failed: the next pass tries again.
                self._rebuild_memory()
            raise

    def _rebuild_memory(self) -> None:
        with self._db.read() as conn:
            self._state.rebuild(conn, self._clock.now())
        self._memory_stale = False

    def _pass(self) -> TickReport:
        state = self._state
        pending = state.pending_events
        now = self._clock.now()
        mono = self._clock.monotonic()
        if self._attachment is None and isinstance(self._executor, Attaching):
            self._attachment = self._executor.take_attachment()
        attachment = self._attachment
        # Outcomes kept for no scheduler: read when a host (re)attaches, and on the safety
        # scan (a host may have written some while attached to nobody).
        read_outbox = attachment is not None or state.outcomes_waiting
        if mono - self._last_safety_scan >= SAFETY_SCAN_SECONDS:
            self._last_safety_scan = mono
            read_outbox = True
            state.check_all_queued = True
            state.recheck_past()  # tasks depends_on_past holds: a missed change costs 5 s
            state.dispatch_blocked = False
            state.pools_stale = True  # a pool changed by another host: seen within 5 s
            state.assets_dirty = True  # an asset-event hint lost: costs one read per scan
        heartbeat_due = mono - self._last_heartbeat >= self._settings.heartbeat_seconds
        lost_check_due = mono - self._last_lost_check >= self._settings.lost_after_seconds / 3
        publishing = self._executor if isinstance(self._executor, Publishing) else None
        if lost_check_due and publishing is not None:
            read_outbox = True  # outcomes written before a worker died count first
        schedule_due = state.schedules.is_due(now)
        retries_due = bool(state.retries) and state.retries[0][0] <= now
        waits_due = bool(state.waits) and state.waits[0][0] <= now
        timeouts_due = bool(state.deadlines) and state.deadlines[0][0] <= now
        free = self._executor.capacity - len(state.in_flight)
        if not (
            pending
            or attachment is not None
            or read_outbox
            or state.dirty
            or state.callback_intents
            or state.check_queued
            or state.check_all_queued
            or state.assets_dirty
            or schedule_due
            or retries_due
            or waits_due
            or timeouts_due
            or heartbeat_due
            or lost_check_due
            or (state.has_ready() and free > 0)
        ):
            if isinstance(self._executor, Acknowledging):
                self._executor.acknowledge()  # callback requests' ends forgotten by tick
            return TickReport(idle=True)
        runs_started = runs_finished = 0
        expired: list[TaskKey] = []
        unwanted: list[TaskKey] = []
        republish: list[Workload] = []
        with self._db.write() as conn:
            taken = take_outcomes(conn) if read_outbox else TakenOutcomes()
            self._apply(conn, taken, pending, now)
            if attachment is not None:
                unwanted = self._reconcile(conn, attachment, now)
            if state.recheck:
                events.stop_unwanted_tries(conn, state, self._executor)
            if schedule_due:
                state.check_queued |= state.schedules.create_due_runs(conn, now, state.plan)
            if state.assets_dirty:
                state.check_queued |= assets.create_asset_runs(conn, state, now)
            if state.check_queued or state.check_all_queued:
                runs_started = start_queued_runs(conn, state, now)
            if retries_due:
                release_retries(conn, state, now)
            if waits_due:
                release_waits(conn, state, now)
            runs_finished = plan_dirty_runs(conn, state, now)
            if runs_finished:
                runs_started += start_queued_runs(conn, state, now)
                runs_finished += plan_dirty_runs(conn, state, now)
                state.schedules.runs_finished(now)  # @continuous DAGs start their next run
            if timeouts_due:
                expired = expire_runs(conn, state, now)
            if state.pools_stale and state.has_ready():
                state.pool_sizes = pools_store.sizes(conn)
                state.pools_counting_deferred = pools_store.counting_deferred(conn)
                state.pools_stale = False
            dispatched = dispatch(
                conn,
                state,
                now,
                free=self._executor.capacity - len(state.in_flight),
                job_id=self._job_id,
                log_folder=self._settings.log_folder,
            )
            if lost_check_due:
                self._last_lost_check = mono
                self._recover_lost(conn, now)
                if publishing is not None:
                    remote.fail_lost_workers(
                        conn, state, now, infra_budget=self._settings.infra_retries
                    )
                    republish = remote.check_unclaimed(
                        conn,
                        state,
                        publishing,
                        now,
                        log_folder=self._settings.log_folder,
                        infra_budget=self._settings.infra_retries,
                    )
            if heartbeat_due and self._job_id is not None:
                jobs_store.heartbeat(conn, self._job_id, now)
                self._last_heartbeat = mono
            callback_requests = callbacks.build_requests(
                conn, state, self._settings.log_folder, now
            )
        state.pending_events = []
        if read_outbox:
            # A full batch leaves more behind: the next pass reads on.
            state.outcomes_waiting = len(taken.row_ids) >= TAKE_LIMIT
        self._attachment = None
        # Committed: the host may forget these outcomes. Before anything new is sent to it.
        if isinstance(self._executor, Acknowledging):
            self._executor.acknowledge()
        self._write_try_notes()
        self._request_callbacks(callback_requests)
        stop = expired + unwanted
        if stop and isinstance(self._executor, Killable):
            self._executor.kill(stop)
        for workload, infra_failures in dispatched:
            state.track(
                workload.key,
                workload.dag_id,
                infra_failures,
                pool=workload.pool,
                pool_slots=workload.pool_slots,
            )
        workloads = [workload for workload, _ in dispatched]
        if workloads or republish:
            self._executor.submit(republish + workloads)
        return TickReport(
            len(pending) + len(taken.events), runs_started, runs_finished, len(workloads)
        )

    def _apply(
        self, conn: Connection, taken: TakenOutcomes, pending: list[TaskEvent], now: datetime
    ) -> None:
        """Apply outcomes from the outbox and the executor's events, in one batch (an outcome
        that came both ways counts once: the second end matches nothing), and delete the
        outbox rows applied."""
        events.apply_events(
            conn, self._state, [*taken.events, *pending], now,
            infra_budget=self._settings.infra_retries,
        )  # fmt: skip
        taken.delete(conn)

    def _reconcile(self, conn: Connection, attachment: Attachment, now: datetime) -> list[TaskKey]:
        return adoption.reconcile(
            conn,
            self._state,
            attachment,
            job_id=self._job_id,
            now=now,
            infra_budget=self._settings.infra_retries,
        )

    def _request_callbacks(self, requests: list[CallbackRequest]) -> None:
        if not requests:
            return
        if isinstance(self._executor, CallbackRunner):
            self._executor.run_callbacks(requests)
            self._note_callbacks_done()  # an inline executor has run them already
            return
        for request in requests:
            log.warning(
                "executor %s cannot run callbacks: %s of %s %s not run",
                type(self._executor).__name__,
                request.kind,
                request.workload.dag_id,
                request.workload.run_id,
            )

    def _note_callbacks_done(self) -> None:
        if not isinstance(self._executor, CallbackRunner):
            return
        done = self._executor.callbacks_done()
        for request in done:
            if request.error is not None:
                log.warning(
                    "callback request %d did not run to its end: %s", request.id, request.error
                )
        # Kept until written: a pass that cannot reach the database must not lose them (their
        # rows would be run again by the next scheduler).
        self._callbacks_to_forget.extend(request.id for request in done)
        if self._callbacks_to_forget:
            with self._db.write() as conn:
                callbacks.forget(conn, self._callbacks_to_forget)
            self._callbacks_to_forget = []

    def _write_try_notes(self) -> None:
        """Write the lines noted for tries' logs, now that what they say is committed."""
        notes, self._state.try_notes = self._state.try_notes, []
        if notes:
            write_notes(self._settings.log_folder, notes)

    def _recover_lost(self, conn: Connection, now: datetime) -> None:
        end_dead_workers(conn, lost_after_seconds=self._settings.lost_after_seconds, now=now)
        if self._job_id is not None:
            events.recover_lost(
                conn,
                self._state,
                now,
                job_id=self._job_id,
                hostname=self._hostname,
                lost_after_seconds=self._settings.lost_after_seconds,
                infra_budget=self._settings.infra_retries,
            )
