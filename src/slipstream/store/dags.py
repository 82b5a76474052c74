"""DAGs and their versions: what parsing found, what is paused, what the scheduler may plan.

A DAG row is the current view of one dag_id; each distinct parse result is a dag_versions row
that stays put once written, so a run keeps pointing at the version it started with.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    bindparam,
    delete,
    false,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite

from slipstream.auth.permissions import DagScope
from slipstream.core.records import DagRecord, DagVersion
from slipstream.core.states import TaskState
from slipstream.errors import InvalidInputError
from slipstream.store.tables import (
    dag_versions,
    dags,
    runs,
    task_instances,
    task_tries,
    xcoms,
)

# Airflow's API names on the left where it has one; dag_id always breaks ties so pages are stable.
_ORDERABLE: Mapping[str, ColumnElement[Any]] = {
    "dag_id": dags.c.dag_id,
    "is_paused": dags.c.is_paused,
    "fileloc": dags.c.fileloc,
    "owners": dags.c.owners,
    "next_dagrun": dags.c.next_dagrun_data_interval_start,
    "next_dagrun_create_after": dags.c.next_dagrun_create_after,
    "last_parsed_time": dags.c.last_parsed_at,
    "last_parsed_at": dags.c.last_parsed_at,
}

# The structure fields that decide when the next run is due: if any changes, the precomputed
# next run is stale and the scheduler must compute it again.
_TIMING_FIELDS = ("schedule", "start_date", "end_date", "catchup")


def _to_record(row: Row[Any]) -> DagRecord:
    m = row._mapping
    return DagRecord(
        dag_id=m["dag_id"],
        is_paused=m["is_paused"],
        is_active=m["is_active"],
        fileloc=m["fileloc"],
        version_id=m["version_id"],
        version_hash=m["version_hash"],
        description=m["description"],
        tags=tuple(m["tags"] or ()),
        owners=m["owners"],
        schedule=m["schedule"],
        max_active_runs=m["max_active_runs"],
        max_active_tasks=m["max_active_tasks"],
        next_dagrun_create_after=m["next_dagrun_create_after"],
        last_parsed_at=m["last_parsed_at"],
        next_dagrun_data_interval_start=m["next_dagrun_data_interval_start"],
        next_dagrun_data_interval_end=m["next_dagrun_data_interval_end"],
    )


# Built once: every trigger reads its DAG.
_DAG_BY_ID = select(dags).where(dags.c.dag_id == bindparam("k_dag_id"))


def _to_version(row: Row[Any]) -> DagVersion:
    m = row._mapping
    return DagVersion(
        id=m["id"],
        dag_id=m["dag_id"],
        version_hash=m["version_hash"],
        structure=m["structure"],
        created_at=m["created_at"],
        source_sha256=m["source_sha256"],
    )


def get_dag(conn: Connection, dag_id: str) -> DagRecord | None:
    row = conn.execute(_DAG_BY_ID, {"k_dag_id": dag_id}).one_or_none()
    return None if row is None else _to_record(row)


def _tag_filter(conn: Connection, tags: Collection[str]) -> ColumnElement[bool]:
    # Tags are a JSON array; each dialect has its own set-returning function to unnest one.
    unnest = "json_array_elements_text" if conn.dialect.name == "postgresql" else "json_each"
    elements = getattr(func, unnest)(dags.c.tags).table_valued("value")
    return select(literal(1)).select_from(elements).where(elements.c.value.in_(list(tags))).exists()


def scope_filter(conn: Connection, scope: DagScope) -> ColumnElement[bool] | None:
    """The condition selecting the DAGs `scope` covers; None when it covers them all."""
    if scope.everything:
        return None
    conditions: list[ColumnElement[bool]] = []
    if scope.dag_ids:
        conditions.append(dags.c.dag_id.in_(sorted(scope.dag_ids)))
    if scope.tags:
        conditions.append(_tag_filter(conn, scope.tags))
    return or_(*conditions) if conditions else false()


def _conditions(
    conn: Connection,
    *,
    only_active: bool,
    paused: bool | None,
    dag_id_pattern: str | None,
    tags: Sequence[str] | None,
    scope: DagScope | None,
    last_run_state: str | None = None,
) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if only_active:
        conditions.append(dags.c.is_active.is_(True))
    if paused is not None:
        conditions.append(dags.c.is_paused.is_(paused))
    if dag_id_pattern:
        conditions.append(dags.c.dag_id.ilike(f"%{dag_id_pattern}%"))
    if tags:
        conditions.append(_tag_filter(conn, tags))
    if scope is not None:
        within = scope_filter(conn, scope)
        if within is not None:
            conditions.append(within)
    if last_run_state is not None:
        conditions.append(_last_run_is(last_run_state))
    return conditions


# `last_run_state` for DAGs that have no run at all.
NO_RUN = "none"


def _last_run_is(state: str) -> ColumnElement[bool]:
    """DAGs whose most recently created run is in `state` (NO_RUN: DAGs without runs): one
    index seek per DAG on ix_runs_dag_id_id."""
    latest = (
        select(runs.c.state)
        .where(runs.c.dag_id == dags.c.dag_id)
        .order_by(runs.c.id.desc())
        .limit(1)
        .correlate(dags)
        .scalar_subquery()
    )
    return latest.is_(None) if state == NO_RUN else latest == state


def list_dags(
    conn: Connection,
    *,
    only_active: bool = True,
    paused: bool | None = None,
    dag_id_pattern: str | None = None,
    tags: Sequence[str] | None = None,
    limit: int | None = None,
    offset: int = 0,
    order_by: str = "dag_id",
    scope: DagScope | None = None,
    last_run_state: str | None = None,
) -> tuple[list[DagRecord], int]:
    """One page of DAGs and the total matching. `dag_id_pattern` is a case-insensitive
    substring in which SQL LIKE wildcards (% and _) keep their meaning, as in Airflow;
    `tags` matches DAGs carrying any of them; `scope` keeps only the DAGs it covers (a
    caller's visible DAGs); `last_run_state` keeps DAGs whose last run (the most recently
    created) is in that state, or with NO_RUN those without runs; `order_by` is a field,
    "-field" for descending."""
    descending = order_by.startswith("-")
    column = _ORDERABLE.get(order_by.removeprefix("-"))
    if column is None:
        raise InvalidInputError(
            f"cannot order DAGs by {order_by!r}; choose from {', '.join(sorted(_ORDERABLE))}",
            field="order_by",
        )
    conditions = _conditions(
        conn,
        only_active=only_active,
        paused=paused,
        dag_id_pattern=dag_id_pattern,
        tags=tags,
        scope=scope,
        last_run_state=last_run_state,
    )
    total = conn.execute(select(func.count()).select_from(dags).where(*conditions)).scalar_one()
    ordering = (column.desc() if descending else column.asc()).nulls_last()
    query = select(dags).where(*conditions).order_by(ordering, dags.c.dag_id).offset(offset)
    if limit is not None:
        query = query.limit(limit)
    return [_to_record(row) for row in conn.execute(query)], total


def tags_in_scope(
    conn: Connection, scope: DagScope | None, *, only_active: bool = True
) -> list[str]:
    """Every tag carried by a DAG `scope` covers (all DAGs: None), sorted: what a tag filter
    may offer without naming a DAG the caller cannot see."""
    conditions = _conditions(
        conn, only_active=only_active, paused=None, dag_id_pattern=None, tags=None, scope=scope
    )
    found: set[str] = set()
    for (tags,) in conn.execute(select(dags.c.tags).where(*conditions)):
        found.update(tags or ())
    return sorted(found)


def get_version(conn: Connection, version_id: int) -> DagVersion | None:
    row = conn.execute(select(dag_versions).where(dag_versions.c.id == version_id)).one_or_none()
    return None if row is None else _to_version(row)


def get_source(conn: Connection, version_id: int) -> str | None:
    """The DAG file's text as parsed for this version."""
    query = select(dag_versions.c.source).where(dag_versions.c.id == version_id)
    value: str | None = conn.execute(query).scalar_one_or_none()
    return value


