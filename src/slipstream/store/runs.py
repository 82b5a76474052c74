"""Runs: creating and finding them. Their states change only through store/transitions.py."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Row, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from slipstream.core.records import Run, RunType
from slipstream.core.states import RunState
from slipstream.errors import InvalidInputError, RunAlreadyExists
from slipstream.store.tables import runs

_ORDERABLE = {
    "id": runs.c.id,
    "run_id": runs.c.run_id,
    "dag_id": runs.c.dag_id,
    "state": runs.c.state,
    "logical_date": runs.c.logical_date,
    "execution_date": runs.c.logical_date,
    "start_date": runs.c.start_date,
    "end_date": runs.c.end_date,
    "queued_at": runs.c.queued_at,
    "data_interval_start": runs.c.data_interval_start,
    "data_interval_end": runs.c.data_interval_end,
    "updated_at": runs.c.updated_at,
    "external_trigger": runs.c.external_trigger,
}


# Built once: a trigger is the API's hottest write, and building a statement per call costs
# more than executing it on SQLite.
_INSERT_RUN = insert(runs).returning(*runs.c)
_RUN_ID_EXISTS = select(runs.c.id).where(
    runs.c.dag_id == bindparam("k_dag_id"), runs.c.run_id == bindparam("k_run_id")
)
_RUN_BY_ID = select(runs).where(
    runs.c.dag_id == bindparam("k_dag_id"), runs.c.run_id == bindparam("k_run_id")
)


# Built once, like the two above: an idle scheduler asks it every few seconds.
_DAGS_WITH_QUEUED_RUNS = (
    select(runs.c.dag_id).where(runs.c.state == RunState.QUEUED.value).distinct()
)


def _to_run(row: Row[Any]) -> Run:
    return run_from_mapping(row._mapping)


def run_from_mapping(m: Mapping[Any, Any]) -> Run:
    """A Run from a row's columns by name (also used where runs are joined to other tables)."""
    return Run(
        id=m["id"],
        dag_id=m["dag_id"],
        run_id=m["run_id"],
        state=RunState(m["state"]),
        run_type=RunType(m["run_type"]),
        logical_date=m["logical_date"],
        data_interval_start=m["data_interval_start"],
        data_interval_end=m["data_interval_end"],
        conf=m["conf"] or {},
        queued_at=m["queued_at"],
        start_date=m["start_date"],
        end_date=m["end_date"],
        version_id=m["version_id"],
        external_trigger=m["external_trigger"],
        note=m["note"],
        state_reason=m["state_reason"],
        triggered_by=m["triggered_by"],
    )


def insert_run(
    conn: Connection,
    *,
    dag_id: str,
    run_id: str,
    run_type: RunType,
    logical_date: datetime | None,
    data_interval: tuple[datetime, datetime] | None,
    conf: dict[str, Any],
    version_id: int,
    now: datetime,
    external_trigger: bool = True,
    triggered_by: str | None = None,
    note: str | None = None,
    idempotency_key: str | None = None,
) -> Run:
    """Insert a queued run; raise RunAlreadyExists if the run id is taken (nothing written)."""
    values = {
        "dag_id": dag_id,
        "run_id": run_id,
        "state": RunState.QUEUED.value,
        "run_type": run_type.value,
        "logical_date": logical_date,
        "data_interval_start": data_interval[0] if data_interval else None,
        "data_interval_end": data_interval[1] if data_interval else None,
        "conf": conf,
        "queued_at": now,
        "version_id": version_id,
        "external_trigger": external_trigger,
        "triggered_by": triggered_by,
        "note": note,
        "idempotency_key": idempotency_key,
        "updated_at": now,
    }
    try:
        if conn.dialect.name == "sqlite":
            # SQLite undoes only the failed statement, so the transaction stays usable.
            row = conn.execute(_INSERT_RUN, values).one()
        else:
            # A savepoint keeps the surrounding transaction usable on PostgreSQL.
            with conn.begin_nested():
                row = conn.execute(_INSERT_RUN, values).one()
    except IntegrityError:
        # Only a taken run id or idempotency key is a duplicate; a missing DAG or version
        # (a foreign key) is a caller's bug and must not read as "already exists".
        if run_id_exists(conn, dag_id, run_id) or (
            idempotency_key is not None
            and find_by_idempotency_key(conn, dag_id, idempotency_key) is not None
        ):
            raise RunAlreadyExists(dag_id, run_id) from None
        raise
    return _to_run(row)


