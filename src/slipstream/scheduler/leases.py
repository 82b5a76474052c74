"""The lease keeper: one scheduler's part in sharing DAGs with the others on PostgreSQL.

Every `check_seconds` (1 s), in a short transaction of its own, the keeper (design:
docs/design/scale-out.md, 2.3):

1. takes its fence (its own job row, `FOR NO KEY UPDATE`) and stops with `Deposed` if a judge
   has declared its job lost: whatever it decided would be someone else's by now;
2. declares lost each other running scheduler whose liveness lock is gone at two checks a
   second apart, or whose heartbeat is older than `lost_after_seconds` (core/leases.py:
   `judge`, which also says when a judge that just (re)connected may not judge yet);
3. claims every DAG of a dead owner (declared now, or earlier by another judge, or ended
   without handing its DAGs back), then unowned active DAGs up to its fair share
   (`ceil(active DAGs / live schedulers)`);
4. hands back what it holds above its share, quiet DAGs first (no run or try in flight, so
   the next owner adopts nothing running).

It returns what changed; the scheduler adopts what was claimed and forgets what was released
(part 2 of step 8). On a graceful stop, `release_all` hands everything back at once.

A dead owner's DAGs all go to the first keeper that sees them, beyond its share (the design
had the share bound them too): otherwise a peer that is alive but slow to check (a long pass)
would keep its share of them unscheduled, and the judge's one transaction would not be the
whole failover. The surplus goes back at the keeper's next check, quiet DAGs first, to peers
below their share; with two schedulers nothing moves twice.

PostgreSQL only: on SQLite one scheduler runs and owns everything (`check` refuses by name).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection

from slipstream.core.leases import Suspicion, fair_share, judge, to_claim, to_release
from slipstream.store import jobs as jobs_store
from slipstream.store import leases as leases_store
from slipstream.store import liveness


class Deposed(Exception):
    """This scheduler's job is no longer running (a judge declared it lost): it must drop
    its memory and start over as a new job."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            f"scheduler job {job_id} was declared lost by another scheduler; its DAGs are"
            " theirs now"
        )
        self.job_id = job_id


@dataclass(frozen=True, slots=True)
class LeaseChange:
    claimed: list[str]
    released: list[str]
    declared_lost: list[int]

    def __bool__(self) -> bool:
        return bool(self.claimed or self.released or self.declared_lost)


# A judge that has not checked for this many intervals may have missed a database outage: it
# starts its connected time again, as after a reconnect.
_GAP_INTERVALS = 3
# Lock verdicts wait this many intervals after (re)connecting: the others' control sessions
# reconnect once a second and lock again.
_SETTLE_INTERVALS = 3


class LeaseKeeper:
    """Claims, releases and judges for the scheduler job `job_id` (see the module's doc).

    Its memory is what it saw at earlier checks: which jobs were unlocked since when, and
    since when it has been connected without a gap. `interrupted()` forgets it, which the
    scheduler calls when a check fails or its control session reconnects."""

    def __init__(
        self, job_id: int, *, check_seconds: float = 1.0, lost_after_seconds: float
    ) -> None:
        if check_seconds <= 0:
            raise ValueError(f"check_seconds must be positive, not {check_seconds}")
        if lost_after_seconds <= 0:
            raise ValueError(f"lost_after_seconds must be positive, not {lost_after_seconds}")
        self.job_id = job_id
        self.check_interval = timedelta(seconds=check_seconds)
        self.lost_after = timedelta(seconds=lost_after_seconds)
        self._settle = self.check_interval * _SETTLE_INTERVALS
        self._suspicion = Suspicion()
        self._connected_since: datetime | None = None
        self._last_check: datetime | None = None

    def next_check_at(self) -> datetime | None:
        """When the next check is due (None: now, nothing checked yet)."""
        return None if self._last_check is None else self._last_check + self.check_interval

    def interrupted(self) -> None:
        """Forget what earlier checks saw: after a failed check or a reconnect they may be
        from before an outage, when everyone looked dead."""
        self._suspicion = Suspicion()
        self._connected_since = None
        self._last_check = None

    def check(self, conn: Connection, now: datetime) -> LeaseChange:
        """One lease check inside the caller's transaction (commit it at once: it holds this
        job's row, and rows of `dags`, until then). Raises `Deposed` if this job is lost."""
        liveness.require_postgresql(conn, "sharing DAGs between schedulers")
        if not leases_store.fence(conn, self.job_id):
            raise Deposed(self.job_id)
        if self._last_check is None or now - self._last_check > self.check_interval * (
            _GAP_INTERVALS
        ):
            self._connected_since = now
            self._suspicion = Suspicion()
        connected_since = self._connected_since or now
        connected_for = min(now - connected_since, liveness.server_uptime(conn))

        others = {
            job.id: job.latest_heartbeat
            for job in jobs_store.running_jobs(conn)
            if job.id != self.job_id
        }
        verdict = judge(
            heartbeats=others,
            unlocked=liveness.unlocked_jobs(conn, others),
            suspicion=self._suspicion,
            now=now,
            connected_for=connected_for,
            check_interval=self.check_interval,
            settle=self._settle,
            lost_after=self.lost_after,
        )
        declared = [
            job_id for job_id in sorted(verdict.dead) if liveness.declare_lost(conn, job_id, now)
        ]
        live = {self.job_id} | (set(others) - verdict.dead)

        counts = leases_store.active_owners(conn)
        mine = counts.get(self.job_id, 0)
        share = fair_share(sum(counts.values()), len(live))

        claimed = leases_store.claim(
            conn,
            self.job_id,
            dead_owners=leases_store.orphaned_owners(conn),
            want=to_claim(mine, share),
        )
        released: list[str] = []
        surplus = to_release(mine, share)
        if surplus:
            # What this check claimed (a dead owner's DAGs) stays until the next check: they
            # are counted then, and a DAG is never both claimed and released at once.
            taken = set(claimed)
            held = [
                dag_id
                for dag_id in leases_store.owned(conn, self.job_id, only_active=True)
                if dag_id not in taken
            ]
            quiet = leases_store.quiet(conn, held)
            busy = [dag_id for dag_id in held if dag_id not in set(quiet)]
            released = leases_store.release(conn, self.job_id, (quiet + busy)[:surplus])

        self._suspicion = verdict.suspicion
        self._last_check = now
        return LeaseChange(claimed=claimed, released=released, declared_lost=declared)

    def release_all(self, conn: Connection) -> list[str]:
        """Hand back every DAG (a graceful stop); a peer claims them at its next check."""
        return leases_store.release_all(conn, self.job_id)
