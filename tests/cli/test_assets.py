"""`slipstream assets list|show|events|materialize` against a real SQLite home."""

from __future__ import annotations

import json

from slipstream.bootstrap import dag_file_sync
from slipstream.clock import SystemClock
from slipstream.config import Settings
from slipstream.services.assets import AssetService
from slipstream.store.db import Database
from tests.cli.conftest import Cli

DAGS = """
from datetime import datetime
from airflow.sdk import DAG, Asset, asset

@asset(schedule=None, uri="s3://lake/raw")
def raw():
    pass

with DAG("uses_raw", schedule=[raw], start_date=datetime(2026, 1, 1)):
    pass

with DAG("also_raw", schedule=None, start_date=datetime(2026, 1, 1)):
    pass
"""


def test_assets_are_listed_shown_and_materialized(slipstream: Cli) -> None:
    slipstream.write_dag("lake", DAGS)
    settings = Settings.from_env(slipstream.env)
    db = Database(settings.database_url)
    try:
        assert dag_file_sync(settings, db, SystemClock(), None).sync_now().errors == 0
        AssetService(db, clock=SystemClock()).create_event("s3://lake/raw", {"by": "hand"})
    finally:
        db.dispose()

    listed = slipstream("assets", "list", "-o", "json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["uri"] == "s3://lake/raw" and row["name"] == "raw"
    assert row["consuming_dags"] == ["uses_raw"] and row["producing_tasks"] == ["raw.raw"]
    assert json.loads(slipstream("assets", "list", "--uri-pattern", "x", "-o", "json").output) == []

    shown = slipstream("assets", "show", "s3://lake/raw", "-o", "json")
    assert json.loads(shown.output)[0]["id"] == row["id"]
    missing = slipstream("assets", "show", "s3://lake/nope")
    assert missing.exit_code == 3 and "s3://lake/nope" in missing.stderr

    events = json.loads(slipstream("assets", "events", "s3://lake/raw", "-o", "json").output)
    assert [e["extra"] for e in events] == [{"by": "hand", "from_rest_api": True}]

    made = slipstream("assets", "materialize", "s3://lake/raw")
    assert made.exit_code == 0, made.output
    assert "of DAG 'raw' is queued" in made.output
    runs = json.loads(slipstream("runs", "list", "raw", "-o", "json").output)
    assert len(runs) == 1 and runs[0]["run_type"] == "manual"
