"""core.trigger_rules.evaluate against Airflow's semantics, one table row per case."""

from __future__ import annotations

import pytest

from slipstream.core.states import TaskState
from slipstream.core.trigger_rules import TRIGGER_RULES, Verdict, evaluate

S = TaskState
RUN, WAIT, SKIP, UPSTREAM_FAILED = (
    Verdict.RUN,
    Verdict.WAIT,
    Verdict.SKIP,
    Verdict.UPSTREAM_FAILED,
)

NOT_DONE = [S.NONE, S.SCHEDULED, S.QUEUED, S.RUNNING, S.UP_FOR_RETRY]

CASES: list[tuple[str, list[TaskState], Verdict]] = [
    # all_success: skips propagate as skips, failures as upstream_failed, neither waits.
    ("all_success", [S.SUCCESS, S.SUCCESS], RUN),
    ("all_success", [S.SUCCESS, S.RUNNING], WAIT),
    ("all_success", [S.SUCCESS, S.UP_FOR_RETRY], WAIT),
    ("all_success", [S.SUCCESS, S.SKIPPED], SKIP),
    ("all_success", [S.SKIPPED, S.RUNNING], SKIP),
    ("all_success", [S.SUCCESS, S.FAILED], UPSTREAM_FAILED),
    ("all_success", [S.UPSTREAM_FAILED, S.SUCCESS], UPSTREAM_FAILED),
    ("all_success", [S.FAILED, S.RUNNING], UPSTREAM_FAILED),
    ("all_success", [S.SKIPPED, S.FAILED], UPSTREAM_FAILED),
    # all_failed: failed and upstream_failed both count; any success or skip skips at once.
    ("all_failed", [S.FAILED, S.UPSTREAM_FAILED], RUN),
    ("all_failed", [S.FAILED, S.RUNNING], WAIT),
    ("all_failed", [S.FAILED, S.SUCCESS], SKIP),
    ("all_failed", [S.FAILED, S.SKIPPED], SKIP),
    ("all_failed", [S.SUCCESS, S.RUNNING], SKIP),
    # all_done: whatever the outcome, once every upstream task has finished.
    ("all_done", [S.SUCCESS, S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED], RUN),
    ("all_done", [S.SUCCESS, S.REMOVED], RUN),
    ("all_done", [S.SUCCESS, S.RUNNING], WAIT),
    ("all_done", [S.FAILED, S.UP_FOR_RETRY], WAIT),
    # all_skipped: any success or failure skips at once.
    ("all_skipped", [S.SKIPPED, S.SKIPPED], RUN),
    ("all_skipped", [S.SKIPPED, S.RUNNING], WAIT),
    ("all_skipped", [S.SKIPPED, S.SUCCESS], SKIP),
    ("all_skipped", [S.SKIPPED, S.UPSTREAM_FAILED], SKIP),
    ("all_skipped", [S.FAILED, S.RUNNING], SKIP),
    # one_success fires as soon as one succeeds, without waiting for the rest.
    ("one_success", [S.SUCCESS, S.RUNNING], RUN),
    ("one_success", [S.NONE, S.SUCCESS], RUN),
    ("one_success", [S.SUCCESS, S.FAILED], RUN),
    ("one_success", [S.RUNNING, S.NONE], WAIT),
    ("one_success", [S.FAILED, S.RUNNING], WAIT),
    ("one_success", [S.FAILED, S.SKIPPED], UPSTREAM_FAILED),
    ("one_success", [S.UPSTREAM_FAILED, S.UPSTREAM_FAILED], UPSTREAM_FAILED),
    ("one_success", [S.SKIPPED, S.SKIPPED], SKIP),
    # one_failed fires on the first failure, upstream_failed included.
    ("one_failed", [S.FAILED, S.RUNNING], RUN),
    ("one_failed", [S.UPSTREAM_FAILED, S.NONE], RUN),
    ("one_failed", [S.SUCCESS, S.RUNNING], WAIT),
    ("one_failed", [S.SUCCESS, S.SKIPPED], SKIP),
    # one_done: a success or a failure of a task that ran; skips and upstream_failed are not.
    ("one_done", [S.SUCCESS, S.RUNNING], RUN),
    ("one_done", [S.FAILED, S.RUNNING], RUN),
    ("one_done", [S.SKIPPED, S.RUNNING], WAIT),
    ("one_done", [S.UPSTREAM_FAILED, S.RUNNING], WAIT),
    ("one_done", [S.SKIPPED, S.SKIPPED], SKIP),
    ("one_done", [S.UPSTREAM_FAILED, S.SKIPPED], SKIP),
    # none_failed: successes and skips both fine; waits for all.
    ("none_failed", [S.SUCCESS, S.SKIPPED], RUN),
    ("none_failed", [S.SKIPPED, S.SKIPPED], RUN),
    ("none_failed", [S.SUCCESS, S.RUNNING], WAIT),
    ("none_failed", [S.FAILED, S.RUNNING], UPSTREAM_FAILED),
    ("none_failed", [S.UPSTREAM_FAILED, S.SUCCESS], UPSTREAM_FAILED),
    # none_failed_min_one_success: as none_failed, but all skipped means skip.
    ("none_failed_min_one_success", [S.SUCCESS, S.SKIPPED], RUN),
    ("none_failed_min_one_success", [S.SKIPPED, S.SKIPPED], SKIP),
    ("none_failed_min_one_success", [S.SUCCESS, S.RUNNING], WAIT),
    ("none_failed_min_one_success", [S.SKIPPED, S.RUNNING], WAIT),
    ("none_failed_min_one_success", [S.UPSTREAM_FAILED, S.RUNNING], UPSTREAM_FAILED),
    ("none_failed_min_one_success", [S.FAILED, S.SUCCESS], UPSTREAM_FAILED),
    # none_skipped: any skip skips at once; failures are fine.
    ("none_skipped", [S.SUCCESS, S.FAILED, S.UPSTREAM_FAILED], RUN),
    ("none_skipped", [S.SUCCESS, S.RUNNING], WAIT),
    ("none_skipped", [S.SKIPPED, S.RUNNING], SKIP),
    # all_done_setup_success (teardowns) with no setup upstream: as all_done.
    ("all_done_setup_success", [S.SUCCESS, S.FAILED, S.UPSTREAM_FAILED], RUN),
    ("all_done_setup_success", [S.SKIPPED, S.SKIPPED], RUN),
    ("all_done_setup_success", [S.FAILED, S.RUNNING], WAIT),
    # always: runs whatever the upstream tasks are doing.
    ("always", [S.RUNNING, S.NONE], RUN),
    ("always", [S.FAILED, S.SKIPPED], RUN),
]


