"""Typed state changes: what a decision wants moved, to which state, from which states.

Each transition takes the states it may come from out of the table in core/states.py, narrowed
to what its decision saw (a planner that judged a task waiting moves it only while it is still
waiting). A move the table forbids cannot be built. store/transitions.py applies them as
compare-and-sets and reports which moved.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, TypeVar

from slipstream.core.records import ExitReason, Run, TaskInstance, TaskKey, TaskStarted, Wait
from slipstream.core.states import (
    ACTIVE_TASK_STATES,
    WAITING_TASK_STATES,
    RunState,
    TaskState,
    run_sources,
    task_sources,
)
from slipstream.errors import InvalidStateTransition

S = TypeVar("S", TaskState, RunState)


def _narrowed(
    legal: frozenset[S], seen: S | Collection[S] | None, what: Callable[[], str], target: S
) -> frozenset[S]:
    """The table's sources for a move, narrowed to the states its decision saw; refuses a
    seen state from which the table does not allow the move (`what` names the move then)."""
    if seen is None:
        return legal
    wanted = frozenset((seen,)) if isinstance(seen, TaskState | RunState) else frozenset(seen)
    illegal = wanted - legal
    if illegal or not wanted:
        current = ",".join(sorted(s.value for s in illegal)) or "nothing"
        raise InvalidStateTransition(what(), current, target.value)
    return wanted


@dataclass(frozen=True, slots=True)
class TaskTransition:
    """Tasks of one run to `target`, each only while in one of `sources` (and, with
    `try_number`, only while that is still its latest try). Build with natural() or forced()."""

    run_pk: int
    task_ids: tuple[str, ...]
    target: TaskState
    sources: frozenset[TaskState]
    is_forced: bool = False
    reason: str | None = None
    try_number: int | None = None
    max_tries: int | None = None  # a cleared task gets its retries again (Airflow's rule)
    starts_now: bool = False  # done without a try (an empty task): it starts as it ends
    # The map index of each of task_ids (aligned with it): those instances only. None: every
    # instance of the tasks (an unmapped task has one, at -1).
    map_indexes: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.map_indexes is not None and len(self.map_indexes) != len(self.task_ids):
            raise ValueError("map_indexes must name one index per task id")
        legal = task_sources(self.target, forced=self.is_forced)
        if not self.sources or not self.sources <= legal:
            raise InvalidStateTransition(
                f"tasks {', '.join(self.task_ids)} of run {self.run_pk}",
                ",".join(sorted(s.value for s in self.sources - legal)) or "nothing",
                self.target.value,
            )
        if self.is_forced and not self.reason:
            # The table's rule: a move the system would not make on its own says why.
            raise ValueError("a forced move must record its reason")

    @classmethod
    def natural(
        cls,
        run_pk: int,
        task_ids: Iterable[str],
        target: TaskState,
        *,
        seen: TaskState | Collection[TaskState] | None = None,
        reason: str | None = None,
        starts_now: bool = False,
        map_indexes: Iterable[int] | None = None,
    ) -> TaskTransition:
        """A move the system makes on its own, from the states `seen` (all the table allows
        when None)."""
        ids = tuple(task_ids)
        sources = _narrowed(task_sources(target), seen, lambda: f"tasks {', '.join(ids)}", target)
        indexes = tuple(map_indexes) if map_indexes is not None else None
        return cls(
            run_pk, ids, target, sources, reason=reason, starts_now=starts_now, map_indexes=indexes
        )

    @classmethod
    def forced(
        cls, current: TaskInstance, target: TaskState, *, reason: str, max_tries: int | None = None
    ) -> TaskTransition:
        """A person's (or a recovery's) move of one task instance, on the state and try it was
        read in: it changes nothing if the scheduler moved the task meanwhile."""
        sources = _narrowed(
            task_sources(target, forced=True),
            current.state,
            lambda: f"task {current.task_id!r} of run {current.run_id!r}",
            target,
        )
        return cls(
            current.run_pk,
            (current.task_id,),
            target,
            sources,
            is_forced=True,
            reason=reason,
            try_number=current.try_number,
            max_tries=max_tries,
            map_indexes=(current.map_index,),
        )


def planned(
    run_pk: int,
    task_ids: Iterable[str],
    target: TaskState,
    *,
    reason: str | None = None,
    starts_now: bool = False,
    map_indexes: Iterable[int] | None = None,
) -> TaskTransition:
    """Waiting tasks the planner judged (scheduled, done, skipped or upstream-failed): they
    move only if still waiting, so a plan made from stale memory changes nothing."""
    return TaskTransition.natural(
        run_pk,
        task_ids,
        target,
        seen=TaskState.NONE,
        reason=reason,
        starts_now=starts_now,
        map_indexes=map_indexes,
    )


def retry_due(
    run_pk: int, task_ids: Iterable[str], map_indexes: Iterable[int] | None = None
) -> TaskTransition:
    """Tasks whose retry delay is over go back to the ready queue, if still waiting for it."""
    return TaskTransition.natural(
        run_pk, task_ids, TaskState.SCHEDULED, seen=TaskState.UP_FOR_RETRY, map_indexes=map_indexes
    )


def branch_skip(
    run_pk: int, task_ids: Iterable[str], *, by: str, map_index: int | None = None
) -> TaskTransition:
    """Tasks a branch chose not to follow, if no worker has them yet: every instance, or with
    `map_index` that one (a branch in a mapped task group decides for its own index)."""
    ids = tuple(task_ids)
    return TaskTransition.natural(
        run_pk,
        ids,
        TaskState.SKIPPED,
        seen=(TaskState.NONE, TaskState.SCHEDULED),
        reason=f"skipped by {by}",
        map_indexes=None if map_index is None else (map_index,) * len(ids),
    )


@dataclass(frozen=True, slots=True)
class QueueTries:
    """Scheduled tasks of one run to queued, each starting a new try owned by a scheduler."""

    run_pk: int
    task_ids: tuple[str, ...]
    owner_job_id: int | None
    map_indexes: tuple[int, ...] | None = None  # aligned with task_ids; None: all at -1

    target: ClassVar[TaskState] = TaskState.QUEUED
    sources: ClassVar[frozenset[TaskState]] = task_sources(TaskState.QUEUED)


@dataclass(frozen=True, slots=True)
class StartTry:
    """A try's process started: its task goes from queued to running if the try is current."""

    key: TaskKey
    pid: int
    hostname: str
    at: datetime

    target: ClassVar[TaskState] = TaskState.RUNNING
    sources: ClassVar[frozenset[TaskState]] = task_sources(TaskState.RUNNING)


