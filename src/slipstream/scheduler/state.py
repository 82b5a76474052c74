"""What the scheduler holds in memory between passes: all of it rebuildable from the database.

The database is the truth; this is a cache of what is cheap to remember and costly to re-read
on every pass (ready queues, tries in flight, retry timers, plans by version).
"""

from __future__ import annotations

import heapq
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from slipstream.core.dag_plan import DagPlan
from slipstream.core.records import Run, TaskKey
from slipstream.core.states import TaskState


@dataclass(slots=True)
class InFlight:
    dag_id: str
    infra_failures: int


@dataclass(slots=True)
class SchedulerState:
    plans: dict[int, DagPlan] = field(default_factory=dict)  # by version id
    runs: dict[int, Run] = field(default_factory=dict)  # running runs by pk
    in_flight: dict[TaskKey, InFlight] = field(default_factory=dict)
    active_per_dag: Counter[str] = field(default_factory=Counter)
    # Runs to plan on the next pass: None means "examine every waiting task".
    dirty: dict[int, set[str] | None] = field(default_factory=dict)
    ready: dict[str, deque[tuple[int, str]]] = field(default_factory=dict)  # dag_id -> (run, task)
    retries: list[tuple[datetime, int, str, str]] = field(default_factory=list)  # heap
    check_queued: set[str] = field(default_factory=set)
    check_all_queued: bool = True
    # Task states of running runs as this scheduler last wrote or read them, so that planning
    # a pass costs what changed, not a re-read of every task of a large run.
    states: dict[int, dict[str, TaskState]] = field(default_factory=dict)

    def note(self, run_pk: int, task_ids: Iterable[str], state: TaskState) -> None:
        """Record states this scheduler has just written (only for runs it keeps states of)."""
        known = self.states.get(run_pk)
        if known is not None:
            for task_id in task_ids:
                known[task_id] = state

    def mark_dirty(self, run_pk: int, changed: set[str] | None) -> None:
        if changed is None or run_pk not in self.dirty:
            self.dirty[run_pk] = None if changed is None else set(changed)
            return
        existing = self.dirty[run_pk]
        if existing is not None:
            existing.update(changed)

    def add_ready(self, dag_id: str, run_pk: int, task_id: str) -> None:
        self.ready.setdefault(dag_id, deque()).append((run_pk, task_id))

    def add_retry(self, at: datetime, run_pk: int, dag_id: str, task_id: str) -> None:
        heapq.heappush(self.retries, (at, run_pk, dag_id, task_id))

    def pop_due_retries(self, now: datetime) -> list[tuple[int, str, str]]:
        due = []
        while self.retries and self.retries[0][0] <= now:
            _, run_pk, dag_id, task_id = heapq.heappop(self.retries)
            due.append((run_pk, dag_id, task_id))
        return due

    def track(self, key: TaskKey, dag_id: str, infra_failures: int) -> None:
        self.in_flight[key] = InFlight(dag_id, infra_failures)
        self.active_per_dag[dag_id] += 1

    def untrack(self, key: TaskKey) -> InFlight | None:
        flight = self.in_flight.pop(key, None)
        if flight is not None:
            self.active_per_dag[flight.dag_id] -= 1
            if self.active_per_dag[flight.dag_id] <= 0:
                del self.active_per_dag[flight.dag_id]
        return flight

    def has_ready(self) -> bool:
        return any(self.ready.values())

    def forget_run(self, run_pk: int) -> None:
        self.runs.pop(run_pk, None)
        self.dirty.pop(run_pk, None)
        self.states.pop(run_pk, None)
