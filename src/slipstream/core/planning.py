"""Pure scheduling decisions: which tasks of a run move next, retries, schedules and fairness.

Nothing here reads a clock, a database or user code: callers pass in the state they hold and
apply the decisions they get back, so every rule is testable with plain values.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TypeVar

from slipstream.authoring.schedules import DataInterval, Timetable
from slipstream.core.dag_plan import DagPlan, TaskSpec
from slipstream.core.records import ExitReason, RunType, Wait, WakeAction
from slipstream.core.retries import will_retry
from slipstream.core.states import FAILED_TASK_STATES, RunState, TaskState
from slipstream.core.transitions import RunTransition, TaskTransition, planned
from slipstream.core.trigger_rules import Verdict, evaluate

# Airflow caps exponential backoff at a day when no max_retry_delay is set.
MAX_BACKOFF_SECONDS = 24 * 3600.0


@dataclass(frozen=True, slots=True)
class RunDecision:
    schedule: tuple[str, ...] = ()  # none -> scheduled: ready for a worker
    succeed: tuple[str, ...] = ()  # none -> success without a worker (EmptyOperator)
    skip: tuple[str, ...] = ()  # none -> skipped by a trigger rule
    upstream_failed: tuple[str, ...] = ()  # none -> upstream_failed
    outcome: RunState | None = None  # set when every task has finished
    reason: str | None = None
    # Mapped tasks whose upstream allows them to run: the caller learns their length and
    # expands them (core/mapping.py), which this pure decision cannot do.
    expand: tuple[str, ...] = ()
    # Tasks of a mapped task group that depend on others of the group: expanded with the
    # group (to waiting instances, judged map index by map index once they exist).
    expand_waiting: tuple[str, ...] = ()
    # Waiting instances of expanded mapped tasks (cleared ones): (task, map indexes, target).
    instance_moves: tuple[tuple[str, tuple[int, ...], TaskState], ...] = ()

    @property
    def changes_anything(self) -> bool:
        return bool(
            self.schedule
            or self.succeed
            or self.skip
            or self.upstream_failed
            or self.outcome
            or self.expand
            or self.expand_waiting
            or self.instance_moves
        )

    def task_transitions(self, run_pk: int) -> list[TaskTransition]:
        """The decision's task moves, each from waiting (none) only."""
        moves = []
        if self.schedule:
            moves.append(planned(run_pk, self.schedule, TaskState.SCHEDULED))
        if self.succeed:
            moves.append(planned(run_pk, self.succeed, TaskState.SUCCESS, starts_now=True))
        if self.skip:
            moves.append(planned(run_pk, self.skip, TaskState.SKIPPED, reason="trigger rule"))
        if self.upstream_failed:
            reason = "an upstream task failed"
            moves.append(
                planned(run_pk, self.upstream_failed, TaskState.UPSTREAM_FAILED, reason=reason)
            )
        for task_id, indexes, target in self.instance_moves:
            moves.append(planned(run_pk, [task_id] * len(indexes), target, map_indexes=indexes))
        return moves

    def run_transition(self, run_pk: int) -> RunTransition | None:
        """The run's own move, when every task has finished: valid only once every task move
        of the decision has been applied (a stale plan's outcome may be wrong)."""
        if self.outcome is None:
            return None
        return RunTransition.natural(run_pk, self.outcome, reason=self.reason)


_VERDICT_TARGETS = {
    Verdict.RUN: TaskState.SCHEDULED,
    Verdict.SKIP: TaskState.SKIPPED,
    Verdict.UPSTREAM_FAILED: TaskState.UPSTREAM_FAILED,
}


