"""services.dag_graph on real SQLite and PostgreSQL: the structure a run ran with, its task
instances, the latest runs for the selector, and the errors for what does not exist."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from slipstream.clock import FrozenClock
from slipstream.core.dag_plan import DagPlan
from slipstream.core.states import TaskState
from slipstream.errors import DagNotFound, RunNotFound
from slipstream.services.dag_graph import DagGraphService
from slipstream.services.runs import RunService
from slipstream.store import dags as dags_store
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store.db import Database
from tests.store.conftest import AddDag, dag_structure

NOW = datetime(2026, 1, 2, tzinfo=UTC)
TASKS = [{"task_id": "a"}, {"task_id": "b", "upstream": ["a"]}]


def trigger(db: Database, dag_id: str, run_id: str) -> None:
    """A run created as the API creates one, with its task instances as the scheduler
    creates them."""
    run = RunService(db, clock=FrozenClock(NOW)).trigger(dag_id, run_id=run_id).run
    with db.write() as conn:
        version = dags_store.get_version(conn, run.version_id)
        assert version is not None
        plan = DagPlan.from_structure(
            version.structure, version_id=version.id, version_hash=version.version_hash
        )
        stored = runs_store.get_run(conn, dag_id, run_id)
        assert stored is not None
        ti_store.create_for_run(conn, stored, plan, NOW)


def test_the_latest_run_and_its_task_instances(db: Database, add_dag: AddDag) -> None:
    add_dag("etl", TASKS)
    trigger(db, "etl", "first")
    trigger(db, "etl", "second")
    graph = DagGraphService(db).graph("etl")
    assert graph.run is not None and graph.run.run_id == "second"
    assert [r.run_id for r in graph.recent_runs] == ["second", "first"]
    assert sorted(t.task_id for t in graph.task_instances) == ["a", "b"]
    assert {t.state for t in graph.task_instances} == {TaskState.NONE}
    assert [t["task_id"] for t in graph.structure["tasks"]] == ["a", "b"]
    assert graph.version_hash == "hash-etl"
    chosen = DagGraphService(db).graph("etl", "first", recent_runs=1)
    assert chosen.run is not None and chosen.run.run_id == "first"
    assert [r.run_id for r in chosen.recent_runs] == ["second"]


def test_a_run_shows_the_version_it_ran_with(db: Database, add_dag: AddDag) -> None:
    add_dag("etl", TASKS)
    trigger(db, "etl", "old")
    newer = dag_structure("etl", [*TASKS, {"task_id": "c", "upstream": ["b"]}])
    with db.write() as conn:
        dags_store.upsert_parsed(
            conn, newer, "hash-etl-2", "source", paused_at_creation=False, now=NOW
        )
    service = DagGraphService(db)
    old = service.graph("etl", "old")
    assert [t["task_id"] for t in old.structure["tasks"]] == ["a", "b"]
    assert old.version_hash == "hash-etl"
    assert service.graph("etl").version_hash == "hash-etl"  # the latest run's version
    trigger(db, "etl", "new")
    assert [t["task_id"] for t in service.graph("etl").structure["tasks"]] == ["a", "b", "c"]


def test_no_runs_and_unknown_names(db: Database, add_dag: AddDag) -> None:
    add_dag("quiet", TASKS)
    service = DagGraphService(db)
    graph = service.graph("quiet")
    assert graph.run is None and graph.recent_runs == [] and graph.task_instances == []
    assert graph.version_hash == "hash-quiet"
    with pytest.raises(RunNotFound):
        service.graph("quiet", "nope")
    with pytest.raises(DagNotFound):
        service.graph("nowhere")
