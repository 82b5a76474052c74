"""scheduler.leases on real PostgreSQL: keepers, each with a job row and a real control session
holding its liveness lock, share DAGs, notice a killed peer within two checks and take its
DAGs, forgive a terminated session that reconnects, depose a peer cut off for longer, and keep
jobs declared lost by their heartbeat only by a judge that watched long enough, and check at
once without ever sharing a DAG (the random walk is test_leases_walk.py).

Time is a frozen clock stepped a second per round (the checks' `now`); the locks, the sessions
and the SQL are real.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert
from sqlalchemy import select as sql_select
from sqlalchemy.exc import DBAPIError

from slipstream.errors import ConfigError
from slipstream.scheduler.leases import Deposed, LeaseChange, LeaseKeeper
from slipstream.store import jobs as jobs_store
from slipstream.store.db import Database, is_transient
from slipstream.store.tables import dag_versions, runs, scheduler_jobs
from tests.scheduler.lease_nodes import (
    LOST_AFTER,
    SECOND,
    T0,
    Node,
    add_dags,
    ids,
    job_state,
    owners,
    terminate_session,
    wait_unlocked,
)


@pytest.fixture
def nodes(pg_db: Database) -> Iterator[list[Node]]:
    made: list[Node] = []
    yield made
    for node in made:
        node.listener.close()


def start(pg_db: Database, made: list[Node], now: datetime = T0) -> Node:
    node = Node(pg_db, now)
    made.append(node)
    return node


def round_of(group: Sequence[Node], now: datetime) -> list[LeaseChange]:
    return [node.check(now) for node in group]


@pytest.mark.postgres
def test_two_keepers_split_ten_dags_and_a_third_gets_a_share(
    pg_db: Database, nodes: list[Node]
) -> None:
    add_dags(pg_db, ids("d", 10))
    a, b = start(pg_db, nodes), start(pg_db, nodes)
    now = T0
    round_of([a, b], now)
    assert (len(a.owns), len(b.owns)) == (5, 5)
    assert a.owns | b.owns == set(ids("d", 10))
    # Most of each one's DAGs have a run in flight: those are released last.
    with pg_db.write() as conn:
        version = conn.execute(
            insert(dag_versions)
            .values(dag_id="d000", version_hash="h", structure={}, created_at=T0)
            .returning(dag_versions.c.id)
        ).scalar_one()
        for dag_id in sorted(a.owns)[:4] + sorted(b.owns)[:4]:  # 4 of each one's 5
            conn.execute(
                insert(runs).values(
                    dag_id=dag_id,
                    run_id="r",
                    state="running",
                    run_type="manual",
                    conf={},
                    queued_at=T0,
                    version_id=version,
                    updated_at=T0,
                )
            )
    quiet = (a.owns - set(sorted(a.owns)[:4])) | (b.owns - set(sorted(b.owns)[:4]))
    c = start(pg_db, nodes, now)
    released: list[str] = []
    for _ in range(3):
        now += SECOND
        for change in round_of([a, b, c], now):
            released += change.released
    # Shares of ceil(10 / 3) = 4: one each from the first two, to the newcomer, and the
    # quiet one each time, not one with a run in flight.
    assert sorted(len(node.owns) for node in (a, b, c)) == [2, 4, 4]
    assert set(released) == quiet
    assert c.owns == quiet
    for node in (a, b, c):
        assert node.owned_in_db() == node.owns
    # Settled: nothing moves any more.
    now += SECOND
    assert not any(round_of([a, b, c], now))


@pytest.mark.postgres
def test_a_killed_keeper_is_declared_lost_at_the_second_check_and_its_dags_adopted(
    pg_db: Database, nodes: list[Node]
) -> None:
    add_dags(pg_db, ids("d", 12))
    a, b, c = (start(pg_db, nodes) for _ in range(3))
    now = T0
    for _ in range(4):  # past the judges' settling time
        round_of([a, b, c], now)
        now += SECOND
    assert sorted(len(node.owns) for node in (a, b, c)) == [4, 4, 4]
    victim = set(a.owns)
    a.kill()
    first = round_of([b, c], now)
    assert not any(change.declared_lost for change in first)  # one look is not enough
    assert job_state(pg_db, a.job_id) == "running"
    now += SECOND
    second = round_of([b, c], now)
    assert [change.declared_lost for change in second] == [[a.job_id], []]
    assert job_state(pg_db, a.job_id) == "lost"
    # The judge took all of the dead one's DAGs in the same transaction: none was orphaned.
    assert set(second[0].claimed) == victim
    assert set(owners(pg_db).values()) == {b.job_id, c.job_id}
    # Then the surplus goes to the peer below its share: 6 / 6.
    now += SECOND
    round_of([b, c], now)
    now += SECOND
    round_of([b, c], now)
    assert (len(b.owns), len(c.owns)) == (6, 6)
    for node in (b, c):
        assert node.owned_in_db() == node.owns


@pytest.mark.postgres
def test_a_process_killed_with_sigkill_loses_its_dags_within_two_checks(
    pg_db: Database, nodes: list[Node]
) -> None:
    add_dags(pg_db, ids("d", 10))
    survivor = start(pg_db, nodes)
    now = T0
    for _ in range(4):
        survivor.check(now)
        now += SECOND
    with pg_db.write() as conn:
        victim_job = jobs_store.start_job(conn, hostname="elsewhere", pid=4242, now=now)
    # A real scheduler process: its own control session and keeper, claims its share, waits.
    child = (
        "import sys, time\n"
        "from datetime import datetime\n"
        "from slipstream.store.db import Database\n"
        "from slipstream.store.notify import PgHintListener\n"
        "from slipstream.scheduler.leases import LeaseKeeper\n"
        "db, job = Database(sys.argv[1]), int(sys.argv[2])\n"
        "now = datetime.fromisoformat(sys.argv[3])\n"
        "listener = PgHintListener(db.url, liveness_job_id=job)\n"
        "with db.write() as conn:\n"
        "    change = LeaseKeeper(job, lost_after_seconds=30).check(conn, now)\n"
        "print(','.join(change.claimed), flush=True)\n"
        "time.sleep(120)\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", child, pg_db.url, str(victim_job), now.isoformat()],
        stdout=subprocess.PIPE,
        text=True,
    ) as victim:
        try:
            assert victim.stdout is not None
            # 10 DAGs, 2 live schedulers, the survivor holding all: nothing for the newcomer
            # until the survivor hands half back.
            assert victim.stdout.readline().strip() == ""
            survivor.check(now)
            assert len(survivor.owns) == 5
            now += SECOND
            assert survivor.check(now).released == []
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
        finally:
            victim.kill()
    assert set(owners(pg_db).values()) == {survivor.job_id, None}
    # Its share was handed back but the victim died before claiming it: the survivor takes
    # the free DAGs at its share of 5, then all of them once the victim is declared lost.
    wait_unlocked(pg_db, victim_job)
    now += SECOND
    assert survivor.check(now).declared_lost == []
    now += SECOND
    assert survivor.check(now).declared_lost == [victim_job]
    assert survivor.owns == set(ids("d", 10)) == survivor.owned_in_db()


@pytest.mark.postgres
def test_a_terminated_session_that_reconnects_in_time_is_not_declared_lost(
    pg_db: Database, nodes: list[Node]
) -> None:
    add_dags(pg_db, ids("d", 6))
    a, b = start(pg_db, nodes), start(pg_db, nodes)
    now = T0
    for _ in range(4):
        round_of([a, b], now)
        now += SECOND
    held = set(a.owns)
    terminate_session(pg_db, a.job_id)
    assert b.check(now).declared_lost == []  # sees a unlocked: a suspect
    a.check(now)  # a's loop drains its session: reconnected, locked again
    assert a.listener.holds_liveness
    for _ in range(3):
        now += SECOND
        assert not any(change.declared_lost for change in round_of([b, a], now))
    assert job_state(pg_db, a.job_id) == "running"
    assert a.owns == held == a.owned_in_db()


@pytest.mark.postgres
def test_a_keeper_cut_off_for_two_checks_is_deposed_and_writes_nothing(
    pg_db: Database, nodes: list[Node]
) -> None:
    add_dags(pg_db, ids("d", 6))
    a, b = start(pg_db, nodes), start(pg_db, nodes)
    now = T0
    for _ in range(4):
        round_of([a, b], now)
        now += SECOND
    # a's session is ended and a does not get to reconnect (cut off, or stuck) for 2 checks.
    terminate_session(pg_db, a.job_id)
    b.check(now)
    now += SECOND
    assert b.check(now).declared_lost == [a.job_id]
    assert b.owns == set(ids("d", 6))
    before = owners(pg_db)
    add_dags(pg_db, ["new"])  # something a would claim if it could
    with pytest.raises(Deposed, match=f"scheduler job {a.job_id} was declared lost"):
        a.check(now)
    assert owners(pg_db) == {**before, "new": None}
    with pg_db.read() as conn:
        row = conn.execute(sql_select(scheduler_jobs).where(scheduler_jobs.c.id == a.job_id)).one()
    assert (row.state, row.latest_heartbeat) == ("lost", now - 2 * SECOND)  # its heartbeat too
    # It starts over as a new job and gets a share back.
    a.start_over(now)
    for _ in range(3):
        now += SECOND
        round_of([b, a], now)
    assert (len(a.owns), len(b.owns)) == (3, 4)
    assert a.owned_in_db() == a.owns


@pytest.mark.postgres
def test_a_frozen_keeper_is_declared_lost_by_its_heartbeat_only_by_a_judge_connected_long_enough(
    pg_db: Database, nodes: list[Node]
) -> None:
    add_dags(pg_db, ids("d", 4))
    frozen, old = start(pg_db, nodes), start(pg_db, nodes)
    now = T0
    round_of([frozen, old], now)
    # `frozen` holds its lock (its process is stopped, its session alive) but beats no more.
    late = start(pg_db, nodes, T0 + 20 * SECOND)
    for _ in range(int(LOST_AFTER)):
        now += SECOND
        assert old.check(now).declared_lost == []
        if now >= T0 + 20 * SECOND:
            assert late.check(now).declared_lost == []
    now += SECOND  # the heartbeat is 31 s old
    assert late.check(now).declared_lost == []  # connected for 11 s only
    assert old.check(now).declared_lost == [frozen.job_id]  # connected for 31 s
    assert job_state(pg_db, frozen.job_id) == "lost"


@pytest.mark.postgres
def test_a_fresh_judge_does_not_declare_a_stale_heartbeat_it_has_not_watched(
    pg_db: Database, nodes: list[Node]
) -> None:
    frozen = start(pg_db, nodes)
    frozen.check(T0)
    now = T0 + timedelta(seconds=LOST_AFTER * 2)
    judge = start(pg_db, nodes, now)
    # As after a database outage: every heartbeat is old, and every beating peer deserves
    # lost_after to beat again before a judge that just arrived gives up on it.
    for _ in range(int(LOST_AFTER) + 1):
        assert judge.check(now).declared_lost == []
        now += SECOND
    assert judge.check(now).declared_lost == [frozen.job_id]


@pytest.mark.postgres
def test_a_judge_back_from_a_gap_lets_the_others_lock_again_first(
    pg_db: Database, nodes: list[Node]
) -> None:
    a, b = start(pg_db, nodes), start(pg_db, nodes)
    now = T0
    for _ in range(4):
        round_of([a, b], now)
        now += SECOND
    b.kill()
    # a checked nothing for 10 s (a database outage, a stop): what it saw before is stale,
    # and the others' sessions may be reconnecting right now.
    now += 10 * SECOND
    verdicts = []
    for _ in range(4):
        verdicts.append(a.check(now).declared_lost)
        now += SECOND
    assert verdicts == [[], [], [], [b.job_id]]


@pytest.mark.postgres
def test_interrupted_forgets_suspects(pg_db: Database, nodes: list[Node]) -> None:
    a, b = start(pg_db, nodes), start(pg_db, nodes)
    now = T0
    for _ in range(4):
        round_of([a, b], now)
        now += SECOND
    b.kill()
    a.check(now)
    a.keeper.interrupted()  # a failed check, or its control session reconnected
    declared = []
    for _ in range(4):
        now += SECOND
        declared.append(a.check(now).declared_lost)
    assert declared == [[], [], [], [b.job_id]]


@pytest.mark.postgres
def test_a_graceful_stop_hands_the_dags_to_a_peer_at_its_next_check(
    pg_db: Database, nodes: list[Node]
) -> None:
    add_dags(pg_db, ids("d", 8))
    a, b = start(pg_db, nodes), start(pg_db, nodes)
    round_of([a, b], T0)
    handed = a.stop()
    assert set(handed) == a.owns and len(handed) == 4
    change = b.check(T0 + SECOND)
    assert set(change.claimed) == set(handed)
    assert b.owned_in_db() == set(ids("d", 8))


@pytest.mark.postgres
def test_keepers_checking_at_once_never_share_a_dag(pg_db: Database, nodes: list[Node]) -> None:
    add_dags(pg_db, ids("d", 30))
    group = [start(pg_db, nodes) for _ in range(3)]
    errors: list[BaseException] = []
    for n in range(8):
        barrier = threading.Barrier(len(group))
        now = T0 + n * SECOND

        def check(node: Node, at: datetime = now, gate: threading.Barrier = barrier) -> None:
            try:
                gate.wait()
                node.check(at)
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=check, args=(node,)) for node in group]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert errors == []
        beliefs = [node.owns for node in group]
        for i, mine in enumerate(beliefs):
            for theirs in beliefs[i + 1 :]:
                assert not mine & theirs
        for node in group:
            assert node.owned_in_db() == node.owns
    assert sorted(len(node.owns) for node in group) == [10, 10, 10]


@pytest.mark.postgres
def test_two_keepers_judging_each_other_at_once_leave_exactly_one_standing(
    pg_db: Database, nodes: list[Node]
) -> None:
    add_dags(pg_db, ids("d", 4))
    a, b = start(pg_db, nodes), start(pg_db, nodes)
    now = T0
    for _ in range(4):
        round_of([a, b], now)
        now += SECOND
    # Each loses its session and does not reconnect: each sees the other unlocked.
    terminate_session(pg_db, a.job_id)
    terminate_session(pg_db, b.job_id)
    for node in (a, b):
        node.check(now, drain=False)
    now += SECOND
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def judge(node: Node) -> None:
        try:
            with pg_db.write() as conn:
                # Both hold their own rows (a pass's heartbeat, the fence) before either
                # declares the other: each declaration waits for the other's transaction.
                jobs_store.heartbeat(conn, node.job_id, now)
                barrier.wait()
                node.owns |= set(node.keeper.check(conn, now).claimed)
            outcomes[node.job_id] = "checked"
        except Deposed:
            outcomes[node.job_id] = "deposed"
        except DBAPIError as exc:  # the deadlock victim, rolled back
            assert is_transient(exc), exc
            outcomes[node.job_id] = "deadlock"

    threads = [threading.Thread(target=judge, args=(node,)) for node in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    states = {job_state(pg_db, node.job_id) for node in (a, b)}
    assert states == {"running", "lost"}
    (winner,) = (node for node in (a, b) if job_state(pg_db, node.job_id) == "running")
    (loser,) = (node for node in (a, b) if node is not winner)
    assert outcomes[winner.job_id] == "checked"
    # PostgreSQL finds the deadlock and aborts one; the other declares it and goes on.
    assert outcomes[loser.job_id] == "deadlock"
    with pytest.raises(Deposed):
        loser.check(now + SECOND, drain=False)  # trying again: fenced out
    assert winner.owned_in_db() == set(ids("d", 4)) == winner.owns


def test_sqlite_is_refused_by_name(sqlite_db: Database) -> None:
    keeper = LeaseKeeper(1, lost_after_seconds=30)
    with (
        sqlite_db.write() as conn,
        pytest.raises(ConfigError, match="sharing DAGs between schedulers needs PostgreSQL"),
    ):
        keeper.check(conn, T0)


def test_bad_intervals_are_refused() -> None:
    with pytest.raises(ValueError, match="check_seconds must be positive"):
        LeaseKeeper(1, check_seconds=0, lost_after_seconds=30)
    with pytest.raises(ValueError, match="lost_after_seconds must be positive"):
        LeaseKeeper(1, lost_after_seconds=-1)
