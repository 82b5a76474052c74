"""A seeded random walk of lease keepers on real PostgreSQL: rounds of checks in random order,
kills, cut-off sessions (reconnecting in time or not), stalls, restarts as new jobs, DAGs
added, deactivated and reactivated. After every step the invariants hold:

- what a running scheduler believes it owns is exactly what the database says (so no two
  running schedulers believe they own one DAG; the column allows one owner anyway);
- after any successful check, every DAG's owner is a running job (a dead owner's DAGs go in
  the judge's own transaction);
- a job is declared lost only if its lock had been gone since an earlier round, and once some
  keeper settled for 3 s has seen it unlocked at two of its checks, it is lost and owns nothing;
- a deposed keeper finds all its DAGs taken and changes nothing;
- a round in which every running job checked and nothing moved has every active DAG owned
  and nobody above its share; such rounds keep coming (the walk settles between upsets).
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, update

from slipstream.scheduler.leases import Deposed
from slipstream.store import leases as leases_store
from slipstream.store.db import Database
from slipstream.store.tables import dags, scheduler_jobs
from tests.scheduler.lease_nodes import SECOND, T0, Node, terminate_session

pytestmark = pytest.mark.postgres

STEPS = 200
SETTLE_ROUNDS = 3  # the keeper's: 3 check intervals
GAP_ROUNDS = 3


@dataclass
class Walker:
    """A scheduler process in the walk, and what the walk knows of its keeper's memory."""

    node: Node
    stalled_until: int = 0  # no checks before this round; the lock stays held
    cut_until: int | None = None  # session ended; reconnects before its check in this round
    streak_start: int | None = None  # the keeper's connected-since, in rounds
    streak: list[int] = field(default_factory=list)
    last_check: int | None = None

    def checked(self, round_: int) -> None:
        if self.last_check is None or round_ - self.last_check > GAP_ROUNDS:
            self.streak_start, self.streak = round_, []
        self.streak.append(round_)
        self.last_check = round_

    def forget(self) -> None:
        self.streak_start, self.streak, self.last_check = None, [], None


