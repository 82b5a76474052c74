"""XComs: small JSON values tasks hand to each other, stored as text and never decoded here."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import Connection, delete, insert, select

from slipstream.store.tables import xcoms


def write(
    conn: Connection,
    *,
    run_pk: int,
    dag_id: str,
    run_id: str,
    task_id: str,
    items: Iterable[tuple[str, str]],
    now: datetime,
) -> None:
    """Replace the given keys of one task's XComs (a retry overwrites its earlier try's)."""
    values = {key: value for key, value in items}
    if not values:
        return
    conn.execute(
        delete(xcoms).where(
            xcoms.c.run_pk == run_pk, xcoms.c.task_id == task_id, xcoms.c.key.in_(list(values))
        )
    )
    conn.execute(
        insert(xcoms),
        [
            {
                "run_pk": run_pk,
                "task_id": task_id,
                "key": key,
                "dag_id": dag_id,
                "run_id": run_id,
                "value": value,
                "timestamp": now,
            }
            for key, value in values.items()
        ],
    )


def for_tasks(
    conn: Connection, run_pk: int, task_ids: Collection[str]
) -> dict[str, dict[str, str]]:
    """Every XCom of some tasks in one run: task_id -> key -> JSON text."""
    if not task_ids:
        return {}
    query = select(xcoms.c.task_id, xcoms.c.key, xcoms.c.value).where(
        xcoms.c.run_pk == run_pk, xcoms.c.task_id.in_(list(task_ids))
    )
    found: dict[str, dict[str, str]] = {}
    for task_id, key, value in conn.execute(query):
        found.setdefault(task_id, {})[key] = value
    return found


def pull(conn: Connection, run_pk: int, task_ids: Collection[str], key: str) -> dict[str, str]:
    query = select(xcoms.c.task_id, xcoms.c.value).where(
        xcoms.c.run_pk == run_pk, xcoms.c.task_id.in_(list(task_ids)), xcoms.c.key == key
    )
    return {task_id: value for task_id, value in conn.execute(query)}


def clear(conn: Connection, run_pk: int, task_ids: Collection[str]) -> None:
    if task_ids:
        conn.execute(
            delete(xcoms).where(xcoms.c.run_pk == run_pk, xcoms.c.task_id.in_(list(task_ids)))
        )