def plan_run(
    plan: DagPlan,
    states: Mapping[str, TaskState],
    changed: Iterable[str] | None = None,
    mapped: Mapping[str, Mapping[int, TaskState]] | None = None,
    *,
    held: Collection[str] = (),
) -> RunDecision:
    """Decide what moves in one run.

    `changed` names the tasks whose state changed since the run was last planned; only their
    downstream tasks are examined (None examines every waiting task, as after a restart).
    Decisions that finish a task at once (skips, upstream failures, empty tasks) cascade here.
    `held` tasks keep waiting even when their upstream would let them run (depends_on_past):
    a mapped one neither expands nor has its waiting instances scheduled.
    `states` holds unmapped tasks (and mapped ones not expanded yet); `mapped` the instances
    of expanded mapped tasks by map index: a task downstream of one judges all of them.
    """
    current = dict(states)
    instances = {task_id: dict(found) for task_id, found in (mapped or {}).items()}
    upstream_of = _upstream_reader(current, instances)
    # Tasks waiting to be judged, each at most once at a time: a join below a thousand tasks
    # that finished together is judged once, not a thousand times.
    work: deque[str] = deque()
    pending: set[str] = set()

    def enqueue(task_ids: Iterable[str]) -> None:
        for task_id in task_ids:
            if task_id not in pending:
                pending.add(task_id)
                work.append(task_id)

    if changed is None:
        enqueue(t for t in plan.order if current.get(t) == TaskState.NONE)
        # Expanded mapped tasks with instances waiting (cleared ones) are judged too.
        enqueue(t for t, found in instances.items() if TaskState.NONE in found.values())
    else:
        for task_id in changed:
            spec = plan.tasks.get(task_id)
            if spec is not None:
                # The task itself too: one cleared back to none must be planned again.
                enqueue([task_id, *spec.downstream, *plan.setup_dependents.get(task_id, ())])
    schedule: list[str] = []
    succeed: list[str] = []
    skip: list[str] = []
    upstream_failed: list[str] = []
    expand: list[str] = []
    expand_waiting: list[str] = []
    expanding: set[str] = set()  # both of the above: not judged again in this pass
    instance_moves: list[tuple[str, tuple[int, ...], TaskState]] = []

    def expand_task(spec: TaskSpec) -> None:
        expand.append(spec.task_id)
        expanding.add(spec.task_id)
        if spec.map_group is None:
            return
        # The group's length is known: the tasks of the group that depend on others of it
        # expand too, before any instance of this one runs (a branch's skips reach them).
        for member in plan.map_groups[spec.map_group]:
            if member in expanding or member not in plan.paired_upstream:
                continue
            found = instances.get(member)
            if found is None and current.get(member) == TaskState.NONE:
                current[member] = TaskState.SCHEDULED  # active until the caller expands it
            elif found is None or not _all_cleared(found):
                continue
            expand_waiting.append(member)
            expanding.add(member)

    while work:
        task_id = work.popleft()
        pending.discard(task_id)
        spec = plan.tasks.get(task_id)
        if spec is None or task_id in expanding:
            continue
        paired = plan.paired_upstream.get(task_id)
        if task_id in instances:
            # Every instance was cleared: expand again, as the upstream may now hand on a
            # different number of items (Airflow revises the map indexes). A task paired with
            # others of its group expands again with the group's first tasks.
            if (
                spec.mapped is not None
                and not paired
                and _all_cleared(instances[task_id])
                and judge(plan, spec, current, upstream_of) is Verdict.RUN
            ):
                if task_id not in held:
                    expand_task(spec)
                    instances[task_id] = dict.fromkeys(instances[task_id], TaskState.SCHEDULED)
                continue
            if paired:
                moves = _judge_paired(plan, spec, current, instances, task_id in held)
            else:
                move = _judge_instances(
                    plan, spec, current, instances[task_id], upstream_of, task_id in held
                )
                moves = [move] if move is not None else []
            instance_moves.extend(moves)
            if any(target is not TaskState.SCHEDULED for _, _, target in moves):
                enqueue(spec.downstream)
            continue
        if current.get(task_id) != TaskState.NONE:
            continue
        if paired and not paired.isdisjoint(instances):
            # Its group has expanded (this task's expansion went missing): catch up.
            expand_waiting.append(task_id)
            expanding.add(task_id)
            current[task_id] = TaskState.SCHEDULED
            continue
        verdict = judge(plan, spec, current, upstream_of if instances else None)
        if verdict is Verdict.WAIT or (verdict is Verdict.RUN and task_id in held):
            continue
        if verdict is Verdict.RUN and spec.mapped is not None:
            current[task_id] = TaskState.SCHEDULED  # active until the caller expands it
            expand_task(spec)
            continue
        if verdict is Verdict.RUN and not spec.is_empty:
            schedule.append(task_id)
            current[task_id] = TaskState.SCHEDULED
            continue
        if verdict is Verdict.RUN:
            current[task_id] = TaskState.SUCCESS
            succeed.append(task_id)
        elif verdict is Verdict.SKIP:
            current[task_id] = TaskState.SKIPPED
            skip.append(task_id)
        else:
            current[task_id] = TaskState.UPSTREAM_FAILED
            upstream_failed.append(task_id)
        enqueue(spec.downstream)
        enqueue(plan.setup_dependents.get(task_id, ()))
    if expanding:
        outcome, reason = None, None  # what is being expanded is about to run
    elif instances:
        outcome, reason = _outcome_mapped(plan, current, instances, upstream_of)
    else:
        outcome, reason = _outcome(plan, current)
    return RunDecision(
        schedule=tuple(schedule),
        succeed=tuple(succeed),
        skip=tuple(skip),
        upstream_failed=tuple(upstream_failed),
        outcome=outcome,
        reason=reason,
        expand=tuple(expand),
        expand_waiting=tuple(expand_waiting),
        instance_moves=tuple(instance_moves),
    )