def latest_version(conn: Connection, dag_id: str) -> DagVersion | None:
    """The version the DAG row points at: the last one parsed, even if an older hash came back."""
    query = select(dag_versions).join(dags, dags.c.version_id == dag_versions.c.id)
    row = conn.execute(query.where(dags.c.dag_id == dag_id)).one_or_none()
    return None if row is None else _to_version(row)


def set_paused(conn: Connection, dag_id: str, is_paused: bool) -> bool:
    """Pause or unpause; False when there is no such DAG."""
    result = conn.execute(update(dags).where(dags.c.dag_id == dag_id).values(is_paused=is_paused))
    return result.rowcount > 0


def set_paused_many(conn: Connection, dag_ids: Collection[str], is_paused: bool) -> int:
    """Pause or unpause these DAGs; how many rows matched."""
    if not dag_ids:
        return 0
    statement = update(dags).where(dags.c.dag_id.in_(list(dag_ids))).values(is_paused=is_paused)
    return conn.execute(statement).rowcount


def versions_by_id(conn: Connection, version_ids: Collection[int]) -> dict[int, DagVersion]:
    """Several versions in one query, by id (for a page of DAGs)."""
    if not version_ids:
        return {}
    query = select(dag_versions).where(dag_versions.c.id.in_(sorted(version_ids)))
    return {row.id: _to_version(row) for row in conn.execute(query)}


