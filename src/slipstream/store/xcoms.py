"""XComs: small JSON values tasks hand to each other, stored as text and never decoded here."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select

from slipstream.store.tables import xcoms

# Built once: XComs are written and read on every hop of a run (see store.task_instances).
_DELETE_KEYS = delete(xcoms).where(
    xcoms.c.run_pk == bindparam("k_run_pk"),
    xcoms.c.task_id == bindparam("k_task_id"),
    xcoms.c.key.in_(bindparam("k_keys", expanding=True)),
)
_INSERT = insert(xcoms)


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
    values = dict(items)
    if not values:
        return
    keys = {"k_run_pk": run_pk, "k_task_id": task_id}
    conn.execute(_DELETE_KEYS, keys | {"k_keys": list(values)})
    conn.execute(
        _INSERT,
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


_FOR_TASKS = select(xcoms.c.task_id, xcoms.c.key, xcoms.c.value).where(
    xcoms.c.run_pk == bindparam("k_run_pk"),
    xcoms.c.task_id.in_(bindparam("k_task_ids", expanding=True)),
)


def for_tasks(
    conn: Connection, run_pk: int, task_ids: Collection[str]
) -> dict[str, dict[str, str]]:
    """Every XCom of some tasks in one run: task_id -> key -> JSON text."""
    if not task_ids:
        return {}
    found: dict[str, dict[str, str]] = {}
    rows = conn.execute(_FOR_TASKS, {"k_run_pk": run_pk, "k_task_ids": list(task_ids)})
    for task_id, key, value in rows:
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