UpstreamReader = Callable[[TaskSpec], Iterable[TaskState]]


def _upstream_reader(
    current: Mapping[str, TaskState], instances: Mapping[str, Mapping[int, TaskState]]
) -> UpstreamReader:
    """How a task's upstream states are read: an expanded mapped upstream counts once per
    instance (Airflow judges trigger rules over every expanded task instance)."""
    if not instances:
        return lambda spec: (current[u] for u in spec.upstream)

    def read(spec: TaskSpec) -> Iterable[TaskState]:
        for upstream in spec.upstream:
            found = instances.get(upstream)
            if found is None:
                yield current[upstream]
            else:
                yield from found.values()

    return read


def _all_cleared(found: Mapping[int, TaskState]) -> bool:
    return bool(found) and all(state is TaskState.NONE for state in found.values())


def _judge_instances(
    plan: DagPlan,
    spec: TaskSpec,
    current: Mapping[str, TaskState],
    found: dict[int, TaskState],
    upstream_of: UpstreamReader,
    held: bool = False,
) -> tuple[str, tuple[int, ...], TaskState] | None:
    waiting = tuple(i for i, state in found.items() if state is TaskState.NONE)
    if not waiting:
        return None
    verdict = judge(plan, spec, current, upstream_of)
    if verdict is Verdict.WAIT or (verdict is Verdict.RUN and held):
        return None
    target = _VERDICT_TARGETS[verdict]
    for index in waiting:
        found[index] = target
    return spec.task_id, waiting, target


def _instance_reader(
    plan: DagPlan,
    current: Mapping[str, TaskState],
    instances: Mapping[str, Mapping[int, TaskState]],
    map_index: int,
) -> UpstreamReader:
    """How one map index of a task in a mapped task group reads its upstream: an upstream of
    the same group by its instance of that index (its one state while not expanded; removed
    when it has no such index), any other upstream as a whole."""

    def read(spec: TaskSpec) -> Iterable[TaskState]:
        paired = plan.paired_upstream.get(spec.task_id, frozenset())
        for upstream in spec.upstream:
            found = instances.get(upstream)
            if found is None:
                yield current[upstream]
            elif upstream in paired:
                yield found.get(map_index, TaskState.REMOVED)
            else:
                yield from found.values()

    return read


def _judge_paired(
    plan: DagPlan,
    spec: TaskSpec,
    current: Mapping[str, TaskState],
    instances: dict[str, dict[int, TaskState]],
    held: bool = False,
) -> list[tuple[str, tuple[int, ...], TaskState]]:
    """Each waiting instance of a task in a mapped task group, judged on its own map index;
    none runs while the task is `held` (depends_on_past)."""
    found = instances[spec.task_id]
    moved: dict[TaskState, list[int]] = {}
    for index, state in found.items():
        if state is not TaskState.NONE:
            continue
        verdict = judge(plan, spec, current, _instance_reader(plan, current, instances, index))
        if verdict is Verdict.WAIT or (verdict is Verdict.RUN and held):
            continue
        moved.setdefault(_VERDICT_TARGETS[verdict], []).append(index)
    moves = []
    for target, indexes in moved.items():
        for index in indexes:
            found[index] = target
        moves.append((spec.task_id, tuple(indexes), target))
    return moves


def _waits(
    plan: DagPlan,
    task_id: str,
    current: Mapping[str, TaskState],
    instances: Mapping[str, Mapping[int, TaskState]],
    upstream_of: UpstreamReader,
) -> bool:
    """Whether an unfinished task can only wait: for a task paired with others of its mapped
    group, every waiting instance on its own map index."""
    spec = plan.tasks[task_id]
    found = instances.get(task_id)
    if found is None or task_id not in plan.paired_upstream:
        return judge(plan, spec, current, upstream_of) is Verdict.WAIT
    return all(
        judge(plan, spec, current, _instance_reader(plan, current, instances, index))
        is Verdict.WAIT
        for index, state in found.items()
        if state is TaskState.NONE
    )