@pytest.mark.parametrize(
    ("rule", "upstream", "expected"),
    CASES,
    ids=[f"{rule}-{'+'.join(s.value for s in up)}" for rule, up, _ in CASES],
)
def test_evaluate(rule: str, upstream: list[TaskState], expected: Verdict) -> None:
    assert evaluate(rule, upstream) is expected


# all_done_setup_success with setups among the upstream tasks: (all upstream, the setups).
SETUP_CASES: list[tuple[list[TaskState], list[TaskState], Verdict]] = [
    # The work failed, the setup succeeded: the teardown still cleans up.
    ([S.SUCCESS, S.FAILED], [S.SUCCESS], RUN),
    ([S.SUCCESS, S.UPSTREAM_FAILED], [S.SUCCESS], RUN),
    ([S.SUCCESS, S.RUNNING], [S.SUCCESS], WAIT),
    ([S.RUNNING, S.SUCCESS], [S.RUNNING], WAIT),
    # One of two setups succeeded: something may need cleaning up.
    ([S.SUCCESS, S.FAILED, S.UPSTREAM_FAILED], [S.SUCCESS, S.FAILED], RUN),
    ([S.SKIPPED, S.SUCCESS, S.SKIPPED], [S.SKIPPED, S.SUCCESS], RUN),
    # Every setup skipped: nothing was set up, so skip.
    ([S.SKIPPED, S.SKIPPED], [S.SKIPPED], SKIP),
    # No setup succeeded (failed, or some failed and the rest skipped): upstream_failed.
    ([S.FAILED, S.UPSTREAM_FAILED], [S.FAILED], UPSTREAM_FAILED),
    ([S.FAILED, S.SKIPPED, S.UPSTREAM_FAILED], [S.FAILED, S.SKIPPED], UPSTREAM_FAILED),
]


@pytest.mark.parametrize(
    ("upstream", "setups", "expected"),
    SETUP_CASES,
    ids=[
        f"{'+'.join(s.value for s in up)}-setups-{'+'.join(s.value for s in st)}"
        for up, st, _ in SETUP_CASES
    ],
)
def test_all_done_setup_success_reads_the_setups(
    upstream: list[TaskState], setups: list[TaskState], expected: Verdict
) -> None:
    assert evaluate("all_done_setup_success", upstream, setups) is expected


def test_the_table_covers_every_rule() -> None:
    assert {rule for rule, _, _ in CASES} == TRIGGER_RULES


@pytest.mark.parametrize("rule", sorted(TRIGGER_RULES))
def test_a_task_without_upstream_tasks_runs(rule: str) -> None:
    assert evaluate(rule, []) is RUN


@pytest.mark.parametrize("state", NOT_DONE)
def test_unfinished_upstream_states_are_not_done(state: TaskState) -> None:
    assert evaluate("all_done", [S.SUCCESS, state]) is WAIT


def test_upstream_may_be_any_iterable() -> None:
    assert evaluate("all_success", (s for s in [S.SUCCESS, S.SUCCESS])) is RUN


def test_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="no_such_rule"):
        evaluate("no_such_rule", [S.SUCCESS])
