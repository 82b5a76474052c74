"""What a task adds to its asset events, end to end (SQLite and PostgreSQL): DAG files in Airflow
2.10 and 3.x idiom run by a real scheduler and its workers; `yield Metadata(...)` and
`outlet_events[asset].extra` end up in the event's `extra`, read back from /api/v1/datasets/events,
`slipstream assets events` and a consumer's triggering events. Asset aliases and AssetWatcher are
refused when the file loads, naming the construct."""

from __future__ import annotations

import json
import textwrap
from typing import Any

import pytest
import requests

from tests.api.conftest import ApiServer, wait_for

pytestmark = pytest.mark.slow

ADMIN = ("metadata_admin", "Metadata-adm1n-pass")

AIRFLOW_2 = """
from datetime import datetime
from airflow import DAG, Dataset
from airflow.datasets.metadata import Metadata
from airflow.decorators import task
from airflow.operators.python import PythonOperator

ORDERS = Dataset("s3://meta/orders")
SALES = Dataset("s3://meta/sales")

def write_sales(**context):
    context["outlet_events"][SALES].extra["by"] = context["ti"].task_id
    yield Metadata("s3://meta/sales", {"rows": 40})

with DAG("meta_2x", start_date=datetime(2026, 1, 1), schedule=None):
    @task(outlets=[ORDERS])
    def orders():
        yield Metadata(ORDERS, {"rows": 12})
        yield "not metadata"  # Airflow logs it and goes on
        return "orders written"

    orders() >> PythonOperator(task_id="sales", python_callable=write_sales, outlets=[SALES])

with DAG("meta_2x_consumer", start_date=datetime(2026, 1, 1), schedule=[ORDERS],
         is_paused_upon_creation=False):
    @task
    def read(triggering_dataset_events=None):
        return {uri: [e.extra for e in evs] for uri, evs in triggering_dataset_events.items()}
    read()
"""

AIRFLOW_3 = """
from datetime import datetime
from airflow.sdk import DAG, Asset, Metadata, asset, task

REPORT = Asset(name="report", uri="s3://meta/report")
PARTS = Asset("s3://meta/parts")

@asset(schedule=None, uri="s3://meta/model")
def model(self):
    yield Metadata(self, extra={"version": 2})

with DAG("meta_3x", start_date=datetime(2026, 1, 1), schedule=None):
    @task(outlets=[REPORT])
    def report(outlet_events=None):
        outlet_events[REPORT].extra["pages"] = 3
        yield Metadata(REPORT, extra={"final": True})
        return 3

    @task(outlets=[PARTS])
    def part(n):
        yield Metadata(PARTS, {"n": n})

    report() >> part.expand(n=[1, 2])

with DAG("meta_3x_stray", start_date=datetime(2026, 1, 1), schedule=None):
    @task(outlets=[REPORT])
    def stray():
        yield Metadata(Asset("s3://meta/elsewhere"), {"lost": True})
    stray()
"""

# Each file is refused when it loads; the text its import error must hold.
REFUSED = {
    "alias_outlet": (
        """
        from datetime import datetime
        from airflow.sdk import DAG, AssetAlias, task
        with DAG("alias_outlet", schedule=None, start_date=datetime(2026, 1, 1)):
            @task(outlets=[AssetAlias("late-bound")])
            def write():
                pass
            write()
        """,
        "AssetAlias('late-bound') is not available in Slipstream yet",
    ),
    "alias_schedule": (
        """
        from datetime import datetime
        from airflow import DAG
        from airflow.datasets import DatasetAlias
        with DAG("alias_schedule", schedule=[DatasetAlias("x")], start_date=datetime(2026, 1, 1)):
            pass
        """,
        "DatasetAlias('x') is not available in Slipstream yet",
    ),
    "watcher": (
        """
        from datetime import datetime
        from airflow.sdk import DAG, Asset, AssetWatcher
        QUEUE = Asset("queue", watchers=[AssetWatcher(name="w", trigger=None)])
        with DAG("watcher", schedule=[QUEUE], start_date=datetime(2026, 1, 1)):
            pass
        """,
        "AssetWatcher (from airflow.sdk) is not available in Slipstream: event-driven",
    ),
}


@pytest.fixture(scope="module")
def served(module_home: ApiServer) -> ApiServer:
    dags = module_home.home / "dags"
    (dags / "meta_2x.py").write_text(AIRFLOW_2)
    (dags / "meta_3x.py").write_text(AIRFLOW_3)
    for name, (source, _) in REFUSED.items():
        (dags / f"{name}.py").write_text(textwrap.dedent(source))
    module_home.create_user(*ADMIN, "Admin")
    assert module_home.sync_dags().errors == len(REFUSED)
    module_home.start()
    module_home.start_scheduler()
    return module_home


