"""core.past: depends_on_past and wait_for_downstream verdicts."""

from __future__ import annotations

from datetime import UTC, datetime

from slipstream.core.dag_plan import TaskSpec
from slipstream.core.past import PreviousRun, judge_past
from slipstream.core.states import TaskState

S = TaskState
DAY1 = datetime(2026, 1, 1, tzinfo=UTC)


def spec(**kwargs: object) -> TaskSpec:
    fields: dict[str, object] = {
        "task_id": "t",
        "operator": "PythonOperator",
        "upstream": (),
        "downstream": ("d1", "d2"),
        "depends_on_past": True,
    }
    fields.update(kwargs)
    return TaskSpec(**fields)  # type: ignore[arg-type]


def may_run(task: TaskSpec, previous: PreviousRun | None, **kwargs: bool) -> bool:
    return judge_past(task, previous, catchup=kwargs.pop("catchup", False), **kwargs).may_run


def test_a_task_without_the_flag_always_passes() -> None:
    previous = PreviousRun(DAY1, {"t": S.FAILED})
    assert may_run(spec(depends_on_past=False), previous)


def test_the_first_run_passes() -> None:
    verdict = judge_past(spec(), None, catchup=False)
    assert verdict.may_run and "first run" in verdict.reason


def test_the_previous_instance_must_have_succeeded_or_been_skipped() -> None:
    assert may_run(spec(), PreviousRun(DAY1, {"t": S.SUCCESS}))
    assert may_run(spec(), PreviousRun(DAY1, {"t": S.SKIPPED}))
    for state in (S.FAILED, S.UPSTREAM_FAILED, S.RUNNING, S.NONE, S.UP_FOR_RETRY):
        verdict = judge_past(spec(), PreviousRun(DAY1, {"t": state}), catchup=False)
        assert not verdict.may_run
        assert state.value in verdict.reason


def test_a_task_new_in_the_dag_passes_unless_told_not_to_ignore_its_first_run() -> None:
    previous = PreviousRun(DAY1, {})
    assert may_run(spec(), previous)
    assert not may_run(spec(), previous, ran_before=True)
    assert not may_run(spec(ignore_first_depends_on_past=False), previous)


def test_with_catchup_a_previous_run_before_the_task_existed_does_not_count() -> None:
    task = spec(start_date="2026-01-05T00:00:00+00:00")
    previous = PreviousRun(DAY1, {"t": S.FAILED})
    assert may_run(task, previous, catchup=True)
    assert not may_run(task, previous, catchup=False)


def test_wait_for_downstream_needs_the_direct_downstream_done_too() -> None:
    task = spec(wait_for_downstream=True)
    assert may_run(task, PreviousRun(DAY1, {"t": S.SUCCESS, "d1": S.SUCCESS, "d2": S.SKIPPED}))
    verdict = judge_past(
        task, PreviousRun(DAY1, {"t": S.SUCCESS, "d1": S.RUNNING, "d2": S.SUCCESS}), catchup=False
    )
    assert not verdict.may_run and "d1" in verdict.reason and "d2" not in verdict.reason
    # A downstream task the previous run lacks has not succeeded there either (Airflow counts).
    assert not may_run(task, PreviousRun(DAY1, {"t": S.SUCCESS, "d1": S.SUCCESS}))


# A mapped task: Airflow 2.6+ and 3 count every instance the task has in the previous run,
# whatever its map index (PrevDagrunDep counts the unsuccessful ones); each instance here waits
# on all of them, so a map index the previous run did not have is held only by the others.


def test_a_mapped_task_waits_until_every_previous_instance_is_done() -> None:
    task = spec(downstream=())
    done = PreviousRun(DAY1, {}, {"t": {0: S.SUCCESS, 1: S.SKIPPED, 2: S.SUCCESS}})
    assert may_run(task, done)
    verdict = judge_past(
        task, PreviousRun(DAY1, {}, {"t": {0: S.SUCCESS, 1: S.FAILED, 2: S.RUNNING}}), catchup=False
    )
    assert not verdict.may_run
    assert "2 of the task's 3 instances" in verdict.reason
    assert "failed" in verdict.reason and "running" in verdict.reason
    # One instance alone reads as an unmapped task's.
    verdict = judge_past(task, PreviousRun(DAY1, {}, {"t": {0: S.FAILED}}), catchup=False)
    assert not verdict.may_run and verdict.reason.endswith("the task is failed in the previous run")


def test_a_mapped_task_not_expanded_in_the_previous_run_holds_by_its_waiting_row() -> None:
    # The previous run never got to expand it: its one row (map index -1) has no state yet.
    assert not may_run(spec(downstream=()), PreviousRun(DAY1, {"t": S.NONE}))
    # Expanded to nothing there (skipped), it holds nothing back.
    assert may_run(spec(downstream=()), PreviousRun(DAY1, {"t": S.SKIPPED}))


def test_wait_for_downstream_counts_every_instance_of_a_mapped_downstream_task() -> None:
    task = spec(wait_for_downstream=True, downstream=("d1",))
    mapped_down = {"d1": {0: S.SUCCESS, 1: S.UP_FOR_RETRY}}
    verdict = judge_past(task, PreviousRun(DAY1, {"t": S.SUCCESS}, mapped_down), catchup=False)
    assert not verdict.may_run and "d1" in verdict.reason
    all_done = {"d1": {0: S.SUCCESS, 1: S.SKIPPED}}
    assert may_run(task, PreviousRun(DAY1, {"t": S.SUCCESS}, all_done))