def dags_in_files(conn: Connection, filelocs: Collection[str]) -> list[DagRecord]:
    """The DAGs (active or not) whose file is one of `filelocs`."""
    if not filelocs:
        return []
    query = select(dags).where(dags.c.fileloc.in_(sorted(filelocs))).order_by(dags.c.dag_id)
    return [_to_record(row) for row in conn.execute(query)]


def count_active_task_instances(conn: Connection, dag_id: str) -> int:
    """Task instances of the DAG holding (or about to hold) a worker: queued or running."""
    active = [TaskState.QUEUED.value, TaskState.RUNNING.value]
    query = (
        select(func.count())
        .select_from(task_instances)
        .where(task_instances.c.dag_id == dag_id, task_instances.c.state.in_(active))
    )
    count: int = conn.execute(query).scalar_one()
    return count


def schedulable_dags(conn: Connection) -> list[DagRecord]:
    """Active, unpaused DAGs that have a schedule: the ones the scheduler creates runs for."""
    query = (
        select(dags)
        .where(dags.c.is_active.is_(True), dags.c.is_paused.is_(False), dags.c.schedule.isnot(None))
        .order_by(dags.c.dag_id)
    )
    return [_to_record(row) for row in conn.execute(query)]


def set_next_dagrun_create_after(
    conn: Connection,
    dag_id: str,
    value: datetime | None,
    *,
    data_interval: tuple[datetime, datetime] | None = None,
) -> bool:
    """Record when the next scheduled run may be created and, if known, its data interval.

    The three columns describe one future run, so they are always written together."""
    start, end = data_interval if data_interval is not None else (None, None)
    result = conn.execute(
        update(dags)
        .where(dags.c.dag_id == dag_id)
        .values(
            next_dagrun_create_after=value,
            next_dagrun_data_interval_start=start,
            next_dagrun_data_interval_end=end,
        )
    )
    return result.rowcount > 0


def dag_ids_in_file(conn: Connection, fileloc: str, *, only_active: bool = True) -> list[str]:
    query = select(dags.c.dag_id).where(dags.c.fileloc == fileloc).order_by(dags.c.dag_id)
    if only_active:
        query = query.where(dags.c.is_active.is_(True))
    return list(conn.execute(query).scalars())


