"""What the web UI's DAG pages read beyond single rows: for the grid, a DAG's last runs (one
index walk on ix_runs_dag_id_id) and their task instances' states counted per task and state
(one grouped query on the primary key), so the grid costs the same few statements whatever the
number of runs, tasks or map indexes; for the Code tab, the versions a DAG has stored (without
their structures or sources)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Connection, bindparam, func, select

from slipstream.core.records import RunBrief
from slipstream.core.states import TaskState
from slipstream.store.run_summaries import BRIEF_COLUMNS, run_brief
from slipstream.store.tables import dag_versions, runs, task_instances


class StateCount(NamedTuple):
    """How many instances of one task in one run are in one state (a tuple: the grid reads
    thousands, and a frozen dataclass costs several times as much to make)."""

    run_pk: int
    task_id: str
    state: TaskState
    instances: int
    max_map_index: int  # -1: the task is not mapped, or not expanded yet
    max_try_number: int


@dataclass(frozen=True, slots=True)
class VersionBrief:
    id: int
    version_hash: str
    created_at: datetime


# A state's enum by its stored text: a dict lookup costs a tenth of TaskState(text), and the
# grid reads thousands.
_TASK_STATES = {state.value: state for state in TaskState}

# Built once: the grid is asked for on every refresh of an open DAG page.
_RECENT = (
    select(*BRIEF_COLUMNS)
    .where(runs.c.dag_id == bindparam("k_dag_id"))
    .order_by(runs.c.id.desc())
    .limit(bindparam("k_limit"))
)


def recent_runs(conn: Connection, dag_id: str, limit: int) -> list[tuple[int, RunBrief]]:
    """The DAG's last `limit` runs (by creation), oldest first, each with its primary key."""
    rows = conn.execute(_RECENT, {"k_dag_id": dag_id, "k_limit": limit}).all()
    return [(row.id, run_brief(row)) for row in reversed(rows)]


def state_counts(conn: Connection, run_pks: Sequence[int]) -> list[StateCount]:
    """Per run, task and state: how many instances, the highest map index and try number."""
    if not run_pks:
        return []
    query = (
        select(
            task_instances.c.run_pk,
            task_instances.c.task_id,
            task_instances.c.state,
            func.count(),
            func.max(task_instances.c.map_index),
            func.max(task_instances.c.try_number),
        )
        .where(task_instances.c.run_pk.in_(list(run_pks)))
        .group_by(task_instances.c.run_pk, task_instances.c.task_id, task_instances.c.state)
    )
    return [
        StateCount(run_pk, task_id, _TASK_STATES[state], int(count), int(top), int(tries))
        for run_pk, task_id, state, count, top, tries in conn.execute(query)
    ]


def versions_of(conn: Connection, dag_id: str) -> list[VersionBrief]:
    """Every stored version of a DAG, the newest first."""
    query = (
        select(dag_versions.c.id, dag_versions.c.version_hash, dag_versions.c.created_at)
        .where(dag_versions.c.dag_id == dag_id)
        .order_by(dag_versions.c.id.desc())
    )
    return [VersionBrief(row.id, row.version_hash, row.created_at) for row in conn.execute(query)]


def runs_of_version(conn: Connection, dag_id: str, version_id: int) -> int:
    """How many runs of the DAG are pinned to a version (a walk of the DAG's runs on
    ix_runs_dag_id_id: the Code tab asks once per view)."""
    query = (
        select(func.count())
        .select_from(runs)
        .where(runs.c.dag_id == dag_id, runs.c.version_id == version_id)
    )
    return int(conn.execute(query).scalar_one())
