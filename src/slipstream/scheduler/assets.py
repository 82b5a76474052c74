"""Asset events the scheduler records, and the runs they start.

A task with outlets that succeeds gets one event per outlet, written in the transaction that
records its success (with the extras its try reported), and queued for each DAG scheduled on
the asset. A DAG whose asset condition the queued assets satisfy gets an asset-triggered run
that consumes every event of its assets since its previous one. The queue is read only in a
pass after an event was recorded, a hint said one was, or a DAG changed, so other passes pay
nothing.
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime

from sqlalchemy import Connection

from slipstream.authoring.asset_timetables import asset_condition
from slipstream.authoring.assets import asset_uris, is_satisfied
from slipstream.core.planning import run_id_for
from slipstream.core.records import Run, RunType, TaskFinished
from slipstream.errors import RunAlreadyExists
from slipstream.scheduler.state import SchedulerState
from slipstream.store import assets as assets_store
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store


def record_outlets(conn: Connection, state: SchedulerState, run: Run, event: TaskFinished) -> None:
    """Record an event for each outlet of the task whose try `event` succeeded."""
    plan = state.plan(conn, run.version_id)
    spec = plan.tasks.get(event.key.task_id) if plan is not None else None
    if spec is None or not spec.outlets:
        return
    extras = {uri: json.loads(text) for uri, text in event.asset_extras}
    for uri in spec.outlets:
        assets_store.record_event(
            conn,
            uri=uri,
            extra=extras.get(uri, {}),
            timestamp=event.at,
            source_dag_id=run.dag_id,
            source_task_id=event.key.task_id,
            source_run_id=run.run_id,
            source_map_index=event.key.map_index,
        )
    state.assets_dirty = True


def create_asset_runs(conn: Connection, state: SchedulerState, now: datetime) -> set[str]:
    """Start a run of each DAG whose asset condition its queued assets now satisfy; returns
    the DAGs that got one."""
    state.assets_dirty = False
    created: set[str] = set()
    for dag_id, updated in assets_store.queued(conn).items():
        record = dags_store.get_dag(conn, dag_id)
        if record is None or record.is_paused or not record.is_active:
            continue  # a paused DAG keeps its queue for when it is unpaused
        plan = state.plan(conn, record.version_id) if record.version_id is not None else None
        condition = asset_condition(plan.schedule) if plan is not None else None
        if plan is None or condition is None or not is_satisfied(condition, updated):
            continue
        run = _insert(conn, dag_id, plan.version_id, now)
        assets_store.consume(conn, dag_id, asset_uris(condition), run.id)
        created.add(dag_id)
    return created


def _insert(conn: Connection, dag_id: str, version_id: int, now: datetime) -> Run:
    base = run_id_for(RunType.ASSET_TRIGGERED, now)
    for attempt in range(8):
        try:
            return runs_store.insert_run(
                conn,
                dag_id=dag_id,
                run_id=base if attempt == 0 else f"{base}.{secrets.token_hex(4)}",
                run_type=RunType.ASSET_TRIGGERED,
                logical_date=now,
                data_interval=(now, now),
                conf={},
                version_id=version_id,
                now=now,
                external_trigger=False,
                triggered_by="asset",
            )
        except RunAlreadyExists:
            continue
    raise RunAlreadyExists(dag_id, base)
