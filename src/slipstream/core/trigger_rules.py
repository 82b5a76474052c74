"""Trigger rules: given the states of a task's upstream tasks, may it run yet?

Semantics follow Airflow's: skips propagate through all_success, failures through the
"success" rules as upstream_failed, and the one_* rules fire as soon as they can.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from enum import Enum

from slipstream.authoring.trigger_rules import TriggerRule
from slipstream.core.states import TaskState


class Verdict(Enum):
    WAIT = "wait"
    RUN = "run"
    SKIP = "skip"
    UPSTREAM_FAILED = "upstream_failed"


# The rules a DAG may name are authoring's; evaluate() must know every one of them.
TRIGGER_RULES = frozenset(rule.value for rule in TriggerRule)

_S = TaskState


def evaluate(rule: str, upstream: Iterable[TaskState], setups: Iterable[TaskState] = ()) -> Verdict:
    """The verdict for one task; a task with no upstream tasks may always run. `setups` are
    the states of those upstream tasks that are setups (all_done_setup_success reads them)."""
    counts = Counter(upstream)
    total = sum(counts.values())
    if total == 0 or rule == "always":
        return Verdict.RUN
    success = counts[_S.SUCCESS]
    skipped = counts[_S.SKIPPED] + counts[_S.REMOVED]
    failed = counts[_S.FAILED] + counts[_S.UPSTREAM_FAILED]
    done = success + skipped + failed
    all_done = done == total

    if rule == "all_success":
        if failed:
            return Verdict.UPSTREAM_FAILED
        if skipped:
            return Verdict.SKIP
        return Verdict.RUN if success == total else Verdict.WAIT
    if rule == "all_failed":
        if success or skipped:
            return Verdict.SKIP
        return Verdict.RUN if all_done else Verdict.WAIT
    if rule == "all_done":
        return Verdict.RUN if all_done else Verdict.WAIT
    if rule == "all_skipped":
        if success or failed:
            return Verdict.SKIP
        return Verdict.RUN if all_done else Verdict.WAIT
    if rule == "one_success":
        if success:
            return Verdict.RUN
        if not all_done:
            return Verdict.WAIT
        return Verdict.UPSTREAM_FAILED if failed else Verdict.SKIP
    if rule == "one_failed":
        if failed:
            return Verdict.RUN
        return Verdict.SKIP if all_done else Verdict.WAIT
    if rule == "one_done":
        # Airflow counts only tasks that ran and failed here: upstream_failed is no "done".
        if success or counts[_S.FAILED]:
            return Verdict.RUN
        return Verdict.SKIP if all_done else Verdict.WAIT
    if rule == "none_failed":
        if failed:
            return Verdict.UPSTREAM_FAILED
        return Verdict.RUN if all_done else Verdict.WAIT
    if rule == "none_failed_min_one_success":
        if failed:
            return Verdict.UPSTREAM_FAILED
        if not all_done:
            return Verdict.WAIT
        return Verdict.RUN if success else Verdict.SKIP
    if rule == "all_done_setup_success":
        # A teardown: it cleans up after whatever ran, failed or not, as long as some setup
        # it depends on succeeded; none ran -> upstream_failed, all skipped -> skipped.
        if not all_done:
            return Verdict.WAIT
        setup_counts = Counter(setups)
        setup_total = sum(setup_counts.values())
        if setup_total and setup_counts[_S.SKIPPED] >= setup_total:
            return Verdict.SKIP
        if setup_total and not setup_counts[_S.SUCCESS]:
            return Verdict.UPSTREAM_FAILED
        return Verdict.RUN
    if rule == "none_skipped":
        if skipped:
            return Verdict.SKIP
        return Verdict.RUN if all_done else Verdict.WAIT
    raise ValueError(f"unknown trigger rule {rule!r}")
