"""The database collector on real SQLite and PostgreSQL, and when the database is gone."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from slipstream.core.pools import Pool
from slipstream.metrics.database import DatabaseCollector
from slipstream.services.monitoring import MonitoringService
from slipstream.store import pools
from slipstream.store.db import Database

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _scrape(db: Database) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(DatabaseCollector(MonitoringService(db)))
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_every_state_and_pool_has_a_series(db: Database) -> None:
    with db.write() as conn:
        pools.ensure_default_pool(conn, 128, NOW)
        pools.insert_pool(conn, Pool(name="etl", slots=4, description="", include_deferred=False))
    found = _scrape(db)
    assert found[("slipstream_metadatabase_up", ())] == 1
    assert found[("slipstream_task_instances", (("state", "success"),))] == 0
    assert found[("slipstream_task_instances", (("state", "deferred"),))] == 0
    assert found[("slipstream_dag_runs", (("state", "queued"),))] == 0
    assert found[("slipstream_pool_slots", (("pool", "etl"),))] == 4
    assert found[("slipstream_pool_open_slots", (("pool", "etl"),))] == 4
    assert found[("slipstream_pool_slots", (("pool", "default_pool"),))] == 128
    assert found[("slipstream_dag_import_errors", ())] == 0


def test_an_unreachable_database_says_so_and_the_scrape_still_answers() -> None:
    db = Database("postgresql+psycopg://postgres@127.0.0.1:1/nothing?connect_timeout=2")
    try:
        found = _scrape(db)
    finally:
        db.dispose()
    assert found == {("slipstream_metadatabase_up", ()): 0}