def call(api: ApiServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return requests.request(method, f"{api.base}/api/v1{path}", auth=ADMIN, timeout=60, **kwargs)


def run_to_end(api: ApiServer, dag_id: str) -> dict[str, Any]:
    made = call(api, "POST", f"/dags/{dag_id}/dagRuns", json={})
    assert made.status_code == 200, made.text
    run_id = made.json()["dag_run_id"]

    def finished() -> dict[str, Any] | None:
        run: dict[str, Any] = call(api, "GET", f"/dags/{dag_id}/dagRuns/{run_id}").json()
        return run if run["state"] in ("success", "failed") else None

    found = wait_for(finished, 90, f"the run of {dag_id}")
    assert isinstance(found, dict)
    return found


def events_of(api: ApiServer, dag_id: str) -> list[dict[str, Any]]:
    listed = call(api, "GET", "/datasets/events", params={"source_dag_id": dag_id})
    assert listed.status_code == 200, listed.text
    events: list[dict[str, Any]] = listed.json()["dataset_events"]
    return events


def xcom(api: ApiServer, dag_id: str, run_id: str, task_id: str) -> object:
    entry = call(
        api,
        "GET",
        f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
        params={"deserialize": "true", "stringify": "false"},
    )
    assert entry.status_code == 200, entry.text
    return entry.json()["value"]


def test_airflow_2_metadata_and_outlet_events_reach_the_events(served: ApiServer) -> None:
    run = run_to_end(served, "meta_2x")
    assert run["state"] == "success"
    extras = {e["dataset_uri"]: e["extra"] for e in events_of(served, "meta_2x")}
    assert extras == {
        "s3://meta/orders": {"rows": 12},
        # outlet_events set one key, the yielded Metadata another: both are kept.
        "s3://meta/sales": {"by": "sales", "rows": 40},
    }
    # The generator's return value is still the task's XCom.
    assert xcom(served, "meta_2x", run["dag_run_id"], "orders") == "orders written"
    logs = f"/dags/meta_2x/dagRuns/{run['dag_run_id']}/taskInstances/orders/logs/1"
    log = call(served, "GET", logs)
    assert "Ignoring unknown data of <class 'str'> received from task" in log.text

    # The same extra is what `slipstream assets events` shows and the consumer receives.
    shown = served.slipstream("assets", "events", "s3://meta/orders", "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert [e["extra"] for e in json.loads(shown.stdout)] == [{"rows": 12}]

    def consumer_run() -> dict[str, Any] | None:
        runs = call(served, "GET", "/dags/meta_2x_consumer/dagRuns").json()["dag_runs"]
        done = [r for r in runs if r["state"] == "success"]
        return done[0] if done else None

    consumed = wait_for(consumer_run, 60, "the consumer's dataset-triggered run")
    assert isinstance(consumed, dict)
    value = xcom(served, "meta_2x_consumer", consumed["dag_run_id"], "read")
    assert value == {"s3://meta/orders": [{"rows": 12}]}


def test_airflow_3_metadata_from_tasks_mapped_tasks_and_asset_functions(
    served: ApiServer,
) -> None:
    run = run_to_end(served, "meta_3x")
    assert run["state"] == "success"
    events = events_of(served, "meta_3x")
    report = [e for e in events if e["dataset_uri"] == "s3://meta/report"]
    assert [e["extra"] for e in report] == [{"pages": 3, "final": True}]
    assert xcom(served, "meta_3x", run["dag_run_id"], "report") == 3
    # Each map index records its own event, with its own extra.
    parts = sorted(
        (e["source_map_index"], e["extra"]) for e in events if e["dataset_uri"] == "s3://meta/parts"
    )
    assert parts == [(0, {"n": 1}), (1, {"n": 2})]

    model = run_to_end(served, "model")
    assert model["state"] == "success"
    (made,) = events_of(served, "model")
    assert (made["dataset_uri"], made["extra"]) == ("s3://meta/model", {"version": 2})
    shown = served.slipstream("assets", "events", "s3://meta/model", "-o", "json")
    assert [e["extra"] for e in json.loads(shown.stdout)] == [{"version": 2}]


def test_metadata_for_an_asset_that_is_not_an_outlet_fails_the_try(served: ApiServer) -> None:
    before = {e["id"] for e in events_of(served, "meta_3x_stray")}
    run = run_to_end(served, "meta_3x_stray")
    assert run["state"] == "failed"
    log = call(
        served, "GET", f"/dags/meta_3x_stray/dagRuns/{run['dag_run_id']}/taskInstances/stray/logs/1"
    )
    assert "'s3://meta/elsewhere'" in log.text and "is not an outlet of this task" in log.text
    assert {e["id"] for e in events_of(served, "meta_3x_stray")} == before == set()


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_aliases_and_watchers_are_refused_when_the_file_loads(served: ApiServer, name: str) -> None:
    errors = call(served, "GET", "/importErrors", params={"limit": 100}).json()["import_errors"]
    (error,) = [e for e in errors if e["filename"].endswith(f"/{name}.py")]
    assert REFUSED[name][1] in error["stack_trace"]
