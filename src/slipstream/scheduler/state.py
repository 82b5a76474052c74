"""What the scheduler holds in memory between passes, all of it rebuildable from the database:
every cache the passes read (runs, plans, task states, DAG limits, pinned sources), the work
queues (ready tasks, retry timers, events not yet applied) and what wake-up hints mean to them.
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy import Connection

from slipstream.core.admission import Candidate
from slipstream.core.dag_plan import DagPlan
from slipstream.core.mapping import DEFAULT_MAX_MAP_LENGTH
from slipstream.core.pools import DEFAULT_POOL
from slipstream.core.records import Run, TaskEvent, TaskKey
from slipstream.core.states import WAITING_TASK_STATES, RunState, TaskState
from slipstream.scheduler.schedules import ScheduleKeeper
from slipstream.scheduler.try_logs import TryNote
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store.plans import PlanCache
from slipstream.wakeup import Hint, HintKind

if TYPE_CHECKING:
    from slipstream.scheduler.callbacks import CallbackIntent
K = TypeVar("K")

# What a DAG without a readable current version may run at once: Airflow's default.
DEFAULT_MAX_ACTIVE_TASKS = 16


@dataclass(slots=True)
class InFlight:
    dag_id: str
    infra_failures: int
    pool: str = DEFAULT_POOL
    pool_slots: int = 1


@dataclass(frozen=True, slots=True)
class CurrentVersion:
    """A DAG's current version as the scheduler needs it on every pass."""

    version_id: int | None
    max_active_tasks: int


