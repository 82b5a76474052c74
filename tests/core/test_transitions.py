"""core.transitions: a transition's sources are the table's, narrowed to what its decision saw;
a move the table forbids cannot be built."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipstream.core.dag_plan import DagPlan
from slipstream.core.planning import plan_run
from slipstream.core.records import ExitReason, Run, RunType, TaskInstance, TaskKey
from slipstream.core.states import (
    ACTIVE_TASK_STATES,
    RunState,
    TaskState,
    run_sources,
    task_sources,
)
from slipstream.core.transitions import (
    NOTHING_MOVED,
    EndTry,
    Moved,
    QueueTries,
    RunTransition,
    StartTry,
    TaskTransition,
    branch_skip,
    planned,
    retry_due,
)
from slipstream.errors import InvalidStateTransition

S = TaskState
NOW = datetime(2026, 3, 1, tzinfo=UTC)
KEY = TaskKey(7, "t", 2)


def task(state: TaskState, try_number: int = 1) -> TaskInstance:
    return TaskInstance(7, "d", "r", "t", state, try_number, 0)


def run(state: RunState) -> Run:
    return Run(
        id=7,
        dag_id="d",
        run_id="r",
        state=state,
        run_type=RunType.MANUAL,
        logical_date=None,
        data_interval_start=None,
        data_interval_end=None,
        conf={},
        queued_at=NOW,
        start_date=None,
        end_date=None,
        version_id=1,
    )


def test_a_natural_move_without_a_seen_state_takes_every_source_the_table_allows() -> None:
    move = TaskTransition.natural(7, ["a", "b"], S.SCHEDULED)
    assert move.sources == task_sources(S.SCHEDULED)
    assert move.sources == {S.NONE, S.QUEUED, S.UP_FOR_RETRY, S.UP_FOR_RESCHEDULE, S.DEFERRED}
    assert (move.task_ids, move.is_forced, move.try_number) == (("a", "b"), False, None)


def test_what_a_decision_saw_narrows_the_sources() -> None:
    assert planned(7, ["a"], S.SCHEDULED).sources == {S.NONE}
    assert planned(7, ["a"], S.SUCCESS, starts_now=True).starts_now
    assert retry_due(7, ["a"]).sources == {S.UP_FOR_RETRY}
    skip = branch_skip(7, ["a"], by="pick")
    assert (skip.sources, skip.reason) == ({S.NONE, S.SCHEDULED}, "skipped by pick")


@pytest.mark.parametrize(
    ("target", "seen"),
    [
        (S.QUEUED, S.NONE),  # skips scheduling
        (S.RUNNING, S.SCHEDULED),  # skips queueing
        (S.SCHEDULED, S.SUCCESS),  # finished for good, naturally
        (S.UPSTREAM_FAILED, S.RUNNING),
    ],
)
def test_a_natural_move_the_table_forbids_cannot_be_built(
    target: TaskState, seen: TaskState
) -> None:
    with pytest.raises(InvalidStateTransition) as caught:
        TaskTransition.natural(7, ["a"], target, seen=seen)
    assert (caught.value.current, caught.value.target) == (seen.value, target.value)


def test_sources_given_by_hand_are_checked_against_the_table_too() -> None:
    with pytest.raises(InvalidStateTransition):
        TaskTransition(7, ("a",), S.RUNNING, frozenset({S.SCHEDULED, S.QUEUED}))
    with pytest.raises(InvalidStateTransition):
        TaskTransition(7, ("a",), S.SCHEDULED, frozenset())
    with pytest.raises(InvalidStateTransition):
        RunTransition(7, RunState.SUCCESS, frozenset({RunState.QUEUED}))


def test_a_forced_move_compares_the_state_and_try_it_was_read_in() -> None:
    move = TaskTransition.forced(task(S.RUNNING, 3), S.NONE, reason="cleared by ann", max_tries=5)
    assert move.sources == {S.RUNNING}
    assert (move.is_forced, move.try_number, move.max_tries) == (True, 3, 5)
    assert move.reason == "cleared by ann"


def test_a_forced_move_must_say_why_and_reach_only_what_a_person_may_set() -> None:
    with pytest.raises(ValueError, match="reason"):
        TaskTransition(7, ("a",), S.FAILED, frozenset({S.RUNNING}), is_forced=True)
    with pytest.raises(InvalidStateTransition):
        TaskTransition.forced(task(S.SUCCESS), S.QUEUED, reason="no")
    with pytest.raises(ValueError, match="reason"):
        RunTransition(7, RunState.QUEUED, frozenset({RunState.SUCCESS}), is_forced=True)


@pytest.mark.parametrize("target", [S.SUCCESS, S.FAILED, S.SKIPPED, S.UP_FOR_RETRY])
def test_a_try_ends_only_from_the_states_in_which_it_holds_its_task(target: TaskState) -> None:
    end = EndTry(KEY, target, target, ExitReason.TASK_ERROR, NOW)
    # The table lets none -> success (empty tasks) and up_for_retry -> failed happen, but
    # not through a try's end: a try cleared or already ended must change nothing.
    assert end.sources == task_sources(target) & ACTIVE_TASK_STATES == {S.QUEUED, S.RUNNING}
    assert EndTry.sources_for(target) == end.sources


@pytest.mark.parametrize("target", [S.NONE, S.SCHEDULED, S.QUEUED, S.RUNNING, S.REMOVED])
def test_a_try_cannot_end_in_a_state_that_is_not_an_end(target: TaskState) -> None:
    with pytest.raises(InvalidStateTransition):
        EndTry(KEY, target, S.FAILED, ExitReason.TASK_ERROR, NOW)


def test_queueing_and_starting_take_the_table_s_sources() -> None:
    queue = QueueTries(7, ("a",), None)
    start = StartTry(KEY, 1, "h", NOW)
    assert (queue.target, queue.sources) == (S.QUEUED, task_sources(S.QUEUED))
    assert (start.target, start.sources) == (S.RUNNING, task_sources(S.RUNNING))
    assert queue.sources == {S.SCHEDULED} and start.sources == {S.QUEUED}


def test_run_transitions() -> None:
    start = RunTransition.natural(7, RunState.RUNNING)
    assert start.sources == run_sources(RunState.RUNNING) == {RunState.QUEUED}
    assert RunTransition.natural(7, RunState.FAILED, reason="x").sources == {RunState.RUNNING}
    requeue = RunTransition.forced(run(RunState.SUCCESS), RunState.QUEUED, reason="cleared")
    assert (requeue.sources, requeue.is_forced) == ({RunState.SUCCESS}, True)
    with pytest.raises(InvalidStateTransition):
        RunTransition.natural(7, RunState.QUEUED)  # only a person requeues a run
    with pytest.raises(InvalidStateTransition):
        RunTransition.forced(run(RunState.SUCCESS), RunState.RUNNING, reason="no")


def test_moved_is_falsy_when_nothing_moved() -> None:
    assert not NOTHING_MOVED
    assert Moved(task_ids=("a",))
    assert Moved(run=run(RunState.RUNNING))
    assert not Moved(tries=())


def test_a_run_decision_becomes_moves_from_waiting_and_the_run_s_end() -> None:
    structure = {
        "dag_id": "d",
        "tasks": [
            {"task_id": "boom", "downstream": ["after", "cleanup"]},
            {"task_id": "after", "upstream": ["boom"]},
            {
                "task_id": "cleanup",
                "upstream": ["boom"],
                "operator": "EmptyOperator",
                "trigger_rule": "all_done",
            },
            {"task_id": "ready"},
        ],
    }
    plan = DagPlan.from_structure(structure, version_id=1, version_hash="h")
    states = {"boom": S.FAILED, "after": S.NONE, "cleanup": S.NONE, "ready": S.NONE}
    decision = plan_run(plan, states, None)
    moves = decision.task_transitions(7)
    assert [(m.task_ids, m.target) for m in moves] == [
        (("ready",), S.SCHEDULED),
        (("cleanup",), S.SUCCESS),
        (("after",), S.UPSTREAM_FAILED),
    ]
    assert all(m.sources == {S.NONE} and m.run_pk == 7 for m in moves)
    assert moves[1].starts_now and moves[2].reason == "an upstream task failed"
    assert decision.run_transition(7) is None  # `ready` has yet to run

    done = plan_run(plan, dict.fromkeys(plan.order, S.SUCCESS), None)
    assert done.task_transitions(7) == []
    ending = done.run_transition(7)
    assert ending is not None
    assert (ending.target, ending.sources) == (RunState.SUCCESS, {RunState.RUNNING})
