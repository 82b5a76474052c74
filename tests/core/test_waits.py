"""core.records.Wait.due and the Wake transition: when a waiting task is woken and to what;
core.planning.wait_after_loss: how a woken try lost to the infrastructure waits again."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from slipstream.core.planning import wait_after_loss
from slipstream.core.records import ExitReason, TaskKey, Wait, WakeAction
from slipstream.core.states import TaskState as S
from slipstream.core.transitions import EndTry, Wake
from slipstream.errors import InvalidStateTransition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _wait(action: WakeAction, wake: float, timeout: float | None, soft: bool = False) -> Wait:
    return Wait(
        wake_at=T0 + timedelta(seconds=wake),
        action=action,
        started_at=T0,
        timeout_at=None if timeout is None else T0 + timedelta(seconds=timeout),
        on_timeout=S.SKIPPED if soft else S.FAILED,
    )


def test_a_wait_is_due_at_its_wake_up_or_its_timeout_whichever_comes_first() -> None:
    assert _wait(WakeAction.POKE, 30, 300).due() == (T0 + timedelta(seconds=30), S.SCHEDULED)
    assert _wait(WakeAction.RESUME, 30, None).due() == (T0 + timedelta(seconds=30), S.SCHEDULED)
    assert _wait(WakeAction.SUCCEED, 30, 300).due() == (T0 + timedelta(seconds=30), S.SUCCESS)
    assert _wait(WakeAction.POKE, 330, 300).due() == (T0 + timedelta(seconds=300), S.FAILED)
    assert _wait(WakeAction.SUCCEED, 300, 300, soft=True).due() == (
        T0 + timedelta(seconds=300),
        S.SKIPPED,
    )


def test_a_wait_round_trips_through_its_stored_json() -> None:
    wait = Wait(
        wake_at=T0,
        action=WakeAction.RESUME,
        started_at=T0 - timedelta(seconds=5),
        timeout_at=T0 + timedelta(hours=1),
        on_timeout=S.SKIPPED,
        pokes=3,
        next_method="done",
        next_kwargs='{"a": 1}',
        event=T0.isoformat(),
        reason="deferred",
        deferred=True,
        lost=1,
    )
    assert Wait.from_json(wait.to_json()) == wait
    # A wait stored before `deferred` and `lost` were: up_for_reschedule, nothing lost.
    older = {k: v for k, v in wait.to_json().items() if k not in ("deferred", "lost")}
    assert Wait.from_json(older) == replace(wait, deferred=False, lost=0)
    assert (wait.state, replace(wait, deferred=False).state) == (S.DEFERRED, S.UP_FOR_RESCHEDULE)


def test_a_woken_try_lost_to_the_infrastructure_waits_again_at_once_within_the_budget() -> None:
    wait = replace(_wait(WakeAction.POKE, 30, 300), pokes=4)
    now = T0 + timedelta(seconds=40)
    again = wait_after_loss(
        wait, reason=ExitReason.WORKER_LOST, error="worker died", infra_budget=2, now=now
    )
    assert again is not None
    assert (again.wake_at, again.started_at, again.pokes, again.lost) == (now, T0, 4, 1)
    assert again.due() == (now, S.SCHEDULED)
    assert again.reason == "this poke was lost (worker died); the same try pokes again at once"
    resume = replace(wait, action=WakeAction.RESUME, lost=1)
    twice = wait_after_loss(
        resume, reason=ExitReason.SCHEDULER_LOST, error="gone", infra_budget=2, now=now
    )
    assert twice is not None and twice.lost == 2 and "this resume was lost" in twice.reason
    # The budget spent, or a failure of the task's own making: the retry policy decides.
    assert (
        wait_after_loss(twice, reason=ExitReason.WORKER_LOST, error="", infra_budget=2, now=now)
        is None
    )
    for own in (ExitReason.TASK_ERROR, ExitReason.TIMEOUT, ExitReason.FAIL_NOW):
        assert wait_after_loss(wait, reason=own, error="", infra_budget=2, now=now) is None
    # A timeout passed meanwhile: waking it at once ends it as the timeout says.
    late = T0 + timedelta(seconds=400)
    expired = wait_after_loss(
        wait, reason=ExitReason.PROCESS_KILLED, error="oom", infra_budget=2, now=late
    )
    assert expired is not None and expired.due() == (T0 + timedelta(seconds=300), S.FAILED)


def test_wake_moves_waiting_tasks_only_where_the_table_allows() -> None:
    assert Wake(1, ("a",), (-1,), S.SCHEDULED).sources == {S.UP_FOR_RESCHEDULE, S.DEFERRED}
    # Success without a process: only a deferral (a time sensor's moment).
    assert Wake(1, ("a",), (-1,), S.SUCCESS).sources == {S.DEFERRED}
    # Retried without a process: only a deferral (a non-sensor's TaskDeferralTimeout).
    assert Wake(1, ("a",), (-1,), S.UP_FOR_RETRY).sources == {S.DEFERRED}
    with pytest.raises(InvalidStateTransition):
        Wake(1, ("a",), (-1,), S.RUNNING)
    with pytest.raises(ValueError, match="one index per task id"):
        Wake(1, ("a", "b"), (-1,), S.FAILED)


def test_a_try_ends_waiting_only_with_its_wait() -> None:
    key = TaskKey(1, "a", 1)
    wait = _wait(WakeAction.POKE, 30, 300)
    end = EndTry(key, S.UP_FOR_RESCHEDULE, S.UP_FOR_RESCHEDULE, ExitReason.WAITING, T0, wait=wait)
    assert end.sources == {S.QUEUED, S.RUNNING}
    with pytest.raises(ValueError, match="with its wait"):
        EndTry(key, S.DEFERRED, S.DEFERRED, ExitReason.WAITING, T0)
    with pytest.raises(ValueError, match="with its wait"):
        EndTry(key, S.SUCCESS, S.SUCCESS, ExitReason.SUCCESS, T0, wait=wait)


def test_a_non_sensor_deferral_timeout_is_due_as_a_failure_its_retries_decide() -> None:
    wait = replace(_wait(WakeAction.RESUME, 600, 60), on_timeout=S.UP_FOR_RETRY, deferred=True)
    assert wait.due() == (T0 + timedelta(seconds=60), S.UP_FOR_RETRY)
    assert Wait.from_json(wait.to_json()) == wait
