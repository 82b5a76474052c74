"""core.planning: run planning, retries, schedules and fairness, all with plain values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from slipstream.authoring.schedules import DataInterval, Timetable, timetable_from_schedule
from slipstream.core.dag_plan import DagPlan, TaskSpec
from slipstream.core.planning import (
    MAX_BACKOFF_SECONDS,
    RetryDecision,
    RunDecision,
    after_failure,
    next_interval_to_schedule,
    pick_fair,
    plan_run,
    retry_delay,
    run_id_for,
)
from slipstream.core.records import ExitReason, RunType
from slipstream.core.retries import will_retry
from slipstream.core.states import RunState, TaskState

S = TaskState
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EMPTY = {"operator": "EmptyOperator"}


def make_plan(tasks: dict[str, dict[str, Any]]) -> DagPlan:
    """A DagPlan from {task_id: {"upstream": [...], ...}}, given in topological order.

    Downstream edges are derived from the upstream ones, as serialization writes both.
    """
    downstream: dict[str, list[str]] = {task_id: [] for task_id in tasks}
    for task_id, fields in tasks.items():
        for upstream in fields.get("upstream", ()):
            downstream[upstream].append(task_id)
    structure = {
        "dag_id": "demo",
        "fileloc": "/dags/demo.py",
        "tasks": [
            {
                "task_id": task_id,
                "operator": "PythonOperator",
                "upstream": [],
                "downstream": downstream[task_id],
                **fields,
            }
            for task_id, fields in tasks.items()
        ],
    }
    return DagPlan.from_structure(structure, version_id=1, version_hash="h1")


def chain(*task_ids: str, **fields: Any) -> DagPlan:
    """a >> b >> c ..., every task with the same extra fields."""
    tasks: dict[str, dict[str, Any]] = {}
    for previous, task_id in zip((None, *task_ids), task_ids, strict=False):
        tasks[task_id] = {"upstream": [previous] if previous else [], **fields}
    return make_plan(tasks)


def fresh(plan: DagPlan, **states: TaskState) -> dict[str, TaskState]:
    """Every task in state none, except the ones given."""
    return {task_id: states.get(task_id, S.NONE) for task_id in plan.order}


# ---------------------------------------------------------------- plan_run


def test_roots_are_scheduled_when_a_run_starts() -> None:
    plan = make_plan({"a": {}, "b": {"upstream": ["a"]}, "c": {}})
    decision = plan_run(plan, fresh(plan), None)
    assert decision == RunDecision(schedule=("a", "c"))
    assert decision.changes_anything


def test_only_the_downstream_of_changed_tasks_is_examined() -> None:
    plan = make_plan({"a": {}, "b": {"upstream": ["a"]}, "c": {}, "d": {"upstream": ["c"]}})
    states = fresh(plan, a=S.SUCCESS, c=S.SUCCESS)
    # d is ready too, but only a changed: d waits for a pass that names c (or examines all).
    assert plan_run(plan, states, {"a"}).schedule == ("b",)
    assert plan_run(plan, states, {"c"}).schedule == ("d",)
    assert plan_run(plan, states, None).schedule == ("b", "d")


def test_changed_tasks_unknown_to_the_plan_are_ignored() -> None:
    plan = chain("a", "b")
    decision = plan_run(plan, fresh(plan, a=S.RUNNING), {"gone"})
    assert not decision.changes_anything


def test_nothing_moves_while_upstream_tasks_run() -> None:
    plan = chain("a", "b")
    decision = plan_run(plan, fresh(plan, a=S.RUNNING), {"a"})
    assert decision == RunDecision()
    assert not decision.changes_anything


def test_a_task_already_scheduled_is_not_scheduled_again() -> None:
    plan = make_plan({"a": {}, "b": {}})
    decision = plan_run(plan, fresh(plan, a=S.SCHEDULED, b=S.QUEUED), None)
    assert decision.schedule == ()


def test_one_success_fires_while_other_upstream_tasks_still_run() -> None:
    plan = make_plan(
        {"a": {}, "b": {}, "c": {"upstream": ["a", "b"], "trigger_rule": "one_success"}}
    )
    decision = plan_run(plan, fresh(plan, a=S.SUCCESS, b=S.RUNNING), {"a"})
    assert decision.schedule == ("c",)


def test_empty_tasks_succeed_without_a_worker_and_cascade() -> None:
    plan = make_plan(
        {"start": EMPTY, "mid": {"upstream": ["start"], **EMPTY}, "work": {"upstream": ["mid"]}}
    )
    decision = plan_run(plan, fresh(plan), None)
    assert decision.succeed == ("start", "mid")
    assert decision.schedule == ("work",)
    assert decision.outcome is None


def test_a_dag_of_empty_tasks_finishes_in_one_call() -> None:
    plan = make_plan(
        {
            "a": EMPTY,
            "b": {"upstream": ["a"], **EMPTY},
            "c": {"upstream": ["a"], **EMPTY},
            "d": {"upstream": ["b", "c"], **EMPTY},
        }
    )
    decision = plan_run(plan, fresh(plan), None)
    assert sorted(decision.succeed) == ["a", "b", "c", "d"]
    assert len(decision.succeed) == 4  # d, reached twice, succeeds once
    assert decision.outcome is RunState.SUCCESS


def test_a_skip_cascades_through_a_chain_in_one_call() -> None:
    plan = chain("a", "b", "c", "d")
    decision = plan_run(plan, fresh(plan, a=S.SKIPPED), {"a"})
    assert decision.skip == ("b", "c", "d")
    assert decision.schedule == ()
    assert decision.outcome is RunState.SUCCESS  # a skipped leaf is not a failure


def test_a_failure_cascades_as_upstream_failed_in_one_call() -> None:
    plan = chain("a", "b", "c", "d")
    decision = plan_run(plan, fresh(plan, a=S.FAILED), {"a"})
    assert decision.upstream_failed == ("b", "c", "d")
    assert decision.outcome is RunState.FAILED
    assert decision.reason is not None and "d" in decision.reason


def test_a_cascade_stops_at_a_rule_that_runs_anyway() -> None:
    plan = make_plan(
        {
            "a": {},
            "b": {"upstream": ["a"]},
            "cleanup": {"upstream": ["b"], "trigger_rule": "all_done"},
            "after": {"upstream": ["cleanup"]},
        }
    )
    decision = plan_run(plan, fresh(plan, a=S.FAILED), {"a"})
    assert decision.upstream_failed == ("b",)
    assert decision.schedule == ("cleanup",)
    assert decision.outcome is None  # cleanup and after still to come


def test_the_caller_states_are_not_changed() -> None:
    plan = chain("a", "b")
    states = fresh(plan, a=S.FAILED)
    before = dict(states)
    plan_run(plan, states, {"a"})
    assert states == before


@pytest.mark.parametrize(
    ("leaf_states", "outcome"),
    [
        ({"x": S.SUCCESS, "y": S.SUCCESS}, RunState.SUCCESS),
        ({"x": S.SUCCESS, "y": S.SKIPPED}, RunState.SUCCESS),
        ({"x": S.SKIPPED, "y": S.SKIPPED}, RunState.SUCCESS),
        ({"x": S.SUCCESS, "y": S.FAILED}, RunState.FAILED),
        ({"x": S.UPSTREAM_FAILED, "y": S.SUCCESS}, RunState.FAILED),
    ],
)
def test_the_run_outcome_follows_its_leaves(
    leaf_states: dict[str, TaskState], outcome: RunState
) -> None:
    plan = make_plan({"a": {}, "x": {"upstream": ["a"]}, "y": {"upstream": ["a"]}})
    states = fresh(plan, a=S.SUCCESS, **leaf_states)
    decision = plan_run(plan, states, set(leaf_states))
    assert decision.outcome is outcome
    assert (decision.reason is None) == (outcome is RunState.SUCCESS)


def test_a_failed_leaf_is_named_in_the_reason() -> None:
    plan = make_plan({"x": {}, "y": {}})
    decision = plan_run(plan, fresh(plan, x=S.SUCCESS, y=S.FAILED), {"y"})
    assert decision.outcome is RunState.FAILED
    assert decision.reason == "tasks failed: y"


def test_a_failure_upstream_of_an_all_done_leaf_that_succeeds_is_a_success() -> None:
    plan = make_plan({"work": {}, "report": {"upstream": ["work"], "trigger_rule": "all_done"}})
    states = fresh(plan, work=S.FAILED, report=S.SUCCESS)
    assert plan_run(plan, states, {"report"}).outcome is RunState.SUCCESS


def test_no_outcome_while_any_task_is_unfinished() -> None:
    plan = make_plan({"x": {}, "y": {}})
    for other in (S.RUNNING, S.QUEUED, S.SCHEDULED, S.UP_FOR_RETRY):
        decision = plan_run(plan, fresh(plan, x=S.FAILED, y=other), {"x"})
        assert decision.outcome is None, other


def test_tasks_that_can_never_run_fail_the_run_as_a_deadlock() -> None:
    # A cycle that slipped past validation: each task waits on the other forever.
    plan = make_plan({"a": {"upstream": ["b"]}, "b": {"upstream": ["a"]}, "c": {}})
    decision = plan_run(plan, fresh(plan, c=S.SUCCESS), None)
    assert decision.schedule == ()
    assert decision.outcome is RunState.FAILED
    assert decision.reason == "deadlock: tasks can never run: a, b"


def test_waiting_on_a_running_task_is_no_deadlock() -> None:
    plan = chain("a", "b")
    assert plan_run(plan, fresh(plan, a=S.RUNNING), None).outcome is None


# ---------------------------------------------------------------- setup and teardown tasks

SETUP = {"is_setup": True}
TEARDOWN = {"is_teardown": True, "trigger_rule": "all_done_setup_success"}


def cluster_plan(**teardown: Any) -> DagPlan:
    """create (setup) >> work >> report >> delete (teardown), and create >> delete."""
    return make_plan(
        {
            "create": SETUP,
            "work": {"upstream": ["create"]},
            "report": {"upstream": ["work"]},
            "delete": {"upstream": ["create", "report"], **TEARDOWN, **teardown},
        }
    )


def test_a_teardown_runs_after_failed_work_and_the_run_fails_on_the_work() -> None:
    plan = cluster_plan()
    states = fresh(plan, create=S.SUCCESS, work=S.FAILED)
    decision = plan_run(plan, states, {"work"})
    assert decision.upstream_failed == ("report",)
    assert decision.schedule == ("delete",)
    assert decision.outcome is None
    done = plan_run(plan, {**states, "report": S.UPSTREAM_FAILED, "delete": S.SUCCESS}, {"delete"})
    assert done.outcome is RunState.FAILED
    assert done.reason == "tasks failed: report"


def test_a_failed_teardown_does_not_fail_the_run_unless_it_says_so() -> None:
    finished = {"create": S.SUCCESS, "work": S.SUCCESS, "report": S.SUCCESS, "delete": S.FAILED}
    lenient = cluster_plan()
    assert lenient.outcome_leaves == ("report",)
    assert plan_run(lenient, finished, {"delete"}).outcome is RunState.SUCCESS
    strict = cluster_plan(on_failure_fail_dagrun=True)
    assert strict.outcome_leaves == ("delete",)
    decision = plan_run(strict, finished, {"delete"})
    assert (decision.outcome, decision.reason) == (RunState.FAILED, "tasks failed: delete")


def test_a_failed_setup_fails_its_work_and_its_teardown() -> None:
    plan = cluster_plan()
    decision = plan_run(plan, fresh(plan, create=S.FAILED), {"create"})
    assert decision.upstream_failed == ("work", "report", "delete")
    assert decision.outcome is RunState.FAILED


def test_a_skipped_setup_skips_its_work_and_its_teardown() -> None:
    plan = cluster_plan()
    decision = plan_run(plan, fresh(plan, create=S.SKIPPED), {"create"})
    assert decision.skip == ("work", "report", "delete")
    assert decision.outcome is RunState.SUCCESS


def test_the_teardown_waits_for_the_work() -> None:
    plan = cluster_plan()
    states = fresh(plan, create=S.SUCCESS, work=S.SUCCESS, report=S.RUNNING)
    assert plan_run(plan, states, {"work"}) == RunDecision()


def test_work_further_down_waits_for_its_setups_whatever_its_rule() -> None:
    plan = make_plan(
        {
            "create": SETUP,
            "first": {"upstream": ["create"]},
            "anyway": {"upstream": ["first"], "trigger_rule": "always"},
            "after": {"upstream": ["anyway"], "trigger_rule": "all_done"},
            "delete": {"upstream": ["create", "after"], **TEARDOWN},
        }
    )
    assert plan.indirect_setups == {"anyway": ("create",), "after": ("create",)}
    # An `always` task would run at once, but its setup has not succeeded yet.
    running = plan_run(plan, fresh(plan, create=S.RUNNING), None)
    assert running.schedule == ()
    # When the setup succeeds, the tasks that waited for it are judged again.
    ready = plan_run(plan, fresh(plan, create=S.SUCCESS), {"create"})
    assert ready.schedule == ("first", "anyway")
    # A failed setup fails them even where their own rule would run them.
    failed = plan_run(plan, fresh(plan, create=S.FAILED), {"create"})
    assert failed.upstream_failed == ("first", "anyway", "after", "delete")
    skipped = plan_run(plan, fresh(plan, create=S.SKIPPED), {"create"})
    assert skipped.skip == ("first", "anyway", "after", "delete")


def test_a_setup_without_teardown_is_waited_for_by_everything_below_it() -> None:
    plan = make_plan(
        {
            "create": SETUP,
            "a": {"upstream": ["create"]},
            "b": {"upstream": ["a"], "trigger_rule": "all_done"},
        }
    )
    assert plan.indirect_setups == {"b": ("create",)}
    states = fresh(plan, create=S.FAILED, a=S.UPSTREAM_FAILED)
    assert plan_run(plan, states, {"a"}).upstream_failed == ("b",)


def test_a_dag_of_teardowns_alone_is_judged_on_its_plain_leaves() -> None:
    plan = make_plan({"t": TEARDOWN})
    assert plan.outcome_leaves == ("t",)
    assert plan_run(plan, fresh(plan, t=S.FAILED), {"t"}).outcome is RunState.FAILED


def test_a_teardown_without_setups_runs_once_its_upstream_is_done() -> None:
    plan = make_plan({"w": {}, "t": {"upstream": ["w"], **TEARDOWN}})
    assert plan_run(plan, fresh(plan, w=S.FAILED), {"w"}).schedule == ("t",)


# ---------------------------------------------------------------- after_failure / retry_delay


def spec(**fields: Any) -> TaskSpec:
    return TaskSpec(task_id="t", operator="PythonOperator", upstream=(), downstream=(), **fields)


def fail(
    task: TaskSpec,
    try_number: int,
    reason: ExitReason = ExitReason.TASK_ERROR,
    *,
    infra: int = 0,
    budget: int = 2,
) -> RetryDecision:
    return after_failure(
        task,
        try_number=try_number,
        infra_failures=infra,
        reason=reason,
        now=NOW,
        infra_budget=budget,
    )


def test_a_task_is_retried_after_its_delay_until_its_retries_run_out() -> None:
    task = spec(retries=2, retry_delay=60.0)
    first = fail(task, 1)
    assert first.state is S.UP_FOR_RETRY
    assert first.next_retry_at == NOW + timedelta(seconds=60)
    assert first.infra_failures == 0
    second = fail(task, 2)
    assert second.state is S.UP_FOR_RETRY
    assert second.next_retry_at == NOW + timedelta(seconds=60)
    last = fail(task, 3)
    assert last.state is S.FAILED
    assert last.next_retry_at is None


def test_a_task_without_retries_fails_at_once() -> None:
    decision = fail(spec(retries=0), 1)
    assert decision.state is S.FAILED
    assert decision.next_retry_at is None


def test_fail_now_ignores_remaining_retries() -> None:
    decision = fail(spec(retries=5), 1, ExitReason.FAIL_NOW, infra=1)
    assert decision.state is S.FAILED
    assert decision.next_retry_at is None
    assert decision.infra_failures == 1


def test_a_timeout_uses_the_task_s_own_retries() -> None:
    task = spec(retries=1, retry_delay=30.0)
    assert fail(task, 1, ExitReason.TIMEOUT).next_retry_at == NOW + timedelta(seconds=30)
    assert fail(task, 2, ExitReason.TIMEOUT).state is S.FAILED


@pytest.mark.parametrize(
    "reason", [ExitReason.WORKER_LOST, ExitReason.PROCESS_KILLED, ExitReason.SCHEDULER_LOST]
)
def test_infrastructure_losses_retry_at_once_on_their_own_budget(reason: ExitReason) -> None:
    task = spec(retries=0, retry_delay=600.0)
    first = fail(task, 1, reason, infra=0, budget=2)
    assert (first.state, first.next_retry_at, first.infra_failures) == (S.UP_FOR_RETRY, NOW, 1)
    second = fail(task, 2, reason, infra=1, budget=2)
    assert (second.state, second.next_retry_at, second.infra_failures) == (S.UP_FOR_RETRY, NOW, 2)
    # Budget spent and the task has no retries of its own.
    third = fail(task, 3, reason, infra=2, budget=2)
    assert third.state is S.FAILED
    assert third.infra_failures == 2


def test_infrastructure_losses_do_not_consume_the_task_s_retries() -> None:
    task = spec(retries=1, retry_delay=60.0)
    lost = fail(task, 1, ExitReason.WORKER_LOST, infra=0, budget=1)
    assert lost.state is S.UP_FOR_RETRY and lost.infra_failures == 1
    # The task's own first failure still has its one retry, with its delay.
    own = fail(task, 2, ExitReason.TASK_ERROR, infra=1, budget=1)
    assert own.state is S.UP_FOR_RETRY
    assert own.next_retry_at == NOW + timedelta(seconds=60)
    assert own.infra_failures == 1
    assert fail(task, 3, ExitReason.TASK_ERROR, infra=1, budget=1).state is S.FAILED


def test_once_the_infrastructure_budget_is_spent_the_task_s_retries_apply() -> None:
    task = spec(retries=1, retry_delay=60.0)
    decision = fail(task, 2, ExitReason.WORKER_LOST, infra=1, budget=1)
    assert decision.state is S.UP_FOR_RETRY
    assert decision.next_retry_at == NOW + timedelta(seconds=60)
    assert decision.infra_failures == 1
    assert fail(task, 3, ExitReason.WORKER_LOST, infra=1, budget=1).state is S.FAILED


def test_a_zero_budget_sends_infrastructure_losses_to_the_task_s_retries() -> None:
    task = spec(retries=1, retry_delay=5.0)
    decision = fail(task, 1, ExitReason.PROCESS_KILLED, infra=0, budget=0)
    assert decision.state is S.UP_FOR_RETRY
    assert decision.next_retry_at == NOW + timedelta(seconds=5)
    assert decision.infra_failures == 0


def test_exponential_backoff_doubles_up_to_max_retry_delay() -> None:
    task = spec(retry_delay=10.0, retry_exponential_backoff=True, max_retry_delay=100.0)
    delays = [retry_delay(task, n).total_seconds() for n in range(1, 7)]
    assert delays == [10.0, 20.0, 40.0, 80.0, 100.0, 100.0]


def test_exponential_backoff_without_a_maximum_is_capped_at_a_day() -> None:
    task = spec(retry_delay=3600.0, retry_exponential_backoff=True)
    assert retry_delay(task, 2) == timedelta(hours=2)
    assert retry_delay(task, 30) == timedelta(seconds=MAX_BACKOFF_SECONDS)
    assert MAX_BACKOFF_SECONDS == 24 * 3600


def test_backoff_stays_capped_after_very_many_failures() -> None:
    task = spec(retry_delay=10.0, retry_exponential_backoff=True, max_retry_delay=600.0)
    assert retry_delay(task, 5000) == timedelta(seconds=600)


def test_backoff_feeds_the_retry_time() -> None:
    task = spec(retries=5, retry_delay=10.0, retry_exponential_backoff=True)
    assert fail(task, 3).next_retry_at == NOW + timedelta(seconds=40)


def test_without_backoff_every_retry_waits_the_same() -> None:
    task = spec(retry_delay=45.0)
    assert {retry_delay(task, n) for n in range(1, 10)} == {timedelta(seconds=45)}


# ---------------------------------------------------------------- next_interval_to_schedule


def day(n: int, hour: int = 0) -> datetime:
    return datetime(2026, 1, n, hour, tzinfo=UTC)


JAN_1 = day(1)


def due_intervals(
    timetable: Timetable,
    *,
    now: datetime,
    catchup: bool,
    start_date: datetime | None = JAN_1,
    end_date: datetime | None = None,
    last_end: datetime | None = None,
) -> tuple[list[DataInterval], DataInterval | None]:
    """What a scheduler creates, pass after pass, until the next interval is not yet due."""
    created: list[DataInterval] = []
    while True:
        interval = next_interval_to_schedule(
            timetable,
            last_end=last_end,
            start_date=start_date,
            end_date=end_date,
            catchup=catchup,
            now=now,
        )
        if interval is None or interval.end > now:
            return created, interval
        created.append(interval)
        last_end = interval.end
        assert len(created) < 100, "never stopped"


def test_catchup_walks_every_interval_from_the_start_date() -> None:
    created, upcoming = due_intervals(
        timetable_from_schedule("@daily"), now=day(5, 12), catchup=True
    )
    assert created == [DataInterval(day(n), day(n + 1)) for n in range(1, 5)]
    assert upcoming == DataInterval(day(5), day(6))


def test_without_catchup_the_latest_complete_interval_comes_next() -> None:
    created, upcoming = due_intervals(
        timetable_from_schedule("@daily"), now=day(5, 12), catchup=False
    )
    assert created == [DataInterval(day(4), day(5))]
    assert upcoming == DataInterval(day(5), day(6))


def test_without_catchup_missed_intervals_are_skipped_after_a_pause() -> None:
    interval = next_interval_to_schedule(
        timetable_from_schedule("@daily"),
        last_end=day(2),
        start_date=day(1),
        end_date=None,
        catchup=False,
        now=day(9, 6),
    )
    assert interval == DataInterval(day(8), day(9))


def test_without_catchup_an_up_to_date_dag_waits_for_its_next_interval() -> None:
    interval = next_interval_to_schedule(
        timetable_from_schedule("@daily"),
        last_end=day(5),
        start_date=day(1),
        end_date=None,
        catchup=False,
        now=day(5, 12),
    )
    assert interval == DataInterval(day(5), day(6))


def test_a_future_start_date_is_waited_for_even_without_catchup() -> None:
    interval = next_interval_to_schedule(
        timetable_from_schedule("@daily"),
        last_end=None,
        start_date=day(20),
        end_date=None,
        catchup=False,
        now=day(5),
    )
    assert interval == DataInterval(day(20), day(21))


def test_the_end_date_stops_scheduling() -> None:
    created, upcoming = due_intervals(
        timetable_from_schedule("@daily"), now=day(9), catchup=True, end_date=day(3)
    )
    # As in Airflow, an interval starting at end_date is still run; the next is not.
    assert [i.start for i in created] == [day(1), day(2), day(3)]
    assert upcoming is None


def test_an_end_date_passed_while_not_catching_up_schedules_nothing() -> None:
    interval = next_interval_to_schedule(
        timetable_from_schedule("@daily"),
        last_end=day(2),
        start_date=day(1),
        end_date=day(3),
        catchup=False,
        now=day(9),
    )
    assert interval is None


def test_hourly_catchup_from_a_start_date_between_fire_times() -> None:
    created, _ = due_intervals(
        timetable_from_schedule("@hourly"),
        now=day(1, 4),
        catchup=True,
        start_date=datetime(2026, 1, 1, 1, 30, tzinfo=UTC),
    )
    assert [i.start.hour for i in created] == [2, 3]


def test_a_timedelta_schedule_lays_intervals_from_the_start_date() -> None:
    created, _ = due_intervals(
        timetable_from_schedule(timedelta(hours=12)), now=day(2, 12), catchup=True
    )
    assert created == [
        DataInterval(day(1), day(1, 12)),
        DataInterval(day(1, 12), day(2)),
        DataInterval(day(2), day(2, 12)),
    ]


def test_once_runs_once() -> None:
    created, upcoming = due_intervals(timetable_from_schedule("@once"), now=day(5), catchup=True)
    assert created == [DataInterval(day(1), day(1))]
    assert upcoming is None


def test_no_schedule_means_no_scheduled_runs() -> None:
    for catchup in (True, False):
        created, upcoming = due_intervals(
            timetable_from_schedule(None), now=day(5), catchup=catchup
        )
        assert (created, upcoming) == ([], None)


# ---------------------------------------------------------------- run_id_for


def test_run_ids_have_airflow_s_shape() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert run_id_for(RunType.SCHEDULED, when) == "scheduled__2026-01-02T03:04:05+00:00"
    assert run_id_for(RunType.MANUAL, when) == "manual__2026-01-02T03:04:05+00:00"
    assert run_id_for(RunType.BACKFILL, when) == "backfill__2026-01-02T03:04:05+00:00"


# ---------------------------------------------------------------- pick_fair


def test_a_crowded_dag_cannot_starve_the_others() -> None:
    ready = {"big": list(range(1000)), "small": [1], "tiny": [2]}
    assert pick_fair(ready, 3) == [("big", 0), ("small", 1), ("tiny", 2)]


def test_slots_left_after_a_round_go_round_again() -> None:
    ready = {"big": ["b0", "b1", "b2"], "small": ["s0"]}
    picked = pick_fair(ready, 4)
    assert picked == [("big", "b0"), ("small", "s0"), ("big", "b1"), ("big", "b2")]


def test_every_item_is_picked_once_when_slots_abound() -> None:
    ready = {"a": [1, 2, 3], "b": [4], "c": []}
    picked = pick_fair(ready, 100)
    assert sorted(picked) == [("a", 1), ("a", 2), ("a", 3), ("b", 4)]


def test_per_key_limits_are_respected() -> None:
    ready = {"big": list(range(1000)), "small": [1, 2, 3]}
    picked = pick_fair(ready, 10, {"big": 2, "small": 0})
    assert picked == [("big", 0), ("big", 1)]


def test_keys_without_a_limit_are_unlimited() -> None:
    picked = pick_fair({"a": [1, 2, 3], "b": [4, 5]}, 10, {"b": 1})
    assert sorted(picked) == [("a", 1), ("a", 2), ("a", 3), ("b", 4)]


def test_no_free_slots_picks_nothing() -> None:
    assert pick_fair({"a": [1]}, 0) == []
    assert pick_fair({}, 5) == []


@pytest.mark.parametrize(
    ("try_number", "max_tries", "infra_failures", "reason", "budget", "expected"),
    [
        (1, 1, 0, ExitReason.TASK_ERROR, 2, True),
        (2, 1, 0, ExitReason.TASK_ERROR, 2, False),
        (2, 1, 1, ExitReason.TIMEOUT, 2, True),  # the lost try does not count
        (1, 5, 0, ExitReason.FAIL_NOW, 2, False),
        (1, 0, 0, ExitReason.PROCESS_KILLED, 2, True),  # the infrastructure budget
        (3, 0, 2, ExitReason.WORKER_LOST, 2, False),  # ... used up
    ],
)
def test_will_retry_is_the_rule_after_failure_applies(
    try_number: int,
    max_tries: int,
    infra_failures: int,
    reason: ExitReason,
    budget: int,
    expected: bool,
) -> None:
    retried = will_retry(
        try_number=try_number,
        max_tries=max_tries,
        infra_failures=infra_failures,
        reason=reason,
        infra_budget=budget,
    )
    assert retried is expected
    spec = TaskSpec("t", "PythonOperator", (), (), retries=max_tries)
    decision = after_failure(
        spec,
        try_number=try_number,
        infra_failures=infra_failures,
        reason=reason,
        now=datetime(2024, 1, 1, tzinfo=UTC),
        infra_budget=budget,
    )
    assert (decision.state is TaskState.UP_FOR_RETRY) is expected


# ----------------------------------------------------------------- mapped tasks

MAP_OVER_MAKE = {"kind": "expand", "args": [["x", {"xcom": "make"}]]}


def mapped_plan(reduce_rule: str = "all_success") -> DagPlan:
    return make_plan(
        {
            "make": {},
            "each": {"upstream": ["make"], "mapped": MAP_OVER_MAKE},
            "reduce": {"upstream": ["each"], "trigger_rule": reduce_rule},
        }
    )


def test_a_mapped_task_is_expanded_once_its_upstream_succeeded() -> None:
    plan = mapped_plan()
    assert plan.mapped == {"each"} and plan.feeds_mapping == {"make"}
    waiting = plan_run(plan, {"make": S.RUNNING, "each": S.NONE, "reduce": S.NONE})
    assert waiting.expand == () and waiting.outcome is None
    ready = plan_run(plan, {"make": S.SUCCESS, "each": S.NONE, "reduce": S.NONE}, ["make"])
    assert ready.expand == ("each",) and ready.schedule == ()
    assert ready.outcome is None  # the task being expanded counts as active


def test_downstream_of_a_mapped_task_judges_every_instance() -> None:
    plan = mapped_plan()
    states = {"make": S.SUCCESS, "reduce": S.NONE}
    running = {"each": {0: S.SUCCESS, 1: S.RUNNING}}
    assert plan_run(plan, states, ["each"], running).schedule == ()
    done = {"each": {0: S.SUCCESS, 1: S.SUCCESS}}
    assert plan_run(plan, states, ["each"], done).schedule == ("reduce",)
    one_failed = {"each": {0: S.SUCCESS, 1: S.FAILED}}
    decision = plan_run(plan, states, ["each"], one_failed)
    assert decision.upstream_failed == ("reduce",)
    assert decision.outcome is RunState.FAILED
    assert plan_run(mapped_plan("all_done"), states, ["each"], one_failed).schedule == ("reduce",)


def test_a_run_of_expanded_instances_ends_when_they_all_have() -> None:
    plan = mapped_plan()
    states = {"make": S.SUCCESS, "reduce": S.SUCCESS}
    assert plan_run(plan, states, [], {"each": {0: S.SUCCESS, 1: S.UP_FOR_RETRY}}).outcome is None
    done = plan_run(plan, states, [], {"each": {0: S.SUCCESS, 1: S.SUCCESS}})
    assert done.outcome is RunState.SUCCESS


def test_a_zero_length_map_s_skip_reaches_its_downstream() -> None:
    plan = mapped_plan()
    decision = plan_run(plan, {"make": S.SUCCESS, "each": S.SKIPPED, "reduce": S.NONE}, ["each"])
    assert decision.skip == ("reduce",)
    assert decision.outcome is RunState.SUCCESS


def test_cleared_instances_are_scheduled_again_by_their_trigger_rule() -> None:
    plan = mapped_plan()
    states = {"make": S.SUCCESS, "reduce": S.NONE}
    decision = plan_run(plan, states, ["each"], {"each": {0: S.SUCCESS, 1: S.NONE, 2: S.NONE}})
    assert decision.instance_moves == (("each", (1, 2), S.SCHEDULED),)
    (move,) = decision.task_transitions(7)
    assert move.task_ids == ("each", "each") and move.map_indexes == (1, 2)
    assert decision.schedule == () and decision.outcome is None
    skipped_upstream = {"make": S.SKIPPED, "reduce": S.NONE}
    moved = plan_run(plan, skipped_upstream, ["make"], {"each": {0: S.NONE}})
    assert moved.instance_moves == (("each", (0,), S.SKIPPED),)
    assert moved.skip == ("reduce",)


def test_a_mapped_task_whose_instances_were_all_cleared_expands_again() -> None:
    plan = mapped_plan()
    states = {"make": S.SUCCESS, "reduce": S.NONE}
    decision = plan_run(plan, states, ["make"], {"each": {0: S.NONE, 1: S.NONE}})
    assert decision.expand == ("each",) and decision.instance_moves == ()
    assert decision.outcome is None
    waiting = plan_run(plan, {"make": S.RUNNING, "reduce": S.NONE}, [], {"each": {0: S.NONE}})
    assert waiting.expand == () and waiting.instance_moves == ()


def test_planning_a_whole_run_judges_cleared_instances_too() -> None:
    plan = mapped_plan()
    states = {"make": S.SUCCESS, "reduce": S.SUCCESS}
    decision = plan_run(plan, states, None, {"each": {0: S.SUCCESS, 1: S.NONE}})
    assert decision.instance_moves == (("each", (1,), S.SCHEDULED),)


# ----------------------------------------------------------------- mapped task groups


def group_plan(b_rule: str = "all_success") -> DagPlan:
    """make >> [g.a >> g.b] >> reduce, the group g mapped over make's return value; g.b also
    waits for gate, outside the group."""
    in_group = {"mapped": MAP_OVER_MAKE, "map_group": "g"}
    return make_plan(
        {
            "make": {},
            "gate": {},
            "g.a": {"upstream": ["make"], **in_group},
            "g.b": {"upstream": ["g.a", "gate"], "trigger_rule": b_rule, **in_group},
            "reduce": {"upstream": ["g.b"]},
        }
    )


def test_a_group_s_tasks_are_paired_by_map_index_with_their_group_upstream() -> None:
    plan = group_plan()
    assert plan.map_groups == {"g": ("g.a", "g.b")}
    assert plan.paired_upstream == {"g.b": frozenset({"g.a"})}
    assert plan.feeds_mapping == {"make"}
    assert make_plan({"a": {}}).map_groups == {} and make_plan({"a": {}}).paired_upstream == {}


def test_when_a_group_s_first_task_expands_the_tasks_after_it_expand_waiting() -> None:
    plan = group_plan()
    states = fresh(plan, make=S.SUCCESS, gate=S.RUNNING)
    decision = plan_run(plan, states, ["make"])
    assert decision.expand == ("g.a",) and decision.expand_waiting == ("g.b",)
    assert decision.schedule == () and decision.outcome is None
    assert decision.changes_anything


def test_each_instance_in_a_group_runs_on_its_own_map_index_depth_first() -> None:
    plan = group_plan()
    states = fresh(plan, make=S.SUCCESS, gate=S.SUCCESS)
    instances = {
        "g.a": {0: S.SUCCESS, 1: S.RUNNING, 2: S.FAILED, 3: S.SKIPPED},
        "g.b": {0: S.NONE, 1: S.NONE, 2: S.NONE, 3: S.NONE},
    }
    decision = plan_run(plan, states, ["g.a"], instances)
    # g.b[0] need not wait for g.a[1]: each instance waits for its own index only.
    assert set(decision.instance_moves) == {
        ("g.b", (0,), S.SCHEDULED),
        ("g.b", (2,), S.UPSTREAM_FAILED),
        ("g.b", (3,), S.SKIPPED),
    }
    assert decision.schedule == () and decision.outcome is None


def test_a_group_task_also_waits_for_its_upstream_outside_the_group() -> None:
    plan = group_plan()
    states = fresh(plan, make=S.SUCCESS, gate=S.RUNNING)
    instances = {"g.a": {0: S.SUCCESS}, "g.b": {0: S.NONE}}
    assert plan_run(plan, states, ["g.a"], instances).instance_moves == ()
    states["gate"] = S.FAILED
    failed = plan_run(plan, states, ["gate"], instances)
    assert failed.instance_moves == (("g.b", (0,), S.UPSTREAM_FAILED),)
    assert failed.upstream_failed == ("reduce",)
    assert failed.outcome is RunState.FAILED


def test_trigger_rules_in_a_group_judge_the_instance_of_the_same_index() -> None:
    plan = group_plan("all_done")
    states = fresh(plan, make=S.SUCCESS, gate=S.SUCCESS)
    instances = {"g.a": {0: S.FAILED, 1: S.RUNNING}, "g.b": {0: S.NONE, 1: S.NONE}}
    decision = plan_run(plan, states, ["g.a"], instances)
    assert decision.instance_moves == (("g.b", (0,), S.SCHEDULED),)


def test_downstream_of_a_group_judges_every_instance_of_its_leaves() -> None:
    plan = group_plan()
    states = fresh(plan, make=S.SUCCESS, gate=S.SUCCESS)
    running = {"g.a": {0: S.SUCCESS, 1: S.SUCCESS}, "g.b": {0: S.SUCCESS, 1: S.RUNNING}}
    assert plan_run(plan, states, ["g.b"], running).schedule == ()
    done = {"g.a": {0: S.SUCCESS, 1: S.SUCCESS}, "g.b": {0: S.SUCCESS, 1: S.SUCCESS}}
    assert plan_run(plan, states, ["g.b"], done).schedule == ("reduce",)


def test_a_zero_length_group_skips_its_tasks_and_what_follows() -> None:
    plan = group_plan()
    states = fresh(plan, make=S.SUCCESS, gate=S.SUCCESS)
    states["g.a"] = S.SKIPPED  # expanded to nothing
    decision = plan_run(plan, states, ["g.a"])
    assert decision.skip == ("g.b", "reduce")
    assert decision.expand_waiting == ()
    assert decision.outcome is RunState.SUCCESS


def test_a_group_task_left_unexpanded_catches_up_with_its_group() -> None:
    plan = group_plan()
    states = fresh(plan, make=S.SUCCESS, gate=S.SUCCESS)
    del states["g.a"]
    decision = plan_run(plan, states, None, {"g.a": {0: S.RUNNING}})
    assert decision.expand_waiting == ("g.b",) and decision.outcome is None


def test_an_unexpanded_upstream_of_the_group_counts_once_for_every_index() -> None:
    in_group = {"mapped": MAP_OVER_MAKE, "map_group": "g"}
    plan = make_plan(
        {
            "make": {},
            "gate": {},
            "g.a1": {"upstream": ["make"], **in_group},
            "g.a2": {"upstream": ["make", "gate"], **in_group},
            "g.b": {"upstream": ["g.a1", "g.a2"], **in_group},
        }
    )
    states = {"make": S.SUCCESS, "gate": S.FAILED, "g.a2": S.UPSTREAM_FAILED}
    instances = {"g.a1": {0: S.SUCCESS, 1: S.SUCCESS}, "g.b": {0: S.NONE, 1: S.NONE}}
    decision = plan_run(plan, states, ["g.a2"], instances)
    assert decision.instance_moves == (("g.b", (0, 1), S.UPSTREAM_FAILED),)
    assert decision.outcome is RunState.FAILED


def test_a_cleared_group_expands_again_from_its_first_task() -> None:
    plan = group_plan()
    states = fresh(plan, make=S.SUCCESS, gate=S.SUCCESS)
    for task_id in ("g.a", "g.b"):
        del states[task_id]
    cleared = {"g.a": {0: S.NONE, 1: S.NONE}, "g.b": {0: S.NONE, 1: S.NONE}}
    decision = plan_run(plan, states, ["g.a", "g.b"], cleared)
    assert decision.expand == ("g.a",) and decision.expand_waiting == ("g.b",)
    assert decision.instance_moves == ()
    # Only some instances of g.a cleared: no new expansion, each index runs again alone.
    partly = {"g.a": {0: S.SUCCESS, 1: S.NONE}, "g.b": {0: S.NONE, 1: S.NONE}}
    again = plan_run(plan, states, ["g.a", "g.b"], partly)
    assert again.expand == () and again.expand_waiting == ()
    assert set(again.instance_moves) == {("g.a", (1,), S.SCHEDULED), ("g.b", (0,), S.SCHEDULED)}


def test_depends_on_past_holds_a_mapped_task_whole() -> None:
    # Held (its previous run's instances not all done): it neither expands nor schedules its
    # cleared instances, and the run is not judged deadlocked for it.
    plan = mapped_plan()
    ready = {"make": S.SUCCESS, "each": S.NONE, "reduce": S.NONE}
    held = plan_run(plan, ready, ["make"], held={"each"})
    assert held.expand == () and held.outcome is None
    states = {"make": S.SUCCESS, "reduce": S.NONE}
    cleared = {"each": {0: S.SUCCESS, 1: S.NONE}}
    assert plan_run(plan, states, ["each"], cleared, held={"each"}).instance_moves == ()
    every_cleared = {"each": {0: S.NONE, 1: S.NONE}}
    decision = plan_run(plan, states, ["each"], every_cleared, held={"each"})
    assert decision.expand == () and decision.instance_moves == ()
    assert decision.outcome is None
    # A skip or an upstream failure is no run: the past does not hold those back.
    skipped = plan_run(
        plan, {"make": S.SKIPPED, "reduce": S.NONE}, ["make"], cleared, held={"each"}
    )
    assert skipped.instance_moves == (("each", (1,), S.SKIPPED),)
