"""HealthService on real SQLite and PostgreSQL: every running process with its heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slipstream.clock import FrozenClock
from slipstream.services.health import DAG_PROCESSOR, SCHEDULER, WORKER, HealthService
from slipstream.store import jobs
from slipstream.store.db import Database

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_nothing_running_is_an_unhealthy_scheduler_and_no_dag_processor(db: Database) -> None:
    found = HealthService(db, clock=FrozenClock(NOW), lost_after_seconds=30).check()
    assert found.metadatabase_is_healthy
    assert not found.scheduler_is_healthy
    assert found.latest_scheduler_heartbeat is None
    assert found.dag_processor_is_healthy is None  # Airflow's null: none runs
    assert found.components == ()


def test_each_process_is_listed_with_its_heartbeat(db: Database) -> None:
    with db.write() as conn:
        scheduler = jobs.start_job(conn, hostname="a", pid=10, now=NOW - timedelta(seconds=5))
        processor = jobs.start_job(
            conn, hostname="a", pid=10, now=NOW - timedelta(seconds=40), job_type=jobs.DAG_PROCESSOR
        )
        worker = jobs.start_job(conn, hostname="a", pid=11, now=NOW, job_type=jobs.WORKER)
        ended = jobs.start_job(conn, hostname="a", pid=12, now=NOW, job_type=jobs.WORKER)
        jobs.end_job(conn, ended, NOW)
    found = HealthService(db, clock=FrozenClock(NOW), lost_after_seconds=30).check()
    assert found.scheduler_is_healthy
    assert found.latest_scheduler_heartbeat == NOW - timedelta(seconds=5)
    # The processor's heartbeat is 40 s old, past the 30 s after which it is taken for dead.
    assert found.dag_processor_is_healthy is False
    assert found.latest_dag_processor_heartbeat == NOW - timedelta(seconds=40)
    assert [(c.job_id, c.is_healthy) for c in found.of_kind(SCHEDULER)] == [(scheduler, True)]
    assert [(c.job_id, c.is_healthy) for c in found.of_kind(DAG_PROCESSOR)] == [(processor, False)]
    (listed,) = found.of_kind(WORKER)  # an ended worker is not listed
    assert (listed.job_id, listed.pid, listed.is_healthy) == (worker, 11, True)
    assert listed.latest_heartbeat == NOW


def test_an_unreachable_database_is_unhealthy_not_an_error() -> None:
    db = Database("postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=2")
    try:
        found = HealthService(db, clock=FrozenClock(NOW), lost_after_seconds=30).check()
    finally:
        db.dispose()
    assert not found.metadatabase_is_healthy
    assert not found.scheduler_is_healthy
