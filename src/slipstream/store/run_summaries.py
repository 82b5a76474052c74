"""What listings of DAGs show about their runs: each DAG's last few runs, and how many of its
runs are in a given state, for a whole page of DAGs at once (a fixed number of queries per
page, whatever its size)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection
from typing import Any

from sqlalchemy import Connection, Row, TextualSelect, func, select, text

from slipstream.core.records import RunBrief, RunType
from slipstream.core.states import RunState
from slipstream.store.tables import runs

BRIEF_COLUMNS = (
    runs.c.id,
    runs.c.dag_id,
    runs.c.run_id,
    runs.c.state,
    runs.c.run_type,
    runs.c.logical_date,
    runs.c.start_date,
    runs.c.end_date,
)


def _recent_runs_statement(count: int) -> TextualSelect:
    """`count` small index walks (ix_runs_dag_id_id), one per DAG, joined by UNION ALL, with
    the DAG ids and the limit bound. Written as SQL text: built with SQLAlchemy's expression
    language, a statement of 50 subqueries costs some 30 ms to build and compile per page,
    thirty times what SQLite then spends running it."""
    columns = ", ".join(column.name for column in BRIEF_COLUMNS)
    parts = [
        f"SELECT * FROM (SELECT {columns} FROM runs WHERE dag_id = :dag_{n}"
        f" ORDER BY id DESC LIMIT :per_dag) AS recent_{n}"
        for n in range(count)
    ]
    return text(" UNION ALL ".join(parts)).columns(*BRIEF_COLUMNS)


def recent_runs(
    conn: Connection, dag_ids: Collection[str], per_dag: int
) -> dict[str, list[RunBrief]]:
    """The last `per_dag` runs of each DAG (the most recently created first), by dag_id, in one
    statement whose cost follows the page size, not how many runs each DAG has had."""
    found: dict[str, list[RunBrief]] = defaultdict(list)
    if not dag_ids or per_dag <= 0:
        return found
    ordered = sorted(dag_ids)
    params: dict[str, object] = {f"dag_{n}": dag_id for n, dag_id in enumerate(ordered)}
    params["per_dag"] = per_dag
    rows = conn.execute(_recent_runs_statement(len(ordered)), params).all()
    for row in sorted(rows, key=lambda row: -row.id):
        found[row.dag_id].append(run_brief(row))
    return found


def run_brief(row: Row[Any]) -> RunBrief:
    """A row of BRIEF_COLUMNS as the core's RunBrief."""
    return RunBrief(
        dag_id=row.dag_id,
        run_id=row.run_id,
        state=RunState(row.state),
        run_type=RunType(row.run_type),
        logical_date=row.logical_date,
        start_date=row.start_date,
        end_date=row.end_date,
    )


def count_by_state(
    conn: Connection, dag_ids: Collection[str], states: Collection[RunState]
) -> dict[str, dict[RunState, int]]:
    """How many runs of each DAG are in each of `states` (absent: none), by dag_id; one
    grouped query on ix_runs_state_dag_id."""
    counts: dict[str, dict[RunState, int]] = defaultdict(dict)
    if not dag_ids or not states:
        return counts
    query = (
        select(runs.c.dag_id, runs.c.state, func.count())
        .where(
            runs.c.state.in_(sorted(s.value for s in states)),
            runs.c.dag_id.in_(sorted(dag_ids)),
        )
        .group_by(runs.c.dag_id, runs.c.state)
    )
    for dag_id, state, count in conn.execute(query):
        counts[dag_id][RunState(state)] = int(count)
    return counts
