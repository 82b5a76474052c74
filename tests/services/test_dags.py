"""DagService on real SQLite and PostgreSQL: scoped listings, bulk pause, delete, import errors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from slipstream.auth.permissions import DagScope
from slipstream.errors import ConflictError, DagNotFound, InvalidInputError, NotFoundError
from slipstream.services.dags import REDACTED_STACKTRACE, DagService
from slipstream.store import dags as dags_store
from slipstream.store import import_errors
from slipstream.store.db import Database
from slipstream.store.tables import runs, task_instances

NOW = datetime(2026, 1, 2, tzinfo=UTC)


def add(db: Database, dag_id: str, *, tags: list[str], fileloc: str | None = None) -> int:
    structure: dict[str, Any] = {
        "dag_id": dag_id,
        "fileloc": fileloc or f"/dags/{dag_id}.py",
        "tags": tags,
        "schedule": {"type": "none"},
        "schedule_summary": None,
        "params": {},
        "tasks": [{"task_id": "t", "max_active_tis_per_dag": 2}],
    }
    with db.write() as conn:
        record = dags_store.upsert_parsed(
            conn, structure, f"h-{dag_id}", "src", paused_at_creation=False, now=NOW
        )
    assert record.version_id is not None
    return record.version_id


@pytest.fixture
def service(db: Database) -> DagService:
    add(db, "alpha", tags=["team_a"])
    add(db, "beta", tags=["team_b"])
    add(db, "gamma", tags=["team_a", "team_b"])
    add(db, "delta", tags=[], fileloc="/dags/shared.py")
    add(db, "epsilon", tags=["team_a"], fileloc="/dags/shared.py")
    return DagService(db)


def ids(views: Any) -> list[str]:
    return [v.dag.dag_id for v in views]


def test_a_scope_limits_listings_and_totals(service: DagService) -> None:
    everything, total = service.list_views(scope=DagScope(everything=True))
    assert total == 5 and ids(everything) == ["alpha", "beta", "delta", "epsilon", "gamma"]
    by_tag, total = service.list_views(scope=DagScope(tags=frozenset({"team_b"})))
    assert (ids(by_tag), total) == (["beta", "gamma"], 2)
    mixed, total = service.list_views(
        scope=DagScope(dag_ids=frozenset({"delta"}), tags=frozenset({"team_b"})), limit=2
    )
    assert (ids(mixed), total) == (["beta", "delta"], 3)
    nothing, total = service.list_views(scope=DagScope())
    assert (nothing, total) == ([], 0)
    # Filters combine with the scope.
    tagged, total = service.list_views(tags=["team_a"], scope=DagScope(tags=frozenset({"team_b"})))
    assert (ids(tagged), total) == (["gamma"], 1)


def test_views_carry_structure_and_import_errors(service: DagService, db: Database) -> None:
    with db.write() as conn:
        import_errors.record(conn, "/dags/shared.py", "Traceback: boom", NOW)
    views, _ = service.list_views()
    by_id = {v.dag.dag_id: v for v in views}
    assert by_id["delta"].has_import_errors and by_id["epsilon"].has_import_errors
    assert not by_id["alpha"].has_import_errors
    assert by_id["alpha"].structure["tasks"][0]["max_active_tis_per_dag"] == 2
    assert service.view("delta").has_import_errors
    with pytest.raises(DagNotFound):
        service.view("missing")


def test_bulk_pause_changes_one_page_of_the_scope(service: DagService) -> None:
    views, total = service.set_paused_matching(
        True, dag_id_pattern="A", scope=DagScope(tags=frozenset({"team_a"})), limit=2
    )
    # "a" matches alpha, delta and gamma (case-insensitively); team_a covers alpha and gamma.
    assert (ids(views), total) == (["alpha", "gamma"], 2)
    assert all(v.dag.is_paused for v in views)
    paused = {v.dag.dag_id for v in service.list_views(paused=True)[0]}
    assert paused == {"alpha", "gamma"}
    views, total = service.set_paused_matching(False, dag_id_pattern="~")
    assert total == 5 and not any(v.dag.is_paused for v in views)


def test_delete_refuses_while_tasks_run_then_removes_runs(
    service: DagService, db: Database
) -> None:
    version_id = add(db, "doomed", tags=[])
    with db.write() as conn:
        run_pk = conn.execute(
            insert(runs)
            .values(
                dag_id="doomed",
                run_id="r1",
                state="running",
                run_type="manual",
                queued_at=NOW,
                version_id=version_id,
                updated_at=NOW,
            )
            .returning(runs.c.id)
        ).scalar_one()
        conn.execute(
            insert(task_instances).values(
                run_pk=run_pk,
                task_id="t",
                dag_id="doomed",
                run_id="r1",
                state="running",
                operator="EmptyOperator",
                updated_at=NOW,
            )
        )
    with pytest.raises(ConflictError, match="still running"):
        service.delete("doomed")
    assert service.get("doomed").dag_id == "doomed"
    with db.write() as conn:
        conn.execute(task_instances.update().values(state="success"))
    service.delete("doomed")
    with pytest.raises(DagNotFound):
        service.get("doomed")
    with pytest.raises(DagNotFound):
        service.delete("doomed")
    with db.read() as conn:
        assert conn.execute(select(runs.c.id).where(runs.c.dag_id == "doomed")).all() == []


def test_import_errors_are_scoped_and_redacted(service: DagService, db: Database) -> None:
    with db.write() as conn:
        import_errors.record(conn, "/dags/shared.py", "Traceback: shared", NOW)
        import_errors.record(conn, "/dags/beta.py", "Traceback: beta", NOW)
        import_errors.record(conn, "/dags/new.py", "Traceback: new", NOW)
    everything, total = service.import_errors(order_by="-filename")
    assert total == 3
    assert [e.filename for e in everything] == ["/dags/shared.py", "/dags/new.py", "/dags/beta.py"]
    team_a = DagScope(tags=frozenset({"team_a"}))
    # shared.py defines epsilon (team_a) and delta (not covered): listed, traceback hidden.
    seen, total = service.import_errors(scope=team_a)
    assert total == 1 and [(e.filename, e.stacktrace) for e in seen] == [
        ("/dags/shared.py", REDACTED_STACKTRACE)
    ]
    whole = DagScope(dag_ids=frozenset({"delta", "epsilon"}))
    assert service.import_errors(scope=whole)[0][0].stacktrace == "Traceback: shared"
    beta = next(e for e in everything if e.filename == "/dags/beta.py")
    assert service.import_error(beta.id).stacktrace == "Traceback: beta"
    with pytest.raises(NotFoundError):
        service.import_error(beta.id, scope=team_a)
    with pytest.raises(NotFoundError):
        service.import_error(10_000)
    with pytest.raises(InvalidInputError):
        service.import_errors(order_by="stacktrace")
