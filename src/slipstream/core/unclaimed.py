"""What to do about tries queued for remote workers that no worker has claimed (the Celery
executor, design 3.5): publish them again, since a broker that restarted empty lost their
messages (a duplicate dies at the claim), or, once they have waited longer than the queued
timeout (Airflow's task_queued_timeout), fail them with a reason naming their queue, since
nobody consumes it."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from slipstream.core.records import TaskKey


@dataclass(frozen=True, slots=True)
class UnclaimedTry:
    key: TaskKey
    queue: str
    queued_at: datetime


@dataclass(frozen=True, slots=True)
class UnclaimedVerdict:
    republish: list[TaskKey] = field(default_factory=list)
    # (try, the reason it fails with)
    expire: list[tuple[TaskKey, str]] = field(default_factory=list)


def judge_unclaimed(
    tries: Collection[UnclaimedTry],
    *,
    now: datetime,
    republish_after: float,
    queued_timeout: float,
    published_at: Mapping[TaskKey, datetime],
    live_queues: Collection[str],
) -> UnclaimedVerdict:
    """`published_at`: when each try's message last went out (its queueing if not known);
    `live_queues`: what live workers consume, named in the reason."""
    verdict = UnclaimedVerdict()
    consumed = ", ".join(sorted(set(live_queues))) or "none (no worker is running)"
    for unclaimed in sorted(tries, key=lambda t: (t.queued_at, t.key)):
        if (now - unclaimed.queued_at).total_seconds() >= queued_timeout:
            verdict.expire.append(
                (
                    unclaimed.key,
                    f"no worker took it from queue {unclaimed.queue!r} within"
                    f" {queued_timeout:g} s; live workers consume: {consumed}",
                )
            )
            continue
        last = max(unclaimed.queued_at, published_at.get(unclaimed.key, unclaimed.queued_at))
        if (now - last).total_seconds() >= republish_after:
            verdict.republish.append(unclaimed.key)
    return verdict
