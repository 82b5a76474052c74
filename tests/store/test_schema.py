"""store.schema on real SQLite and PostgreSQL: migrating, re-migrating and resetting."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import column, func, insert, inspect, select, table

from slipstream.store import schema
from slipstream.store.db import Database
from slipstream.store.tables import dag_versions, dags, metadata, scheduler_jobs

NOW = datetime(2026, 2, 1, tzinfo=UTC)


def add_rows(db: Database) -> None:
    with db.write() as conn:
        conn.execute(insert(dags).values(dag_id="d", fileloc="/d.py", tags=[], created_at=NOW))
        conn.execute(
            insert(scheduler_jobs).values(
                hostname="h", pid=1, state="running", started_at=NOW, latest_heartbeat=NOW
            )
        )


def row_counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        return {
            table.name: int(conn.execute(select(func.count()).select_from(table)).scalar_one())
            for table in (dags, scheduler_jobs)
        }


def drop_everything(db: Database) -> None:
    with db.write() as conn:
        metadata.drop_all(conn)
        conn.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def table_names(db: Database) -> set[str]:
    with db.read() as conn:
        return set(inspect(conn).get_table_names())


def test_the_head_revision_is_the_single_newest_migration() -> None:
    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert heads == [schema.head_revision()]


def test_a_migrated_database_is_at_head(db: Database) -> None:
    assert schema.current_revision(db) == schema.head_revision()
    assert schema.is_current(db)
    assert {t.name for t in metadata.sorted_tables} <= table_names(db)


def test_migrating_again_changes_nothing(db: Database) -> None:
    add_rows(db)
    head = schema.head_revision()
    assert schema.migrate(db) == (head, head)
    assert schema.migrate(db) == (head, head)
    assert row_counts(db) == {"dags": 1, "scheduler_jobs": 1}
    assert schema.is_current(db)


def test_migrating_an_empty_database(db: Database) -> None:
    drop_everything(db)
    assert schema.current_revision(db) is None
    assert not schema.is_current(db)
    assert schema.migrate(db) == (None, schema.head_revision())
    assert schema.is_current(db)
    add_rows(db)
    assert row_counts(db) == {"dags": 1, "scheduler_jobs": 1}


def test_the_migrations_build_the_schema_tables_py_declares(db: Database) -> None:
    with db.read() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    assert differences == []


def test_reset_empties_every_table_and_stays_at_head(db: Database) -> None:
    add_rows(db)
    schema.reset(db)
    assert row_counts(db) == {"dags": 0, "scheduler_jobs": 0}
    assert schema.is_current(db)
    # The schema is whole again: rows go in as before.
    add_rows(db)
    assert row_counts(db) == {"dags": 1, "scheduler_jobs": 1}


def test_the_dag_sources_migration_back_fills_each_version_s_digest(db: Database) -> None:
    drop_everything(db)
    config = Config()
    config.set_main_option("script_location", str(Path(schema.__file__).with_name("migrations")))
    with db.write() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "0012")
    # dag_versions as 0012 left it: no source_sha256 yet.
    versions_0012 = table(
        "dag_versions",
        column("dag_id"),
        column("version_hash"),
        column("structure"),
        column("source"),
        column("created_at"),
    )
    text = "print('caf\u00e9')\n"
    with db.write() as conn:
        conn.execute(insert(dags).values(dag_id="d", fileloc="/d.py", tags=[], created_at=NOW))
        for version_hash, source in (("with_text", text), ("without_text", None)):
            conn.execute(
                insert(versions_0012).values(
                    dag_id="d",
                    version_hash=version_hash,
                    structure="{}",
                    source=source,
                    created_at=NOW,
                )
            )
    schema.migrate(db)
    with db.read() as conn:
        query = select(dag_versions.c.version_hash, dag_versions.c.source_sha256)
        found = {row.version_hash: row.source_sha256 for row in conn.execute(query)}
    assert found == {
        "with_text": hashlib.sha256(text.encode()).hexdigest(),
        "without_text": None,
    }