def run_id_exists(conn: Connection, dag_id: str, run_id: str) -> bool:
    found = conn.execute(_RUN_ID_EXISTS, {"k_dag_id": dag_id, "k_run_id": run_id}).first()
    return found is not None


def get_run(conn: Connection, dag_id: str, run_id: str) -> Run | None:
    row = conn.execute(_RUN_BY_ID, {"k_dag_id": dag_id, "k_run_id": run_id}).first()
    return _to_run(row) if row else None


def get_run_by_pk(conn: Connection, pk: int) -> Run | None:
    row = conn.execute(select(runs).where(runs.c.id == pk)).first()
    return _to_run(row) if row else None


def runs_by_pk(conn: Connection, pks: Collection[int]) -> dict[int, Run]:
    if not pks:
        return {}
    rows = conn.execute(select(runs).where(runs.c.id.in_(list(pks))))
    return {row.id: _to_run(row) for row in rows}


def find_by_idempotency_key(conn: Connection, dag_id: str, key: str) -> Run | None:
    row = conn.execute(
        select(runs).where(runs.c.dag_id == dag_id, runs.c.idempotency_key == key)
    ).first()
    return _to_run(row) if row else None


def list_runs(
    conn: Connection,
    *,
    dag_ids: Sequence[str] | None = None,
    states: Sequence[str] | None = None,
    run_types: Sequence[RunType] | None = None,
    logical_date_gte: datetime | None = None,
    logical_date_lte: datetime | None = None,
    start_date_gte: datetime | None = None,
    start_date_lte: datetime | None = None,
    end_date_gte: datetime | None = None,
    end_date_lte: datetime | None = None,
    updated_at_gte: datetime | None = None,
    updated_at_lte: datetime | None = None,
    limit: int | None = None,
    offset: int = 0,
    order_by: str = "id",
) -> tuple[list[Run], int]:
    """A page of runs and the total that match; `order_by` takes Airflow's `-field` form."""
    conditions: list[ColumnElement[bool]] = []
    if dag_ids is not None:
        conditions.append(runs.c.dag_id.in_(list(dag_ids)))
    if states:
        conditions.append(runs.c.state.in_(list(states)))
    if run_types:
        conditions.append(runs.c.run_type.in_([kind.value for kind in run_types]))
    bounds = [
        (runs.c.logical_date, logical_date_gte, logical_date_lte),
        (runs.c.start_date, start_date_gte, start_date_lte),
        (runs.c.end_date, end_date_gte, end_date_lte),
        (runs.c.updated_at, updated_at_gte, updated_at_lte),
    ]
    for bounded, low, high in bounds:
        if low is not None:
            conditions.append(bounded >= low)
        if high is not None:
            conditions.append(bounded <= high)
    descending = order_by.startswith("-")
    column = _ORDERABLE.get(order_by.lstrip("-"))
    if column is None:
        raise InvalidInputError(
            f"cannot order runs by {order_by!r}; choose from {', '.join(sorted(_ORDERABLE))}",
            field="order_by",
        )
    total = conn.execute(select(func.count()).select_from(runs).where(*conditions)).scalar_one()
    query = select(runs).where(*conditions)
    query = query.order_by(
        column.desc() if descending else column.asc(),
        runs.c.id.desc() if descending else runs.c.id.asc(),
    )
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    return [_to_run(row) for row in conn.execute(query)], int(total)


def queued_runs(conn: Connection, dag_id: str, limit: int) -> list[Run]:
    """The oldest queued runs of one DAG: first come, first started."""
    query = (
        select(runs)
        .where(runs.c.state == RunState.QUEUED.value, runs.c.dag_id == dag_id)
        .order_by(runs.c.id)
        .limit(limit)
    )
    return [_to_run(row) for row in conn.execute(query)]


