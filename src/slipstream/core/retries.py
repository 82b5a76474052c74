"""Whether a failed try is retried: the one rule the scheduler (recording a try's end) and the
try's own process (choosing on_retry_callback or on_failure_callback) share. Kept apart from
core.planning so that a try's process need not import the planner to apply it.
"""

from __future__ import annotations

from slipstream.core.records import ExitReason


def will_retry(
    *, try_number: int, max_tries: int, infra_failures: int, reason: ExitReason, infra_budget: int
) -> bool:
    """Whether a failed try leads to another (up_for_retry) or ends the task (failed).

    The one rule both sides use: the scheduler when it records the try's end, and the try's
    own process when it picks on_retry_callback or on_failure_callback before reporting.
    """
    if reason is ExitReason.FAIL_NOW:
        return False
    if reason.is_infrastructure and infra_failures < infra_budget:
        return True
    return try_number - infra_failures <= max_tries
