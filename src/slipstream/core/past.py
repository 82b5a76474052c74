"""depends_on_past and wait_for_downstream, decided from what the previous run of the DAG (by
logical date) holds: a task instance runs only once the same task there succeeded or was
skipped (and, with wait_for_downstream, its direct downstream tasks too), as Airflow's
PrevDagrunDep decides. Pure: callers read the previous run's states and pass them in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from slipstream.core.dag_plan import TaskSpec
from slipstream.core.states import TaskState

_DONE = frozenset({TaskState.SUCCESS, TaskState.SKIPPED})


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """The run before this one, as depends_on_past sees it."""

    logical_date: datetime | None
    states: Mapping[str, TaskState]  # of the tasks asked about; a task it lacks is absent


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
    state = previous.states.get(spec.task_id)
    if state is None:
        if spec.ignore_first_depends_on_past and not ran_before:
            return PastVerdict(True, "the first instance of the task")
        return PastVerdict(False, "depends_on_past: the previous run has no instance of the task")
    if state not in _DONE:
        return PastVerdict(False, f"depends_on_past: the task is {state.value} in the previous run")
    if spec.wait_for_downstream:
        waiting = [d for d in spec.downstream if previous.states.get(d) not in _DONE]
        if waiting:
            return PastVerdict(
                False,
                "wait_for_downstream: in the previous run, not yet succeeded or skipped: "
                + ", ".join(waiting),
            )
    return PastVerdict(True, "the previous run's instance succeeded or was skipped")
