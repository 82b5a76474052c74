"""The audit log, table `log`: `record_event` writes one entry in the caller's transaction (the
one hook every service that changes something calls), and the reads behind /eventLogs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, false, func, insert, or_, select
from sqlalchemy.sql.elements import ColumnElement

from slipstream.auth.permissions import DagScope
from slipstream.core.event_log import SECRET_KEYS, EventFilter, EventLogEntry
from slipstream.store.dags import scope_filter
from slipstream.store.tables import dags, log

ORDER_COLUMNS = {
    "event_log_id": log.c.id,
    "when": log.c.dttm,
    "dag_id": log.c.dag_id,
    "task_id": log.c.task_id,
    "run_id": log.c.run_id,
    "event": log.c.event,
    "execution_date": log.c.execution_date,
    "owner": log.c.owner,
}
_INSERT = insert(log)


def record_event(
    conn: Connection,
    event: str,
    now: datetime,
    *,
    owner: str | None = None,
    owner_display_name: str | None = None,
    dag_id: str | None = None,
    task_id: str | None = None,
    run_id: str | None = None,
    map_index: int | None = None,
    try_number: int | None = None,
    logical_date: datetime | None = None,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Add one audit entry in `conn`'s transaction, so it is kept exactly when the action it
    records is. `extra` is stored as JSON text; a key naming a secret is refused outright
    (ValueError: a bug in the caller, never data to store)."""
    text = None
    if extra:
        secret = SECRET_KEYS.intersection(k.lower() for k in extra)
        if secret:
            raise ValueError(f"audit extra must not hold secrets: {sorted(secret)}")
        text = json.dumps(dict(extra), sort_keys=True, default=str)
    conn.execute(
        _INSERT,
        {
            "dttm": now,
            "event": event,
            "owner": owner,
            "owner_display_name": owner_display_name,
            "dag_id": dag_id,
            "task_id": task_id,
            "run_id": run_id,
            "map_index": map_index,
            "try_number": try_number,
            "execution_date": logical_date,
            "extra": text,
        },
    )


def _to_entry(row: Row[Any]) -> EventLogEntry:
    m = row._mapping
    return EventLogEntry(
        id=m["id"],
        dttm=m["dttm"],
        event=m["event"],
        dag_id=m["dag_id"],
        task_id=m["task_id"],
        run_id=m["run_id"],
        map_index=m["map_index"],
        try_number=m["try_number"],
        logical_date=m["execution_date"],
        owner=m["owner"],
        owner_display_name=m["owner_display_name"],
        extra=m["extra"],
    )


def _conditions(
    conn: Connection, where: EventFilter, scope: DagScope | None
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    within = scope_filter(conn, scope) if scope is not None else None
    if scope is not None and within is not None:
        # Entries about a DAG the scope covers (by id or tag), or about no DAG at all.
        covered = select(dags.c.dag_id).where(within)
        conditions.append(or_(log.c.dag_id.is_(None), log.c.dag_id.in_(covered)))
    for column, value in (
        (log.c.dag_id, where.dag_id),
        (log.c.task_id, where.task_id),
        (log.c.run_id, where.run_id),
        (log.c.event, where.event),
        (log.c.owner, where.owner),
    ):
        if value is not None:
            conditions.append(column == value)
    if where.before is not None:
        conditions.append(log.c.dttm < where.before)
    if where.after is not None:
        conditions.append(log.c.dttm > where.after)
    if where.included_events is not None:
        included = list(where.included_events)
        conditions.append(log.c.event.in_(included) if included else false())
    if where.excluded_events:
        conditions.append(log.c.event.not_in(list(where.excluded_events)))
    return conditions


def list_events(
    conn: Connection,
    where: EventFilter,
    *,
    scope: DagScope | None = None,
    limit: int | None = None,
    offset: int = 0,
    order_by: str = "event_log_id",
    descending: bool = False,
) -> tuple[list[EventLogEntry], int]:
    """A page of entries matching `where` that `scope` may see (entries about no DAG are
    seen by everyone allowed to read the log), and how many match in all."""
    conditions = _conditions(conn, where, scope)
    column = ORDER_COLUMNS[order_by]
    query = (
        select(log)
        .where(*conditions)
        .order_by(column.desc() if descending else column.asc(), log.c.id)
    )
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    total = conn.execute(select(func.count()).select_from(log).where(*conditions)).scalar_one()
    return [_to_entry(row) for row in conn.execute(query)], int(total)


def get_event(conn: Connection, event_id: int) -> EventLogEntry | None:
    row = conn.execute(select(log).where(log.c.id == event_id)).first()
    return _to_entry(row) if row else None
