"""Airflow's time triggers (airflow.triggers.temporal), the only triggers Slipstream runs: a
deferral on one waits as a task instance row with a wake-up time, no triggerer process. Any
other trigger class is refused by name when a task defers on it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slipstream.authoring.exceptions import TaskDeferred
from slipstream.authoring.waiting import WaitRequest


class BaseTrigger:
    """Airflow's trigger base: user-defined triggers derive from it (and are refused when a
    task defers on them: Slipstream has no triggerer to run their code)."""

    def __init__(self, **kwargs: Any) -> None:
        self.kwargs = kwargs

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return f"{type(self).__module__}.{type(self).__qualname__}", dict(self.kwargs)


class DateTimeTrigger(BaseTrigger):
    """Fires at `moment` (an aware datetime). With end_from_trigger the task ends successfully
    at that moment without resuming."""

    def __init__(self, moment: datetime, *, end_from_trigger: bool = False) -> None:
        super().__init__()
        if not isinstance(moment, datetime):
            raise TypeError(f"DateTimeTrigger expects a datetime, got {type(moment).__name__}")
        if moment.tzinfo is None:
            raise ValueError("DateTimeTrigger expects a timezone-aware datetime")
        self.moment = moment.astimezone(UTC)
        self.end_from_trigger = bool(end_from_trigger)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "airflow.triggers.temporal.DateTimeTrigger",
            {"moment": self.moment, "end_from_trigger": self.end_from_trigger},
        )


class TimeDeltaTrigger(DateTimeTrigger):
    """Fires `delta` after it is created (when the task defers)."""

    def __init__(self, delta: timedelta, *, end_from_trigger: bool = False) -> None:
        if not isinstance(delta, timedelta):
            raise TypeError(f"TimeDeltaTrigger expects a timedelta, got {type(delta).__name__}")
        super().__init__(datetime.now(UTC) + delta, end_from_trigger=end_from_trigger)


class UnsupportedTrigger(TypeError):
    """A task deferred on a trigger Slipstream cannot run; the try fails with this."""

    def __init__(self, trigger: object) -> None:
        name = f"{type(trigger).__module__}.{type(trigger).__qualname__}"
        super().__init__(
            f"trigger {name} is not supported: Slipstream has no triggerer process and waits "
            "only on time triggers (DateTimeTrigger, TimeDeltaTrigger from "
            "airflow.triggers.temporal); poll with a sensor in reschedule mode instead"
        )


def deferral_request(
    deferral: TaskDeferred, now: datetime, *, sensor: bool = False, soft_fail: bool = False
) -> WaitRequest:
    """The wait a deferral asks for; UnsupportedTrigger for a trigger that is not a time one,
    TypeError for kwargs that cannot be stored. Its timeout ends a sensor as
    AirflowSensorTimeout does (failed without retry, or skipped with `soft_fail`), any other
    operator as TaskDeferralTimeout does: a failure its retries decide (as Airflow)."""
    trigger = deferral.trigger
    if not isinstance(trigger, DateTimeTrigger):
        raise UnsupportedTrigger(trigger)
    if not isinstance(deferral.method_name, str) or not deferral.method_name:
        raise TypeError("defer() needs method_name, the method to resume at")
    try:
        json.dumps(dict(deferral.kwargs), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"defer() kwargs must be JSON-serializable to be stored while waiting: {exc}"
        ) from None
    timeout_at = now + deferral.timeout if deferral.timeout is not None else None
    return WaitRequest(
        wake_at=trigger.moment,
        action="succeed" if trigger.end_from_trigger else "resume",
        deferred=True,
        timeout_at=timeout_at,
        soft_fail=sensor and soft_fail,
        retry_on_timeout=not sensor,
        next_method=deferral.method_name,
        next_kwargs=deferral.kwargs,
        event=trigger.moment,
        reason=f"deferred until {trigger.moment.isoformat()} ({type(trigger).__name__})",
    )
