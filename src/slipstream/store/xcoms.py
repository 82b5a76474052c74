"""XComs: small JSON values tasks hand to each other, stored as text and never decoded here.

A mapped task pushes per map index; read as one value, its XComs are the JSON list of what
each index pushed, in map-index order (Airflow's lazy sequence), joined as text.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlalchemy import Connection, bindparam, delete, func, insert, select, tuple_

from slipstream.core.records import XComEntry
from slipstream.store.tables import runs, task_maps, xcoms

# Airflow's key for what a task returned.
RETURN_VALUE_KEY = "return_value"

# Built once: XComs are written and read on every hop of a run (see store.task_instances).
_DELETE_KEYS = delete(xcoms).where(
    xcoms.c.run_pk == bindparam("k_run_pk"),
    xcoms.c.task_id == bindparam("k_task_id"),
    xcoms.c.map_index == bindparam("k_map_index"),
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
    map_index: int = -1,
) -> None:
    """Replace the given keys of one task instance's XComs (a retry overwrites its earlier
    try's)."""
    values = dict(items)
    if not values:
        return
    keys = {"k_run_pk": run_pk, "k_task_id": task_id, "k_map_index": map_index}
    conn.execute(_DELETE_KEYS, keys | {"k_keys": list(values)})
    conn.execute(
        _INSERT,
        [
            {
                "run_pk": run_pk,
                "task_id": task_id,
                "map_index": map_index,
                "key": key,
                "dag_id": dag_id,
                "run_id": run_id,
                "value": value,
                "timestamp": now,
            }
            for key, value in values.items()
        ],
    )


# Unordered: only a mapped task's rows need ordering, done in Python (no sort on the hot path).
_FOR_TASKS = select(xcoms.c.task_id, xcoms.c.key, xcoms.c.value, xcoms.c.map_index).where(
    xcoms.c.run_pk == bindparam("k_run_pk"),
    xcoms.c.task_id.in_(bindparam("k_task_ids", expanding=True)),
)


def _as_values(rows: Iterable[tuple[str, str, str, int]]) -> dict[str, dict[str, str]]:
    """task_id -> key -> JSON text, mapped instances' values joined into a JSON list in
    map-index order."""
    found: dict[str, dict[str, str]] = {}
    mapped: dict[tuple[str, str], list[tuple[int, str]]] | None = None
    for task_id, key, value, map_index in rows:
        if map_index < 0:
            found.setdefault(task_id, {})[key] = value
        else:
            if mapped is None:
                mapped = {}
            mapped.setdefault((task_id, key), []).append((map_index, value))
    for (task_id, key), values in (mapped or {}).items():
        values.sort()
        found.setdefault(task_id, {})[key] = "[" + ",".join(v for _, v in values) + "]"
    return found


def for_tasks(
    conn: Connection, run_pk: int, task_ids: Collection[str]
) -> dict[str, dict[str, str]]:
    """Every XCom of some tasks in one run: task_id -> key -> JSON text (for a mapped task,
    the list of its instances' values)."""
    if not task_ids:
        return {}
    rows = conn.execute(_FOR_TASKS, {"k_run_pk": run_pk, "k_task_ids": list(task_ids)})
    return _as_values(rows)  # type: ignore[arg-type]  # rows unpack as tuples


def for_instances(
    conn: Connection, run_pk: int, instances: Collection[tuple[str, int]]
) -> dict[tuple[str, int], dict[str, str]]:
    """Every XCom of some task instances, (task_id, map_index) -> key -> JSON text: what a
    task of a mapped task group reads of the same map index of its group's other tasks."""
    if not instances:
        return {}
    wanted = set(instances)
    # By task and by index rather than by pair: two short IN lists bind fewer parameters.
    query = select(xcoms.c.task_id, xcoms.c.map_index, xcoms.c.key, xcoms.c.value).where(
        xcoms.c.run_pk == run_pk,
        xcoms.c.task_id.in_(sorted({task_id for task_id, _ in wanted})),
        xcoms.c.map_index.in_(sorted({map_index for _, map_index in wanted})),
    )
    found: dict[tuple[str, int], dict[str, str]] = {}
    for task_id, map_index, key, value in conn.execute(query).tuples():
        if (task_id, map_index) in wanted:
            found.setdefault((task_id, map_index), {})[key] = value
    return found


