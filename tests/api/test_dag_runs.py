"""/api/v1 DAG runs against a real server process, on SQLite and PostgreSQL: trigger, get and
list in Airflow 2.10's shapes, Slipstream's ?wait= and Idempotency-Key, and bad input that
answers 4xx and writes nothing."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
import requests

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

V1 = "/api/v1"
ADMIN = ("runs_admin", "Adm1n-pass-word")
VIEWER = ("runs_viewer", "V1ewer-pass-word")

RUN_KEYS = {
    "conf",
    "dag_id",
    "dag_run_id",
    "data_interval_end",
    "data_interval_start",
    "end_date",
    "execution_date",
    "external_trigger",
    "last_scheduling_decision",
    "logical_date",
    "note",
    "run_type",
    "start_date",
    "state",
}


@pytest.fixture(scope="module", autouse=True)
def users(api: ApiServer) -> None:
    api.create_user(*ADMIN, "Admin")
    api.create_user(*VIEWER, "Viewer")


def call(api: ApiServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", ADMIN)
    return requests.request(method, f"{api.base}{V1}{path}", timeout=60, **kwargs)


def trigger(api: ApiServer, dag_id: str = "my_dag", **body: Any) -> requests.Response:
    return call(api, "POST", f"/dags/{dag_id}/dagRuns", json=body)


def run_ids(api: ApiServer, dag_id: str) -> list[str]:
    response = call(api, "GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})
    assert response.status_code == 200, response.text
    return [run["dag_run_id"] for run in response.json()["dag_runs"]]


def ensure_scheduler(api: ApiServer) -> None:
    """Start the module's scheduler once (a second would refuse to start)."""
    if not any("scheduler" in process.args for process in api.processes):
        api.start_scheduler()


def unique(prefix: str = "r") -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


# ------------------------------------------------------------------ trigger


def test_trigger_answers_200_with_a_queued_airflow_dagrun(api: ApiServer) -> None:
    run_id = unique()
    response = trigger(
        api,
        dag_run_id=run_id,
        logical_date="2025-03-04T05:06:07.123456+00:00",
        conf={"key": "value"},
        note="from a test",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == RUN_KEYS
    assert body["dag_run_id"] == run_id
    assert body["dag_id"] == "my_dag"
    assert body["state"] == "queued"
    assert body["conf"] == {"key": "value"}
    assert body["note"] == "from a test"
    assert body["run_type"] == "manual"
    assert body["external_trigger"] is True
    # Microseconds kept, as Airflow's REST path does; execution_date mirrors logical_date.
    assert body["logical_date"] == "2025-03-04T05:06:07.123456+00:00"
    assert body["execution_date"] == body["logical_date"]
    assert body["start_date"] is None and body["end_date"] is None
    assert body["data_interval_start"] and body["data_interval_end"]


def test_trigger_without_a_body_field_generates_a_manual_run_id(api: ApiServer) -> None:
    response = trigger(api)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dag_run_id"].startswith("manual__")
    assert body["conf"] == {}
    assert body["note"] is None


def test_execution_date_alone_sets_the_logical_date(api: ApiServer) -> None:
    response = trigger(api, execution_date="2025-05-05T00:00:00+00:00")
    assert response.status_code == 200, response.text
    assert response.json()["logical_date"] == "2025-05-05T00:00:00+00:00"


def test_data_interval_is_taken_as_given(api: ApiServer) -> None:
    response = trigger(
        api,
        data_interval_start="2025-06-01T00:00:00+00:00",
        data_interval_end="2025-06-02T00:00:00+00:00",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data_interval_start"] == "2025-06-01T00:00:00+00:00"
    assert body["data_interval_end"] == "2025-06-02T00:00:00+00:00"


def test_duplicate_run_id_is_409_and_writes_nothing(api: ApiServer) -> None:
    run_id = unique()
    assert trigger(api, dag_run_id=run_id).status_code == 200
    before = run_ids(api, "my_dag")
    response = trigger(api, dag_run_id=run_id, conf={"other": 1})
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == (
        f"DAGRun with DAG ID: 'my_dag' and DAGRun ID: '{run_id}' already exists"
    )
    assert run_ids(api, "my_dag") == before


def test_duplicate_logical_date_is_409(api: ApiServer) -> None:
    when = "2024-02-03T04:05:06+00:00"
    assert trigger(api, dag_run_id=unique(), logical_date=when).status_code == 200
    response = trigger(api, dag_run_id=unique(), logical_date=when)
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "DAGRun with DAG ID: 'my_dag' and DAGRun logical date: '2024-02-03 04:05:06+00:00'"
        " already exists"
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"conf": "not an object"}, "conf"),
        ({"conf": ["a", "list"]}, "conf"),
        ({"logical_date": "2025-01-01T00:00:00"}, "logical_date"),
        ({"execution_date": "yesterday"}, "execution_date"),
        ({"data_interval_start": "2025-01-01T00:00:00+00:00"}, "data_interval_end"),
        ({"data_interval_end": "2025-01-01T00:00:00+00:00"}, "data_interval_start"),
        (
            {
                "logical_date": "2025-01-01T00:00:00+00:00",
                "execution_date": "2025-01-02T00:00:00+00:00",
            },
            "execution_date",
        ),
        ({"state": "success"}, "state"),
        ({"unknown_key": 1}, "unknown_key"),
        ({"dag_run_id": "has/a slash"}, "dag_run_id"),
    ],
)
def test_bad_trigger_input_is_400_naming_the_field_and_writes_nothing(
    api: ApiServer, body: dict[str, Any], field: str
) -> None:
    before = run_ids(api, "my_dag")
    response = trigger(api, **body)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in response.json()["detail"]
    assert run_ids(api, "my_dag") == before


