"""What a DAG's graph shows, read in one snapshot: the structure of the version a run ran
with (the DAG's current one when it has no runs), that run's task instances, and the DAG's
latest runs to choose from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slipstream.core.records import DagRecord, Run, RunBrief, TaskInstance
from slipstream.errors import DagNotFound, RunNotFound
from slipstream.store import dags as dags_store
from slipstream.store import run_summaries
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store.db import Database


@dataclass(frozen=True, slots=True)
class DagGraph:
    dag: DagRecord
    version_hash: str  # of the structure shown: the same hash, the same drawing
    structure: Mapping[str, Any]
    recent_runs: list[RunBrief]  # the most recently created first
    run: Run | None  # the run whose states are shown: the one asked for, else the latest
    task_instances: list[TaskInstance]  # of `run`, every map index


class DagGraphService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def graph(self, dag_id: str, run_id: str | None = None, *, recent_runs: int = 25) -> DagGraph:
        """The graph of `dag_id` with the states of run `run_id` (RunNotFound when the DAG
        has no such run), or of its latest run when None."""
        with self._db.read() as conn:
            dag = dags_store.get_dag(conn, dag_id)
            if dag is None:
                raise DagNotFound(dag_id)
            recent = run_summaries.recent_runs(conn, [dag_id], recent_runs).get(dag_id, [])
            chosen = run_id if run_id is not None else (recent[0].run_id if recent else None)
            run = runs_store.get_run(conn, dag_id, chosen) if chosen is not None else None
            if chosen is not None and run is None:
                raise RunNotFound(dag_id, chosen)
            version_id = run.version_id if run is not None else dag.version_id
            version = dags_store.get_version(conn, version_id) if version_id is not None else None
            if version is None:  # a DAG row whose structure was never stored
                raise DagNotFound(dag_id)
            instances = ti_store.list_for_run(conn, run.id) if run is not None else []
        return DagGraph(
            dag=dag,
            version_hash=version.version_hash,
            structure=version.structure,
            recent_runs=recent,
            run=run,
            task_instances=instances,
        )
