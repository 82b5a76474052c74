"""BaseSensorOperator: a task that waits for a condition, poking it every poke_interval until it
holds or its timeout passes. In poke mode the try sleeps between pokes (holding its slot); in
reschedule mode, or deferrable, each poke is its own short run and the task waits between them
as a row with a wake-up time (up_for_reschedule or deferred), with no process.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slipstream.authoring.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
)
from slipstream.authoring.task import BaseOperator, as_duration
from slipstream.authoring.waiting import WaitRequest, WaitRequested
from slipstream.clock import Clock, SystemClock
from slipstream.errors import DagDefinitionError

if TYPE_CHECKING:
    from slipstream.authoring.context import Context

log = logging.getLogger("slipstream.task")

MODES = ("poke", "reschedule")
DEFAULT_TIMEOUT = timedelta(days=7)  # Airflow's [sensors] default_timeout


class PokeReturnValue:
    """What poke() may return instead of a bool: whether the condition holds, and the value to
    push as the sensor's return_value XCom when it does."""

    def __init__(self, is_done: bool, xcom_value: Any = None) -> None:
        self.is_done = is_done
        self.xcom_value = xcom_value

    def __bool__(self) -> bool:
        return bool(self.is_done)

    def __repr__(self) -> str:
        return f"PokeReturnValue(is_done={self.is_done!r}, xcom_value={self.xcom_value!r})"


def clock_of(context: Context) -> Clock:
    """The clock of the try (the runner's: a frozen one in tests), else the system's."""
    clock = getattr(context.get("ti"), "clock", None)
    return clock if clock is not None else SystemClock()


class BaseSensorOperator(BaseOperator):
    """Airflow's sensor base: subclasses implement poke(context) -> bool | PokeReturnValue."""

    ui_color = "#e6f1f2"

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float = DEFAULT_TIMEOUT,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: timedelta | float | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        where = f"sensor {self.task_id!r}"
        self.poke_interval = _seconds(poke_interval, "poke_interval", where)
        self.timeout = _seconds(timeout, "timeout", where)
        self.max_wait = _seconds(max_wait, "max_wait", where) if max_wait is not None else None
        if mode not in MODES:
            raise DagDefinitionError(
                f"mode {mode!r} of {where} is not valid: expected one of {', '.join(MODES)}",
                dag_id=self.dag_id,
            )
        if soft_fail and never_fail:
            # Airflow refuses the pair: soft_fail skips on timeout, never_fail on any error.
            raise DagDefinitionError(
                f"soft_fail and never_fail of {where} cannot both be set", dag_id=self.dag_id
            )
        self.mode = mode
        self.soft_fail = bool(soft_fail)
        self.exponential_backoff = bool(exponential_backoff)
        self.silent_fail = bool(silent_fail)
        self.never_fail = bool(never_fail)
        self.deferrable = bool(deferrable)

    @property
    def reschedule(self) -> bool:
        """Whether the sensor waits between pokes without a process (Airflow's property)."""
        return self.mode == "reschedule" or self.deferrable

    def poke(self, context: Context) -> bool | PokeReturnValue:
        raise NotImplementedError(f"{type(self).__name__} does not implement poke()")

    def execute(self, context: Context) -> Any:
        ti = context.get("ti")
        clock = clock_of(context)
        started = getattr(ti, "first_poke_at", None) or self._first_try_start(ti) or clock.now()
        pokes = int(getattr(ti, "poke_count", 0) or 0)
        deadline = started + timedelta(seconds=self.timeout)
        while True:
            pokes += 1
            done, value = self._poke_once(context)
            if done:
                log.info("Success criteria met. Exiting.")
                return value
            now = clock.now()
            if now >= deadline:
                self._time_out(now - started)
            interval = self.next_poke_interval(pokes)
            if self.reschedule:
                wake = now + timedelta(seconds=interval)
                raise WaitRequested(
                    WaitRequest(
                        wake_at=wake,
                        action="poke",
                        deferred=self.deferrable,
                        started_at=started,
                        timeout_at=deadline,
                        soft_fail=self.soft_fail,
                        pokes=pokes,
                        reason=(
                            f"poke {pokes} not met; next poke at {wake.isoformat()} "
                            f"(timeout at {deadline.isoformat()})"
                        ),
                    )
                )
            # Poke mode: sleep in the try, but never past the timeout, so it ends on time.
            time.sleep(max(0.0, min(interval, (deadline - now).total_seconds())))

    def _first_try_start(self, ti: Any) -> datetime | None:
        """In reschedule mode, a retry counts the timeout from the first poke of the first try
        that waited (Airflow's first try's first reschedule); in poke mode (and deferrable,
        which Airflow bounds per try with defer(timeout=...)) each try counts afresh."""
        if self.mode != "reschedule" or self.deferrable:
            return None
        started = getattr(ti, "sensor_started_at", None)
        return started if isinstance(started, datetime) else None

    def next_poke_interval(self, pokes: int) -> float:
        """Seconds until the next poke after `pokes` pokes: poke_interval, or with
        exponential_backoff doubling from it (capped by max_wait when given)."""
        if not self.exponential_backoff:
            return self.poke_interval
        interval = self.poke_interval * float(2 ** min(max(pokes - 1, 0), 30))
        if self.max_wait is not None:
            interval = min(interval, self.max_wait)
        return interval

    def _poke_once(self, context: Context) -> tuple[bool, Any]:
        try:
            result = self.poke(context)
        except (
            AirflowSensorTimeout,
            AirflowTaskTimeout,
            AirflowFailException,
            AirflowSkipException,
        ):
            raise
        except Exception as exc:
            if self.never_fail:
                raise AirflowSkipException(f"poke raised and never_fail is set: {exc!r}") from exc
            if self.silent_fail:
                log.error("poke raised; silent_fail is set, so the sensor carries on: %r", exc)
                return False, None
            raise
        if isinstance(result, PokeReturnValue):
            return bool(result.is_done), result.xcom_value
        return bool(result), None

    def _time_out(self, elapsed: timedelta) -> None:
        message = (
            f"Sensor has timed out; run duration of {elapsed.total_seconds():g} seconds is more "
            f"than the specified timeout of {self.timeout:g}."
        )
        if self.soft_fail:
            raise AirflowSkipException(f"{message} Skipping due to soft_fail.")
        raise AirflowSensorTimeout(message)


def _seconds(value: object, name: str, where: str) -> float:
    duration = as_duration(value, name, where)  # type: ignore[arg-type]
    assert duration is not None
    return duration.total_seconds()
