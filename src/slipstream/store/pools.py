"""Pools: rows of `pools`, and the slots their task instances hold, counted by state."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from slipstream.core.event_log import POOL_SET
from slipstream.core.pools import DEFAULT_POOL, DEFAULT_POOL_SLOTS, Pool, PoolUsage
from slipstream.core.states import TaskState
from slipstream.errors import ConflictError
from slipstream.store.event_log import record_event
from slipstream.store.tables import pools, task_instances

ORDER_COLUMNS = {"id": pools.c.id, "name": pools.c.pool, "slots": pools.c.slots}
_COUNTED = (TaskState.RUNNING, TaskState.QUEUED, TaskState.SCHEDULED, TaskState.DEFERRED)


def _to_pool(row: Row[Any]) -> Pool:
    m = row._mapping
    return Pool(
        name=m["pool"],
        slots=m["slots"],
        description=m["description"],
        include_deferred=bool(m["include_deferred"]),
        id=m["id"],
    )


def sizes(conn: Connection) -> dict[str, int]:
    """Every pool's slots by name: what the scheduler admits against (one small read)."""
    return {name: slots for name, slots in conn.execute(select(pools.c.pool, pools.c.slots))}


def counting_deferred(conn: Connection) -> frozenset[str]:
    """The pools whose slots deferred tasks hold too (`include_deferred`), read with `sizes`."""
    query = select(pools.c.pool).where(pools.c.include_deferred.is_(True))
    return frozenset(conn.scalars(query))


def deferred_held(conn: Connection, names: frozenset[str]) -> dict[str, int]:
    """Slots held by deferred task instances in each of `names`: what an include_deferred pool
    has less room for (one GROUP BY over the deferred rows, only when such a pool exists)."""
    ti = task_instances
    rows = conn.execute(
        select(ti.c.pool, func.sum(ti.c.pool_slots))
        .where(ti.c.state == TaskState.DEFERRED.value)
        .where(ti.c.pool.in_(sorted(names)))
        .group_by(ti.c.pool)
    )
    return {pool: int(n or 0) for pool, n in rows}


def get_pool(conn: Connection, name: str, *, for_update: bool = False) -> Pool | None:
    query = select(pools).where(pools.c.pool == name)
    if for_update:
        query = query.with_for_update()
    row = conn.execute(query).first()
    return _to_pool(row) if row else None


def pools_named(conn: Connection, names: Iterable[str]) -> list[Pool]:
    """The pools of `names` that exist, by name (one read; a name with no pool is left out)."""
    wanted = sorted(set(names))
    if not wanted:
        return []
    query = select(pools).where(pools.c.pool.in_(wanted)).order_by(pools.c.pool)
    return [_to_pool(row) for row in conn.execute(query)]


def list_pools(
    conn: Connection,
    *,
    limit: int | None = None,
    offset: int = 0,
    order_by: str = "id",
    descending: bool = False,
) -> tuple[list[Pool], int]:
    column = ORDER_COLUMNS[order_by]
    query = select(pools).order_by(column.desc() if descending else column.asc(), pools.c.id)
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    total = conn.execute(select(func.count()).select_from(pools)).scalar_one()
    return [_to_pool(row) for row in conn.execute(query)], int(total)


def usage(conn: Connection, found: list[Pool]) -> list[PoolUsage]:
    """Each pool's slots held by running, queued and scheduled task instances: one
    GROUP BY over the task instances in those states (ix_task_instances_state_dag_id)."""
    if not found:
        return []
    ti = task_instances
    rows = conn.execute(
        select(ti.c.pool, ti.c.state, func.sum(ti.c.pool_slots))
        .where(ti.c.state.in_([s.value for s in _COUNTED]))
        .where(ti.c.pool.in_([p.name for p in found]))
        .group_by(ti.c.pool, ti.c.state)
    )
    held: dict[tuple[str, str], int] = {(pool, state): int(n or 0) for pool, state, n in rows}
    return [
        PoolUsage(
            pool=p,
            running=held.get((p.name, TaskState.RUNNING.value), 0),
            queued=held.get((p.name, TaskState.QUEUED.value), 0),
            scheduled=held.get((p.name, TaskState.SCHEDULED.value), 0),
            deferred=held.get((p.name, TaskState.DEFERRED.value), 0),
        )
        for p in found
    ]


def insert_pool(conn: Connection, pool: Pool) -> Pool:
    """Insert a pool; ConflictError if the name is taken (nothing written)."""
    values = {
        "pool": pool.name,
        "slots": pool.slots,
        "description": pool.description,
        "include_deferred": pool.include_deferred,
    }
    # A savepoint keeps the surrounding transaction usable on PostgreSQL after a conflict.
    try:
        with conn.begin_nested():
            row = conn.execute(insert(pools).values(values).returning(*pools.c)).one()
    except IntegrityError:
        if get_pool(conn, pool.name) is not None:
            raise ConflictError(f"Pool: {pool.name} already exists") from None
        raise
    return _to_pool(row)


def update_pool(conn: Connection, name: str, values: Mapping[str, Any]) -> Pool | None:
    """Change a pool's fields (`name`, `slots`, `description`, `include_deferred`); None if
    there is no such pool. ConflictError when renamed onto a taken name (nothing written)."""
    stored = {("pool" if key == "name" else key): value for key, value in values.items()}
    if not stored:
        return get_pool(conn, name)
    try:
        with conn.begin_nested():
            row = conn.execute(
                update(pools).where(pools.c.pool == name).values(stored).returning(*pools.c)
            ).first()
    except IntegrityError:
        raise ConflictError(f"Pool: {values.get('name')} already exists") from None
    return _to_pool(row) if row else None


def delete_pool(conn: Connection, name: str) -> bool:
    return conn.execute(delete(pools).where(pools.c.pool == name)).rowcount > 0


def ensure_default_pool(conn: Connection, slots: int | None, now: datetime) -> bool:
    """Make sure default_pool exists, holding `slots` (SLIPSTREAM_DEFAULT_POOL_SLOTS, which a
    scheduler applies as it starts) when given, else as it is (128 if it had to be made
    again: it was removed behind our back). Audited when it changes anything; returns
    whether it did."""
    current = get_pool(conn, DEFAULT_POOL, for_update=True)
    if current is not None and (slots is None or current.slots == slots):
        return False
    if slots is None:
        slots = DEFAULT_POOL_SLOTS
    if current is None:
        conn.execute(
            insert(pools).values(
                pool=DEFAULT_POOL, slots=slots, description="Default pool", include_deferred=False
            )
        )
    else:
        conn.execute(update(pools).where(pools.c.pool == DEFAULT_POOL).values(slots=slots))
    record_event(
        conn,
        POOL_SET,
        now,
        owner="scheduler",
        extra={"pool": DEFAULT_POOL, "slots": slots, "action": "SLIPSTREAM_DEFAULT_POOL_SLOTS"},
    )
    return True
