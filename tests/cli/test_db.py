"""`slipstream db clean|check|check-migrations` in-process, on real SQLite and PostgreSQL
databases whose runs a real scheduler made (stepped on a frozen clock)."""

from __future__ import annotations

import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from slipstream.cli.main import cli
from slipstream.services.event_log import EventLogService
from slipstream.store.db import Database
from slipstream.store.schema import head_revision, migrate
from tests.conftest import PG_SERVER, drop_pg_database, pg_url
from tests.scheduler.conftest import Harness, harness
from tests.services.test_db_cleanup import ETL, rows_of, run_etl, run_folder

__all__ = ["harness"]  # the scheduler tests' fixture: a real scheduler, stepped


def invoke(harness: Harness, *args: str, stdin: str | None = None) -> Result:
    env = {
        "SLIPSTREAM_HOME": str(harness.settings.home),
        "SLIPSTREAM_LOAD_EXAMPLES": "false",
        "SLIPSTREAM_DATABASE_URL": harness.db.url,
    }
    return CliRunner().invoke(cli, list(args), env=env, input=stdin, catch_exceptions=False)


def on_url(url: str, *args: str, home: Path) -> Result:
    env = {"SLIPSTREAM_HOME": str(home), "SLIPSTREAM_DATABASE_URL": url}
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


def etl_runs(harness: Harness) -> list[str]:
    return [run.run_id for run in harness.runs.list_runs("etl", limit=None)[0]]


