"""core.records.Wait.due and the Wake transition: when a waiting task is woken and to what."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

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
    )
    assert Wait.from_json(wait.to_json()) == wait


def test_wake_moves_waiting_tasks_only_where_the_table_allows() -> None:
    assert Wake(1, ("a",), (-1,), S.SCHEDULED).sources == {S.UP_FOR_RESCHEDULE, S.DEFERRED}
    # Success without a process: only a deferral (a time sensor's moment).
    assert Wake(1, ("a",), (-1,), S.SUCCESS).sources == {S.DEFERRED}
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