class Walk:
    def __init__(self, db: Database, rng: random.Random) -> None:
        self.db = db
        self.rng = rng
        self.round = 0
        self.walkers: list[Walker] = []
        self.gone: dict[int, int] = {}  # job -> the round its lock went away, while gone
        self.dag_count = 0
        self.quiet_complete_rounds = 0
        self.declarations = 0
        self.depositions = 0

    @property
    def now(self) -> datetime:
        return T0 + self.round * SECOND

    # Reads ------------------------------------------------------------------------------

    def running_jobs(self) -> set[int]:
        with self.db.read() as conn:
            query = select(scheduler_jobs.c.id).where(scheduler_jobs.c.state == "running")
            return set(conn.execute(query).scalars())

    def owned_by(self, job_id: int) -> set[str]:
        with self.db.read() as conn:
            return set(leases_store.owned(conn, job_id))

    # Actions ----------------------------------------------------------------------------

    def spawn(self) -> None:
        self.walkers.append(Walker(Node(self.db, self.now)))

    def add_dag(self) -> None:
        dag_id = f"d{self.dag_count:03d}"
        self.dag_count += 1
        with self.db.write() as conn:
            conn.execute(
                insert(dags).values(dag_id=dag_id, fileloc="/d.py", tags=[], created_at=T0)
            )

    def toggle_dag(self) -> None:
        if not self.dag_count:
            return
        dag_id = f"d{self.rng.randrange(self.dag_count):03d}"
        with self.db.write() as conn:
            conn.execute(
                update(dags).where(dags.c.dag_id == dag_id).values(is_active=~dags.c.is_active)
            )

    def kill(self) -> None:
        walker = self.rng.choice(self.walkers)
        self.walkers.remove(walker)
        walker.node.kill()
        self.gone.setdefault(walker.node.job_id, self.round)

    def cut(self) -> None:
        candidates = [w for w in self.walkers if w.cut_until is None and w.node.listener.listening]
        if not candidates:
            return
        walker = self.rng.choice(candidates)
        terminate_session(self.db, walker.node.job_id)
        self.gone.setdefault(walker.node.job_id, self.round)
        # 0: reconnects before its next check, as a loop draining its readable session does.
        walker.cut_until = self.round + 1 + self.rng.choice([0, 0, 1, 2, 4])

    def stall(self) -> None:
        walker = self.rng.choice(self.walkers)
        until = self.round + 1 + self.rng.choice([1, 2, 5])
        walker.stalled_until = max(walker.stalled_until, until)

    def play_round(self) -> None:
        self.round += 1
        moved = False
        checked: set[int] = set()
        for walker in self.rng.sample(self.walkers, len(self.walkers)):
            if walker.stalled_until > self.round:
                continue
            if walker.cut_until is not None:
                if self.round < walker.cut_until:
                    continue
                walker.node.drain()  # its session is readable at last: reconnect and lock
                assert walker.node.listener.holds_liveness
                self.gone.pop(walker.node.job_id, None)
                walker.cut_until = None
            moved |= self.check(walker)
            checked.add(walker.node.job_id)
        running = self.running_jobs()
        if running and running <= checked and not moved:
            self.quiet_complete_rounds += 1
            self.assert_balanced(running)

    def check(self, walker: Walker) -> bool:
        node = walker.node
        job_id, believed = node.job_id, set(node.owns)
        before = self.owners()
        try:
            change = node.check(self.now)
        except Deposed:
            self.depositions += 1
            assert job_id not in self.running_jobs()
            assert self.owned_by(job_id) == set(), "a deposed job still owns DAGs"
            assert believed.isdisjoint({d for d, owner in self.owners().items() if owner == job_id})
            assert self.owners() == before, "a deposed keeper changed ownership"
            node.start_over(self.now)
            walker.forget()
            return True
        walker.checked(self.round)
        earlier = walker.streak[:-1]  # what the keeper remembers: this streak's checks
        for lost in change.declared_lost:
            self.declarations += 1
            assert lost in self.gone, f"job {lost} was declared lost while holding its lock"
            # The judge saw it unlocked at an earlier check of its own, a round or more ago.
            assert any(r > self.gone[lost] for r in earlier), f"job {lost} declared on one look"
        self.assert_no_orphans()
        self.assert_dead_are_gone(walker)
        return bool(change)

    # Invariants -------------------------------------------------------------------------

    def owners(self) -> dict[str, int | None]:
        with self.db.read() as conn:
            rows = conn.execute(select(dags.c.dag_id, dags.c.scheduler_job_id)).tuples()
            return dict(rows.all())

    def assert_no_orphans(self) -> None:
        with self.db.read() as conn:
            assert leases_store.orphaned_owners(conn) == set()

    def assert_dead_are_gone(self, walker: Walker) -> None:
        """A keeper settled for 3 s that saw a job unlocked at two of its checks in one
        streak has declared it (or found it declared), and nothing of it is left."""
        assert walker.streak_start is not None
        if self.round - walker.streak_start < SETTLE_ROUNDS:
            return
        running = self.running_jobs()
        for job_id, since in self.gone.items():
            seen = [r for r in walker.streak if r > since]
            if len(seen) >= 2:
                assert job_id not in running, f"job {job_id} unlocked since round {since}"
                assert self.owned_by(job_id) == set()

    def assert_beliefs(self) -> None:
        running = self.running_jobs()
        believed: dict[str, int] = {}
        for walker in self.walkers:
            node = walker.node
            if node.job_id not in running:
                continue  # deposed, and fenced: it will find out at its next check
            assert node.owns == self.owned_by(node.job_id), f"job {node.job_id}'s memory"
            for dag_id in node.owns:
                assert dag_id not in believed, f"{dag_id} believed owned twice"
                believed[dag_id] = node.job_id

    def assert_balanced(self, running: set[int]) -> None:
        with self.db.read() as conn:
            counts = leases_store.active_owners(conn)
            active = int(
                conn.execute(
                    select(func.count()).select_from(dags).where(dags.c.is_active.is_(True))
                ).scalar_one()
            )
        share = math.ceil(active / len(running))
        assert counts.get(None, 0) == 0, f"round {self.round}: active DAGs left unowned"
        for job_id in running:
            assert counts.get(job_id, 0) <= share, f"round {self.round}: job {job_id} above share"

    # The walk ---------------------------------------------------------------------------

    def step(self) -> None:
        actions = [
            (self.play_round, 6.0),
            (self.kill, 0.5 if self.walkers else 0.0),
            (self.spawn, 0.8 if len(self.walkers) < 4 else 0.0),
            (self.cut, 0.8 if self.walkers else 0.0),
            (self.stall, 0.5 if self.walkers else 0.0),
            (self.add_dag, 0.7),
            (self.toggle_dag, 0.4),
        ]
        action = self.rng.choices([a for a, _ in actions], [w for _, w in actions])[0]
        action()
        self.assert_beliefs()


@pytest.fixture
def walk(pg_db: Database, request: pytest.FixtureRequest) -> Iterator[Walk]:
    the_walk = Walk(pg_db, random.Random(request.param))
    yield the_walk
    for walker in the_walk.walkers:
        walker.node.listener.close()


@pytest.mark.parametrize("walk", [13, 2026], indirect=True)
def test_a_random_walk_keeps_the_lease_invariants(walk: Walk) -> None:
    for _ in range(12):
        walk.add_dag()
    for _ in range(3):
        walk.spawn()
    for _ in range(SETTLE_ROUNDS + 1):
        walk.play_round()
    for _ in range(STEPS):
        walk.step()
    # The walk did meet what it is about.
    assert walk.declarations >= 2
    assert walk.quiet_complete_rounds >= 10
    assert walk.round >= 80
    # And at the end, with everyone back and checking, it settles.
    if not walk.walkers:
        walk.spawn()
    for walker in walk.walkers:
        walker.stalled_until = 0
    for _ in range(8):
        walk.play_round()
        walk.assert_beliefs()
    running = walk.running_jobs()
    assert running == {w.node.job_id for w in walk.walkers}
    walk.assert_balanced(running)
    assert timedelta(0) < walk.now - T0