def pull(
    conn: Connection,
    run_pk: int,
    task_ids: Collection[str],
    key: str | None,
    map_index: int | None = None,
) -> dict[str, str]:
    """task_id -> JSON text of `key` (a mapped task's: the list across its indexes, or the one
    value of `map_index` when given). `key` None: each task's newest XCom, whatever its key."""
    if key is None:
        return _newest_of_any_key(conn, run_pk, task_ids)
    query = (
        select(xcoms.c.task_id, xcoms.c.key, xcoms.c.value, xcoms.c.map_index)
        .where(xcoms.c.run_pk == run_pk, xcoms.c.task_id.in_(list(task_ids)), xcoms.c.key == key)
        .order_by(xcoms.c.map_index)
    )
    if map_index is not None:
        rows = conn.execute(query.where(xcoms.c.map_index == map_index)).tuples()
        return {task_id: value for task_id, _, value, _ in rows}
    return {
        task_id: keys[key] for task_id, keys in _as_values(conn.execute(query).tuples()).items()
    }


def _newest_of_any_key(conn: Connection, run_pk: int, task_ids: Collection[str]) -> dict[str, str]:
    # One try's pushes share its end time: the return value, pushed after execute returned,
    # counts as the newest of them (as in Airflow, where each push is its own write).
    query = (
        select(xcoms.c.task_id, xcoms.c.key, xcoms.c.value, xcoms.c.map_index)
        .where(xcoms.c.run_pk == run_pk, xcoms.c.task_id.in_(list(task_ids)))
        .order_by(xcoms.c.timestamp.desc(), (xcoms.c.key == RETURN_VALUE_KEY).desc(), xcoms.c.key)
    )
    rows = list(conn.execute(query).tuples())
    newest: dict[str, str] = {}
    for task_id, key, _, _ in rows:
        newest.setdefault(task_id, key)
    values = _as_values(row for row in rows if newest[row[0]] == row[1])
    return {task_id: keys[newest[task_id]] for task_id, keys in values.items()}


def pushed_count(conn: Connection, run_pk: int, task_id: str, key: str) -> int:
    """How many instances of a mapped task pushed `key`: the length of what it hands on."""
    query = select(func.count()).where(
        xcoms.c.run_pk == run_pk,
        xcoms.c.task_id == task_id,
        xcoms.c.key == key,
        xcoms.c.map_index >= 0,
    )
    return int(conn.execute(query).scalar_one())


def record_length(conn: Connection, run_pk: int, task_id: str, map_index: int, length: int) -> None:
    """Remember how many items a task instance's return value holds (a retry replaces it)."""
    keys = (
        task_maps.c.run_pk == run_pk,
        task_maps.c.task_id == task_id,
        task_maps.c.map_index == map_index,
    )
    conn.execute(delete(task_maps).where(*keys))
    conn.execute(
        insert(task_maps).values(run_pk=run_pk, task_id=task_id, map_index=map_index, length=length)
    )


def recorded_lengths(conn: Connection, run_pk: int, task_ids: Collection[str]) -> dict[str, int]:
    """task_id -> recorded length, for the unmapped tasks among `task_ids` that have one."""
    query = select(task_maps.c.task_id, task_maps.c.length).where(
        task_maps.c.run_pk == run_pk,
        task_maps.c.task_id.in_(list(task_ids)),
        task_maps.c.map_index == -1,
    )
    return {task_id: length for task_id, length in conn.execute(query).tuples()}


def clear(conn: Connection, run_pk: int, task_ids: Collection[str]) -> None:
    """Forget every XCom (and recorded length) of some tasks in a run, at every map index."""
    if task_ids:
        conn.execute(
            delete(xcoms).where(xcoms.c.run_pk == run_pk, xcoms.c.task_id.in_(list(task_ids)))
        )
        conn.execute(
            delete(task_maps).where(
                task_maps.c.run_pk == run_pk, task_maps.c.task_id.in_(list(task_ids))
            )
        )