def test_malformed_json_is_400(api: ApiServer) -> None:
    response = call(
        api,
        "POST",
        "/dags/my_dag/dagRuns",
        data="{not json",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 400


def test_trigger_of_an_unknown_dag_is_404(api: ApiServer) -> None:
    response = trigger(api, "no_such_dag")
    assert response.status_code == 404
    assert response.json()["detail"] == "DAG with dag_id: 'no_such_dag' not found"


def test_unknown_query_parameter_is_400(api: ApiServer) -> None:
    before = run_ids(api, "my_dag")
    response = call(api, "POST", "/dags/my_dag/dagRuns", params={"bogus": "1"}, json={})
    assert response.status_code == 400
    assert "bogus" in response.json()["detail"]
    assert run_ids(api, "my_dag") == before


def test_idempotency_key_returns_the_first_run(api: ApiServer) -> None:
    key = secrets.token_hex(8)
    headers = {"Idempotency-Key": key}
    first = call(api, "POST", "/dags/my_dag/dagRuns", json={"conf": {"n": 1}}, headers=headers)
    again = call(api, "POST", "/dags/my_dag/dagRuns", json={"conf": {"n": 1}}, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() or again.json()["dag_run_id"] == first.json()["dag_run_id"]
    assert run_ids(api, "my_dag").count(first.json()["dag_run_id"]) == 1


def test_a_viewer_may_read_but_not_trigger(api: ApiServer) -> None:
    before = run_ids(api, "my_dag")
    response = call(api, "POST", "/dags/my_dag/dagRuns", json={}, auth=VIEWER)
    assert response.status_code == 403
    assert "can_create on DAG Runs" in response.json()["detail"]
    assert call(api, "GET", "/dags/my_dag/dagRuns", auth=VIEWER).status_code == 200
    assert run_ids(api, "my_dag") == before


def test_no_credentials_is_401(api: ApiServer) -> None:
    response = call(api, "GET", "/dags/~/dagRuns", auth=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Basic"


# ------------------------------------------------------------------ get and list


def test_get_run_and_404s(api: ApiServer) -> None:
    run_id = trigger(api, dag_run_id=unique()).json()["dag_run_id"]
    response = call(api, "GET", f"/dags/my_dag/dagRuns/{run_id}")
    assert response.status_code == 200
    assert response.json()["dag_run_id"] == run_id
    missing = call(api, "GET", "/dags/my_dag/dagRuns/nope")
    assert missing.status_code == 404
    assert missing.json()["detail"] == (
        "DAGRun with DAG ID: 'my_dag' and DagRun ID: 'nope' not found"
    )
    assert call(api, "GET", "/dags/no_such_dag/dagRuns/nope").status_code == 404


def test_list_unknown_dag_is_200_and_empty(api: ApiServer) -> None:
    response = call(api, "GET", "/dags/no_such_dag/dagRuns")
    assert response.status_code == 200
    assert response.json() == {"dag_runs": [], "total_entries": 0}


def test_list_pages_orders_and_filters(api: ApiServer) -> None:
    dag = "example_etl"
    made = []
    for day in (1, 2, 3):
        response = trigger(
            api, dag, dag_run_id=unique("etl"), logical_date=f"2023-01-0{day}T00:00:00+00:00"
        )
        assert response.status_code == 200, response.text
        made.append(response.json()["dag_run_id"])
    everything = call(api, "GET", f"/dags/{dag}/dagRuns").json()
    assert everything["total_entries"] >= 3
    page = call(
        api,
        "GET",
        f"/dags/{dag}/dagRuns",
        params={
            "limit": 2,
            "offset": 0,
            "order_by": "-execution_date",
            "execution_date_gte": "2023-01-01T00:00:00+00:00",
            "execution_date_lte": "2023-01-03T00:00:00+00:00",
        },
    ).json()
    assert page["total_entries"] == 3
    assert [r["dag_run_id"] for r in page["dag_runs"]] == [made[2], made[1]]
    # Oldest first by default (id ascending), as in Airflow.
    oldest = call(
        api,
        "GET",
        f"/dags/{dag}/dagRuns",
        params={"execution_date_lte": "2023-01-03T00:00:00+00:00"},
    ).json()
    assert [r["dag_run_id"] for r in oldest["dag_runs"]][-3:] == made
    by_state = call(api, "GET", "/dags/~/dagRuns", params={"state": ["queued", "running"]})
    assert by_state.status_code == 200
    assert all(r["state"] in ("queued", "running") for r in by_state.json()["dag_runs"])


@pytest.mark.parametrize(
    "params",
    [
        {"execution_date_gte": "2023-01-01T00:00:00"},
        {"order_by": "nonsense"},
        {"limit": -1},
        {"state": "exploded"},
    ],
)
def test_bad_list_query_is_400(api: ApiServer, params: dict[str, Any]) -> None:
    assert call(api, "GET", "/dags/~/dagRuns", params=params).status_code == 400


def test_batch_list(api: ApiServer) -> None:
    run_id = trigger(api, "example_bash", dag_run_id=unique()).json()["dag_run_id"]
    response = call(
        api,
        "POST",
        "/dags/~/dagRuns/list",
        json={"dag_ids": ["example_bash"], "page_limit": 100, "order_by": "-id"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dag_runs"][0]["dag_run_id"] == run_id
    assert {r["dag_id"] for r in body["dag_runs"]} == {"example_bash"}
    bad = call(api, "POST", "/dags/~/dagRuns/list", json={"page_offset": -1})
    assert bad.status_code == 400


# ------------------------------------------------------------------ wait


def write_slow_dag(api: ApiServer) -> None:
    path = api.home / "dags" / "slow_dag.py"
    if not path.exists():
        path.write_text(SLOW_DAG)
        api.sync_dags()


SLOW_DAG = """
import time
from datetime import datetime
from slipstream import DAG, task

with DAG("slow_dag", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def sleepy():
        print("going to sleep", flush=True)
        time.sleep(60)

    sleepy()
"""


def test_wait_returns_the_finished_run(api: ApiServer) -> None:
    ensure_scheduler(api)
    started = time.monotonic()
    response = call(
        api,
        "POST",
        "/dags/my_dag/dagRuns",
        params={"wait": 60},
        json={"conf": {"waited": True}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["state"] == "success", body
    assert body["start_date"] and body["end_date"]
    assert time.monotonic() - started < 60
    again = call(api, "GET", f"/dags/my_dag/dagRuns/{body['dag_run_id']}", params={"wait": 5})
    assert again.json()["state"] == "success"


def test_wait_gives_up_when_the_time_is_up(api: ApiServer) -> None:
    # A run of a DAG whose task sleeps a minute is unfinished when the wait ends.
    write_slow_dag(api)
    ensure_scheduler(api)
    run_id = trigger(api, "slow_dag", dag_run_id=unique()).json()["dag_run_id"]
    started = time.monotonic()
    response = call(api, "GET", f"/dags/slow_dag/dagRuns/{run_id}", params={"wait": 0.5})
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.json()["state"] in ("queued", "running")
    assert 0.45 <= elapsed < 10
    # Leave nothing running for later tests.
    call(api, "PATCH", f"/dags/slow_dag/dagRuns/{run_id}", json={"state": "failed"})


def test_wait_out_of_range_is_400(api: ApiServer) -> None:
    response = call(api, "GET", "/dags/my_dag/dagRuns/x", params={"wait": -1})
    assert response.status_code == 400
    assert "wait" in response.json()["detail"]
