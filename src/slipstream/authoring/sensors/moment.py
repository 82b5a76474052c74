"""What the time sensors share: a target moment, computed in the first try from their
(templated) arguments. Deferrable (their default) they wait as deferred with that moment as the
wake-up time and no process; the scheduler marks them done at the moment, as no user code is
left to run. With an on_success_callback they resume instead, so a process runs it.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slipstream.authoring.callbacks import callbacks_of
from slipstream.authoring.sensors.base import BaseSensorOperator, clock_of, log
from slipstream.authoring.waiting import WaitRequest, WaitRequested

if TYPE_CHECKING:
    from slipstream.authoring.context import Context


class MomentSensor(BaseSensorOperator):
    """A sensor done once `target(context)` has passed."""

    def __init__(self, *, deferrable: bool = True, **kwargs: Any) -> None:
        super().__init__(deferrable=deferrable, **kwargs)

    def target(self, context: Context) -> datetime:
        raise NotImplementedError

    def poke(self, context: Context) -> bool:
        target = self.target(context)
        log.info("Checking if the time (%s) has come", target.isoformat())
        return clock_of(context).now() >= target

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        ti = context.get("ti")
        clock = clock_of(context)
        now = clock.now()
        started = getattr(ti, "first_poke_at", None) or now
        target = self.target(context)
        if target <= now:
            log.info("The target time %s has passed: done", target.isoformat())
            return None
        deadline = started + timedelta(seconds=self.timeout)
        resumes = bool(callbacks_of(self.on_success_callback))
        raise WaitRequested(
            WaitRequest(
                wake_at=target,
                action="resume" if resumes else "succeed",
                deferred=True,
                started_at=started,
                timeout_at=deadline,
                soft_fail=self.soft_fail,
                next_method="execute_complete",
                event=target,
                reason=f"deferred until {target.isoformat()}",
            )
        )

    def execute_complete(self, context: Context, event: Any = None) -> None:
        """Where a resumed time sensor ends: its moment has come."""
        log.info("The target time has come: %s", event)
