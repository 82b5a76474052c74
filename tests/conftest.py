"""Shared fixtures: a migrated Database on real SQLite and on real PostgreSQL.

Migrating costs far more than copying, so each test session (each xdist worker) migrates once:
a SQLite file that each test copies, and a PostgreSQL template that each worker's databases are
made from. `db` runs a test once per backend; its PostgreSQL variant is marked `postgres`.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from slipstream.store.db import Database
from slipstream.store.schema import migrate
from slipstream.store.tables import metadata

# How the tests are dealt to pytest-xdist's workers, and in which order.
pytest_plugins = ["tests.scheduling"]

PG_HOST = "postgresql://postgres@127.0.0.1:5432"
PG_SERVER = f"{PG_HOST}/postgres"


def pg_url(name: str) -> str:
    return f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    try:
        return psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")


def drop_pg_database(name: str) -> None:
    with psycopg.connect(PG_SERVER, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class PgTemplate:
    """A migrated PostgreSQL database nobody connects to: new databases are copies of it
    (CREATE DATABASE ... TEMPLATE), which is several times cheaper than migrating each."""

    def __init__(self) -> None:
        self.name = f"slipstream_template_{secrets.token_hex(6)}"
        with _admin() as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        db = Database(pg_url(self.name))
        try:
            migrate(db)
        finally:
            db.dispose()

    def create(self) -> str:
        """A new database with the migrated schema and no rows; returns its name."""
        name = f"slipstream_test_{secrets.token_hex(6)}"
        with _admin() as admin:
            admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.name}"')
        return name


@pytest.fixture(scope="session")
def pg_template() -> Iterator[PgTemplate]:
    template = PgTemplate()
    yield template
    drop_pg_database(template.name)


# Whatever a test's DDL could change, as text: if this differs after a test, the database is
# not the template's any more and is replaced rather than emptied.
_SCHEMA_FINGERPRINT = """
SELECT md5(string_agg(line, E'\\n' ORDER BY line)) FROM (
    SELECT format('column %s.%s %s %s %s', table_name, column_name, data_type, is_nullable,
                  column_default) AS line
      FROM information_schema.columns WHERE table_schema = 'public'
    UNION ALL
    SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
    UNION ALL
    SELECT format('constraint %s %s %s', c.conrelid::regclass, c.conname,
                  pg_get_constraintdef(c.oid))
      FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
     WHERE n.nspname = 'public'
    UNION ALL
    SELECT format('sequence %s', sequencename) FROM pg_sequences WHERE schemaname = 'public'
    UNION ALL
    SELECT format('revision %s', version_num) FROM alembic_version
) AS schema
"""


class PgScratch:
    """One worker's PostgreSQL database for `pg_db`: tests run one at a time in a worker, so
    each gets it back emptied (other connections ended, every row deleted, sequences restarted)
    in a fraction of what creating and dropping a database costs. A test whose DDL changed the
    schema gets it replaced by a new copy of the template instead."""

    def __init__(self, template: PgTemplate) -> None:
        self.template = template
        self.name = template.create()
        self.fingerprint = self._fingerprint()

    def _fingerprint(self) -> object:
        with psycopg.connect(f"{PG_HOST}/{self.name}") as conn:
            row = conn.execute(_SCHEMA_FINGERPRINT).fetchone()
        return row[0] if row else None

    def reset(self) -> None:
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (self.name,),
            )
        try:
            same_schema = self._fingerprint() == self.fingerprint
        except psycopg.errors.UndefinedTable:  # alembic_version was dropped
            same_schema = False
        if not same_schema:
            drop_pg_database(self.name)
            self.name = self.template.create()
            return
        with psycopg.connect(f"{PG_HOST}/{self.name}") as conn:
            for table in reversed(metadata.sorted_tables):
                conn.execute(f'DELETE FROM "{table.name}"')
            conn.execute(
                "SELECT setval(s.oid, 1, false) FROM pg_class s"
                " JOIN pg_namespace n ON n.oid = s.relnamespace"
                " WHERE s.relkind = 'S' AND n.nspname = 'public'"
            )
            # The rows the migrations write, after the sequences restart: default_pool (0009).
            conn.execute(
                "INSERT INTO pools (pool, slots, description, include_deferred)"
                " VALUES ('default_pool', 128, 'Default pool', false)"
            )


@pytest.fixture(scope="session")
def pg_scratch(pg_template: PgTemplate) -> Iterator[PgScratch]:
    scratch = PgScratch(pg_template)
    yield scratch
    drop_pg_database(scratch.name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file. Its engine is disposed, and SQLite's last connection to close
    moves the write-ahead log into the file, so copying the one file copies all of it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "slipstream.db"
    db = Database(f"sqlite:///{path}")
    migrate(db)
    db.dispose()
    assert not path.with_name(f"{path.name}-wal").exists()
    return path


def copy_sqlite_template(template: Path, path: Path) -> Path:
    """A migrated SQLite database at `path` (a copy of the session's template)."""
    wal = template.with_name(f"{template.name}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, f"{template} has rows in its WAL file"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    return path


@pytest.fixture
def sqlite_db(sqlite_template: Path, tmp_path: Path) -> Iterator[Database]:
    path = copy_sqlite_template(sqlite_template, tmp_path / "slipstream.db")
    db = Database(f"sqlite:///{path}")
    yield db
    db.dispose()


@pytest.fixture
def pg_db(pg_scratch: PgScratch) -> Iterator[Database]:
    db = Database(pg_url(pg_scratch.name))
    try:
        yield db
    finally:
        db.dispose()
        pg_scratch.reset()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Database:
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    database: Database = request.getfixturevalue(fixture)
    return database
