"""Asset-scheduled DAGs through the scheduler: producers' successes record events (with the
extras their tries set), consumers run when their condition holds, with the events in their
context; on SQLite and PostgreSQL, with DAG files in Airflow 2 and Airflow 3 idiom."""

from __future__ import annotations

import json
from datetime import timedelta

from slipstream.core.records import RunType
from slipstream.store import assets as assets_store
from slipstream.wakeup import Hint
from tests.scheduler.conftest import Harness

PRODUCERS_2X = """
from datetime import datetime
from airflow import DAG, Dataset
from airflow.operators.python import PythonOperator

A = Dataset("s3://bucket/a")
B = Dataset("s3://bucket/b")

def make_a(**context):
    context["outlet_events"][A].extra = {"rows": 3}

with DAG("make_a", start_date=datetime(2026, 1, 1), schedule=None):
    PythonOperator(task_id="produce", python_callable=make_a, outlets=[A])

with DAG("make_b", start_date=datetime(2026, 1, 1), schedule=None):
    PythonOperator(task_id="produce", python_callable=lambda: None, outlets=[B])
"""

CONSUMERS_2X = """
from datetime import datetime
from airflow import DAG, Dataset
from airflow.operators.python import PythonOperator

def seen(triggering_dataset_events, dag_run):
    return {
        "run_type": dag_run.run_type,
        "events": {
            uri: [[e.source_dag_id, e.source_task_id, e.extra] for e in events]
            for uri, events in sorted(triggering_dataset_events.items())
        },
    }

with DAG("needs_both", start_date=datetime(2026, 1, 1),
         schedule=[Dataset("s3://bucket/a"), Dataset("s3://bucket/b")]):
    PythonOperator(task_id="read", python_callable=seen)

with DAG("needs_either", start_date=datetime(2026, 1, 1),
         schedule=(Dataset("s3://bucket/a") | Dataset("s3://bucket/b"))):
    PythonOperator(task_id="read", python_callable=seen)
"""


def _return_value(h: Harness, dag_id: str, run_id: str) -> object:
    entries, _, _ = h.runs.xcom_entries(dag_id, run_id, "read", key="return_value")
    return json.loads(entries[0].value)


def _asset_runs(h: Harness, dag_id: str) -> list[str]:
    runs, _ = h.runs.find_runs(dag_ids=[dag_id])
    return [r.run_id for r in runs if r.run_type is RunType.ASSET_TRIGGERED]


def test_all_and_any_conditions_start_runs_with_their_events(harness: Harness) -> None:
    h = harness
    h.write_dag("producers", PRODUCERS_2X)
    h.write_dag("consumers", CONSUMERS_2X)
    h.settle()
    assert _asset_runs(h, "needs_both") == [] and _asset_runs(h, "needs_either") == []

    first = h.runs.trigger("make_a").run
    h.settle((Hint.queued_run("make_a"),))
    assert h.run("make_a", first.run_id).state.value == "success"
    # a alone: the `|` DAG runs, the list (all of them) waits for b.
    assert _asset_runs(h, "needs_both") == []
    (either,) = _asset_runs(h, "needs_either")
    assert h.run("needs_either", either).state.value == "success"
    assert _return_value(h, "needs_either", either) == {
        "run_type": "dataset_triggered",
        "events": {"s3://bucket/a": [["make_a", "produce", {"rows": 3}]]},
    }

    # Two more events of a before b: the list DAG's one run consumes all three of a's.
    for _ in range(2):
        h.clock.advance(timedelta(seconds=1))
        h.runs.trigger("make_a")
        h.settle((Hint.queued_run("make_a"),))
    h.clock.advance(timedelta(seconds=1))
    h.runs.trigger("make_b")
    h.settle((Hint.queued_run("make_b"),))
    (both,) = _asset_runs(h, "needs_both")
    value = _return_value(h, "needs_both", both)
    assert isinstance(value, dict)
    assert [len(events) for events in value["events"].values()] == [3, 1]
    assert value["events"]["s3://bucket/b"] == [["make_b", "produce", {}]]
    # The `|` DAG ran once per pass that saw a new event: 1 + 2 (a) + 1 (b).
    assert len(_asset_runs(h, "needs_either")) == 4
    # Nothing left queued, and the next b alone does not start the list DAG again.
    h.clock.advance(timedelta(seconds=1))
    h.runs.trigger("make_b")
    h.settle((Hint.queued_run("make_b"),))
    assert len(_asset_runs(h, "needs_both")) == 1
    with h.db.read() as conn:
        assert assets_store.queued(conn) == {"needs_both": {"s3://bucket/b"}}


ASSETS_3X = """
from datetime import datetime
from airflow.sdk import DAG, Asset, asset, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

@asset(schedule=None, uri="file:///tmp/raw.csv")
def raw():
    return "made"

cleaned = Asset(name="cleaned")

with DAG("clean", schedule=raw, start_date=datetime(2026, 1, 1)):
    @task(outlets=[cleaned])
    def read(triggering_asset_events=None):
        return {uri: [e.source_dag_id for e in evs] for uri, evs in triggering_asset_events.items()}
    read()

with DAG("report", start_date=datetime(2026, 1, 1),
         schedule=AssetOrTimeSchedule(
             timetable=CronTriggerTimetable("0 0 * * *", timezone="UTC"),
             assets=(raw & cleaned) | Asset("never"))):
    @task
    def read(triggering_asset_events=None):
        return sorted(triggering_asset_events)
    read()
"""


def test_airflow_3_assets_chain_and_or_time_schedule(harness: Harness) -> None:
    h = harness
    h.write_dag("assets3", ASSETS_3X)
    h.settle()
    run = h.runs.trigger("raw").run
    h.settle((Hint.queued_run("raw"),))
    assert h.run("raw", run.run_id).state.value == "success"
    (clean,) = _asset_runs(h, "clean")
    assert _return_value(h, "clean", clean) == {"file:///tmp/raw.csv": ["raw"]}
    # raw & cleaned both updated -> report runs; its time schedule still runs at midnight.
    (report,) = _asset_runs(h, "report")
    assert _return_value(h, "report", report) == ["cleaned", "file:///tmp/raw.csv"]
    runs, _ = h.runs.find_runs(dag_ids=["report"])
    scheduled = sum(r.run_type is RunType.SCHEDULED for r in runs)
    h.clock.advance(timedelta(days=1))
    h.settle()
    runs, _ = h.runs.find_runs(dag_ids=["report"])
    assert sum(r.run_type is RunType.SCHEDULED for r in runs) == scheduled + 1
    assert len(_asset_runs(h, "report")) == 1
    with h.db.read() as conn:
        raw_asset = assets_store.get_asset(conn, "file:///tmp/raw.csv")
    assert raw_asset is not None and raw_asset.name == "raw"
    assert raw_asset.consuming_dags == ("clean", "report")
    assert raw_asset.producing_tasks == (("raw", "raw"),)
