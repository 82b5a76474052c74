"""store.cleanup's tables pruned by age alone, on real SQLite and PostgreSQL: old rows go in
batches, newer ones stay, and so do the rows each table's rule keeps however old (a job still
running, a sign-in or token still valid, a DAG version in use or current)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Table, func, select

from slipstream.auth.tokens import TokenKind
from slipstream.core.cleanup import Cutoff
from slipstream.core.records import RunType, User
from slipstream.store import assets as assets_store
from slipstream.store import callbacks, import_errors, jobs, tokens, users, web_sessions
from slipstream.store import cleanup as store
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store.db import Database
from slipstream.store.event_log import record_event
from slipstream.store.tables import (
    api_tokens,
    asset_events,
    callback_requests,
    dag_versions,
    log,
    run_asset_events,
    scheduler_jobs,
)
from slipstream.store.tables import import_errors as import_errors_table
from slipstream.store.tables import web_sessions as web_sessions_table
from tests.store.conftest import AddDag, dag_structure

OLD = datetime(2025, 6, 1, tzinfo=UTC)
CUTOFF = datetime(2026, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 2, 1, tzinfo=UTC)
NEW = NOW - timedelta(days=1)


def count(db: Database, table: Table) -> int:
    with db.read() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def prune(db: Database, table: Table, *, before: datetime = CUTOFF, limit: int = 100) -> int:
    """Delete in batches of `limit` until none is left; returns how many rows went."""
    total = 0
    while True:
        with db.write() as conn:
            pruned = store.delete_by_age(conn, table.name, Cutoff.of(before), NOW, limit)
        total += pruned.rows
        if pruned.rows < limit:
            return total


def counted(db: Database, table: Table, before: datetime = CUTOFF) -> int:
    with db.read() as conn:
        return store.count_by_age(conn, table.name, Cutoff.of(before), NOW)


def test_audit_entries_older_than_the_cutoff_go_in_batches(db: Database) -> None:
    with db.write() as conn:
        for n in range(5):
            record_event(conn, "trigger", OLD + timedelta(minutes=n), dag_id="etl")
        record_event(conn, "trigger", NEW, dag_id="etl")
    assert counted(db, log) == 5
    assert prune(db, log, limit=2) == 5
    with db.read() as conn:
        assert conn.execute(select(log.c.dttm)).scalars().all() == [NEW]


def test_jobs_go_once_ended(db: Database) -> None:
    with db.write() as conn:
        ended = jobs.start_job(conn, hostname="h", pid=1, now=OLD)
        jobs.end_job(conn, ended, OLD)
        lost = jobs.start_job(conn, hostname="h", pid=2, now=OLD)
        jobs.end_job(conn, lost, OLD, state=jobs.LOST)
        jobs.start_job(conn, hostname="h", pid=3, now=OLD)  # silent, not yet found dead
        recent = jobs.start_job(conn, hostname="h", pid=4, now=NEW)
        jobs.end_job(conn, recent, NEW)
    assert prune(db, scheduler_jobs) == 2
    with db.read() as conn:
        left = conn.execute(select(scheduler_jobs.c.pid).order_by(scheduler_jobs.c.pid))
        assert left.scalars().all() == [3, 4]


def _user(conn: Connection) -> User:
    return users.insert_user(
        conn,
        username="ada",
        email="ada@example.com",
        first_name="",
        last_name="",
        password_hash="x",
        roles=["Admin"],
        now=OLD,
    )


def test_sessions_and_tokens_go_once_they_no_longer_work(db: Database) -> None:
    future = NOW + timedelta(days=365)
    with db.write() as conn:
        user = _user(conn)
        for n, expires in enumerate((OLD, NEW, NOW + timedelta(days=1))):
            web_sessions.insert_session(
                conn, session_hash=f"s{n}", user=user, now=OLD, expires_at=expires
            )
        tokens.insert_token(
            conn,
            user=user,
            name="expired",
            kind=TokenKind.API,
            token_hash="t1",
            now=OLD,
            expires_at=OLD,
        )
        tokens.insert_token(
            conn,
            user=user,
            name="revoked",
            kind=TokenKind.API,
            token_hash="t2",
            now=OLD,
            expires_at=None,
        )
        tokens.revoke(conn, user.id, "revoked", OLD)
        tokens.insert_token(
            conn,
            user=user,
            name="forever",
            kind=TokenKind.API,
            token_hash="t3",
            now=OLD,
            expires_at=None,
        )
        tokens.insert_token(
            conn,
            user=user,
            name="valid",
            kind=TokenKind.API,
            token_hash="t4",
            now=OLD,
            expires_at=NOW + timedelta(days=1),
        )
    # A cutoff in the future still spares what works now.
    assert prune(db, web_sessions_table, before=future) == 2
    assert prune(db, api_tokens, before=future) == 2
    with db.read() as conn:
        assert conn.execute(
            select(api_tokens.c.name).order_by(api_tokens.c.id)
        ).scalars().all() == [
            "forever",
            "valid",
        ]
    assert count(db, web_sessions_table) == 1


def test_import_errors_and_asset_events_go_by_their_timestamp(
    db: Database, add_dag: AddDag
) -> None:
    dag = add_dag("consumer")
    with db.write() as conn:
        import_errors.record(conn, "/dags/old.py", "Traceback", OLD)
        import_errors.record(conn, "/dags/new.py", "Traceback", NEW)
        old_event = assets_store.record_event(
            conn, uri="s3://a", extra={}, timestamp=OLD, source_dag_id="producer"
        )
        assets_store.record_event(conn, uri="s3://a", extra={}, timestamp=NEW)
        run = runs_store.insert_run(
            conn,
            dag_id=dag.dag_id,
            run_id="asset_triggered__1",
            version_id=dag.version_id,
            run_type=RunType.ASSET_TRIGGERED,
            logical_date=OLD,
            data_interval=(OLD, OLD),
            conf={},
            now=OLD,
        )
        assert assets_store.consume(conn, dag.dag_id, ["s3://a"], run.id) == [
            old_event.id,
            old_event.id + 1,
        ]
    assert prune(db, import_errors_table) == 1
    with db.read() as conn:
        excluded = Cutoff.of(CUTOFF, exclude_dag_ids=["producer"])
        assert store.count_by_age(conn, asset_events.name, excluded, NOW) == 0
    with db.write() as conn:
        pruned = store.delete_by_age(conn, asset_events.name, Cutoff.of(CUTOFF), NOW, 10)
    assert (pruned.rows, pruned.with_them) == (1, (("run_asset_events", 1),))
    assert count(db, asset_events) == count(db, run_asset_events) == 1
    assert count(db, import_errors_table) == 1


def test_callback_requests_go_by_age(db: Database, add_dag: AddDag) -> None:
    dag = add_dag("etl")
    with db.write() as conn:
        run = runs_store.insert_run(
            conn,
            dag_id=dag.dag_id,
            run_id="manual__1",
            version_id=dag.version_id,
            run_type=RunType.MANUAL,
            logical_date=OLD,
            data_interval=(OLD, OLD),
            conf={},
            now=OLD,
        )
        for at in (OLD, NEW):
            callbacks.add(
                conn,
                run_pk=run.id,
                kind="dag_failure",
                task_id="",
                try_number=0,
                error=None,
                reason=None,
                now=at,
            )
    with db.read() as conn:
        other_dag = Cutoff.of(CUTOFF, dag_ids=["other"])
        assert store.count_by_age(conn, callback_requests.name, other_dag, NOW) == 0
    assert prune(db, callback_requests) == 1
    assert count(db, callback_requests) == 1


def test_dag_versions_go_unless_current_newest_or_used(db: Database) -> None:
    versions: list[int] = []
    with db.write() as conn:
        for n in range(4):
            structure = dag_structure("etl", [{"task_id": f"t{n}"}])
            record = dags_store.upsert_parsed(
                conn, structure, f"hash-{n}", "source", paused_at_creation=False, now=OLD
            )
            assert record.version_id is not None
            versions.append(record.version_id)
        runs_store.insert_run(
            conn,
            dag_id="etl",
            run_id="manual__1",
            version_id=versions[1],
            run_type=RunType.MANUAL,
            logical_date=OLD,
            data_interval=(OLD, OLD),
            conf={},
            now=OLD,
        )
    assert prune(db, dag_versions, before=NOW) == 2  # the first and the third
    with db.read() as conn:
        left = conn.execute(select(dag_versions.c.id).order_by(dag_versions.c.id))
        assert left.scalars().all() == [versions[1], versions[3]]


def test_kept_runs_are_what_scheduling_continues_from(db: Database, add_dag: AddDag) -> None:
    dag = add_dag("consumer")

    def run(run_id: str, run_type: RunType, queued: datetime, interval_end: datetime) -> int:
        with db.write() as conn:
            return runs_store.insert_run(
                conn,
                dag_id=dag.dag_id,
                run_id=run_id,
                version_id=dag.version_id,
                run_type=run_type,
                logical_date=interval_end - timedelta(days=1),
                data_interval=(interval_end - timedelta(days=1), interval_end),
                conf={},
                now=queued,
            ).id

    hour = timedelta(hours=1)
    consumers = []
    for n in range(2):
        with db.write() as conn:
            assets_store.record_event(conn, uri="s3://a", extra={}, timestamp=OLD + n * hour)
        pk = run(f"asset_triggered__{n}", RunType.ASSET_TRIGGERED, OLD + n * hour, OLD)
        with db.write() as conn:
            assert len(assets_store.consume(conn, dag.dag_id, ["s3://a"], pk)) == 1
        consumers.append(pk)
    # The later interval started first (a catchup run), the earlier one last (a backfill).
    later_interval = run("scheduled__2", RunType.SCHEDULED, OLD + 2 * hour, OLD + 10 * hour)
    last_started = run("backfill__1", RunType.BACKFILL, OLD + 3 * hour, OLD + 5 * hour)
    run("manual__1", RunType.MANUAL, OLD + 4 * hour, OLD + 20 * hour)
    with db.read() as conn:
        kept = store.kept_runs(conn)
    assert kept == {consumers[1], later_interval, last_started}
