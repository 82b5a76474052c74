"""scheduler.state: what each wake-up hint asks of the next pass, and what survives a failed
pass. Plain values: no database is needed to absorb hints."""

from __future__ import annotations

from datetime import UTC, datetime

from slipstream.core.records import TaskKey, TaskStarted
from slipstream.core.states import TaskState
from slipstream.scheduler.state import CurrentVersion, SchedulerState
from slipstream.wakeup import Hint

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def settled() -> SchedulerState:
    """A memory with nothing to do and something cached."""
    state = SchedulerState()
    state.check_all_queued = False
    state.outcomes_waiting = False
    state.current = {"etl": CurrentVersion(3, 16), "other": CurrentVersion(4, 8)}
    state.states = {7: {"a": TaskState.SUCCESS}}
    return state


def test_a_queued_run_hint_checks_its_dag_only() -> None:
    state = settled()
    state.absorb([Hint.queued_run("etl")])
    assert state.check_queued == {"etl"}
    assert not state.check_all_queued
    assert set(state.current) == {"etl", "other"}  # nothing about the DAG changed


def test_a_dag_changed_hint_forgets_that_dag_s_current_version() -> None:
    state = settled()
    state.absorb([Hint.dag_changed("etl")])
    assert state.check_queued == {"etl"}
    assert set(state.current) == {"other"}
    assert not state.check_all_queued


def test_a_dag_changed_hint_without_a_dag_forgets_every_dag() -> None:
    state = settled()
    state.absorb([Hint.dag_changed()])
    assert state.current == {}
    assert state.check_all_queued


def test_a_run_changed_hint_replans_the_run_from_the_database() -> None:
    state = settled()
    state.absorb([Hint.run_changed(7)])
    assert 7 not in state.states
    assert state.dirty == {7: None}
    assert state.recheck == {7}
    assert state.check_all_queued  # the change may have requeued the run


def test_an_outcomes_hint_asks_the_next_pass_to_read_the_outbox_only() -> None:
    state = settled()
    state.absorb([Hint.outcomes("etl")])
    assert state.outcomes_waiting
    assert not state.check_all_queued
    assert state.check_queued == set()


def test_an_unknown_hint_looks_everywhere() -> None:
    state = settled()
    state.absorb([Hint.decode(b"run:etl")])
    assert state.check_all_queued
    assert state.outcomes_waiting
    assert state.check_queued == set()


def test_a_fresh_memory_keeps_what_the_database_cannot_tell() -> None:
    state = settled()
    key = TaskKey(7, "a", 1)
    state.track(key, "etl", 1)
    state.pending_events.append(TaskStarted(key, 1, "h", NOW))
    state.recheck.add(7)
    fresh = state.reset()
    assert fresh.plans is state.plans and fresh.schedules is state.schedules
    assert list(fresh.in_flight) == [key] and fresh.active_per_dag == {"etl": 1}
    assert fresh.pending_events == state.pending_events
    assert fresh.recheck == {7}
    assert fresh.states == {} and fresh.current == {}
