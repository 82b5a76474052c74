"""services.dag_overview (store.run_summaries and the last-run filter beneath it) on real
SQLite and PostgreSQL: a page of DAGs with their last runs and counts, filtered and scoped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import update

from slipstream.auth.permissions import DagScope
from slipstream.core.records import RunType
from slipstream.core.states import RunState
from slipstream.errors import InvalidInputError
from slipstream.services.dag_overview import NO_RUN, DagOverviewService
from slipstream.store import dags as dags_store
from slipstream.store import import_errors
from slipstream.store import runs as runs_store
from slipstream.store.db import Database
from slipstream.store.tables import runs

NOW = datetime(2026, 1, 2, tzinfo=UTC)
EVERYTHING = DagScope(everything=True)


def add(db: Database, dag_id: str, *, tags: list[str]) -> int:
    structure: dict[str, Any] = {
        "dag_id": dag_id,
        "fileloc": f"/dags/{dag_id}.py",
        "tags": tags,
        "schedule": {"type": "none"},
        "schedule_summary": None,
        "params": {},
        "tasks": [{"task_id": "t"}],
    }
    with db.write() as conn:
        record = dags_store.upsert_parsed(
            conn, structure, f"h-{dag_id}", "src", paused_at_creation=False, now=NOW
        )
    assert record.version_id is not None
    return record.version_id


def add_runs(db: Database, dag_id: str, version_id: int, states: list[RunState]) -> None:
    """Runs created in this order, each in its state."""
    with db.write() as conn:
        for n, state in enumerate(states):
            run = runs_store.insert_run(
                conn,
                dag_id=dag_id,
                run_id=f"run_{n}",
                run_type=RunType.MANUAL,
                logical_date=NOW + timedelta(minutes=n),
                data_interval=None,
                conf={"big": "x" * 100},
                version_id=version_id,
                now=NOW,
            )
            conn.execute(update(runs).where(runs.c.id == run.id).values(state=state.value))


@pytest.fixture
def service(db: Database) -> DagOverviewService:
    S, F, R, Q = RunState.SUCCESS, RunState.FAILED, RunState.RUNNING, RunState.QUEUED
    add_runs(db, "alpha", add(db, "alpha", tags=["team_a"]), [S, F, S, R])
    add_runs(db, "beta", add(db, "beta", tags=["team_b"]), [F, F, Q, F])
    add_runs(db, "gamma", add(db, "gamma", tags=["team_a", "nightly"]), [R, S])
    add(db, "delta", tags=[])
    with db.write() as conn:
        dags_store.set_paused(conn, "gamma", True)
        import_errors.record(conn, "/dags/beta.py", "Traceback: boom", NOW)
    return DagOverviewService(db)


def ids(service: DagOverviewService, **filters: Any) -> list[str]:
    overview = service.overview(scope=filters.pop("scope", EVERYTHING), limit=50, **filters)
    return [s.dag.dag_id for s in overview.dags]


def test_each_dag_comes_with_its_last_runs_newest_first_and_its_counts(
    service: DagOverviewService,
) -> None:
    overview = service.overview(scope=EVERYTHING, limit=50, recent_runs=3)
    assert overview.total == 4
    by_id = {s.dag.dag_id: s for s in overview.dags}
    alpha = by_id["alpha"]
    assert [r.run_id for r in alpha.recent_runs] == ["run_3", "run_2", "run_1"]
    assert [r.state for r in alpha.recent_runs] == [
        RunState.RUNNING,
        RunState.SUCCESS,
        RunState.FAILED,
    ]
    assert (alpha.count(RunState.RUNNING), alpha.count(RunState.FAILED)) == (1, 1)
    beta = by_id["beta"]
    assert (beta.count(RunState.FAILED), beta.count(RunState.QUEUED)) == (3, 1)
    assert beta.has_import_errors and not alpha.has_import_errors
    assert by_id["delta"].recent_runs == () and by_id["delta"].count(RunState.FAILED) == 0
    assert overview.tags == ["nightly", "team_a", "team_b"]


def test_filters_by_last_run_state_status_search_and_tag(service: DagOverviewService) -> None:
    assert ids(service, last_run_state="running") == ["alpha"]
    assert ids(service, last_run_state="failed") == ["beta"]
    assert ids(service, last_run_state="success") == ["gamma"]
    assert ids(service, last_run_state=NO_RUN) == ["delta"]
    assert ids(service, paused=True) == ["gamma"]
    assert ids(service, paused=False) == ["alpha", "beta", "delta"]
    assert ids(service, dag_id_pattern="ET") == ["beta"]
    assert ids(service, tags=["team_a"]) == ["alpha", "gamma"]
    assert ids(service, tags=["team_a"], last_run_state="success") == ["gamma"]


def test_a_scope_limits_the_page_the_total_and_the_tags(service: DagOverviewService) -> None:
    scope = DagScope(dag_ids=frozenset({"beta"}), tags=frozenset({"nightly"}))
    overview = service.overview(scope=scope, limit=50)
    assert [s.dag.dag_id for s in overview.dags] == ["beta", "gamma"]
    assert overview.total == 2
    assert overview.tags == ["nightly", "team_a", "team_b"]  # only the tags of beta and gamma
    nothing = service.overview(scope=DagScope(), limit=50)
    assert (nothing.dags, nothing.total, nothing.tags) == ([], 0, [])


def test_pages_and_bad_filters(service: DagOverviewService) -> None:
    first = service.overview(scope=EVERYTHING, limit=3)
    second = service.overview(scope=EVERYTHING, limit=3, offset=3)
    assert [s.dag.dag_id for s in first.dags + second.dags] == ["alpha", "beta", "delta", "gamma"]
    assert first.total == second.total == 4
    with pytest.raises(InvalidInputError, match="last run state"):
        service.overview(scope=EVERYTHING, limit=3, last_run_state="exploded")
    with pytest.raises(InvalidInputError):
        service.overview(scope=EVERYTHING, limit=0)
