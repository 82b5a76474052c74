"""Earlier runs of a DAG as depends_on_past reads them: the run before a given one (by logical
date), the states of some of its tasks (every instance of a mapped one), and whether a task
ever had an instance before."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlalchemy import Connection, and_, exists, or_, select

from slipstream.core.records import RunType
from slipstream.core.states import TaskState
from slipstream.store.tables import runs
from slipstream.store.tables import task_instances as ti


def previous_run(
    conn: Connection,
    dag_id: str,
    logical_date: datetime | None,
    run_pk: int,
    *,
    scheduled_only: bool,
) -> tuple[int, datetime | None] | None:
    """(pk, logical date) of the latest run before (logical_date, run_pk), or None. With
    `scheduled_only` (a DAG with catchup, as in Airflow) manual runs do not count."""
    query = select(runs.c.id, runs.c.logical_date).where(runs.c.dag_id == dag_id)
    if logical_date is None:
        query = query.where(runs.c.id < run_pk)
    else:
        query = query.where(
            or_(
                runs.c.logical_date < logical_date,
                and_(runs.c.logical_date == logical_date, runs.c.id < run_pk),
            )
        )
    if scheduled_only:
        query = query.where(runs.c.run_type != RunType.MANUAL.value)
    query = query.order_by(runs.c.logical_date.desc(), runs.c.id.desc()).limit(1)
    row = conn.execute(query).first()
    return (row.id, row.logical_date) if row is not None else None


def task_states(
    conn: Connection, run_pk: int, task_ids: Collection[str]
) -> tuple[dict[str, TaskState], dict[str, dict[int, TaskState]]]:
    """(states of the unmapped tasks and unexpanded mapped ones, expanded mapped tasks'
    states by map index) among `task_ids` in one run."""
    states: dict[str, TaskState] = {}
    instances: dict[str, dict[int, TaskState]] = {}
    if not task_ids:
        return states, instances
    query = select(ti.c.task_id, ti.c.map_index, ti.c.state).where(
        ti.c.run_pk == run_pk, ti.c.task_id.in_(sorted(task_ids))
    )
    for task_id, map_index, state in conn.execute(query):
        if map_index < 0:
            states[task_id] = TaskState(state)
        else:
            instances.setdefault(task_id, {})[map_index] = TaskState(state)
    return states, instances


def ran_before(conn: Connection, dag_id: str, task_id: str, logical_date: datetime | None) -> bool:
    """Whether the task has an instance in a run with an earlier logical date."""
    earlier = (
        select(ti.c.run_pk)
        .join(runs, runs.c.id == ti.c.run_pk)
        .where(ti.c.dag_id == dag_id, ti.c.task_id == task_id)
    )
    if logical_date is not None:
        earlier = earlier.where(runs.c.logical_date < logical_date)
    return bool(conn.execute(select(exists(earlier))).scalar())
