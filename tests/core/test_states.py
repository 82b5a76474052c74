"""core.states: the transition table every compare-and-set is checked against."""

from __future__ import annotations

import pytest

from slipstream.core.states import (
    FAILED_TASK_STATES,
    FINISHED_TASK_STATES,
    RUN_FORCED_TARGETS,
    RUN_TRANSITIONS,
    TASK_FORCED_TARGETS,
    TASK_TRANSITIONS,
    RunState,
    TaskState,
    can_move_run,
    can_move_task,
    run_sources,
    task_sources,
)

S = TaskState
# Finished for good: only a person (or a recovery) may move a task out of these.
TERMINAL_TASK_STATES = [S.SUCCESS, S.FAILED, S.UPSTREAM_FAILED, S.SKIPPED]


def test_the_tables_name_every_state() -> None:
    assert set(TASK_TRANSITIONS) == set(TaskState)
    assert set(RUN_TRANSITIONS) == set(RunState)


def test_no_state_moves_to_itself_naturally() -> None:
    for state, targets in TASK_TRANSITIONS.items():
        assert state not in targets
    for run_state, run_targets in RUN_TRANSITIONS.items():
        assert run_state not in run_targets


@pytest.mark.parametrize("state", TERMINAL_TASK_STATES)
def test_terminal_task_states_have_no_natural_moves(state: TaskState) -> None:
    assert TASK_TRANSITIONS[state] == frozenset()
    assert not any(can_move_task(state, target) for target in TaskState)


@pytest.mark.parametrize("state", [RunState.SUCCESS, RunState.FAILED])
def test_finished_runs_have_no_natural_moves(state: RunState) -> None:
    assert state.is_finished
    assert not any(can_move_run(state, target) for target in RunState)


def test_a_removed_task_comes_back_as_none_only() -> None:
    assert S.REMOVED.is_finished
    assert TASK_TRANSITIONS[S.REMOVED] == {S.NONE}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.NONE, S.SCHEDULED),
        (S.NONE, S.SKIPPED),
        (S.NONE, S.UPSTREAM_FAILED),
        (S.NONE, S.SUCCESS),  # an EmptyOperator finishes without a worker
        (S.NONE, S.FAILED),  # a mapped task that cannot expand
        (S.SCHEDULED, S.QUEUED),
        (S.QUEUED, S.RUNNING),
        (S.QUEUED, S.SUCCESS),  # a very short try reports its end with its start
        (S.QUEUED, S.UP_FOR_RETRY),  # a try lost before it started
        (S.RUNNING, S.SUCCESS),
        (S.RUNNING, S.FAILED),
        (S.RUNNING, S.SKIPPED),
        (S.RUNNING, S.UP_FOR_RETRY),
        (S.UP_FOR_RETRY, S.SCHEDULED),
    ],
)
def test_natural_task_moves(current: TaskState, target: TaskState) -> None:
    assert can_move_task(current, target)
    assert can_move_task(current, target, forced=True)


@pytest.mark.parametrize(
    ("current", "target"),
    [
        (S.NONE, S.RUNNING),
        (S.SCHEDULED, S.RUNNING),
        (S.RUNNING, S.QUEUED),
        (S.RUNNING, S.SCHEDULED),
        (S.UP_FOR_RETRY, S.RUNNING),
    ],
)
def test_skipping_a_step_is_refused(current: TaskState, target: TaskState) -> None:
    assert not can_move_task(current, target)


@pytest.mark.parametrize("current", TERMINAL_TASK_STATES)
@pytest.mark.parametrize("target", sorted(TASK_FORCED_TARGETS))
def test_forced_moves_leave_terminal_states(current: TaskState, target: TaskState) -> None:
    assert can_move_task(current, target, forced=True)


@pytest.mark.parametrize("target", [S.SCHEDULED, S.QUEUED, S.RUNNING, S.UPSTREAM_FAILED])
def test_forcing_never_reaches_a_state_a_person_may_not_set(target: TaskState) -> None:
    assert not can_move_task(S.SUCCESS, target, forced=True)


def test_forced_run_moves() -> None:
    assert can_move_run(RunState.SUCCESS, RunState.QUEUED, forced=True)  # re-run
    assert can_move_run(RunState.FAILED, RunState.SUCCESS, forced=True)
    assert can_move_run(RunState.QUEUED, RunState.FAILED, forced=True)
    assert not can_move_run(RunState.SUCCESS, RunState.RUNNING, forced=True)
    assert not can_move_run(RunState.SUCCESS, RunState.QUEUED)
    assert RunState.RUNNING not in RUN_FORCED_TARGETS


def test_task_sources_are_the_where_clause_of_a_natural_move() -> None:
    assert task_sources(S.QUEUED) == {S.SCHEDULED}
    assert task_sources(S.RUNNING) == {S.QUEUED}
    assert task_sources(S.SCHEDULED) == {
        S.NONE,
        S.QUEUED,
        S.UP_FOR_RETRY,
        S.UP_FOR_RESCHEDULE,
        S.DEFERRED,
    }
    # deferred: a non-sensor's deferral timed out (TaskDeferralTimeout), which it may retry.
    assert task_sources(S.UP_FOR_RETRY) == {S.QUEUED, S.RUNNING, S.DEFERRED}
    assert task_sources(S.NONE) == {S.REMOVED}


def test_forced_task_sources_include_every_state() -> None:
    assert task_sources(S.FAILED, forced=True) == set(TaskState)
    assert task_sources(S.NONE, forced=True) == set(TaskState)
    # Not a forced target: forcing adds nothing.
    assert task_sources(S.RUNNING, forced=True) == task_sources(S.RUNNING)


@pytest.mark.parametrize("target", list(TaskState))
def test_task_sources_agree_with_can_move_task(target: TaskState) -> None:
    for forced in (False, True):
        expected = {s for s in TaskState if can_move_task(s, target, forced=forced)}
        assert task_sources(target, forced=forced) == expected


def test_run_sources() -> None:
    assert run_sources(RunState.RUNNING) == {RunState.QUEUED}
    assert run_sources(RunState.SUCCESS) == {RunState.RUNNING}
    assert run_sources(RunState.QUEUED, forced=True) == set(RunState)
    assert run_sources(RunState.QUEUED) == frozenset()


def test_state_groups() -> None:
    assert FAILED_TASK_STATES <= FINISHED_TASK_STATES
    assert {s for s in TaskState if s.is_finished} == FINISHED_TASK_STATES
    assert {s for s in TaskState if s.is_active} == {S.QUEUED, S.RUNNING}
    assert {s for s in RunState if s.is_finished} == {RunState.SUCCESS, RunState.FAILED}