def _outcome_mapped(
    plan: DagPlan,
    current: Mapping[str, TaskState],
    instances: Mapping[str, Mapping[int, TaskState]],
    upstream_of: UpstreamReader,
) -> tuple[RunState | None, str | None]:
    """_outcome, for a run with expanded mapped tasks: each instance counts."""

    def states_of(task_id: str) -> Iterable[TaskState]:
        found = instances.get(task_id)
        return found.values() if found is not None else (current.get(task_id, TaskState.NONE),)

    if any(s in _ACTIVE for t in plan.order for s in states_of(t)):
        return None, None
    unfinished = [t for t in plan.order if not all(s.is_finished for s in states_of(t))]
    if not unfinished:
        failed = [
            t
            for t in plan.outcome_leaves or plan.leaves
            if any(s in FAILED_TASK_STATES for s in states_of(t))
        ]
        if failed:
            return RunState.FAILED, f"tasks failed: {', '.join(failed)}"
        return RunState.SUCCESS, None
    if all(s is TaskState.NONE for t in unfinished for s in states_of(t) if not s.is_finished):
        blocked = [t for t in unfinished if _waits(plan, t, current, instances, upstream_of)]
        if len(blocked) == len(unfinished):
            return RunState.FAILED, f"deadlock: tasks can never run: {', '.join(blocked)}"
    return None, None


def judge(
    plan: DagPlan,
    spec: TaskSpec,
    states: Mapping[str, TaskState],
    upstream_of: UpstreamReader | None = None,
) -> Verdict:
    """The verdict for one waiting task: its setups further up first (Airflow 2.7+: a task
    runs only once every relevant setup succeeded), then its trigger rule (over every
    instance of an expanded mapped upstream, read through `upstream_of`)."""
    waited_for = plan.indirect_setups.get(spec.task_id)
    if waited_for:
        setup_states = [states.get(s, TaskState.NONE) for s in waited_for]
        if any(state in FAILED_TASK_STATES for state in setup_states):
            return Verdict.UPSTREAM_FAILED
        if any(state in _SKIPPED for state in setup_states):
            return Verdict.SKIP
        if any(state != TaskState.SUCCESS for state in setup_states):
            return Verdict.WAIT
    upstream = upstream_of(spec) if upstream_of else (states[u] for u in spec.upstream)
    if spec.trigger_rule != "all_done_setup_success":
        return evaluate(spec.trigger_rule, upstream)
    setups = [states.get(u, TaskState.NONE) for u in spec.upstream if plan.tasks[u].is_setup]
    return evaluate(spec.trigger_rule, upstream, setups)


_SKIPPED = frozenset({TaskState.SKIPPED, TaskState.REMOVED})


def _outcome(plan: DagPlan, states: Mapping[str, TaskState]) -> tuple[RunState | None, str | None]:
    # A task still active means neither an end nor a deadlock: the common case, found early.
    if any(states.get(t, TaskState.NONE) in _ACTIVE for t in plan.order):
        return None, None
    unfinished = [t for t in plan.order if not states.get(t, TaskState.NONE).is_finished]
    if not unfinished:
        # Teardowns do not decide the outcome unless they say on_failure_fail_dagrun.
        failed = [
            t for t in plan.outcome_leaves or plan.leaves if states.get(t) in FAILED_TASK_STATES
        ]
        if failed:
            return RunState.FAILED, f"tasks failed: {', '.join(failed)}"
        return RunState.SUCCESS, None
    if all(states.get(t, TaskState.NONE) == TaskState.NONE for t in unfinished):
        # Nothing is running or waiting for a slot, yet some tasks wait: none can ever run.
        blocked = [t for t in unfinished if judge(plan, plan.tasks[t], states) is Verdict.WAIT]
        if len(blocked) == len(unfinished):
            return RunState.FAILED, f"deadlock: tasks can never run: {', '.join(blocked)}"
    return None, None


_ACTIVE = frozenset(
    {
        TaskState.SCHEDULED,
        TaskState.QUEUED,
        TaskState.RUNNING,
        TaskState.UP_FOR_RETRY,
        TaskState.UP_FOR_RESCHEDULE,
        TaskState.DEFERRED,
    }
)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    state: TaskState  # up_for_retry or failed
    next_retry_at: datetime | None
    infra_failures: int


