"""core.unclaimed: tries nobody claimed are published again after a while, and fail naming
their queue after the queued timeout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slipstream.core.records import TaskKey
from slipstream.core.unclaimed import UnclaimedTry, judge_unclaimed

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
A = TaskKey(1, "a", 1)
B = TaskKey(1, "b", 1)
C = TaskKey(2, "c", 3)


def waiting(key: TaskKey, seconds: float, queue: str = "default") -> UnclaimedTry:
    return UnclaimedTry(key, queue, NOW - timedelta(seconds=seconds))


def test_a_try_waiting_past_the_bound_is_published_again_once_per_bound() -> None:
    tries = [waiting(A, 31), waiting(B, 29)]
    verdict = judge_unclaimed(
        tries, now=NOW, republish_after=30, queued_timeout=600, published_at={}, live_queues=[]
    )
    assert (verdict.republish, verdict.expire) == ([A], [])
    again = judge_unclaimed(
        tries,
        now=NOW,
        republish_after=30,
        queued_timeout=600,
        published_at={A: NOW - timedelta(seconds=10)},
        live_queues=[],
    )
    assert again.republish == []


def test_a_try_past_the_queued_timeout_fails_naming_its_queue_and_the_live_ones() -> None:
    verdict = judge_unclaimed(
        [waiting(C, 601, "gpu"), waiting(A, 40)],
        now=NOW,
        republish_after=30,
        queued_timeout=600,
        published_at={},
        live_queues=["etl", "default", "etl"],
    )
    assert verdict.republish == [A]
    assert verdict.expire == [
        (C, "no worker took it from queue 'gpu' within 600 s; live workers consume: default, etl")
    ]


def test_with_no_worker_the_reason_says_so() -> None:
    verdict = judge_unclaimed(
        [waiting(A, 5, "special")],
        now=NOW,
        republish_after=30,
        queued_timeout=2.5,
        published_at={},
        live_queues=[],
    )
    ((key, reason),) = verdict.expire
    assert key == A
    assert reason == (
        "no worker took it from queue 'special' within 2.5 s; live workers consume: none"
        " (no worker is running)"
    )
