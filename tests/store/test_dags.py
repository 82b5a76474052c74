"""store.dags on real SQLite and PostgreSQL: upserts, versions, listing, pausing, deleting."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select

from slipstream.core.records import DagRecord
from slipstream.errors import InvalidInputError
from slipstream.store import dags as store
from slipstream.store.db import Database
from slipstream.store.plans import PlanCache
from slipstream.store.tables import dag_versions, runs, task_instances

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def structure(dag_id: str, **overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "dag_id": dag_id,
        "fileloc": f"/dags/{dag_id}.py",
        "description": None,
        "doc_md": None,
        "tags": [],
        "owner": "airflow",
        "schedule": {"type": "cron", "expression": "@daily"},
        "schedule_summary": "@daily",
        "start_date": "2026-01-01T00:00:00+00:00",
        "end_date": None,
        "catchup": False,
        "max_active_runs": 16,
        "max_active_tasks": 16,
        "dagrun_timeout": None,
        "is_paused_upon_creation": None,
        "params": {},
        "tasks": [{"task_id": "t1"}],
    }
    base.update(overrides)
    return base


def upsert(
    db: Database,
    dag_id: str,
    version_hash: str = "h1",
    *,
    paused_at_creation: bool = False,
    now: datetime = NOW,
    **overrides: Any,
) -> DagRecord:
    with db.write() as conn:
        return store.upsert_parsed(
            conn,
            structure(dag_id, **overrides),
            version_hash,
            "source",
            paused_at_creation=paused_at_creation,
            now=now,
        )


def test_upsert_creates_dag_and_version(db: Database) -> None:
    record = upsert(db, "etl", description="loads", tags=["b", "a", "b"], owner="ops")
    assert record.dag_id == "etl"
    assert record.is_active and not record.is_paused
    assert record.fileloc == "/dags/etl.py"
    assert record.description == "loads"
    assert record.tags == ("b", "a")
    assert record.owners == "ops"
    assert record.schedule == "@daily"
    assert record.last_parsed_at == NOW
    assert record.version_hash == "h1"
    with db.read() as conn:
        assert store.get_dag(conn, "etl") == record
        version = store.latest_version(conn, "etl")
        assert version is not None
        assert version.id == record.version_id
        assert version.structure["tasks"] == [{"task_id": "t1"}]
        assert store.get_version(conn, version.id) == version
        assert store.get_dag(conn, "missing") is None
        assert store.get_version(conn, 10_000) is None
        assert store.latest_version(conn, "missing") is None


@pytest.mark.parametrize(
    ("from_structure", "default", "expected"),
    [(None, False, False), (None, True, True), (True, False, True), (False, True, False)],
)
def test_paused_at_creation(
    db: Database, from_structure: bool | None, default: bool, expected: bool
) -> None:
    record = upsert(db, "d", paused_at_creation=default, is_paused_upon_creation=from_structure)
    assert record.is_paused is expected


def test_reparse_keeps_pause_state(db: Database) -> None:
    upsert(db, "d")
    with db.write() as conn:
        assert store.set_paused(conn, "d", True)
        assert not store.set_paused(conn, "missing", True)
    record = upsert(db, "d", "h2", is_paused_upon_creation=False)
    assert record.is_paused


def test_same_structure_twice_is_one_version(db: Database) -> None:
    first = upsert(db, "d")
    second = upsert(db, "d", now=NOW + timedelta(minutes=1))
    assert second.version_id == first.version_id
    assert second.last_parsed_at == NOW + timedelta(minutes=1)
    with db.read() as conn:
        count = len(conn.execute(select(dag_versions.c.id)).all())
    assert count == 1


def test_new_hash_moves_dag_to_new_version_and_keeps_old(db: Database) -> None:
    first = upsert(db, "d", "h1")
    assert first.version_id is not None
    with db.write() as conn:
        run_pk = conn.execute(
            insert(runs)
            .values(
                dag_id="d",
                run_id="manual__1",
                state="running",
                run_type="manual",
                queued_at=NOW,
                version_id=first.version_id,
                updated_at=NOW,
            )
            .returning(runs.c.id)
        ).scalar_one()
    second = upsert(db, "d", "h2", tasks=[{"task_id": "t1"}, {"task_id": "t2"}])
    assert second.version_id != first.version_id
    assert second.version_hash == "h2"
    with db.read() as conn:
        old = store.get_version(conn, first.version_id)
        assert old is not None and old.structure["tasks"] == [{"task_id": "t1"}]
        run_version = conn.execute(
            select(runs.c.version_id).where(runs.c.id == run_pk)
        ).scalar_one()
        assert run_version == first.version_id
        latest = store.latest_version(conn, "d")
        assert latest is not None and latest.id == second.version_id
    # Going back to an earlier file reuses that version's row rather than duplicating it.
    third = upsert(db, "d", "h1")
    assert third.version_id == first.version_id


def test_schedule_change_resets_next_dagrun(db: Database) -> None:
    upsert(db, "d", "h1")
    later = NOW + timedelta(days=1)
    with db.write() as conn:
        assert store.set_next_dagrun_create_after(conn, "d", later, data_interval=(NOW, later))
        assert not store.set_next_dagrun_create_after(conn, "missing", later)
    same_schedule = upsert(db, "d", "h2", description="code changed, schedule did not")
    assert same_schedule.next_dagrun_create_after == later
    new_schedule = upsert(
        db,
        "d",
        "h3",
        schedule={"type": "cron", "expression": "@hourly"},
        schedule_summary="@hourly",
    )
    assert new_schedule.next_dagrun_create_after is None
    assert new_schedule.schedule == "@hourly"


def test_list_filters_and_pagination(db: Database) -> None:
    upsert(db, "alpha_etl", tags=["etl", "daily"])
    upsert(db, "beta_etl", tags=["etl"])
    upsert(db, "gamma", tags=["ml"])
    upsert(db, "delta", tags=[])
    with db.write() as conn:
        store.set_paused(conn, "beta_etl", True)
        assert store.deactivate(conn, ["delta"]) == 1
        assert store.deactivate(conn, ["delta"]) == 0
        assert store.deactivate(conn, []) == 0
    with db.read() as conn:

        def ids(**kwargs: Any) -> tuple[list[str], int]:
            records, total = store.list_dags(conn, **kwargs)
            return [r.dag_id for r in records], total

        assert ids() == (["alpha_etl", "beta_etl", "gamma"], 3)
        assert ids(only_active=False) == (["alpha_etl", "beta_etl", "delta", "gamma"], 4)
        assert ids(paused=True) == (["beta_etl"], 1)
        assert ids(paused=False) == (["alpha_etl", "gamma"], 2)
        assert ids(dag_id_pattern="ETL") == (["alpha_etl", "beta_etl"], 2)
        assert ids(dag_id_pattern="a%etl") == (["alpha_etl", "beta_etl"], 2)
        assert ids(tags=["etl"]) == (["alpha_etl", "beta_etl"], 2)
        assert ids(tags=["daily", "ml"]) == (["alpha_etl", "gamma"], 2)
        assert ids(tags=["nope"]) == ([], 0)
        assert ids(limit=2) == (["alpha_etl", "beta_etl"], 3)
        assert ids(limit=2, offset=2) == (["gamma"], 3)
        assert ids(order_by="-dag_id", limit=1) == (["gamma"], 3)
        assert ids(order_by="is_paused") == (["alpha_etl", "gamma", "beta_etl"], 3)
        with pytest.raises(InvalidInputError) as excinfo:
            store.list_dags(conn, order_by="password")
        assert excinfo.value.field == "order_by"


def test_order_by_next_dagrun_puts_unknown_last(db: Database) -> None:
    for dag_id in ("a", "b", "c"):
        upsert(db, dag_id)
    with db.write() as conn:
        store.set_next_dagrun_create_after(conn, "b", NOW)
        store.set_next_dagrun_create_after(conn, "c", NOW - timedelta(hours=1))
    with db.read() as conn:
        ascending, _ = store.list_dags(conn, order_by="next_dagrun_create_after")
        descending, _ = store.list_dags(conn, order_by="-next_dagrun_create_after")
    assert [r.dag_id for r in ascending] == ["c", "b", "a"]
    assert [r.dag_id for r in descending] == ["b", "c", "a"]


def test_schedulable_dags(db: Database) -> None:
    upsert(db, "scheduled")
    upsert(db, "manual_only", schedule={"type": "none"}, schedule_summary=None)
    upsert(db, "paused")
    upsert(db, "gone")
    with db.write() as conn:
        store.set_paused(conn, "paused", True)
        store.deactivate(conn, ["gone"])
    with db.read() as conn:
        assert [r.dag_id for r in store.schedulable_dags(conn)] == ["scheduled"]


def test_dag_ids_in_file(db: Database) -> None:
    upsert(db, "one", fileloc="/dags/shared.py")
    upsert(db, "two", fileloc="/dags/shared.py")
    upsert(db, "other")
    with db.write() as conn:
        store.deactivate(conn, ["two"])
    with db.read() as conn:
        assert store.dag_ids_in_file(conn, "/dags/shared.py") == ["one"]
        assert store.dag_ids_in_file(conn, "/dags/shared.py", only_active=False) == [
            "one",
            "two",
        ]
        assert store.dag_ids_in_file(conn, "/dags/none.py") == []


def test_reparse_reactivates(db: Database) -> None:
    upsert(db, "d")
    with db.write() as conn:
        store.deactivate(conn, ["d"])
    assert upsert(db, "d", fileloc="/dags/moved.py").is_active
    with db.read() as conn:
        record = store.get_dag(conn, "d")
    assert record is not None and record.fileloc == "/dags/moved.py"


def test_delete_dag_removes_runs_and_versions(db: Database) -> None:
    record = upsert(db, "d")
    upsert(db, "kept")
    with db.write() as conn:
        run_pk = conn.execute(
            insert(runs)
            .values(
                dag_id="d",
                run_id="manual__1",
                state="running",
                run_type="manual",
                queued_at=NOW,
                version_id=record.version_id,
                updated_at=NOW,
            )
            .returning(runs.c.id)
        ).scalar_one()
        conn.execute(
            insert(task_instances).values(
                run_pk=run_pk,
                task_id="t1",
                dag_id="d",
                run_id="manual__1",
                state="queued",
                operator="PythonOperator",
                updated_at=NOW,
            )
        )
    with db.write() as conn:
        assert store.delete_dag(conn, "d")
        assert not store.delete_dag(conn, "d")
    with db.read() as conn:
        assert store.get_dag(conn, "d") is None
        assert conn.execute(select(runs.c.id)).all() == []
        assert conn.execute(select(task_instances.c.task_id)).all() == []
        assert [r.dag_id for r in store.list_dags(conn)[0]] == ["kept"]
        assert store.latest_version(conn, "kept") is not None


def test_a_version_records_its_file_s_digest_and_a_plan_carries_it(db: Database) -> None:
    digest = hashlib.sha256(b"source").hexdigest()
    with db.write() as conn:
        record = store.upsert_parsed(
            conn,
            structure("etl"),
            "h1",
            "source",
            paused_at_creation=False,
            now=NOW,
            source_sha256=digest,
        )
    assert record.version_id is not None
    with db.read() as conn:
        version = store.get_version(conn, record.version_id)
        assert version is not None and version.source_sha256 == digest
        plan = PlanCache().get(conn, record.version_id)
    assert plan is not None and plan.source_sha256 == digest


def test_a_version_stored_without_its_text_gets_it_at_the_next_parse(db: Database) -> None:
    with db.write() as conn:
        first = store.upsert_parsed(
            conn, structure("etl"), "h1", None, paused_at_creation=False, now=NOW
        )
    assert first.version_id is not None
    with db.read() as conn:
        assert store.get_source(conn, first.version_id) is None
        version = store.get_version(conn, first.version_id)
        assert version is not None and version.source_sha256 is None
    digest = hashlib.sha256(b"text").hexdigest()
    with db.write() as conn:
        again = store.upsert_parsed(
            conn,
            structure("etl"),
            "h1",
            "text",
            paused_at_creation=False,
            now=NOW,
            source_sha256=digest,
        )
    assert again.version_id == first.version_id  # the same version: the same bytes
    with db.read() as conn:
        assert store.get_source(conn, first.version_id) == "text"
        version = store.get_version(conn, first.version_id)
        assert version is not None and version.source_sha256 == digest
