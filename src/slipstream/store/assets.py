"""Assets in the database: their rows, who consumes and produces each (from parsed DAGs),
their events, the queue of events waiting for a consuming DAG's run, and the events each
asset-triggered run consumed. Functions take a connection and never commit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, literal, select, update

from slipstream.authoring.asset_timetables import asset_condition
from slipstream.authoring.assets import spec_assets
from slipstream.core.records import AssetEventRecord, AssetRecord
from slipstream.store.tables import (
    UtcDateTime,
    asset_consumers,
    asset_events,
    asset_producers,
    asset_queue,
    assets,
    run_asset_events,
    runs,
)

# -- what parsed DAGs say ------------------------------------------------------------------------


def ensure_asset(conn: Connection, description: Mapping[str, Any], now: datetime) -> int:
    """The id of the asset with this URI, created (or its name/group/extra updated) as the
    description says."""
    uri = str(description["uri"])
    values = {
        "name": str(description.get("name") or uri),
        "asset_group": str(description.get("group") or "asset"),
        "extra": dict(description.get("extra") or {}),
    }
    row = conn.execute(
        select(assets.c.id, assets.c.name, assets.c.asset_group, assets.c.extra).where(
            assets.c.uri == uri
        )
    ).one_or_none()
    if row is None:
        inserted: int = conn.execute(
            insert(assets)
            .values(uri=uri, created_at=now, updated_at=now, **values)
            .returning(assets.c.id)
        ).scalar_one()
        return inserted
    if (row.name, row.asset_group, row.extra) != tuple(values.values()):
        conn.execute(update(assets).where(assets.c.id == row.id).values(updated_at=now, **values))
    found: int = row.id
    return found


def sync_references(conn: Connection, structure: Mapping[str, Any], now: datetime) -> None:
    """Record which assets a parsed DAG is scheduled on and which its tasks update."""
    dag_id = str(structure["dag_id"])
    condition = asset_condition(structure.get("schedule") or {})
    consumed = list(spec_assets(condition)) if condition is not None else []
    produced = [
        (str(task["task_id"]), outlet)
        for task in structure.get("tasks", ())
        for outlet in task.get("outlets", ())
    ]
    conn.execute(delete(asset_consumers).where(asset_consumers.c.dag_id == dag_id))
    conn.execute(delete(asset_producers).where(asset_producers.c.dag_id == dag_id))
    if not consumed and not produced:
        return
    ids: dict[str, int] = {}
    for description in [*consumed, *(outlet for _, outlet in produced)]:
        uri = str(description["uri"])
        if uri not in ids:
            ids[uri] = ensure_asset(conn, description, now)
    consumer_ids = sorted({ids[str(d["uri"])] for d in consumed})
    if consumer_ids:
        conn.execute(
            insert(asset_consumers), [{"asset_id": i, "dag_id": dag_id} for i in consumer_ids]
        )
    producer_keys = sorted({(ids[str(o["uri"])], task_id) for task_id, o in produced})
    if producer_keys:
        conn.execute(
            insert(asset_producers),
            [{"asset_id": a, "dag_id": dag_id, "task_id": t} for a, t in producer_keys],
        )


# -- events --------------------------------------------------------------------------------------


def record_event(
    conn: Connection,
    *,
    uri: str,
    extra: Mapping[str, Any],
    timestamp: datetime,
    source_dag_id: str | None = None,
    source_task_id: str | None = None,
    source_run_id: str | None = None,
    source_map_index: int = -1,
    asset_id: int | None = None,
) -> AssetEventRecord:
    """Write an event of the asset `uri` (its row made if missing) and queue it for every DAG
    scheduled on that asset."""
    if asset_id is None:
        asset_id = asset_id_of(conn, uri) or ensure_asset(conn, {"uri": uri}, timestamp)
    event_id: int = conn.execute(
        insert(asset_events)
        .values(
            asset_id=asset_id,
            extra=dict(extra),
            source_dag_id=source_dag_id,
            source_task_id=source_task_id,
            source_run_id=source_run_id,
            source_map_index=source_map_index,
            timestamp=timestamp,
        )
        .returning(asset_events.c.id)
    ).scalar_one()
    already = exists().where(
        asset_queue.c.asset_id == asset_consumers.c.asset_id,
        asset_queue.c.dag_id == asset_consumers.c.dag_id,
    )
    conn.execute(
        insert(asset_queue).from_select(
            ["asset_id", "dag_id", "created_at"],
            select(
                asset_consumers.c.asset_id,
                asset_consumers.c.dag_id,
                literal(timestamp, UtcDateTime()),
            ).where(asset_consumers.c.asset_id == asset_id, ~already),
        )
    )
    return AssetEventRecord(
        id=event_id,
        asset_id=asset_id,
        uri=uri,
        extra=dict(extra),
        source_dag_id=source_dag_id,
        source_task_id=source_task_id,
        source_run_id=source_run_id,
        source_map_index=source_map_index,
        timestamp=timestamp,
    )


def asset_id_of(conn: Connection, uri: str) -> int | None:
    found: int | None = conn.execute(
        select(assets.c.id).where(assets.c.uri == uri)
    ).scalar_one_or_none()
    return found


def queued(conn: Connection, dag_ids: Iterable[str] | None = None) -> dict[str, set[str]]:
    """dag_id -> URIs of the assets updated since that DAG's last asset-triggered run."""
    query = select(asset_queue.c.dag_id, assets.c.uri).join(
        assets, assets.c.id == asset_queue.c.asset_id
    )
    if dag_ids is not None:
        query = query.where(asset_queue.c.dag_id.in_(list(dag_ids)))
    found: dict[str, set[str]] = {}
    for row in conn.execute(query):
        found.setdefault(row.dag_id, set()).add(row.uri)
    return found


