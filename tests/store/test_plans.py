"""store.plans: one bounded cache of DAG plans by version id, on real SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from slipstream.core.dag_plan import DagPlan
from slipstream.store import dags as dags_store
from slipstream.store.db import Database
from slipstream.store.plans import PlanCache
from tests.store.conftest import dag_structure

AddDag = Callable[..., DagPlan]  # the add_dag fixture in conftest.py


def version_reads(db: Database) -> list[str]:
    """Every statement that reads dag_versions from now on, as a growing list."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "dag_versions" in statement:
            seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", record)
    return seen


def test_a_plan_is_read_once_and_then_served_from_memory(db: Database, add_dag: AddDag) -> None:
    etl = add_dag("etl", [{"task_id": "a"}, {"task_id": "b", "upstream": ["a"]}])
    cache = PlanCache()
    reads = version_reads(db)
    with db.read() as conn:
        first = cache.get(conn, etl.version_id)
        again = cache.get(conn, etl.version_id)
    assert first == etl
    assert again is first
    assert len(reads) == 1
    assert etl.version_id in cache and len(cache) == 1


def test_an_unknown_version_is_none_and_not_remembered(db: Database) -> None:
    cache = PlanCache()
    with db.read() as conn:
        assert cache.get(conn, 10_000) is None
    assert len(cache) == 0


def test_the_least_recently_used_plan_goes_first(db: Database, add_dag: AddDag) -> None:
    one, two, three = add_dag("one"), add_dag("two"), add_dag("three")
    cache = PlanCache(size=2)
    with db.read() as conn:
        cache.get(conn, one.version_id)
        cache.get(conn, two.version_id)
        cache.get(conn, one.version_id)  # `one` is now the most recently used
        cache.get(conn, three.version_id)
    assert one.version_id in cache and three.version_id in cache
    assert two.version_id not in cache
    assert len(cache) == 2


def test_a_version_keeps_its_plan_when_the_dag_moves_on(db: Database, add_dag: AddDag) -> None:
    old = add_dag("etl", [{"task_id": "a"}])
    with db.write() as conn:
        newer = dags_store.upsert_parsed(
            conn,
            dag_structure("etl", [{"task_id": "a"}, {"task_id": "b"}]),
            "hash-etl-2",
            "source",
            paused_at_creation=False,
            now=datetime(2026, 1, 2, tzinfo=UTC),
        )
    assert newer.version_id is not None and newer.version_id != old.version_id
    cache = PlanCache()
    with db.read() as conn:
        pinned = cache.get(conn, old.version_id)
        current = cache.get(conn, newer.version_id)
    assert pinned is not None and current is not None
    assert pinned.order == ("a",)
    assert current.order == ("a", "b")


def test_a_cache_holds_at_least_one_plan() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PlanCache(size=0)