@dataclass(frozen=True, slots=True)
class EndTry:
    """A try ended: its task moves to `target` only while that very try holds it (queued or
    running), so a late or duplicate report, or one for a task a person cleared, changes
    nothing. `try_state` is what the try itself ended as (failed, for a failure retried)."""

    key: TaskKey
    target: TaskState
    try_state: TaskState
    exit_reason: ExitReason
    at: datetime
    error: str | None = None
    exit_code: int | None = None
    next_retry_at: datetime | None = None
    infra_failures: int | None = None
    started: TaskStarted | None = None  # its start, when reported in the same batch
    wait: Wait | None = None  # up_for_reschedule or deferred: how the scheduler wakes it

    def __post_init__(self) -> None:
        # A try ends finished, waiting to retry, or waiting to be woken; never back in a queue.
        waits = self.target in WAITING_TASK_STATES
        ends = self.target.is_finished or self.target is TaskState.UP_FOR_RETRY or waits
        if waits != (self.wait is not None):
            raise ValueError("a try ends waiting (up_for_reschedule, deferred) with its wait")
        if not ends or not self.sources:
            raise InvalidStateTransition(
                f"try {self.key.try_number} of task {self.key.task_id!r}",
                "queued,running",
                self.target.value,
            )

    @property
    def sources(self) -> frozenset[TaskState]:
        return _END_SOURCES[self.target]

    @staticmethod
    def sources_for(target: TaskState) -> frozenset[TaskState]:
        return _END_SOURCES[target]


# Where a try's end may come from: what the table allows, while a try holds the task.
_END_SOURCES = {target: task_sources(target) & ACTIVE_TASK_STATES for target in TaskState}


