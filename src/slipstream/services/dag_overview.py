"""The DAGs overview: one page of the DAGs a caller may see, each with its last runs and how
many of its runs are queued, running or failed, plus every tag those DAGs carry, read in one
snapshot with a fixed number of queries (what the web UI's DAGs page shows)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from slipstream.auth.permissions import DagScope
from slipstream.core.records import DagRecord, RunBrief
from slipstream.core.states import RunState
from slipstream.errors import InvalidInputError
from slipstream.store import dags as dags_store
from slipstream.store import import_errors as errors_store
from slipstream.store import run_summaries
from slipstream.store.db import Database

NO_RUN = dags_store.NO_RUN
# What a last-run filter may ask for: a run state, or DAGs that have no run yet.
LAST_RUN_FILTERS = (*(state.value for state in RunState), NO_RUN)
COUNTED_STATES = (RunState.QUEUED, RunState.RUNNING, RunState.FAILED)


@dataclass(frozen=True, slots=True)
class DagSummary:
    dag: DagRecord
    recent_runs: tuple[RunBrief, ...] = ()  # the most recently created first
    run_counts: dict[RunState, int] = field(default_factory=dict)  # of COUNTED_STATES
    has_import_errors: bool = False  # its file's last parse failed

    def count(self, state: RunState) -> int:
        return self.run_counts.get(state, 0)


@dataclass(frozen=True, slots=True)
class DagsOverview:
    dags: list[DagSummary]
    total: int  # DAGs matching the filters, over all pages
    tags: list[str]  # every tag of the DAGs the scope covers, for a tag filter


class DagOverviewService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def overview(
        self,
        *,
        scope: DagScope,
        limit: int,
        offset: int = 0,
        paused: bool | None = None,
        dag_id_pattern: str | None = None,
        tags: Sequence[str] | None = None,
        last_run_state: str | None = None,
        recent_runs: int = 10,
    ) -> DagsOverview:
        """One page of the active DAGs `scope` covers, ordered by id, filtered as
        DagService.list_dags filters them and by the state of their last run
        (LAST_RUN_FILTERS)."""
        if last_run_state is not None and last_run_state not in LAST_RUN_FILTERS:
            raise InvalidInputError(
                f"unknown last run state {last_run_state!r};"
                f" expected one of {', '.join(LAST_RUN_FILTERS)}",
                field="last_run",
            )
        if limit < 1 or offset < 0:
            raise InvalidInputError("limit must be positive, offset not negative", field="page")
        with self._db.read() as conn:
            records, total = dags_store.list_dags(
                conn,
                paused=paused,
                dag_id_pattern=dag_id_pattern,
                tags=tags,
                limit=limit,
                offset=offset,
                scope=scope,
                last_run_state=last_run_state,
            )
            dag_ids = [d.dag_id for d in records]
            runs = run_summaries.recent_runs(conn, dag_ids, recent_runs)
            counts = run_summaries.count_by_state(conn, dag_ids, COUNTED_STATES)
            broken = errors_store.files_with_errors(conn, {d.fileloc for d in records})
            all_tags = dags_store.tags_in_scope(conn, scope)
        summaries = [
            DagSummary(
                dag=dag,
                recent_runs=tuple(runs.get(dag.dag_id, ())),
                run_counts=counts.get(dag.dag_id, {}),
                has_import_errors=dag.fileloc in broken,
            )
            for dag in records
        ]
        return DagsOverview(dags=summaries, total=total, tags=all_tags)