def queued_events(
    conn: Connection, *, dag_id: str | None = None, uri: str | None = None
) -> list[tuple[str, str, datetime]]:
    """(dag_id, uri, created_at) of queued events, as Airflow's queuedEvent routes list them."""
    query = (
        select(asset_queue.c.dag_id, assets.c.uri, asset_queue.c.created_at)
        .join(assets, assets.c.id == asset_queue.c.asset_id)
        .order_by(asset_queue.c.dag_id, assets.c.uri)
    )
    if dag_id is not None:
        query = query.where(asset_queue.c.dag_id == dag_id)
    if uri is not None:
        query = query.where(assets.c.uri == uri)
    return [(row.dag_id, row.uri, row.created_at) for row in conn.execute(query)]


def delete_queued(conn: Connection, *, dag_id: str | None = None, uri: str | None = None) -> int:
    query = delete(asset_queue)
    if dag_id is not None:
        query = query.where(asset_queue.c.dag_id == dag_id)
    if uri is not None:
        query = query.where(
            asset_queue.c.asset_id.in_(select(assets.c.id).where(assets.c.uri == uri))
        )
    return conn.execute(query).rowcount or 0


def consume(conn: Connection, dag_id: str, uris: Iterable[str], run_pk: int) -> list[int]:
    """Give run `run_pk` every event of `uris` not consumed by an earlier run of `dag_id`,
    and empty the DAG's queue: what its run took is no longer waiting. Returns event ids."""
    earlier = (
        select(func.max(run_asset_events.c.event_id))
        .join(runs, runs.c.id == run_asset_events.c.run_pk)
        .where(runs.c.dag_id == dag_id)
        .scalar_subquery()
    )
    ids = [
        row.id
        for row in conn.execute(
            select(asset_events.c.id)
            .join(assets, assets.c.id == asset_events.c.asset_id)
            .where(
                assets.c.uri.in_(sorted(set(uris))),
                asset_events.c.id > func.coalesce(earlier, 0),
            )
            .order_by(asset_events.c.id)
        )
    ]
    if ids:
        conn.execute(insert(run_asset_events), [{"run_pk": run_pk, "event_id": i} for i in ids])
    conn.execute(delete(asset_queue).where(asset_queue.c.dag_id == dag_id))
    return ids


# -- reads ---------------------------------------------------------------------------------------

_EVENT_COLUMNS = (*asset_events.c, assets.c.uri)


def _event(row: Any, created: tuple[tuple[str, str], ...] = ()) -> AssetEventRecord:
    return AssetEventRecord(
        id=row.id,
        asset_id=row.asset_id,
        uri=row.uri,
        extra=row.extra or {},
        source_dag_id=row.source_dag_id,
        source_task_id=row.source_task_id,
        source_run_id=row.source_run_id,
        source_map_index=row.source_map_index,
        timestamp=row.timestamp,
        created_runs=created,
    )


def _with_created_runs(conn: Connection, rows: Sequence[Any]) -> list[AssetEventRecord]:
    ids = [row.id for row in rows]
    created: dict[int, list[tuple[str, str]]] = {}
    if ids:
        query = (
            select(run_asset_events.c.event_id, runs.c.dag_id, runs.c.run_id)
            .join(runs, runs.c.id == run_asset_events.c.run_pk)
            .where(run_asset_events.c.event_id.in_(ids))
            .order_by(runs.c.id)
        )
        for row in conn.execute(query):
            created.setdefault(row.event_id, []).append((row.dag_id, row.run_id))
    return [_event(row, tuple(created.get(row.id, ()))) for row in rows]


def events_of_run(conn: Connection, run_pk: int) -> list[AssetEventRecord]:
    """The events run `run_pk` consumed, oldest first."""
    query = (
        select(*_EVENT_COLUMNS)
        .join(assets, assets.c.id == asset_events.c.asset_id)
        .join(run_asset_events, run_asset_events.c.event_id == asset_events.c.id)
        .where(run_asset_events.c.run_pk == run_pk)
        .order_by(asset_events.c.id)
    )
    return _with_created_runs(conn, conn.execute(query).all())