def test_clean_deletes_old_runs_and_their_logs_and_is_audited(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    old = run_etl(harness)
    harness.clock.advance(timedelta(days=10))
    new = run_etl(harness)
    cutoff = (harness.clock.now() - timedelta(days=5)).replace(tzinfo=None).isoformat()

    result = invoke(
        harness, "db", "clean", "--clean-before-timestamp", cutoff, "--skip-archive", "-y"
    )
    assert result.exit_code == 0, result.output
    assert "dag_run (runs): 1 row deleted in 1 batch" in result.output
    assert "xcom (xcoms): 2 rows deleted" in result.output
    assert "log (log): 1 row deleted" in result.output
    assert f"Data prior to {cutoff}+00:00 is purged" in result.output  # naive: UTC
    assert etl_runs(harness) == [new.run_id]
    assert rows_of(harness, old) == dict.fromkeys(rows_of(harness, old), 0)
    assert not run_folder(harness, old).exists()
    assert (run_folder(harness, new) / "flaky" / "1.log").is_file()

    entries, _ = EventLogService(harness.db).list_events(descending=True, limit=1)
    assert entries[0].event == "cli_cleanup_tables"
    assert entries[0].owner
    assert entries[0].extra is not None and '"dag_run": 1' in entries[0].extra


def test_a_dry_run_counts_and_changes_nothing(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    old = run_etl(harness)
    harness.clock.advance(timedelta(days=10))
    cutoff = harness.clock.now().isoformat()
    result = invoke(
        harness, "db", "clean", "--clean-before-timestamp", cutoff, "--tables", "dag_run,log",
        "--dry-run",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Performing dry run" in result.output
    assert (
        "dag_run (runs): 1 row would be deleted, with 2 task_instances, 3 task_tries, 2 xcoms"
        in result.output
    )
    assert "log (log): 1 row would be deleted" in result.output
    assert etl_runs(harness) == [old.run_id]
    assert run_folder(harness, old).is_dir()
    entries, _ = EventLogService(harness.db).list_events(descending=True, limit=1)
    assert entries[0].event == "cli_cleanup_tables"
    assert entries[0].extra is not None and '"dry_run": true' in entries[0].extra


def test_it_asks_before_deleting(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    run_etl(harness)
    harness.clock.advance(timedelta(days=10))
    args = ("db", "clean", "--clean-before-timestamp", harness.clock.now().isoformat())
    refused = invoke(harness, *args, "--skip-archive", stdin="yes\n")
    assert refused.exit_code == 1
    assert "Enter 'delete rows'" in refused.output
    assert "User did not confirm; exiting." in refused.output
    assert len(etl_runs(harness)) == 1
    agreed = invoke(harness, *args, "--skip-archive", stdin="delete rows\n")
    assert agreed.exit_code == 0, agreed.output
    assert etl_runs(harness) == []


def test_batches_of_one_with_verbose(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    for _ in range(3):
        run_etl(harness)
    harness.clock.advance(timedelta(days=10))
    result = invoke(
        harness, "db", "clean", "--clean-before-timestamp", harness.clock.now().isoformat(),
        "-t", "dag_run", "--batch-size", "1", "--skip-archive", "-y", "-v",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "dag_run: table runs, age from start_date, else queued_at; never deleted:" in (
        result.output
    )
    assert [line for line in result.output.splitlines() if ": batch " in line] == [
        "dag_run: batch 1: 1 row",
        "dag_run: batch 2: 1 row",
        "dag_run: batch 3: 1 row",
    ]
    assert "dag_run (runs): 3 rows deleted in 3 batches" in result.output
    assert etl_runs(harness) == []


def test_bad_input_is_refused_before_anything_is_deleted(harness: Harness) -> None:
    harness.write_dag("etl", ETL)
    run_etl(harness)
    harness.clock.advance(timedelta(days=10))
    now = harness.clock.now().isoformat()
    clean = ("db", "clean", "-y", "--skip-archive")
    cases = [
        ((*clean, "--clean-before-timestamp", now, "--tables", "dag_run,runs"), "'runs'"),
        ((*clean, "--clean-before-timestamp", now, "--tables", ","), "--tables names nothing"),
        ((*clean, "--clean-before-timestamp", "last tuesday"), "not an ISO 8601 date"),
        ((*clean, "--clean-before-timestamp", now, "--batch-size", "0"), "--batch-size"),
        (("db", "clean", "-y", "--clean-before-timestamp", now), "--skip-archive"),
        ((*clean,), "--clean-before-timestamp"),
    ]
    for args, message in cases:
        result = invoke(harness, *args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output
    unknown = invoke(harness, *clean, "--clean-before-timestamp", now, "-t", "runs")
    assert "valid tables: _xcom_archive, asset_event, callback_request" in unknown.output
    assert len(etl_runs(harness)) == 1


def test_airflow_tables_slipstream_lacks_are_reported_skipped(harness: Harness) -> None:
    result = invoke(
        harness, "db", "clean", "--clean-before-timestamp", "2026-01-01", "--dry-run",
        "--tables", "task_reschedule,sla_miss,dataset_event",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "task_reschedule: skipped, Slipstream keeps no such rows:" in result.output
    assert "sla_miss: skipped" in result.output
    assert "asset_event (asset_events): 0 rows would be deleted" in result.output


def test_clean_needs_a_migrated_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    result = on_url(
        f"sqlite:///{empty}", "db", "clean", "--clean-before-timestamp", "2026-01-01",
        "--dry-run", home=tmp_path,
    )  # fmt: skip
    assert result.exit_code == 5
    assert "is not migrated" in result.output


# ----------------------------------------------------------------- db check, check-migrations


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def unmigrated_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database that answers but was never migrated."""
    if request.param == "sqlite":
        path = tmp_path / "unmigrated.db"
        sqlite3.connect(path).close()
        yield f"sqlite:///{path}"
        return
    name = f"slipstream_unmigrated_{secrets.token_hex(6)}"
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield pg_url(name)
    finally:
        drop_pg_database(name)


def test_db_check_reaches_the_database(unmigrated_url: str, tmp_path: Path) -> None:
    result = on_url(unmigrated_url, "db", "check", home=tmp_path)
    assert result.exit_code == 0, result.output
    assert "Connection successful." in result.output


def test_db_check_says_why_it_cannot(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "slipstream.db"
    result = on_url(f"sqlite:///{missing}", "db", "check", home=tmp_path)
    assert result.exit_code == 5
    assert f"no database file at {missing}" in result.output
    assert not missing.exists()  # a check creates nothing

    url = "postgresql+psycopg://postgres:hunter2@127.0.0.1/slipstream_no_such_db"
    result = on_url(url, "db", "check", "--retry", "1", "--retry-delay", "0", home=tmp_path)
    assert result.exit_code == 5
    assert "cannot connect to postgresql+psycopg://postgres:***@127.0.0.1/" in result.output
    assert "1 more tries, in 0 s" in result.output
    assert "hunter2" not in result.output


def test_check_migrations_names_the_revision_found_and_expected(
    unmigrated_url: str, tmp_path: Path
) -> None:
    result = on_url(unmigrated_url, "db", "check-migrations", "-t", "0", home=tmp_path)
    assert result.exit_code == 5
    assert (
        f"the schema is at no revision (never migrated), not at {head_revision()}" in result.output
    )
    assert "run `slipstream db migrate`" in result.output

    db = Database(unmigrated_url)
    try:
        migrate(db)
        with db.write() as conn:
            conn.exec_driver_sql("UPDATE alembic_version SET version_num = '9999'")
    finally:
        db.dispose()
    ahead = on_url(unmigrated_url, "db", "check-migrations", "-t", "0", home=tmp_path)
    assert ahead.exit_code == 5
    assert "the schema is at revision 9999" in ahead.output
    assert "a newer Slipstream migrated it" in ahead.output


def test_check_migrations_waits_for_the_migration(unmigrated_url: str, tmp_path: Path) -> None:
    db = Database(unmigrated_url)

    def migrate_soon() -> None:
        time.sleep(1.5)
        migrate(db)

    migrating = threading.Thread(target=migrate_soon)
    migrating.start()
    try:
        started = time.monotonic()
        result = on_url(unmigrated_url, "db", "check-migrations", "-t", "60", home=tmp_path)
        waited = time.monotonic() - started
    finally:
        migrating.join()
        db.dispose()
    assert result.exit_code == 0, result.output
    assert "Waiting up to 60 s for migrations (the database is at no revision)" in result.output
    assert f"The database schema is at {head_revision()}" in result.output
    assert 1.0 < waited < 30
