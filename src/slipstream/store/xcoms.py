"""XComs: small JSON values tasks hand to each other, stored as text and never decoded here."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, insert, select

from slipstream.store.tables import runs, xcoms

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


def pull_across_runs(
    conn: Connection,
    *,
    dag_id: str,
    key: str,
    task_ids: Collection[str] | None,
    run_id: str | None = None,
    logical_date_at_most: datetime | None = None,
) -> dict[str, str]:
    """XComs of `key` from the runs of a DAG: one run (`run_id`) or every run whose logical
    date is at most a moment (Airflow's include_prior_dates), newest first, so each task_id
    gets its most recent value. With `task_ids` None, only the newest value of any task is
    returned (Airflow 2's unfiltered pull)."""
    query = (
        select(xcoms.c.task_id, xcoms.c.value)
        .select_from(xcoms.join(runs, runs.c.id == xcoms.c.run_pk))
        .where(runs.c.dag_id == dag_id, xcoms.c.key == key)
        .order_by(runs.c.logical_date.desc(), xcoms.c.timestamp.desc(), runs.c.id.desc())
    )
    if task_ids is not None:
        query = query.where(xcoms.c.task_id.in_(list(task_ids)))
    if run_id is not None:
        query = query.where(runs.c.run_id == run_id)
    if logical_date_at_most is not None:
        query = query.where(runs.c.logical_date <= logical_date_at_most)
    if task_ids is None:
        query = query.limit(1)
    found: dict[str, str] = {}
    for task_id, value in conn.execute(query):
        found.setdefault(task_id, value)
    return found