def dags_with_queued_runs(conn: Connection, dag_ids: Iterable[str] | None = None) -> set[str]:
    """The DAGs (of `dag_ids`, or of all) that have a queued run; ix_runs_state_dag_id
    answers it without reading the runs."""
    if dag_ids is None:
        return {row.dag_id for row in conn.execute(_DAGS_WITH_QUEUED_RUNS)}
    ids = list(dag_ids)
    if not ids:
        return set()
    query = _DAGS_WITH_QUEUED_RUNS.where(runs.c.dag_id.in_(ids))
    return {row.dag_id for row in conn.execute(query)}


def count_running(conn: Connection, dag_ids: Iterable[str]) -> dict[str, int]:
    ids = list(dag_ids)
    if not ids:
        return {}
    query = (
        select(runs.c.dag_id, func.count())
        .where(runs.c.state == RunState.RUNNING.value, runs.c.dag_id.in_(ids))
        .group_by(runs.c.dag_id)
    )
    return {dag_id: int(n) for dag_id, n in conn.execute(query)}


def running_runs(conn: Connection) -> list[Run]:
    query = select(runs).where(runs.c.state == RunState.RUNNING.value).order_by(runs.c.id)
    return [_to_run(row) for row in conn.execute(query)]


def set_note(conn: Connection, pk: int, note: str | None, now: datetime) -> None:
    conn.execute(update(runs).where(runs.c.id == pk).values(note=note, updated_at=now))


def touch(conn: Connection, pk: int, now: datetime, *, reason: str | None = None) -> None:
    """Record that a person changed a run's tasks (its state unchanged)."""
    conn.execute(update(runs).where(runs.c.id == pk).values(updated_at=now, state_reason=reason))


def find_at_logical_date(conn: Connection, dag_id: str, logical_date: datetime) -> Run | None:
    row = conn.execute(
        select(runs)
        .where(runs.c.dag_id == dag_id, runs.c.logical_date == logical_date)
        .order_by(runs.c.id)
        .limit(1)
    ).first()
    return _to_run(row) if row else None


def delete_run(conn: Connection, pk: int) -> bool:
    return conn.execute(runs.delete().where(runs.c.id == pk)).rowcount == 1


def previous_successful(conn: Connection, dag_id: str, before: datetime) -> Run | None:
    """The newest successful run of a DAG whose logical date is before `before` (what
    Airflow's prev_*_success context keys describe)."""
    row = conn.execute(
        select(runs)
        .where(
            runs.c.dag_id == dag_id,
            runs.c.state == RunState.SUCCESS.value,
            runs.c.logical_date < before,
        )
        .order_by(runs.c.logical_date.desc())
        .limit(1)
    ).first()
    return _to_run(row) if row else None


def has_unfinished_run(conn: Connection, dag_id: str) -> bool:
    """Whether some run of the DAG is queued or running (what @continuous waits on)."""
    query = (
        select(runs.c.id)
        .where(
            runs.c.dag_id == dag_id,
            runs.c.state.in_([RunState.QUEUED.value, RunState.RUNNING.value]),
        )
        .limit(1)
    )
    return conn.execute(query).first() is not None


def latest_scheduled_end(conn: Connection, dag_id: str) -> datetime | None:
    """End of the newest interval already covered by a scheduled or backfill run."""
    query = select(func.max(runs.c.data_interval_end)).where(
        runs.c.dag_id == dag_id,
        runs.c.run_type.in_([RunType.SCHEDULED.value, RunType.BACKFILL.value]),
    )
    value: datetime | None = conn.execute(query).scalar_one_or_none()
    return value


def logical_dates_taken(
    conn: Connection, dag_id: str, dates: Collection[datetime]
) -> set[datetime]:
    if not dates:
        return set()
    query = select(runs.c.logical_date).where(
        runs.c.dag_id == dag_id, runs.c.logical_date.in_(list(dates))
    )
    return {row.logical_date for row in conn.execute(query)}


def count_by_state(conn: Connection) -> dict[RunState, int]:
    """How many runs are in each state (ix_runs_state_dag_id leads with the state)."""
    rows = conn.execute(select(runs.c.state, func.count()).group_by(runs.c.state))
    return {RunState(state): int(count) for state, count in rows}