@dataclass(slots=True)
class SchedulerState:
    plans: PlanCache = field(default_factory=PlanCache)  # shared, by version id
    runs: dict[int, Run] = field(default_factory=dict)  # running runs by pk
    in_flight: dict[TaskKey, InFlight] = field(default_factory=dict)
    active_per_dag: Counter[str] = field(default_factory=Counter)
    # Runs to plan on the next pass: None means "examine every waiting task".
    dirty: dict[int, set[str] | None] = field(default_factory=dict)
    # dag_id -> (run, task, map index)
    ready: dict[str, deque[tuple[int, str, int]]] = field(default_factory=dict)
    # (due, run, dag_id, task, map index), a heap
    retries: list[tuple[datetime, int, str, str, int]] = field(default_factory=list)
    # Tasks waiting without a process (up_for_reschedule, deferred): (wake-up time, run,
    # dag_id, task, map index, the state to move it to then), a heap.
    waits: list[tuple[datetime, int, str, str, int, TaskState]] = field(default_factory=list)
    check_queued: set[str] = field(default_factory=set)
    check_all_queued: bool = True
    # Task states of running runs as this scheduler last wrote or read them, so that planning
    # a pass costs what changed, not a re-read of every task of a large run.
    states: dict[int, dict[str, TaskState]] = field(default_factory=dict)
    # Beside `states`, kept with it: expanded mapped tasks' instance states, by map index.
    mapped: dict[int, dict[str, dict[int, TaskState]]] = field(default_factory=dict)
    # Read on every pass; forgotten when a hint says the DAG changed.
    current: dict[str, CurrentVersion] = field(default_factory=dict)
    # Stored file text of versions whose DAG file has moved on, sent with their workloads.
    sources: dict[int, str | None] = field(default_factory=dict)
    recheck: set[int] = field(default_factory=set)  # runs a person changed: tries still wanted?
    # Executor events not yet applied: kept across a pass that fails, applied by the next.
    pending_events: list[TaskEvent] = field(default_factory=list)
    schedules: ScheduleKeeper = field(default_factory=ScheduleKeeper)
    # Callbacks to request of the executor (scheduler/callbacks.py), stored and made into
    # requests at the end of the pass that noted them.
    callback_intents: list[CallbackIntent] = field(default_factory=list)
    # Ready tasks taken from `ready`, ordered for admission (core/admission.py): a heap per
    # DAG of (rank, candidate). `dispatch_blocked` says every one of them waits for a limit
    # (a slot, a pool, a task's concurrency) that only a try's end or a new version can lift,
    # so an idle pass is not run for them.
    waiting: dict[str, list[tuple[tuple[int, float, int], Candidate]]] = field(default_factory=dict)
    dispatch_blocked: bool = False
    arrivals: int = 0
    # Slots held by tries in flight: per pool, per (DAG, task), per (run, task).
    pool_used: Counter[str] = field(default_factory=Counter)
    task_active: Counter[tuple[str, str]] = field(default_factory=Counter)
    run_task_active: Counter[tuple[int, str]] = field(default_factory=Counter)
    # Tasks of running runs held back by depends_on_past, planned again when a run of their
    # DAG changes (scheduler/past.py), and runs whose dagrun_timeout is watched: a heap.
    past_held: dict[int, set[str]] = field(default_factory=dict)
    past_only: set[int] = field(default_factory=set)  # dirty only for such a second look
    deadlines: list[tuple[datetime, int]] = field(default_factory=list)
    max_map_length: int = DEFAULT_MAX_MAP_LENGTH  # Settings.max_map_length
    # Lines for tries' logs (scheduler/try_logs.py), written once the pass that noted them
    # has committed; a pass that fails drops them with the rest of its memory.
    try_notes: list[TryNote] = field(default_factory=list)
    # Every pool's slots by name, read again (one small query) only when `pools_stale`: a
    # POOLS_CHANGED hint, a look-everywhere hint, the safety scan, a rebuild.
    pool_sizes: dict[str, int] = field(default_factory=dict)
    # Pools whose deferred tasks hold slots too (include_deferred), read with pool_sizes.
    pools_counting_deferred: frozenset[str] = frozenset()
    pools_stale: bool = True
    # An asset event may have been recorded (by a try's success, a person or the API): read
    # the queue of asset events on the next pass (scheduler/assets.py). True at start.
    assets_dirty: bool = True
    # A worker wrote outcomes to the outbox (an OUTCOMES hint, or a look everywhere): the next
    # pass reads it, rather than waiting for the safety scan. True at start.
    outcomes_waiting: bool = True

    # ----------------------------------------------------------------- reading through

    def run(self, conn: Connection, run_pk: int) -> Run | None:
        run = self.runs.get(run_pk)
        if run is None:
            run = runs_store.get_run_by_pk(conn, run_pk)
            if run is not None and run.state is RunState.RUNNING:
                self.runs[run_pk] = run
        return run

    def plan(self, conn: Connection, version_id: int) -> DagPlan | None:
        return self.plans.get(conn, version_id)

    def task_states(self, conn: Connection, run_pk: int) -> dict[str, TaskState]:
        states = self.states.get(run_pk)
        if states is None:
            states, self.mapped[run_pk] = ti_store.run_states(conn, run_pk)
            self.states[run_pk] = states
        return states

    def mapped_states(self, conn: Connection, run_pk: int) -> dict[str, dict[int, TaskState]]:
        """Expanded mapped tasks' instance states of a run (read with task_states)."""
        self.task_states(conn, run_pk)
        return self.mapped.setdefault(run_pk, {})

    def current_version(self, conn: Connection, dag_id: str) -> CurrentVersion:
        current = self.current.get(dag_id)
        if current is None:
            record = dags_store.get_dag(conn, dag_id)
            version_id = record.version_id if record else None
            plan = self.plan(conn, version_id) if version_id is not None else None
            limit = plan.max_active_tasks if plan else DEFAULT_MAX_ACTIVE_TASKS
            current = self.current[dag_id] = CurrentVersion(version_id, limit)
        return current

    def pinned_source(self, conn: Connection, run: Run) -> str | None:
        """The file text of the run's version when the DAG file has moved on since the run
        started (None when the file still holds that version): the run keeps its code."""
        if self.current_version(conn, run.dag_id).version_id in (None, run.version_id):
            return None
        if run.version_id not in self.sources:
            self.sources[run.version_id] = dags_store.get_source(conn, run.version_id)
        return self.sources[run.version_id]

    # ----------------------------------------------------------------- hints

    def absorb(self, hints: Iterable[Hint]) -> None:
        """Turn wake-up hints into work for the next pass."""
        for hint in hints:
            kind = hint.kind
            if kind is HintKind.QUEUED_RUN and hint.key:
                self.check_queued.add(hint.key)
            elif kind is HintKind.DAG_CHANGED:
                # A new version may bring new limits and a new schedule; an unpaused DAG may
                # have asset events waiting.
                self.schedules.mark_stale()
                self.assets_dirty = True
                self.dispatch_blocked = False  # its limits may have changed
                if hint.key:
                    self.current.pop(hint.key, None)
                    self.check_queued.add(hint.key)
                else:
                    self.current.clear()
                    self.check_all_queued = True
            elif kind is HintKind.POOLS_CHANGED:
                self.pools_stale = True
                self.dispatch_blocked = False  # a pool may have grown
            elif kind is HintKind.ASSET_EVENT:
                self.assets_dirty = True
            elif kind is HintKind.OUTCOMES:
                self.outcomes_waiting = True
            elif kind is HintKind.RUN_CHANGED:
                # Someone changed this run by hand: forget what we cached and look again,
                # and stop tries of it whose task was marked or cleared while they ran.
                self.runs.pop(hint.run_pk, None)
                self.forget_states(hint.run_pk)
                self.dispatch_blocked = False
                self.check_all_queued = True
                self.recheck.add(hint.run_pk)
            else:
                self.check_all_queued = True
                self.pools_stale = True
                self.outcomes_waiting = True

    # ----------------------------------------------------------------- remembering

    def note(
        self,
        run_pk: int,
        task_ids: Iterable[str],
        state: TaskState,
        map_indexes: Sequence[int] = (),
    ) -> None:
        """Record states this scheduler has just written (only for runs it keeps states of);
        `map_indexes`, when given, names the instance of each task id."""
        known = self.states.get(run_pk)
        if known is None:
            return
        if not map_indexes or max(map_indexes) < 0:
            for task_id in task_ids:
                known[task_id] = state
            return
        expanded = self.mapped.setdefault(run_pk, {})
        for task_id, map_index in zip(task_ids, map_indexes, strict=True):
            if map_index < 0:
                known[task_id] = state
            else:
                expanded.setdefault(task_id, {})[map_index] = state

    def note_expanded(
        self, run_pk: int, task_id: str, length: int, state: TaskState = TaskState.SCHEDULED
    ) -> None:
        """A mapped task's waiting row became `length` instances in `state` (scheduled, or
        waiting for a task of a mapped group judged index by index)."""
        known = self.states.get(run_pk)
        if known is not None:
            known.pop(task_id, None)
            instances = dict.fromkeys(range(length), state)
            self.mapped.setdefault(run_pk, {})[task_id] = instances

    def mark_dirty(self, run_pk: int, changed: Iterable[str] | None) -> None:
        self.past_only.discard(run_pk)
        self._dirty(run_pk, changed)

    def _dirty(self, run_pk: int, changed: Iterable[str] | None) -> None:
        if changed is None or run_pk not in self.dirty:
            self.dirty[run_pk] = None if changed is None else set(changed)
            return
        existing = self.dirty[run_pk]
        if existing is not None:
            existing.update(changed)

    def forget_states(self, run_pk: int) -> None:
        """Drop the remembered task states of a run and plan it again from the database."""
        self.states.pop(run_pk, None)
        self.mapped.pop(run_pk, None)
        self.mark_dirty(run_pk, None)

    def forget_run(self, run_pk: int) -> None:
        self.runs.pop(run_pk, None)
        self.dirty.pop(run_pk, None)
        self.states.pop(run_pk, None)
        self.past_held.pop(run_pk, None)
        self.mapped.pop(run_pk, None)

    def add_ready(self, dag_id: str, run_pk: int, task_id: str, map_index: int = -1) -> None:
        self.ready.setdefault(dag_id, deque()).append((run_pk, task_id, map_index))

    def has_ready(self) -> bool:
        if any(self.ready.values()):
            return True
        return not self.dispatch_blocked and any(self.waiting.values())

    def add_retry(
        self, at: datetime, run_pk: int, dag_id: str, task_id: str, map_index: int = -1
    ) -> None:
        heapq.heappush(self.retries, (at, run_pk, dag_id, task_id, map_index))

    def pop_due_retries(self, now: datetime) -> list[tuple[int, str, str, int]]:
        """(run, dag_id, task, map index) of each retry now due."""
        due = []
        while self.retries and self.retries[0][0] <= now:
            _, run_pk, dag_id, task_id, map_index = heapq.heappop(self.retries)
            due.append((run_pk, dag_id, task_id, map_index))
        return due

    def add_wait(
        self,
        at: datetime,
        target: TaskState,
        run_pk: int,
        dag_id: str,
        task_id: str,
        map_index: int = -1,
    ) -> None:
        heapq.heappush(self.waits, (at, run_pk, dag_id, task_id, map_index, target))

    def pop_due_waits(self, now: datetime) -> list[tuple[int, str, str, int, TaskState]]:
        """(run, dag_id, task, map index, target state) of each wake-up now due."""
        due = []
        while self.waits and self.waits[0][0] <= now:
            _, run_pk, dag_id, task_id, map_index, target = heapq.heappop(self.waits)
            due.append((run_pk, dag_id, task_id, map_index, target))
        if due and self.pools_counting_deferred:
            self.dispatch_blocked = False  # a deferred task leaving frees its pool's slots
        return due

    def track(
        self,
        key: TaskKey,
        dag_id: str,
        infra_failures: int,
        *,
        pool: str = DEFAULT_POOL,
        pool_slots: int = 1,
    ) -> None:
        self.in_flight[key] = InFlight(dag_id, infra_failures, pool, pool_slots)
        self.active_per_dag[dag_id] += 1
        self.pool_used[pool] += pool_slots
        self.task_active[dag_id, key.task_id] += 1
        self.run_task_active[key.run_pk, key.task_id] += 1

    def untrack(self, key: TaskKey) -> InFlight | None:
        flight = self.in_flight.pop(key, None)
        if flight is not None:
            self.active_per_dag[flight.dag_id] -= 1
            if self.active_per_dag[flight.dag_id] <= 0:
                del self.active_per_dag[flight.dag_id]
            _decrement(self.pool_used, flight.pool, flight.pool_slots)
            _decrement(self.task_active, (flight.dag_id, key.task_id), 1)
            _decrement(self.run_task_active, (key.run_pk, key.task_id), 1)
            self.dispatch_blocked = False  # a slot is free: waiting tasks may fit now
        return flight

    def hold_for_past(self, run_pk: int, task_ids: Iterable[str]) -> None:
        held = set(task_ids)
        if held:
            self.past_held[run_pk] = held
        else:
            self.past_held.pop(run_pk, None)

    def recheck_past(self, dag_ids: Iterable[str] | None = None) -> None:
        """Plan again the tasks depends_on_past holds in runs of `dag_ids` (None: every
        DAG): a run of theirs changed, so the previous run they wait for may have."""
        wanted = None if dag_ids is None else set(dag_ids)
        for run_pk, held in list(self.past_held.items()):
            run = self.runs.get(run_pk)
            if run is None:
                del self.past_held[run_pk]
            elif wanted is None or run.dag_id in wanted:
                if run_pk not in self.dirty:
                    self.past_only.add(run_pk)
                self._dirty(run_pk, held)

    def watch_timeout(self, run: Run, plan: DagPlan) -> None:
        """Wake when a running run's dagrun_timeout passes (scheduler/timeouts.py)."""
        if plan.dagrun_timeout is not None and run.start_date is not None:
            deadline = run.start_date + timedelta(seconds=plan.dagrun_timeout)
            heapq.heappush(self.deadlines, (deadline, run.id))

    # ----------------------------------------------------------------- rebuilding

    def rebuild(self, conn: Connection, now: datetime) -> None:
        """Read back, after a start or a failed pass, what the database says is in progress."""
        for run in runs_store.running_runs(conn):
            self.runs[run.id] = run
            self.mark_dirty(run.id, None)
            plan = self.plan(conn, run.version_id)
            if plan is not None:
                self.watch_timeout(run, plan)
        for ti in ti_store.in_state(conn, [TaskState.SCHEDULED]):
            self.add_ready(ti.dag_id, ti.run_pk, ti.task_id, ti.map_index)
        for ti in ti_store.in_state(conn, [TaskState.UP_FOR_RETRY]):
            self.add_retry(ti.next_retry_at or now, ti.run_pk, ti.dag_id, ti.task_id, ti.map_index)
        # Waiting tasks keep the wake-up time and target their try stored: a restart neither
        # wakes them early nor gives their timeout a new budget.
        for ti in ti_store.in_state(conn, WAITING_TASK_STATES):
            if ti.wake_at is not None and ti.wake_target is not None:
                self.add_wait(
                    ti.wake_at, ti.wake_target, ti.run_pk, ti.dag_id, ti.task_id, ti.map_index
                )
        self.check_all_queued = True
        self.assets_dirty = True
        self.schedules.mark_stale()

    def reset(self) -> SchedulerState:
        """A fresh memory after a failed pass, keeping only what the database cannot tell:
        the tries handed to the executor, the events not yet applied, the runs whose tries
        must be checked, and the plans (a version never changes)."""
        fresh = SchedulerState(
            plans=self.plans,
            pending_events=self.pending_events,
            recheck=self.recheck,
            schedules=self.schedules,
            max_map_length=self.max_map_length,
        )
        for key, flight in self.in_flight.items():
            fresh.track(
                key,
                flight.dag_id,
                flight.infra_failures,
                pool=flight.pool,
                pool_slots=flight.pool_slots,
            )
        return fresh


def _decrement(counter: Counter[K], key: K, by: int) -> None:
    counter[key] -= by
    if counter[key] <= 0:
        del counter[key]
