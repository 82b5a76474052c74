"""Import errors: one row per DAG file whose last parse failed, holding the traceback."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from slipstream.core.records import ImportErrorRecord
from slipstream.store.tables import import_errors


def _to_record(row: Row[Any]) -> ImportErrorRecord:
    m = row._mapping
    return ImportErrorRecord(
        id=m["id"], filename=m["filename"], stacktrace=m["stacktrace"], timestamp=m["timestamp"]
    )


def record(conn: Connection, filename: str, stacktrace: str, now: datetime) -> None:
    """Remember that `filename` failed to parse, replacing any older error for it."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(import_errors).values(
        filename=filename, stacktrace=stacktrace, timestamp=now
    )
    conn.execute(
        statement.on_conflict_do_update(
            index_elements=[import_errors.c.filename],
            set_={"stacktrace": statement.excluded.stacktrace, "timestamp": now},
        )
    )


def clear(conn: Connection, filename: str) -> bool:
    """Forget the error for `filename`; False when it had none."""
    result = conn.execute(delete(import_errors).where(import_errors.c.filename == filename))
    return result.rowcount > 0


def list_errors(
    conn: Connection, *, limit: int | None = None, offset: int = 0
) -> tuple[list[ImportErrorRecord], int]:
    """One page of import errors in the order they were first seen, and the total."""
    total = conn.execute(select(func.count()).select_from(import_errors)).scalar_one()
    query = select(import_errors).order_by(import_errors.c.id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_to_record(row) for row in conn.execute(query)], total