def _insert_ignoring_conflict(conn: Connection, table: Any, values: Mapping[str, Any]) -> bool:
    """INSERT ... ON CONFLICT DO NOTHING; True when the row was new. Never aborts the
    transaction on PostgreSQL the way catching an IntegrityError would."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values).on_conflict_do_nothing()
    return conn.execute(statement.returning(literal(1))).first() is not None


def _timing(structure: Mapping[str, Any]) -> dict[str, Any]:
    return {key: structure.get(key) for key in _TIMING_FIELDS}


def upsert_parsed(
    conn: Connection,
    structure: Mapping[str, Any],
    version_hash: str,
    source: str | None,
    *,
    paused_at_creation: bool,
    now: datetime,
    source_sha256: str | None = None,
) -> DagRecord:
    """Store one parsed DAG: create its row if new, make it active, and point it at the version
    for `version_hash` (created if new). Earlier versions are never touched, except to record
    the text and digest of the file (the same bytes: they are part of the version hash) on a
    version stored without them."""
    dag_id: str = structure["dag_id"]
    paused_upon_creation = structure.get("is_paused_upon_creation")
    tags = list(dict.fromkeys(structure.get("tags") or ()))
    described = {
        "fileloc": structure["fileloc"],
        "description": structure.get("description"),
        "tags": tags,
        "owners": structure.get("owner") or "airflow",
        "schedule": structure.get("schedule_summary"),
        "max_active_runs": structure.get("max_active_runs", 16),
        "max_active_tasks": structure.get("max_active_tasks", 16),
    }
    _insert_ignoring_conflict(
        conn,
        dags,
        {
            "dag_id": dag_id,
            "is_paused": (
                paused_at_creation if paused_upon_creation is None else bool(paused_upon_creation)
            ),
            "is_active": True,
            "created_at": now,
            **described,
        },
    )
    # Lock the row (PostgreSQL; SQLite writers are already serial) so two parsers of one DAG
    # cannot both create a version or both decide the schedule did not change.
    previous_version_id = conn.execute(
        select(dags.c.version_id).where(dags.c.dag_id == dag_id).with_for_update()
    ).scalar_one()

    known = conn.execute(
        select(dag_versions.c.id, dag_versions.c.source_sha256).where(
            dag_versions.c.dag_id == dag_id, dag_versions.c.version_hash == version_hash
        )
    ).one_or_none()
    if known is None:
        version_id = conn.execute(
            dag_versions.insert()
            .values(
                dag_id=dag_id,
                version_hash=version_hash,
                structure=dict(structure),
                source=source,
                source_sha256=source_sha256,
                created_at=now,
            )
            .returning(dag_versions.c.id)
        ).scalar_one()
    else:
        version_id = known.id
        if known.source_sha256 is None and source_sha256 is not None:
            conn.execute(
                update(dag_versions)
                .where(dag_versions.c.id == version_id)
                .values(source=source, source_sha256=source_sha256)
            )

    changes: dict[str, Any] = {
        **described,
        "is_active": True,
        "last_parsed_at": now,
        "version_id": version_id,
        "version_hash": version_hash,
    }
    if previous_version_id is not None and previous_version_id != version_id:
        previous = conn.execute(
            select(dag_versions.c.structure).where(dag_versions.c.id == previous_version_id)
        ).scalar_one_or_none()
        if previous is None or _timing(previous) != _timing(structure):
            changes.update(
                next_dagrun_create_after=None,
                next_dagrun_data_interval_start=None,
                next_dagrun_data_interval_end=None,
            )
    row = conn.execute(
        update(dags).where(dags.c.dag_id == dag_id).values(**changes).returning(*dags.c)
    ).one()
    return _to_record(row)


def deactivate(conn: Connection, dag_ids: Collection[str]) -> int:
    """Mark DAGs inactive (their file no longer defines them); returns how many were active."""
    if not dag_ids:
        return 0
    result = conn.execute(
        update(dags)
        .where(dags.c.dag_id.in_(list(dag_ids)), dags.c.is_active.is_(True))
        .values(is_active=False)
    )
    return result.rowcount


def delete_dag(conn: Connection, dag_id: str) -> bool:
    """Delete a DAG with its versions, runs, task instances, tries and XComs.

    Children go first, explicitly, so this holds whether or not the database enforces the
    ON DELETE CASCADE rules (SQLite only does with PRAGMA foreign_keys on)."""
    for table in (task_tries, xcoms, task_instances, runs, dag_versions):
        conn.execute(delete(table).where(table.c.dag_id == dag_id))
    return conn.execute(delete(dags).where(dags.c.dag_id == dag_id)).rowcount > 0
