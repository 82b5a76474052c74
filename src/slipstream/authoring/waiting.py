"""What a try asks for when it ends waiting instead of finishing: a wake-up time, what to do
then (poke again, resume at a method, or succeed), and the timeout that may end the wait first.
Sensors and `BaseOperator.defer` build one; the runner turns it into the try's reported Wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

WakeKind = Literal["poke", "resume", "succeed"]


@dataclass(frozen=True, slots=True)
class WaitRequest:
    wake_at: datetime
    action: WakeKind
    deferred: bool  # shown as deferred (else up_for_reschedule)
    started_at: datetime | None = None  # the first poke's start (None: this try's start)
    timeout_at: datetime | None = None
    soft_fail: bool = False  # the timeout skips instead of failing
    # The timeout is a failure the task's retries decide (a deferral of an operator that is not
    # a sensor: Airflow's TaskDeferralTimeout); else it fails without retry (or skips).
    retry_on_timeout: bool = False
    pokes: int = 1
    next_method: str | None = None
    next_kwargs: Mapping[str, Any] = field(default_factory=dict)
    event: datetime | None = None  # a time trigger's moment, handed to next_method as `event`
    reason: str = ""


class WaitRequested(Exception):
    """Raised out of a task's execute: the try ends waiting as `request` says."""

    def __init__(self, request: WaitRequest) -> None:
        super().__init__(request.reason)
        self.request = request
