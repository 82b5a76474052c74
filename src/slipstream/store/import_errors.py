"""Import errors: one row per DAG file whose last parse failed, holding the traceback."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from slipstream.core.records import ImportErrorRecord
from slipstream.errors import InvalidInputError
from slipstream.store.tables import dags, import_errors


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


# Airflow's API names for the sortable columns.
_ORDERABLE: Mapping[str, ColumnElement[Any]] = {
    "import_error_id": import_errors.c.id,
    "id": import_errors.c.id,
    "timestamp": import_errors.c.timestamp,
    "filename": import_errors.c.filename,
}


def list_errors(
    conn: Connection,
    *,
    limit: int | None = None,
    offset: int = 0,
    order_by: str = "import_error_id",
    files_of: ColumnElement[bool] | None = None,
) -> tuple[list[ImportErrorRecord], int]:
    """One page of import errors (by default in the order first seen) and the total.
    `files_of`, a condition on the dags table, keeps only files defining such a DAG."""
    descending = order_by.startswith("-")
    column = _ORDERABLE.get(order_by.removeprefix("-"))
    if column is None:
        raise InvalidInputError(
            f"cannot order import errors by {order_by!r};"
            f" choose from {', '.join(sorted(_ORDERABLE))}",
            field="order_by",
        )
    conditions: list[ColumnElement[bool]] = []
    if files_of is not None:
        conditions.append(import_errors.c.filename.in_(select(dags.c.fileloc).where(files_of)))
    total = conn.execute(
        select(func.count()).select_from(import_errors).where(*conditions)
    ).scalar_one()
    ordering = column.desc() if descending else column.asc()
    query = (
        select(import_errors).where(*conditions).order_by(ordering, import_errors.c.id)
    ).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_to_record(row) for row in conn.execute(query)], total


def get_error(conn: Connection, error_id: int) -> ImportErrorRecord | None:
    row = conn.execute(select(import_errors).where(import_errors.c.id == error_id)).one_or_none()
    return None if row is None else _to_record(row)


def files_with_errors(conn: Connection, filelocs: Collection[str]) -> set[str]:
    """Which of these files' last parse failed."""
    if not filelocs:
        return set()
    query = select(import_errors.c.filename).where(import_errors.c.filename.in_(sorted(filelocs)))
    return set(conn.execute(query).scalars())
