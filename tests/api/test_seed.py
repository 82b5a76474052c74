"""The story Slipstream starts from: an Airflow 1.10 user, created with the CLI, triggers
`my_dag` over HTTP Basic with exactly the call from their blog post, and the run's task hands
back the conf it was given."""

from __future__ import annotations

import json
import re

import pytest
import requests

from slipstream.store import xcoms as xcom_store
from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow


def test_the_seed_request_triggers_my_dag_and_it_returns_the_conf(fresh_api: ApiServer) -> None:
    fresh_api.create_user("test_user", "tH1sIsAP@ssw0rd", "User")
    fresh_api.sync_dags()
    fresh_api.start_scheduler()
    fresh_api.start()
    base = fresh_api.base

    result = requests.post(
        f"{base}/api/experimental/dags/my_dag/dag_runs",
        data=json.dumps({"conf": {"key": "value"}}),
        auth=("test_user", "tH1sIsAP@ssw0rd"),
    )

    assert result.status_code == 200, result.text
    body = result.json()
    assert body["run_id"] == f"manual__{body['execution_date']}"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", body["execution_date"])
    when = body["execution_date"].replace("T", " ")
    assert body["message"] == (
        f"Created <DagRun my_dag @ {when}: {body['run_id']}, externally triggered: True>"
    )

    run = fresh_api.runs.wait("my_dag", body["run_id"], timeout=60)
    assert run.state.value == "success", fresh_api.output("scheduler")
    assert dict(run.conf) == {"key": "value"}
    assert run.triggered_by == "rest_api"
    with fresh_api.db.read() as conn:
        returned = xcom_store.pull(conn, run.id, ["show_conf"], "return_value")
    assert json.loads(returned["show_conf"]) == {"key": "value"}

    shown = fresh_api.slipstream("runs", "show", "my_dag", body["run_id"], "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "success"
    logged = fresh_api.slipstream("tasks", "logs", "my_dag", body["run_id"], "show_conf")
    assert "Triggered with conf: {'key': 'value'}" in logged.stdout, logged.stdout + logged.stderr

    state = requests.get(
        f"{base}/api/experimental/dags/my_dag/dag_runs/{body['execution_date']}",
        auth=("test_user", "tH1sIsAP@ssw0rd"),
        timeout=10,
    )
    assert state.json() == {"state": "success"}
    health = requests.get(f"{base}/api/v1/health", timeout=10).json()
    assert health["scheduler"]["status"] == "healthy"
    assert health["scheduler"]["latest_scheduler_heartbeat"] is not None
