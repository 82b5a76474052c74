"""The decisions of DAG leases, without a database: who is dead, and how many DAGs to claim or
release. scheduler/leases.py reads the facts, asks these, and writes the answers.

Dead (design: docs/design/scale-out.md, 1.7 and 2.3): a running job whose liveness lock has
been missing for at least one check interval, seen at two checks (one look is not enough:
`pg_terminate_backend` frees a lock its holder takes again within milliseconds); or, failing
that, whose heartbeat is older than `lost_after`. A judge applies neither rule until it has
itself been connected long enough: after a database restart every session is new, and the
others need a moment (their control sessions reconnect once a second) to lock again, and
`lost_after` to heartbeat again.

Shares: each live scheduler aims at `ceil(active DAGs / live schedulers)`; it claims unowned
DAGs up to that (a dead owner's DAGs it takes all at once), and hands back what it holds above.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta


@dataclass(frozen=True, slots=True)
class Suspicion:
    """What one judge remembers between checks: the jobs it saw unlocked, since when."""

    unlocked_since: Mapping[int, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Verdict:
    dead: frozenset[int]
    suspicion: Suspicion


def judge(
    *,
    heartbeats: Mapping[int, datetime],
    unlocked: Collection[int],
    suspicion: Suspicion,
    now: datetime,
    connected_for: timedelta,
    check_interval: timedelta,
    settle: timedelta,
    lost_after: timedelta,
) -> Verdict:
    """Which of the other running jobs (`heartbeats`: id -> latest heartbeat) are dead now.

    `unlocked`: those whose liveness lock no session holds at this check. A job unlocked now
    and at an earlier check at least `check_interval` ago is dead; one seen locked is forgiven.
    Lock verdicts wait until this judge has been connected for `settle`; heartbeat verdicts
    until it has been connected for more than `lost_after`."""
    gone = set(unlocked) & set(heartbeats)
    since = {job_id: suspicion.unlocked_since.get(job_id, now) for job_id in sorted(gone)}
    dead: set[int] = set()
    if connected_for >= settle:
        dead |= {job_id for job_id, first in since.items() if now - first >= check_interval}
    if connected_for > lost_after:
        dead |= {job_id for job_id, beat in heartbeats.items() if now - beat > lost_after}
    remembered = {job_id: first for job_id, first in since.items() if job_id not in dead}
    return Verdict(dead=frozenset(dead), suspicion=Suspicion(remembered))


def fair_share(active_dags: int, live_schedulers: int) -> int:
    """How many active DAGs each live scheduler aims to own."""
    if live_schedulers < 1:
        raise ValueError(f"live_schedulers must be at least 1, not {live_schedulers}")
    return math.ceil(max(0, active_dags) / live_schedulers)


def to_claim(mine: int, share: int) -> int:
    """How many more DAGs to claim: up to the share."""
    return max(0, share - mine)


def to_release(mine: int, share: int) -> int:
    """How many owned DAGs to hand back: what is held above the share.

    No tolerance above it (the design's "share plus one"): with shares rounded up, a
    scheduler joining 10 DAGs held 5/5 gets a share of 4, and a tolerance of one would leave
    it nothing. Nor is one needed against DAGs bouncing: claims stop at the share, so a DAG
    released is never claimed back above it; only a change in the number of active DAGs or
    of live schedulers moves anything."""
    return max(0, mine - share)
