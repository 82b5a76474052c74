"""Shared fixtures: a migrated Database on real SQLite and on real PostgreSQL.

`db` runs a test once per backend; the PostgreSQL variant is marked `postgres` and gets a
throwaway database of its own, dropped afterwards, so tests may run in parallel.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from slipstream.store.db import Database
from slipstream.store.schema import migrate

PG_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'slipstream.db'}")
    migrate(db)
    yield db
    db.dispose()


@pytest.fixture
def pg_db() -> Iterator[Database]:
    name = f"slipstream_test_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = Database(f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}")
    try:
        migrate(db)
        yield db
    finally:
        db.dispose()
        with psycopg.connect(PG_SERVER, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db(request: pytest.FixtureRequest) -> Database:
    fixture = "sqlite_db" if request.param == "sqlite" else "pg_db"
    database: Database = request.getfixturevalue(fixture)
    return database
