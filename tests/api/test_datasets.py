"""/api/v1 datasets on a real server and scheduler (SQLite and PostgreSQL): listing and reading
assets, recording an event by hand (which starts the DAG scheduled on it), the events behind a
run, queued events, refusals in the API's problem format, and who may do what."""

from __future__ import annotations

import textwrap
from typing import Any
from urllib.parse import quote

import pytest
import requests

from tests.api.conftest import ApiServer, wait_for

pytestmark = pytest.mark.slow

ADMIN = ("dataset_admin", "Dataset-adm1n-pass")
VIEWER = ("dataset_viewer", "Dataset-v1ewer-pass")
URI = "s3://bucket/orders/2026"

DAGS = f"""
from datetime import datetime
from airflow import DAG, Dataset
from airflow.operators.python import PythonOperator

ORDERS = Dataset("{URI}")

with DAG("orders_producer", start_date=datetime(2026, 1, 1), schedule=None):
    PythonOperator(task_id="write", python_callable=lambda: None, outlets=[ORDERS])

with DAG("orders_consumer", start_date=datetime(2026, 1, 1), schedule=[ORDERS],
         is_paused_upon_creation=False):
    PythonOperator(
        task_id="read",
        python_callable=lambda triggering_dataset_events: {{
            uri: [e.extra for e in events] for uri, events in triggering_dataset_events.items()
        }},
    )

with DAG("orders_paused", start_date=datetime(2026, 1, 1), schedule=[ORDERS],
         is_paused_upon_creation=True):
    PythonOperator(task_id="read", python_callable=lambda: None)
"""


@pytest.fixture(scope="module")
def served(module_home: ApiServer) -> ApiServer:
    (module_home.home / "dags" / "orders.py").write_text(textwrap.dedent(DAGS))
    module_home.create_user(*ADMIN, "Admin")
    module_home.create_user(*VIEWER, "Viewer")
    summary = module_home.sync_dags()
    assert summary.errors == 0
    module_home.start()
    module_home.start_scheduler()
    return module_home


def call(
    api: ApiServer, method: str, path: str, auth: tuple[str, str] = ADMIN, **kwargs: Any
) -> requests.Response:
    return requests.request(method, f"{api.base}/api/v1{path}", auth=auth, timeout=60, **kwargs)


def test_datasets_list_with_their_dags_and_filters(served: ApiServer) -> None:
    listed = call(served, "GET", "/datasets", params={"uri_pattern": "orders/"})
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert body["total_entries"] == 1
    (dataset,) = body["datasets"]
    assert dataset["uri"] == URI and dataset["extra"] == {} and dataset["aliases"] == []
    assert [d["dag_id"] for d in dataset["consuming_dags"]] == ["orders_consumer", "orders_paused"]
    assert [(t["dag_id"], t["task_id"]) for t in dataset["producing_tasks"]] == [
        ("orders_producer", "write")
    ]
    assert call(served, "GET", "/datasets", params={"uri_pattern": "nothing"}).json() == {
        "datasets": [],
        "total_entries": 0,
    }
    by_dag = call(served, "GET", "/datasets", params={"dag_ids": "example_bash,orders_paused"})
    assert [d["uri"] for d in by_dag.json()["datasets"]] == [URI]
    one = call(served, "GET", f"/datasets/{quote(URI, safe='')}")
    assert one.status_code == 200 and one.json()["id"] == dataset["id"]
    missing = call(served, "GET", f"/datasets/{quote('s3://nope', safe='')}")
    assert missing.status_code == 404
    assert "s3://nope" in missing.json()["detail"]
    bad_order = call(served, "GET", "/datasets", params={"order_by": "colour"})
    assert bad_order.status_code == 400 and "colour" in bad_order.json()["detail"]


def test_a_manual_event_starts_the_consumer_and_is_its_upstream_event(served: ApiServer) -> None:
    made = call(served, "POST", "/datasets/events", json={"dataset_uri": URI, "extra": {"rows": 7}})
    assert made.status_code == 200, made.text
    event = made.json()
    assert event["dataset_uri"] == URI and event["source_dag_id"] is None
    assert event["extra"] == {"rows": 7, "from_rest_api": True}

    def consumer_run() -> dict[str, Any] | None:
        runs = call(served, "GET", "/dags/orders_consumer/dagRuns").json()["dag_runs"]
        done = [r for r in runs if r["state"] == "success"]
        return done[0] if done else None

    run = wait_for(consumer_run, 60, "the consumer's asset-triggered run")
    assert isinstance(run, dict) and run["run_type"] == "dataset_triggered"
    upstream = call(
        served, "GET", f"/dags/orders_consumer/dagRuns/{run['dag_run_id']}/upstreamDatasetEvents"
    ).json()
    assert upstream["total_entries"] == 1
    (seen,) = upstream["dataset_events"]
    assert seen["id"] == event["id"]
    assert seen["created_dagruns"] == [{"dag_id": "orders_consumer", "run_id": run["dag_run_id"]}]
    xcom = call(
        served,
        "GET",
        f"/dags/orders_consumer/dagRuns/{run['dag_run_id']}/taskInstances/read/xcomEntries/"
        "return_value",
        params={"deserialize": "true", "stringify": "false"},
    ).json()
    assert xcom["value"] == {URI: [{"rows": 7, "from_rest_api": True}]}
    listed = call(served, "GET", "/datasets/events", params={"dataset_id": event["dataset_id"]})
    assert event["id"] in [e["id"] for e in listed.json()["dataset_events"]]

    # The paused consumer keeps the event queued until someone empties its queue.
    queued = call(served, "GET", "/dags/orders_paused/datasets/queuedEvent")
    assert queued.status_code == 200, queued.text
    assert [(q["dag_id"], q["uri"]) for q in queued.json()["queued_events"]] == [
        ("orders_paused", URI)
    ]
    path = f"/dags/orders_paused/datasets/queuedEvent/{quote(URI, safe='')}"
    assert call(served, "GET", path).json()["uri"] == URI
    assert call(served, "DELETE", path, auth=VIEWER).status_code == 403
    assert call(served, "DELETE", path).status_code == 204
    gone = call(served, "GET", "/dags/orders_paused/datasets/queuedEvent")
    assert gone.status_code == 404 and "orders_paused" in gone.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ({"dataset_uri": "s3://unknown"}, 404, "s3://unknown"),
        ({"dataset_uri": URI, "colour": "red"}, 400, "colour"),
        ({"dataset_uri": URI, "extra": [1]}, 400, "extra"),
        ({}, 400, "dataset_uri"),
    ],
)
def test_bad_events_are_refused_naming_the_field(
    served: ApiServer, body: dict[str, Any], status: int, named: str
) -> None:
    before = call(served, "GET", "/datasets/events").json()["total_entries"]
    refused = call(served, "POST", "/datasets/events", json=body)
    assert refused.status_code == status, refused.text
    assert named in refused.text
    assert call(served, "GET", "/datasets/events").json()["total_entries"] == before


def test_viewers_read_datasets_but_may_not_create_events(served: ApiServer) -> None:
    assert call(served, "GET", "/datasets", auth=VIEWER).status_code == 200
    refused = call(served, "POST", "/datasets/events", auth=VIEWER, json={"dataset_uri": URI})
    assert refused.status_code == 403
    assert "can_create on Datasets" in refused.json()["detail"]
