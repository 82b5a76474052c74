"""The outbox of tries' outcomes (`try_outcomes`): a worker host records the TaskFinished of a
try no scheduler is attached to hear; the next scheduler pass takes the rows, applies them and
deletes them in the same transaction, so each is applied once, and a failed pass keeps them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, func, select
from sqlalchemy import delete as sql_delete
from sqlalchemy.dialects import postgresql, sqlite

from slipstream.core.records import TaskFinished
from slipstream.store.tables import runs
from slipstream.store.tables import try_outcomes as table

# A pass applies at most this many at once: a backlog is worked off over several passes.
TAKE_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class StoredOutcome:
    """One row of the outbox: its outcome, or why its payload cannot be read here (written by
    another version); such a row is left for a scheduler that can read it."""

    id: int
    dag_id: str
    outcome: TaskFinished | None
    error: str | None = None


def record(
    conn: Connection, outcomes: Sequence[TaskFinished], *, worker_job_id: int | None, now: datetime
) -> int:
    """Store these outcomes; returns how many rows were new. An outcome already stored (the
    same try) is left as it is, and one whose run was deleted meanwhile has nowhere to go."""
    if not outcomes:
        return 0
    run_pks = sorted({outcome.key.run_pk for outcome in outcomes})
    found = conn.execute(select(runs.c.id, runs.c.dag_id).where(runs.c.id.in_(run_pks)))
    dag_ids: dict[int, str] = {row.id: row.dag_id for row in found}
    rows = [
        {
            "run_pk": outcome.key.run_pk,
            "dag_id": dag_ids[outcome.key.run_pk],
            "task_id": outcome.key.task_id,
            "map_index": outcome.key.map_index,
            "try_number": outcome.key.try_number,
            "worker_job_id": worker_job_id,
            "payload": json.dumps(outcome.to_json(), separators=(",", ":")),
            "created_at": now,
        }
        for outcome in outcomes
        if outcome.key.run_pk in dag_ids
    ]
    if not rows:
        return 0
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing().returning(table.c.id)
    return sum(len(conn.execute(statement, row).all()) for row in rows)


def take(conn: Connection, *, limit: int = TAKE_LIMIT) -> list[StoredOutcome]:
    """The oldest rows, decoded; on PostgreSQL locked for this transaction (rows another
    transaction holds are skipped). Delete the applied ones with `delete` in the same one."""
    query = select(table.c.id, table.c.dag_id, table.c.payload).order_by(table.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    taken: list[StoredOutcome] = []
    for row in conn.execute(query):
        try:
            outcome = TaskFinished.from_json(json.loads(row.payload))
        except ValueError as exc:  # json's errors are ValueErrors too
            taken.append(StoredOutcome(row.id, row.dag_id, None, str(exc)))
        else:
            taken.append(StoredOutcome(row.id, row.dag_id, outcome))
    return taken


def delete(conn: Connection, ids: Sequence[int]) -> None:
    """Rows applied (or read) by this transaction."""
    if ids:
        conn.execute(sql_delete(table).where(table.c.id.in_(sorted(ids))))


def count(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(table)).scalar_one())
