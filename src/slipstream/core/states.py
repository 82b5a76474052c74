"""Run and task-instance states, and the one table of moves allowed between them.

Every state change in Slipstream is a compare-and-set checked against this table. A natural move
is one the system makes on its own (a task finishing, a retry coming due); a forced move is one
a person or a recovery makes (mark failed, clear, "the process died") and must record why.
"""

from __future__ import annotations

from enum import StrEnum


class RunState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"

    @property
    def is_finished(self) -> bool:
        return self in (RunState.SUCCESS, RunState.FAILED)


class TaskState(StrEnum):
    NONE = "none"
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UPSTREAM_FAILED = "upstream_failed"
    SKIPPED = "skipped"
    REMOVED = "removed"
    # Waiting without a process: a sensor between pokes (reschedule mode), or a try deferred
    # until a time; the task instance keeps its try number and holds no slot meanwhile.
    UP_FOR_RESCHEDULE = "up_for_reschedule"
    DEFERRED = "deferred"

    @property
    def is_finished(self) -> bool:
        return self in FINISHED_TASK_STATES

    @property
    def is_active(self) -> bool:
        """Holding (or about to hold) an executor slot."""
        return self in ACTIVE_TASK_STATES


FINISHED_TASK_STATES = frozenset(
    {
        TaskState.SUCCESS,
        TaskState.FAILED,
        TaskState.UPSTREAM_FAILED,
        TaskState.SKIPPED,
        TaskState.REMOVED,
    }
)

# A try holds its task in these states: only that try's own report may end it.
ACTIVE_TASK_STATES = frozenset({TaskState.QUEUED, TaskState.RUNNING})

# A try waits in these states with a wake-up time and no process (the scheduler wakes it).
WAITING_TASK_STATES = frozenset({TaskState.UP_FOR_RESCHEDULE, TaskState.DEFERRED})

# Failures, as downstream trigger rules see them.
FAILED_TASK_STATES = frozenset({TaskState.FAILED, TaskState.UPSTREAM_FAILED})

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING}),
    RunState.RUNNING: frozenset({RunState.SUCCESS, RunState.FAILED}),
    RunState.SUCCESS: frozenset(),
    RunState.FAILED: frozenset(),
}

# A person may mark a run queued (to re-run it), success or failed from any state.
RUN_FORCED_TARGETS = frozenset({RunState.QUEUED, RunState.SUCCESS, RunState.FAILED})

_T = TaskState
TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    # none -> success: an EmptyOperator is marked done by the scheduler, without a worker.
    # none -> failed: a mapped task that cannot expand (more than max_map_length instances).
    _T.NONE: frozenset(
        {_T.SCHEDULED, _T.SUCCESS, _T.FAILED, _T.SKIPPED, _T.UPSTREAM_FAILED, _T.REMOVED}
    ),
    _T.SCHEDULED: frozenset({_T.QUEUED, _T.SKIPPED, _T.UPSTREAM_FAILED, _T.REMOVED}),
    # queued -> success/failed/skipped: a very short try may report its end in the same batch
    # as its start; queued -> up_for_retry/failed also covers a try lost before it started.
    # queued/running -> up_for_reschedule/deferred: a try ends waiting for its wake-up time.
    _T.QUEUED: frozenset(
        {
            _T.RUNNING,
            _T.SUCCESS,
            _T.FAILED,
            _T.SKIPPED,
            _T.UP_FOR_RETRY,
            _T.SCHEDULED,
            _T.UP_FOR_RESCHEDULE,
            _T.DEFERRED,
        }
    ),
    _T.RUNNING: frozenset(
        {_T.SUCCESS, _T.FAILED, _T.SKIPPED, _T.UP_FOR_RETRY, _T.UP_FOR_RESCHEDULE, _T.DEFERRED}
    ),
    # Woken by the scheduler: poked again (scheduled, same try), or ended on its own when the
    # sensor's timeout passes while it waits (failed, or skipped with soft_fail).
    _T.UP_FOR_RESCHEDULE: frozenset({_T.SCHEDULED, _T.FAILED, _T.SKIPPED}),
    # deferred -> success: a time sensor's moment came; nothing is left for a process to do.
    # deferred -> up_for_retry: a non-sensor's deferral timed out (TaskDeferralTimeout), a
    # failure its retries decide.
    _T.DEFERRED: frozenset({_T.SCHEDULED, _T.SUCCESS, _T.FAILED, _T.SKIPPED, _T.UP_FOR_RETRY}),
    _T.UP_FOR_RETRY: frozenset({_T.SCHEDULED, _T.FAILED, _T.UPSTREAM_FAILED, _T.SKIPPED}),
    _T.SUCCESS: frozenset(),
    _T.FAILED: frozenset(),
    _T.UPSTREAM_FAILED: frozenset(),
    _T.SKIPPED: frozenset(),
    _T.REMOVED: frozenset({_T.NONE}),
}

# Forced moves a person or a recovery may make from any state, always with a reason:
# mark success/failed/skipped, clear (back to none), or fail a try whose process is gone.
TASK_FORCED_TARGETS = frozenset({_T.NONE, _T.SUCCESS, _T.FAILED, _T.SKIPPED, _T.UP_FOR_RETRY})


def can_move_run(current: RunState, target: RunState, *, forced: bool = False) -> bool:
    if target in RUN_TRANSITIONS[current]:
        return True
    return forced and target in RUN_FORCED_TARGETS


def can_move_task(current: TaskState, target: TaskState, *, forced: bool = False) -> bool:
    if target in TASK_TRANSITIONS[current]:
        return True
    return forced and target in TASK_FORCED_TARGETS


def task_sources(target: TaskState, *, forced: bool = False) -> frozenset[TaskState]:
    """Every state from which `target` may be reached: the widest WHERE clause of a
    compare-and-set (core/transitions.py narrows it to what a decision saw)."""
    return _TASK_SOURCES[target, forced]


def run_sources(target: RunState, *, forced: bool = False) -> frozenset[RunState]:
    return _RUN_SOURCES[target, forced]


# The table read backwards, once: every transition of the scheduler's hot path asks for it.
_TASK_SOURCES = {
    (target, forced): frozenset(s for s in TaskState if can_move_task(s, target, forced=forced))
    for target in TaskState
    for forced in (False, True)
}
_RUN_SOURCES = {
    (target, forced): frozenset(s for s in RunState if can_move_run(s, target, forced=forced))
    for target in RunState
    for forced in (False, True)
}