def pull_across_runs(
    conn: Connection,
    *,
    dag_id: str,
    key: str,
    task_ids: Collection[str] | None,
    run_id: str | None = None,
    logical_date_at_most: datetime | None = None,
    map_index: int | None = None,
) -> dict[str, str]:
    """XComs of `key` from the runs of a DAG: one run (`run_id`) or every run whose logical
    date is at most a moment (Airflow's include_prior_dates), newest first, so each task_id
    gets its value in the newest run that has one. A mapped task's value is the JSON list of
    what each of its instances pushed in that run, in map-index order, as a pull within a run
    gives it; `map_index` asks for one instance's value instead. With `task_ids` None, only
    the newest value of any task is returned (Airflow 2's unfiltered pull)."""
    query = (
        select(xcoms.c.task_id, xcoms.c.value, xcoms.c.map_index, xcoms.c.run_pk)
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
    if map_index is not None:
        query = query.where(xcoms.c.map_index == map_index)
    if task_ids is None:
        query = query.limit(1)
    # The newest row of each task names the run its value comes from; for a mapped task,
    # every instance's row in that run joins it.
    newest: dict[str, tuple[int, bool]] = {}  # task_id -> (run_pk, is a mapped instance's)
    found: dict[str, str] = {}
    mapped: dict[str, list[tuple[int, str]]] = {}
    for task_id, value, index, run_pk in conn.execute(query).tuples():
        run_of, is_mapped = newest.setdefault(task_id, (run_pk, index >= 0 and map_index is None))
        if run_of != run_pk:
            continue
        if not is_mapped:
            found.setdefault(task_id, value)
        elif index >= 0:
            mapped.setdefault(task_id, []).append((index, value))
    if task_ids is None and mapped:
        # The one row read names a mapped task's instance: its siblings come in a second read.
        task_id, (run_pk, _) = next(iter(newest.items()))
        siblings = select(xcoms.c.map_index, xcoms.c.value).where(
            xcoms.c.run_pk == run_pk,
            xcoms.c.task_id == task_id,
            xcoms.c.key == key,
            xcoms.c.map_index >= 0,
        )
        mapped[task_id] = list(conn.execute(siblings).tuples())
    for task_id, values in mapped.items():
        values.sort()
        found[task_id] = "[" + ",".join(v for _, v in values) + "]"
    return found


def clear_instances(conn: Connection, run_pk: int, instances: Collection[tuple[str, int]]) -> None:
    """Forget the XComs (and recorded lengths) of some task instances: (task_id, map_index)."""
    if not instances:
        return
    pairs = list(set(instances))
    conn.execute(
        delete(xcoms).where(
            xcoms.c.run_pk == run_pk, tuple_(xcoms.c.task_id, xcoms.c.map_index).in_(pairs)
        )
    )
    conn.execute(
        delete(task_maps).where(
            task_maps.c.run_pk == run_pk,
            tuple_(task_maps.c.task_id, task_maps.c.map_index).in_(pairs),
        )
    )


def entries(
    conn: Connection,
    run_pk: int,
    task_id: str,
    *,
    map_index: int | None = None,
    key: str | None = None,
    limit: int | None = None,
    offset: int = 0,
) -> tuple[list[XComEntry], int]:
    """A page of one task's XComs in a run (every map index unless one is given), by map
    index then key, and how many match."""
    conditions = [xcoms.c.run_pk == run_pk, xcoms.c.task_id == task_id]
    if map_index is not None:
        conditions.append(xcoms.c.map_index == map_index)
    if key is not None:
        conditions.append(xcoms.c.key == key)
    total = conn.execute(select(func.count()).select_from(xcoms).where(*conditions)).scalar_one()
    query = select(xcoms).where(*conditions).order_by(xcoms.c.map_index, xcoms.c.key)
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    found = [
        XComEntry(
            dag_id=row.dag_id,
            run_id=row.run_id,
            task_id=row.task_id,
            map_index=row.map_index,
            key=row.key,
            value=row.value,
            timestamp=row.timestamp,
        )
        for row in conn.execute(query)
    ]
    return found, int(total)
