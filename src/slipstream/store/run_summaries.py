"""What listings of DAGs show about their runs: each DAG's last few runs, and how many of its
runs are in a given state, for a whole page of DAGs at once (a fixed number of queries per
page, whatever its size)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection

from sqlalchemy import Connection, func, select, union_all

from slipstream.core.records import RunBrief, RunType
from slipstream.core.states import RunState
from slipstream.store.tables import runs

_BRIEF_COLUMNS = (
    runs.c.id,
    runs.c.dag_id,
    runs.c.run_id,
    runs.c.state,
    runs.c.run_type,
    runs.c.logical_date,
    runs.c.start_date,
    runs.c.end_date,
)


def recent_runs(
    conn: Connection, dag_ids: Collection[str], per_dag: int
) -> dict[str, list[RunBrief]]:
    """The last `per_dag` runs of each DAG (the most recently created first), by dag_id.

    One statement: a UNION ALL of one small index walk per DAG (ix_runs_dag_id_id), so the
    cost follows the page size, not how many runs each DAG has had."""
    found: dict[str, list[RunBrief]] = defaultdict(list)
    if not dag_ids or per_dag <= 0:
        return found
    parts = [
        select(*_BRIEF_COLUMNS)
        .where(runs.c.dag_id == dag_id)
        .order_by(runs.c.id.desc())
        .limit(per_dag)
        .subquery()
        .select()
        for dag_id in sorted(dag_ids)
    ]
    statement = parts[0] if len(parts) == 1 else union_all(*parts)
    rows = sorted(conn.execute(statement), key=lambda row: -row.id)
    for row in rows:
        found[row.dag_id].append(
            RunBrief(
                dag_id=row.dag_id,
                run_id=row.run_id,
                state=RunState(row.state),
                run_type=RunType(row.run_type),
                logical_date=row.logical_date,
                start_date=row.start_date,
                end_date=row.end_date,
            )
        )
    return found


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
