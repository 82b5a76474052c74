"""depends_on_past and wait_for_downstream, decided from what the previous run of the DAG (by
logical date) holds: a task instance runs only once the same task there succeeded or was
skipped (and, with wait_for_downstream, its direct downstream tasks too), as Airflow's
PrevDagrunDep decides. A mapped task counts every instance it has there, whatever its map
index, as Airflow 2.6+ and 3 do: every instance of it here waits until all of them are done.
Pure: callers read the previous run's states and pass them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from slipstream.core.dag_plan import TaskSpec
from slipstream.core.states import TaskState

_DONE = frozenset({TaskState.SUCCESS, TaskState.SKIPPED})


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """The run before this one, as depends_on_past sees it."""

    logical_date: datetime | None
    states: Mapping[str, TaskState]  # of the tasks asked about; a task it lacks is absent
    # Expanded mapped tasks among them: every instance's state, by map index.
    instances: Mapping[str, Mapping[int, TaskState]] = field(default_factory=dict)

    def states_of(self, task_id: str) -> tuple[TaskState, ...]:
        """Every instance the task has in this run: none, one, or one per map index."""
        found = self.instances.get(task_id)
        if found:
            return tuple(found.values())
        state = self.states.get(task_id)
        return () if state is None else (state,)


@dataclass(frozen=True, slots=True)
class PastVerdict:
    may_run: bool
    reason: str


def judge_past(
    spec: TaskSpec,
    previous: PreviousRun | None,
    *,
    catchup: bool,
    ran_before: bool = False,
) -> PastVerdict:
    """May this instance of `spec` run, as far as earlier runs go? `ran_before` says whether
    the task has an instance in any earlier run (asked only when the previous run lacks it)."""
    if not spec.depends_on_past:
        return PastVerdict(True, "the task does not depend on the past")
    if previous is None:
        return PastVerdict(True, "the first run of the DAG")
    if (
        catchup
        and spec.start_date is not None
        and previous.logical_date is not None
        and previous.logical_date < datetime.fromisoformat(spec.start_date)
    ):
        return PastVerdict(True, "the task did not exist yet in the previous run")
    found = previous.states_of(spec.task_id)
    if not found:
        if spec.ignore_first_depends_on_past and not ran_before:
            return PastVerdict(True, "the first instance of the task")
        return PastVerdict(False, "depends_on_past: the previous run has no instance of the task")
    undone = [state for state in found if state not in _DONE]
    if undone:
        if len(found) == 1:
            reason = f"depends_on_past: the task is {undone[0].value} in the previous run"
        else:
            reason = (
                f"depends_on_past: {len(undone)} of the task's {len(found)} instances in the "
                f"previous run have not succeeded or been skipped "
                f"({', '.join(sorted({s.value for s in undone}))})"
            )
        return PastVerdict(False, reason)
    if spec.wait_for_downstream:
        waiting = [d for d in spec.downstream if not _all_done(previous.states_of(d))]
        if waiting:
            return PastVerdict(
                False,
                "wait_for_downstream: in the previous run, not yet succeeded or skipped: "
                + ", ".join(waiting),
            )
    return PastVerdict(True, "the previous run's instance succeeded or was skipped")


def _all_done(states: tuple[TaskState, ...]) -> bool:
    # A downstream task the previous run lacks has not succeeded there either (Airflow counts).
    return bool(states) and all(state in _DONE for state in states)
