"""Store fixtures: parsed DAGs (a dags row and a dag_versions row) to hang runs on."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from slipstream.core.dag_plan import DagPlan
from slipstream.store import dags as dags_store
from slipstream.store.db import Database

PARSED_AT = datetime(2026, 1, 1, tzinfo=UTC)

AddDag = Callable[..., DagPlan]


def dag_structure(dag_id: str, tasks: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A serialized DAG whose tasks name their upstream tasks; downstream edges are derived."""
    downstream: dict[str, list[str]] = {t["task_id"]: [] for t in tasks}
    for task in tasks:
        for upstream in task.get("upstream", ()):
            downstream[upstream].append(task["task_id"])
    return {
        "dag_id": dag_id,
        "fileloc": f"/dags/{dag_id}.py",
        "schedule": {"type": "cron", "expression": "0 0 * * *", "preset": "@daily"},
        "schedule_summary": "@daily",
        "start_date": "2026-01-01T00:00:00+00:00",
        "catchup": False,
        "params": {},
        "tasks": [
            {
                "operator": "PythonOperator",
                "upstream": [],
                **task,
                "downstream": downstream[task["task_id"]],
            }
            for task in tasks
        ],
    }


@pytest.fixture
def add_dag(db: Database) -> AddDag:
    """add_dag("etl", [{"task_id": "a"}, {"task_id": "b", "upstream": ["a"]}]) -> its DagPlan,
    stored through store.dags as the parser would store it."""

    def add(dag_id: str = "etl", tasks: Sequence[dict[str, Any]] | None = None) -> DagPlan:
        structure = dag_structure(dag_id, tasks or [{"task_id": "only"}])
        with db.write() as conn:
            record = dags_store.upsert_parsed(
                conn, structure, f"hash-{dag_id}", "source", paused_at_creation=False, now=PARSED_AT
            )
        assert record.version_id is not None and record.version_hash is not None
        return DagPlan.from_structure(
            structure, version_id=record.version_id, version_hash=record.version_hash
        )

    return add