EVENT_ORDER = {
    "id": asset_events.c.id,
    "timestamp": asset_events.c.timestamp,
    "source_dag_id": asset_events.c.source_dag_id,
    "source_task_id": asset_events.c.source_task_id,
    "source_run_id": asset_events.c.source_run_id,
    "source_map_index": asset_events.c.source_map_index,
    "dataset_id": asset_events.c.asset_id,
}


def list_events(
    conn: Connection,
    *,
    asset_id: int | None = None,
    source_dag_id: str | None = None,
    source_task_id: str | None = None,
    source_run_id: str | None = None,
    source_map_index: int | None = None,
    order_by: str = "timestamp",
    descending: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AssetEventRecord], int]:
    """A page of events matching every filter given, and how many match in all."""
    conditions = []
    if asset_id is not None:
        conditions.append(asset_events.c.asset_id == asset_id)
    if source_dag_id is not None:
        conditions.append(asset_events.c.source_dag_id == source_dag_id)
    if source_task_id is not None:
        conditions.append(asset_events.c.source_task_id == source_task_id)
    if source_run_id is not None:
        conditions.append(asset_events.c.source_run_id == source_run_id)
    if source_map_index is not None:
        conditions.append(asset_events.c.source_map_index == source_map_index)
    where = and_(True, *conditions)
    total: int = conn.execute(
        select(func.count()).select_from(asset_events).where(where)
    ).scalar_one()
    column = EVENT_ORDER[order_by]
    query = (
        select(*_EVENT_COLUMNS)
        .join(assets, assets.c.id == asset_events.c.asset_id)
        .where(where)
        .order_by(column.desc() if descending else column, asset_events.c.id)
        .limit(limit)
        .offset(offset)
    )
    return _with_created_runs(conn, conn.execute(query).all()), total


ASSET_ORDER = {
    "id": assets.c.id,
    "uri": assets.c.uri,
    "created_at": assets.c.created_at,
    "updated_at": assets.c.updated_at,
}


def _asset(row: Any, consumers: Sequence[str], producers: Sequence[tuple[str, str]]) -> AssetRecord:
    return AssetRecord(
        id=row.id,
        uri=row.uri,
        name=row.name,
        group=row.asset_group,
        extra=row.extra or {},
        created_at=row.created_at,
        updated_at=row.updated_at,
        consuming_dags=tuple(consumers),
        producing_tasks=tuple(producers),
    )


def _with_references(conn: Connection, rows: Sequence[Any]) -> list[AssetRecord]:
    ids = [row.id for row in rows]
    consumers: dict[int, list[str]] = {}
    producers: dict[int, list[tuple[str, str]]] = {}
    if ids:
        for row in conn.execute(
            select(asset_consumers)
            .where(asset_consumers.c.asset_id.in_(ids))
            .order_by(asset_consumers.c.dag_id)
        ):
            consumers.setdefault(row.asset_id, []).append(row.dag_id)
        for row in conn.execute(
            select(asset_producers)
            .where(asset_producers.c.asset_id.in_(ids))
            .order_by(asset_producers.c.dag_id, asset_producers.c.task_id)
        ):
            producers.setdefault(row.asset_id, []).append((row.dag_id, row.task_id))
    return [_asset(row, consumers.get(row.id, []), producers.get(row.id, [])) for row in rows]


def list_assets(
    conn: Connection,
    *,
    uri_pattern: str | None = None,
    dag_ids: Sequence[str] | None = None,
    order_by: str = "id",
    descending: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AssetRecord], int]:
    """A page of assets (URI containing `uri_pattern`; consumed or produced by one of
    `dag_ids`), and how many match in all."""
    conditions = []
    if uri_pattern:
        escaped = uri_pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        conditions.append(assets.c.uri.like(f"%{escaped}%", escape="\\"))
    if dag_ids:
        conditions.append(
            assets.c.id.in_(
                select(asset_consumers.c.asset_id)
                .where(asset_consumers.c.dag_id.in_(list(dag_ids)))
                .union(
                    select(asset_producers.c.asset_id).where(
                        asset_producers.c.dag_id.in_(list(dag_ids))
                    )
                )
            )
        )
    where = and_(True, *conditions)
    total: int = conn.execute(select(func.count()).select_from(assets).where(where)).scalar_one()
    column = ASSET_ORDER[order_by]
    query = (
        select(assets)
        .where(where)
        .order_by(column.desc() if descending else column, assets.c.id)
        .limit(limit)
        .offset(offset)
    )
    return _with_references(conn, conn.execute(query).all()), total


def get_asset(conn: Connection, uri: str) -> AssetRecord | None:
    row = conn.execute(select(assets).where(assets.c.uri == uri)).one_or_none()
    return None if row is None else _with_references(conn, [row])[0]
