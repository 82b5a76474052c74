"""PoolService.usage_of on real SQLite and PostgreSQL: the use of the pools a page names, in
one read, counted from task instances by state, and nothing for a name with no pool."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update

from slipstream.clock import FrozenClock
from slipstream.core.pools import Pool
from slipstream.core.records import RunType
from slipstream.services.pools import PoolService
from slipstream.store import runs as runs_store
from slipstream.store import task_instances as ti_store
from slipstream.store.db import Database
from slipstream.store.tables import task_instances
from tests.store.conftest import AddDag

NOW = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_usage_of_counts_the_named_pools_and_leaves_out_missing_ones(
    db: Database, add_dag: AddDag
) -> None:
    pools = PoolService(db, clock=FrozenClock(NOW))
    pools.create(Pool("etl", 6, include_deferred=True), by="test")
    pools.create(Pool("other", 2), by="test")
    plan = add_dag(
        "pooled",
        [
            {"task_id": "a", "pool": "etl", "pool_slots": 2},
            {"task_id": "b", "pool": "etl", "pool_slots": 1},
            {"task_id": "c", "pool": "etl", "pool_slots": 3},
            {"task_id": "d", "pool": "etl", "pool_slots": 1},
            {"task_id": "e", "pool": "other"},
        ],
    )
    with db.write() as conn:
        run = runs_store.insert_run(
            conn,
            dag_id="pooled",
            run_id="r1",
            run_type=RunType.MANUAL,
            logical_date=NOW,
            data_interval=(NOW, NOW),
            conf={},
            version_id=plan.version_id,
            now=NOW,
        )
        ti_store.create_for_run(conn, run, plan, NOW)
        for task_id, state, slots in (
            ("a", "running", 2),
            ("b", "queued", 1),
            ("c", "scheduled", 3),
            ("d", "deferred", 1),
        ):
            conn.execute(
                update(task_instances)
                .where(task_instances.c.task_id == task_id)
                .values(state=state, pool="etl", pool_slots=slots)
            )
    found = pools.usage_of(["etl", "nowhere", "default_pool"])
    assert set(found) == {"etl", "default_pool"}  # "other" was not asked for
    etl = found["etl"]
    assert (etl.running, etl.queued, etl.scheduled, etl.deferred) == (2, 1, 3, 1)
    assert (etl.occupied, etl.open) == (4, 2)  # deferred counted: include_deferred
    assert found["default_pool"].occupied == 0
    assert pools.usage_of([]) == {}
    assert pools.usage_of(["bad\x00name"]) == {}