@dataclass(frozen=True, slots=True)
class RunTransition:
    """A run to `target` while it is still in one of `sources`. Build with natural() or
    forced()."""

    run_pk: int
    target: RunState
    sources: frozenset[RunState]
    is_forced: bool = False
    reason: str | None = None

    def __post_init__(self) -> None:
        legal = run_sources(self.target, forced=self.is_forced)
        if not self.sources or not self.sources <= legal:
            raise InvalidStateTransition(
                f"run {self.run_pk}",
                ",".join(sorted(s.value for s in self.sources - legal)) or "nothing",
                self.target.value,
            )
        if self.is_forced and not self.reason:
            raise ValueError("a forced move must record its reason")

    @classmethod
    def natural(cls, run_pk: int, target: RunState, *, reason: str | None = None) -> RunTransition:
        return cls(run_pk, target, run_sources(target), reason=reason)

    @classmethod
    def forced(cls, current: Run, target: RunState, *, reason: str) -> RunTransition:
        """A person's move of a run, on the state it was read in."""
        sources = _narrowed(
            run_sources(target, forced=True),
            current.state,
            lambda: f"run {current.run_id!r}",
            target,
        )
        return cls(current.id, target, sources, is_forced=True, reason=reason)


@dataclass(frozen=True, slots=True)
class ExpandTask:
    """A mapped task's waiting row (map index -1, state none) becomes `length` instances,
    0..length-1, each scheduled (or, `waiting`, each still waiting: a task of a mapped task
    group judged map index by map index): applied only while that row is still waiting, once.
    A task whose instances were all cleared (all waiting) expands again: instances beyond
    `length` go, missing ones are added."""

    run_pk: int
    task_id: str
    length: int
    waiting: bool = False

    sources: ClassVar[frozenset[TaskState]] = frozenset({TaskState.NONE})

    def __post_init__(self) -> None:
        if self.length < 1:
            raise ValueError("a mapped task expands to one instance or more (zero: skip it)")

    @property
    def target(self) -> TaskState:
        return TaskState.NONE if self.waiting else TaskState.SCHEDULED


@dataclass(frozen=True, slots=True)
class Wake:
    """Waiting tasks of one run (up_for_reschedule or deferred) whose wake-up time has come, to
    the state their try chose for then (core.records.Wait.due): scheduled again for the same
    try, success, or the timeout's outcome. Moved only while still waiting with a wake-up time
    not after `now`, so a stale timer (the task was cleared and waits anew) changes nothing."""

    run_pk: int
    task_ids: tuple[str, ...]
    map_indexes: tuple[int, ...]  # aligned with task_ids
    target: TaskState
    reason: str | None = None
    # up_for_retry: when the next try is due (core.planning.retry_delay).
    next_retry_at: datetime | None = None
    # Why the waiting try ended, for its try row: by default a timeout's failure is a sensor's
    # (fail_now: not retried); a deferral's timeout is a task error its retries decide.
    exit_reason: ExitReason | None = None

    def __post_init__(self) -> None:
        if len(self.map_indexes) != len(self.task_ids):
            raise ValueError("map_indexes must name one index per task id")
        if not self.sources:
            raise InvalidStateTransition(
                f"tasks {', '.join(self.task_ids)} of run {self.run_pk}",
                ",".join(sorted(s.value for s in WAITING_TASK_STATES)),
                self.target.value,
            )

    @property
    def sources(self) -> frozenset[TaskState]:
        """The waiting states from which the table allows the move (success: deferred only)."""
        return task_sources(self.target) & WAITING_TASK_STATES


Transition = TaskTransition | QueueTries | StartTry | EndTry | RunTransition | ExpandTask | Wake


@dataclass(frozen=True, slots=True)
class Moved:
    """What one transition changed. Falsy when its compare-and-set matched nothing."""

    task_ids: tuple[str, ...] = ()  # the tasks that moved
    tries: tuple[TaskInstance, ...] = ()  # QueueTries: the tasks as queued, with their new try
    run: Run | None = None  # RunTransition: the run as moved
    map_indexes: tuple[int, ...] = ()  # the map index of each of task_ids, when known
    try_numbers: tuple[int, ...] = ()  # Wake: the try of each of task_ids

    def __bool__(self) -> bool:
        return bool(self.task_ids) or self.run is not None


NOTHING_MOVED = Moved()
