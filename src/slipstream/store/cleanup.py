"""Pruning old rows (`db clean`, the retention job): which runs may lose their rows, counting
what would go, and deleting one batch per call in the caller's short transaction.

A run's rows (task instances, tries, XComs) are pruned only from runs that could go
themselves: finished, every task instance settled, no callback pending, and not one of the
runs kept. Those runs are visited in windows of ids (`candidate_runs`), so no statement
carries more than a batch of ids and a run passed over is never read again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Select,
    Table,
    and_,
    delete,
    exists,
    func,
    literal,
    or_,
    select,
    tuple_,
)
from sqlalchemy.sql.elements import ColumnElement

from slipstream.core.cleanup import Cutoff, Pruned, RunLogs, TaskLogs, TryLog
from slipstream.core.records import RunType
from slipstream.core.states import FINISHED_TASK_STATES, RunState, TaskState
from slipstream.store.jobs import RUNNING
from slipstream.store.tables import (
    api_tokens,
    asset_events,
    callback_requests,
    dag_versions,
    dags,
    import_errors,
    log,
    run_asset_events,
    run_triggers,
    runs,
    scheduler_jobs,
    task_instances,
    task_maps,
    task_tries,
    web_sessions,
    xcoms,
)

_FINISHED_RUNS = [RunState.SUCCESS.value, RunState.FAILED.value]
# A task instance in these states has no try in flight, waiting or due.
_SETTLED = sorted(s.value for s in (*FINISHED_TASK_STATES, TaskState.NONE))
# Airflow keeps each DAG's latest run that was not triggered by hand.
_NOT_MANUAL = runs.c.run_type != RunType.MANUAL.value
# The runs whose intervals the scheduler continues from (store.runs.latest_scheduled_end).
_SCHEDULED = runs.c.run_type.in_([RunType.SCHEDULED.value, RunType.BACKFILL.value])
# Bound ids per statement stay far below SQLite's and PostgreSQL's parameter limits.
_CHUNK = 500

RUN_TABLES = (task_instances.name, task_tries.name, xcoms.name)


def run_recency() -> ColumnElement[datetime]:
    """A run's age as `db clean` reads it: its start (as Airflow's), else when it was queued
    (a run ended by hand before it started)."""
    return func.coalesce(runs.c.start_date, runs.c.queued_at)


def _by_dag(column: Any, cutoff: Cutoff) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if cutoff.dag_ids:
        conditions.append(column.in_(sorted(cutoff.dag_ids)))
    if cutoff.exclude_dag_ids:
        conditions.append(or_(column.is_(None), column.not_in(sorted(cutoff.exclude_dag_ids))))
    return conditions


def _chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def _count(conn: Connection, query: Select[Any]) -> int:
    return int(conn.execute(select(func.count()).select_from(query.subquery())).scalar_one())


# ----------------------------------------------------------------- runs and what they hold


def kept_runs(conn: Connection) -> frozenset[int]:
    """Runs never pruned, however old: each DAG's latest non-manual run (by start, as Airflow
    keeps it so that scheduling continues), its scheduled or backfill run with the latest
    interval end (what Slipstream's scheduler continues from) and its run that consumed the
    latest asset event."""
    recency = run_recency()
    latest = (
        select(runs.c.dag_id, func.max(recency).label("latest"))
        .where(_NOT_MANUAL)
        .group_by(runs.c.dag_id)
        .subquery()
    )
    by_start = (
        select(runs.c.id)
        .join(latest, and_(runs.c.dag_id == latest.c.dag_id, recency == latest.c.latest))
        .where(_NOT_MANUAL)
    )
    ends = (
        select(runs.c.dag_id, func.max(runs.c.data_interval_end).label("last_end"))
        .where(_SCHEDULED)
        .group_by(runs.c.dag_id)
        .subquery()
    )
    by_end = (
        select(runs.c.id)
        .join(
            ends,
            and_(runs.c.dag_id == ends.c.dag_id, runs.c.data_interval_end == ends.c.last_end),
        )
        .where(_SCHEDULED)
    )
    # The run holding a DAG's latest consumed asset event: the next asset-triggered run takes
    # the events after it (store.assets.consume), so without it old events would be taken again.
    consumed = (
        select(runs.c.dag_id, func.max(run_asset_events.c.event_id).label("last_event"))
        .join(runs, runs.c.id == run_asset_events.c.run_pk)
        .group_by(runs.c.dag_id)
        .subquery()
    )
    by_event = (
        select(run_asset_events.c.run_pk)
        .join(runs, runs.c.id == run_asset_events.c.run_pk)
        .join(
            consumed,
            and_(
                runs.c.dag_id == consumed.c.dag_id,
                run_asset_events.c.event_id == consumed.c.last_event,
            ),
        )
    )
    return frozenset(conn.execute(by_start.union(by_end, by_event)).scalars())


def _prunable_runs(cutoff: Cutoff) -> list[ColumnElement[bool]]:
    # Correlated to the run alone, whatever the statement these conditions end up inside.
    unsettled = (
        select(literal(1))
        .where(task_instances.c.run_pk == runs.c.id, task_instances.c.state.not_in(_SETTLED))
        .correlate(runs)
    )
    pending = select(literal(1)).where(callback_requests.c.run_pk == runs.c.id).correlate(runs)
    return [
        runs.c.state.in_(_FINISHED_RUNS),
        run_recency() < cutoff.before,
        ~exists(unsettled),
        ~exists(pending),
        *_by_dag(runs.c.dag_id, cutoff),
    ]


@dataclass(frozen=True, slots=True)
class RunRef:
    id: int
    dag_id: str
    run_id: str


def candidate_runs(
    conn: Connection, cutoff: Cutoff, *, after: int, limit: int, lock: bool
) -> list[RunRef]:
    """The next `limit` runs old enough to prune, by id after `after` (kept runs among them:
    the caller passes over those). With `lock`, PostgreSQL holds their rows until the
    transaction ends and leaves out rows someone else holds (a run being cleared)."""
    query = (
        select(runs.c.id, runs.c.dag_id, runs.c.run_id)
        .where(runs.c.id > after, *_prunable_runs(cutoff))
        .order_by(runs.c.id)
        .limit(limit)
    )
    if lock:
        query = query.with_for_update(skip_locked=True, of=runs)
    return [RunRef(row.id, row.dag_id, row.run_id) for row in conn.execute(query)]


def _kept_among_old(conn: Connection, cutoff: Cutoff, kept: Collection[int]) -> list[int]:
    """The kept runs that are old enough to prune but for being kept (few: two per DAG at
    most), so counts can take them out of what a subquery finds."""
    found: list[int] = []
    for chunk in _chunks(sorted(kept)):
        query = select(runs.c.id).where(runs.c.id.in_(list(chunk)), *_prunable_runs(cutoff))
        found += conn.execute(query).scalars()
    return found


def count_prunable(
    conn: Connection, cutoff: Cutoff, kept: Collection[int], table_name: str, *, aged: bool
) -> int:
    """How many rows of `table_name` the runs old enough to prune hold (`runs`: the runs
    themselves); with `aged`, only those `delete_in_runs` would take (old enough themselves,
    not a current try). Counted in SQL over all such runs, less the kept ones."""
    old = select(runs.c.id).where(*_prunable_runs(cutoff))
    spared = _kept_among_old(conn, cutoff, kept)
    if table_name == runs.name:
        return _count(conn, old) - len(spared)
    table, conditions = _IN_RUNS[table_name]

    def rows_in(runs_in: Any) -> Select[Any]:
        if aged:
            return select(table).where(*conditions(runs_in, cutoff.before))
        return select(table).where(table.c.run_pk.in_(runs_in))

    total = _count(conn, rows_in(old))
    for chunk in _chunks(spared):
        total -= _count(conn, rows_in(list(chunk)))
    return total


def delete_runs(conn: Connection, refs: Sequence[RunRef]) -> Pruned:
    """Delete these runs (found by `candidate_runs` in this transaction) with all they hold.
    Children go first, explicitly, as store.dags.delete_dag does."""
    if not refs:
        return Pruned(0)
    pks = [ref.id for ref in refs]
    with_them: dict[str, int] = {}
    for table in (
        task_tries,
        xcoms,
        task_maps,
        task_instances,
        run_asset_events,
        run_triggers,
        callback_requests,
    ):
        result = conn.execute(delete(table).where(table.c.run_pk.in_(pks)))
        if table.name in RUN_TABLES:
            with_them[table.name] = int(result.rowcount)
    deleted = conn.execute(
        delete(runs).where(runs.c.id.in_(pks)).returning(runs.c.dag_id, runs.c.run_id)
    ).all()
    return Pruned(
        len(deleted),
        tuple(sorted(with_them.items())),
        tuple(RunLogs(row.dag_id, row.run_id) for row in deleted),
    )


def _old_task_instances(runs_in: Any, before: datetime) -> list[ColumnElement[bool]]:
    # Never-started instances (skipped, upstream_failed) are dated by their end or last change.
    recency = func.coalesce(
        task_instances.c.start_date, task_instances.c.end_date, task_instances.c.updated_at
    )
    return [
        task_instances.c.run_pk.in_(runs_in),
        task_instances.c.state.in_(_SETTLED),
        recency < before,
    ]


def _past_tries(runs_in: Any, before: datetime) -> list[ColumnElement[bool]]:
    current = select(task_instances.c.try_number).where(
        task_instances.c.run_pk == task_tries.c.run_pk,
        task_instances.c.task_id == task_tries.c.task_id,
        task_instances.c.map_index == task_tries.c.map_index,
    )
    return [
        task_tries.c.run_pk.in_(runs_in),
        func.coalesce(task_tries.c.start_date, task_tries.c.queued_at) < before,
        task_tries.c.try_number < current.scalar_subquery(),
    ]


def _old_xcoms(runs_in: Any, before: datetime) -> list[ColumnElement[bool]]:
    return [xcoms.c.run_pk.in_(runs_in), xcoms.c.timestamp < before]


_IN_RUNS = {
    task_instances.name: (task_instances, _old_task_instances),
    task_tries.name: (task_tries, _past_tries),
    xcoms.name: (xcoms, _old_xcoms),
}


def delete_in_runs(
    conn: Connection, table_name: str, run_pks: Sequence[int], before: datetime, limit: int
) -> Pruned:
    """Delete up to `limit` rows of `table_name` older than `before` from these runs: task
    instances (with their tries, XComs and mapped lengths), past tries (a task instance's
    current try stays, as Airflow's task_instance_history holds past tries only) or XComs."""
    if not run_pks:
        return Pruned(0)
    table, conditions = _IN_RUNS[table_name]
    run_pks = list(run_pks)
    key = tuple_(*table.primary_key.columns)
    # correlate(None): the inner select reads the table afresh, not the DELETE's row.
    chosen = (
        select(*table.primary_key.columns)
        .where(*conditions(run_pks, before))
        .order_by(*table.primary_key.columns)
        .limit(limit)
        .correlate(None)
    )
    if table is xcoms:
        return Pruned(int(conn.execute(delete(xcoms).where(key.in_(chosen))).rowcount))
    if table is task_tries:
        rows = conn.execute(
            delete(task_tries)
            .where(key.in_(chosen))
            .returning(
                task_tries.c.dag_id,
                task_tries.c.run_id,
                task_tries.c.task_id,
                task_tries.c.map_index,
                task_tries.c.try_number,
            )
        ).all()
        logs = [TryLog(r.dag_id, r.run_id, r.task_id, r.map_index, r.try_number) for r in rows]
        return Pruned(len(rows), logs=tuple(logs))
    instances = conn.execute(
        delete(task_instances)
        .where(key.in_(chosen))
        .returning(
            task_instances.c.run_pk,
            task_instances.c.task_id,
            task_instances.c.map_index,
            task_instances.c.dag_id,
            task_instances.c.run_id,
        )
    ).all()
    with_them = {task_tries.name: 0, xcoms.name: 0}
    keys = [(r.run_pk, r.task_id, r.map_index) for r in instances]
    for chunk in _chunks(keys):
        for held in (task_tries, xcoms, task_maps):
            held_key = tuple_(held.c.run_pk, held.c.task_id, held.c.map_index)
            result = conn.execute(delete(held).where(held_key.in_(list(chunk))))
            if held.name in with_them:
                with_them[held.name] += int(result.rowcount)
    return Pruned(
        len(instances),
        tuple(sorted(with_them.items())),
        tuple(TaskLogs(r.dag_id, r.run_id, r.task_id, r.map_index) for r in instances),
    )


# ----------------------------------------------------------------- tables pruned by age alone


def _by_age(table_name: str, cutoff: Cutoff, now: datetime) -> tuple[Table, list[Any]]:
    """The table and the conditions of its rows old enough to go."""
    before = cutoff.before
    if table_name == log.name:
        return log, [log.c.dttm < before, *_by_dag(log.c.dag_id, cutoff)]
    if table_name == scheduler_jobs.name:
        # A job still marked running is how its tries are found if it died: never pruned.
        return scheduler_jobs, [
            scheduler_jobs.c.latest_heartbeat < before,
            scheduler_jobs.c.state != RUNNING,
        ]
    if table_name == web_sessions.name:
        # Never a sign-in still valid, even for a cutoff in the future.
        return web_sessions, [web_sessions.c.expires_at < min(before, now)]
    if table_name == api_tokens.name:
        return api_tokens, [
            or_(api_tokens.c.revoked_at < before, api_tokens.c.expires_at < min(before, now))
        ]
    if table_name == import_errors.name:
        return import_errors, [import_errors.c.timestamp < before]
    if table_name == callback_requests.name:
        conditions: list[Any] = [callback_requests.c.created_at < before]
        by_dag = _by_dag(runs.c.dag_id, cutoff)
        if by_dag:
            conditions.append(callback_requests.c.run_pk.in_(select(runs.c.id).where(*by_dag)))
        return callback_requests, conditions
    if table_name == asset_events.name:
        return asset_events, [
            asset_events.c.timestamp < before,
            *_by_dag(asset_events.c.source_dag_id, cutoff),
        ]
    if table_name == dag_versions.name:
        newer = dag_versions.alias("newer")
        return dag_versions, [
            dag_versions.c.created_at < before,
            *_by_dag(dag_versions.c.dag_id, cutoff),
            ~exists(select(literal(1)).where(runs.c.version_id == dag_versions.c.id)),
            ~exists(select(literal(1)).where(dags.c.version_id == dag_versions.c.id)),
            # A DAG's newest version stays, as Airflow keeps the last one of each DAG.
            exists(
                select(literal(1)).where(
                    newer.c.dag_id == dag_versions.c.dag_id, newer.c.id > dag_versions.c.id
                )
            ),
        ]
    raise ValueError(f"{table_name} is not pruned by age alone")


def count_by_age(conn: Connection, table_name: str, cutoff: Cutoff, now: datetime) -> int:
    table, conditions = _by_age(table_name, cutoff, now)
    return _count(conn, select(table).where(*conditions))


def delete_by_age(
    conn: Connection, table_name: str, cutoff: Cutoff, now: datetime, limit: int
) -> Pruned:
    """Delete up to `limit` of a table's rows old enough to go, lowest ids first."""
    table, conditions = _by_age(table_name, cutoff, now)
    pk = table.c.id
    chosen = select(pk).where(*conditions).order_by(pk).limit(limit).correlate(None)
    if table is not asset_events:
        return Pruned(int(conn.execute(delete(table).where(pk.in_(chosen))).rowcount))
    ids = list(conn.execute(chosen).scalars())
    if not ids:
        return Pruned(0)
    # The runs that consumed these events forget them (their ON DELETE CASCADE, spelt out).
    links = conn.execute(delete(run_asset_events).where(run_asset_events.c.event_id.in_(ids)))
    deleted = conn.execute(delete(asset_events).where(asset_events.c.id.in_(ids))).rowcount
    return Pruned(int(deleted), ((run_asset_events.name, int(links.rowcount)),))