def after_failure(
    spec: TaskSpec,
    *,
    try_number: int,
    infra_failures: int,
    reason: ExitReason,
    now: datetime,
    infra_budget: int,
    max_tries: int | None = None,
) -> RetryDecision:
    """What a failed try leads to. Infrastructure losses draw on their own, separate budget so
    that an OOM kill or a lost worker doesn't use up the task's own retries. `max_tries` is the
    task instance's (the task's retries, raised when a person clears it, as in Airflow)."""
    retried = will_retry(
        try_number=try_number,
        max_tries=spec.retries if max_tries is None else max_tries,
        infra_failures=infra_failures,
        reason=reason,
        infra_budget=infra_budget,
    )
    if not retried:
        return RetryDecision(TaskState.FAILED, None, infra_failures)
    if reason.is_infrastructure and infra_failures < infra_budget:
        return RetryDecision(TaskState.UP_FOR_RETRY, now, infra_failures + 1)
    own_failures = try_number - infra_failures
    return RetryDecision(
        TaskState.UP_FOR_RETRY, now + retry_delay(spec, own_failures), infra_failures
    )


def wait_after_loss(
    wait: Wait, *, reason: ExitReason, error: str, infra_budget: int, now: datetime
) -> Wait | None:
    """How a woken try (a poke, or a resume at next_method) lost to the infrastructure waits
    again: in the same try, due at once, its first poke's start and pokes kept. The lost run
    reported nothing, so nothing of it counts; running execute() again in a new try would
    restart the sensor and have a TriggerDagRunOperator trigger a second run. Losses in a row
    are bounded by the infrastructure budget; None when it is not such a loss or that budget is
    spent (the task's retry policy decides then, as for any lost try)."""
    if not reason.is_infrastructure or wait.lost >= infra_budget:
        return None
    what = "resume" if wait.action is WakeAction.RESUME else "poke"
    reason_text = f"this {what} was lost ({error}); the same try {what}s again at once"
    return replace(wait, wake_at=now, lost=wait.lost + 1, reason=reason_text)


def retry_delay(spec: TaskSpec, failures: int) -> timedelta:
    """Delay before the next try after `failures` failed tries of the task's own making."""
    delay = spec.retry_delay
    if spec.retry_exponential_backoff:
        # A bounded exponent: 2**1024 no longer converts to a float, and the cap applies anyway.
        delay = spec.retry_delay * (2 ** min(max(failures - 1, 0), 1000))
        delay = min(delay, spec.max_retry_delay or MAX_BACKOFF_SECONDS)
    elif spec.max_retry_delay is not None:
        delay = min(delay, spec.max_retry_delay)
    return timedelta(seconds=max(delay, 0.0))


def next_interval_to_schedule(
    timetable: Timetable,
    *,
    last_end: datetime | None,
    start_date: datetime | None,
    end_date: datetime | None,
    catchup: bool,
    now: datetime,
) -> DataInterval | None:
    """The next data interval a scheduled run should cover, due once `interval.due` has passed
    (its end, or a trigger timetable's fire time).

    Without catchup, intervals missed while nobody was scheduling are skipped: the next run
    covers the latest complete interval, as in Airflow.
    """
    candidate = timetable.next_interval(last_end, start_date)
    if candidate is None and last_end is None and start_date is None:
        candidate = timetable.first_interval_without_start(now)
    if candidate is None:
        return None
    if not catchup:
        latest = timetable.latest_complete_interval(now, start_date=start_date)
        if latest is not None and latest.start > candidate.start:
            candidate = latest
    if end_date is not None and candidate.start > end_date:
        return None
    return candidate


def run_id_for(run_type: RunType, logical_date: datetime) -> str:
    """Airflow's run id shape: `<type>__<iso logical date>`."""
    return f"{run_type.value}__{logical_date.isoformat()}"


K = TypeVar("K")
V = TypeVar("V")


def pick_fair(
    ready: Mapping[K, Sequence[V]], free: int, limits: Mapping[K, int] | None = None
) -> list[tuple[K, V]]:
    """Take up to `free` items round-robin across keys (DAGs), at most limits[key] per key.

    One DAG with thousands of ready tasks gets one slot per round like every other DAG, so it
    cannot starve the rest.
    """
    picked: list[tuple[K, V]] = []
    cursors = {key: 0 for key, items in ready.items() if items}
    budget = {key: (limits or {}).get(key, len(items)) for key, items in ready.items()}
    while free > 0 and cursors:
        for key in list(cursors):
            if free == 0:
                break
            index = cursors[key]
            items = ready[key]
            if index >= len(items) or budget[key] <= 0:
                del cursors[key]
                continue
            picked.append((key, items[index]))
            cursors[key] = index + 1
            budget[key] -= 1
            free -= 1
    return picked
