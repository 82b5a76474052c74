"""What changed lately: the rows of runs and task instances written since a moment, as the web
UI's change watcher asks several times a second while a page is open.

Two index walks, whatever the size of the history: runs by `ix_runs_updated_at`, and the task
instances of active (queued or running) runs, found by `ix_runs_state_dag_id` and read by
their primary key's run prefix. A task instance of a finished run changes only when a person
changes it, and services/run_changes.py touches the run's row then, so the runs' walk sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, literal, select, union_all

from slipstream.core.states import RunState
from slipstream.store.tables import dags, runs
from slipstream.store.tables import task_instances as ti

_ACTIVE = (RunState.QUEUED.value, RunState.RUNNING.value)


@dataclass(frozen=True, slots=True)
class ChangedRow:
    """One written row: a run (task_id "") or one of its task instances, with what a reader
    compares to tell a new write from one it has seen."""

    run_pk: int
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    state: str
    try_number: int
    updated_at: datetime


def changed_since(conn: Connection, since: datetime) -> list[ChangedRow]:
    """Runs, and task instances of active runs, whose `updated_at` is `since` or later."""
    run_rows = select(
        runs.c.id,
        runs.c.dag_id,
        runs.c.run_id,
        literal("").label("task_id"),
        literal(-1).label("map_index"),
        runs.c.state,
        literal(0).label("try_number"),
        runs.c.updated_at,
    ).where(runs.c.updated_at >= since)
    instance_rows = (
        select(
            ti.c.run_pk,
            ti.c.dag_id,
            ti.c.run_id,
            ti.c.task_id,
            ti.c.map_index,
            ti.c.state,
            ti.c.try_number,
            ti.c.updated_at,
        )
        .select_from(runs.join(ti, ti.c.run_pk == runs.c.id))
        .where(runs.c.state.in_(_ACTIVE), ti.c.updated_at >= since)
    )
    return [
        ChangedRow(
            run_pk=row[0],
            dag_id=row[1],
            run_id=row[2],
            task_id=row[3],
            map_index=row[4],
            state=row[5],
            try_number=row[6],
            updated_at=row[7],
        )
        for row in conn.execute(union_all(run_rows, instance_rows))
    ]


def tags_of(conn: Connection, dag_ids: list[str]) -> dict[str, list[str]]:
    """Each named DAG's tags (what a DAG-scoped reader's access may depend on)."""
    if not dag_ids:
        return {}
    query = select(dags.c.dag_id, dags.c.tags).where(dags.c.dag_id.in_(dag_ids))
    return {dag_id: list(tags or []) for dag_id, tags in conn.execute(query)}
