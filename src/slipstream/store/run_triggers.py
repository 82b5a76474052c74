"""Links from a run a task started (TriggerDagRunOperator) to the try that started it, with
the number of such hops behind it. Functions take a connection and never commit."""

from __future__ import annotations

from sqlalchemy import Connection, insert, select

from slipstream.store.tables import run_triggers


def depth_of(conn: Connection, run_pk: int) -> int:
    """How many task-started hops led to run `run_pk` (0: a person or a schedule started it)."""
    found: int | None = conn.execute(
        select(run_triggers.c.depth).where(run_triggers.c.run_pk == run_pk)
    ).scalar_one_or_none()
    return found or 0


def link(
    conn: Connection,
    run_pk: int,
    *,
    source_dag_id: str,
    source_run_id: str,
    source_task_id: str,
    depth: int,
) -> None:
    conn.execute(
        insert(run_triggers).values(
            run_pk=run_pk,
            source_dag_id=source_dag_id,
            source_run_id=source_run_id,
            source_task_id=source_task_id,
            depth=depth,
        )
    )
