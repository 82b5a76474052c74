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
