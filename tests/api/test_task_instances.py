"""/api/v1 task instances, logs and the run changes (mark, clear, note, delete) against a real
server and scheduler, on SQLite and PostgreSQL."""

from __future__ import annotations

import secrets
import time
from typing import Any

import pytest
import requests

from tests.api.conftest import ApiServer, wait_for

pytestmark = pytest.mark.slow

V1 = "/api/v1"
ADMIN = ("ti_admin", "Adm1n-pass-word")
VIEWER = ("ti_viewer", "V1ewer-pass-word")
LIMITED = ("ti_limited", "L1mited-pass-word")

TI_KEYS = {
    "task_id", "task_display_name", "dag_id", "dag_run_id", "execution_date", "start_date",
    "end_date", "duration", "state", "try_number", "map_index", "max_tries", "hostname",
    "unixname", "pool", "pool_slots", "queue", "priority_weight", "operator", "queued_when",
    "pid", "executor", "executor_config", "sla_miss", "rendered_map_index", "rendered_fields",
    "trigger", "triggerer_job", "note",
}  # fmt: skip

TICKING_DAG = """
import time
from datetime import datetime
from slipstream import DAG, task

with DAG("ticking_dag", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    @task
    def tick():
        for n in range(600):
            print(f"tick {n}", flush=True)
            time.sleep(0.1)

    @task
    def after(x):
        return x

    after(tick())
"""


WAITING_DAG = """
from datetime import datetime
from airflow.sdk import DAG
from airflow.providers.standard.sensors.python import PythonSensor
from airflow.providers.standard.sensors.date_time import DateTimeSensor

with DAG("waiting_dag", schedule=None, start_date=datetime(2024, 1, 1)) as dag:
    PythonSensor(task_id="poking", python_callable=lambda: False, mode="reschedule",
                 poke_interval=3600)
    DateTimeSensor(task_id="until", target_time="2999-01-01T00:00:00+00:00")
"""


@pytest.fixture(scope="module", autouse=True)
def setup(api: ApiServer) -> None:
    api.create_user(*ADMIN, "Admin")
    api.create_user(*VIEWER, "Viewer")
    # A custom role that sees my_dag only.
    result = api.slipstream("roles", "create", "only_my_dag")
    if result.returncode == 0:
        api.slipstream(
            "roles", "add-perms", "only_my_dag",
            "-a", "can_read", "-r", "DAG:my_dag",
            "-a", "can_read", "-r", "DAG Runs",
            "-a", "can_read", "-r", "Task Instances",
        )  # fmt: skip
    api.create_user(*LIMITED, "Viewer")
    (api.home / "dags" / "ticking_dag.py").write_text(TICKING_DAG)
    (api.home / "dags" / "waiting_dag.py").write_text(WAITING_DAG)
    api.sync_dags()
    api.start_scheduler()


def call(api: ApiServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    kwargs.setdefault("auth", ADMIN)
    return requests.request(method, f"{api.base}{V1}{path}", timeout=60, **kwargs)


def finished_run(api: ApiServer, dag_id: str = "my_dag", **body: Any) -> dict[str, Any]:
    body.setdefault("dag_run_id", f"t_{secrets.token_hex(4)}")
    response = call(api, "POST", f"/dags/{dag_id}/dagRuns", params={"wait": 60}, json=body)
    assert response.status_code == 200, response.text
    run: dict[str, Any] = response.json()
    assert run["state"] in ("success", "failed"), run
    return run


def running(api: ApiServer) -> str:
    """A run of ticking_dag whose first task is running and printing."""
    run_id = f"tick_{secrets.token_hex(4)}"
    assert call(api, "POST", "/dags/ticking_dag/dagRuns", json={"dag_run_id": run_id}).ok
    path = f"/dags/ticking_dag/dagRuns/{run_id}/taskInstances/tick"
    wait_for(lambda: call(api, "GET", path).json().get("state") == "running", 60, "tick to run")
    return run_id


# ------------------------------------------------------------------ task instances


def test_list_and_get_task_instances(api: ApiServer) -> None:
    run = finished_run(api, conf={"a": 1})
    run_id = run["dag_run_id"]
    listed = call(api, "GET", f"/dags/my_dag/dagRuns/{run_id}/taskInstances")
    assert listed.status_code == 200
    body = listed.json()
    assert body["total_entries"] == 1
    [ti] = body["task_instances"]
    assert set(ti) == TI_KEYS
    assert ti["task_id"] == "show_conf" and ti["dag_run_id"] == run_id
    assert ti["state"] == "success" and ti["try_number"] == 1 and ti["map_index"] == -1
    assert ti["execution_date"] == run["logical_date"]
    assert ti["duration"] is not None and ti["duration"] >= 0
    one = call(api, "GET", f"/dags/my_dag/dagRuns/{run_id}/taskInstances/show_conf").json()
    assert one == ti
    missing = call(api, "GET", f"/dags/my_dag/dagRuns/{run_id}/taskInstances/nope")
    assert missing.status_code == 404
    everything = call(api, "GET", "/dags/~/dagRuns/~/taskInstances", params={"limit": 1})
    assert everything.status_code == 200
    assert everything.json()["total_entries"] >= 1 and len(everything.json()["task_instances"]) == 1
    by_state = call(
        api, "GET", "/dags/~/dagRuns/~/taskInstances", params={"state": ["success"]}
    ).json()
    assert all(t["state"] == "success" for t in by_state["task_instances"])
    batch = call(
        api,
        "POST",
        "/dags/~/dagRuns/~/taskInstances/list",
        json={"dag_ids": ["my_dag"], "dag_run_ids": [run_id]},
    )
    assert batch.status_code == 200, batch.text
    assert [t["task_id"] for t in batch.json()["task_instances"]] == ["show_conf"]


def test_waiting_sensors_show_their_states_and_filter_by_them(api: ApiServer) -> None:
    run_id = f"w_{secrets.token_hex(4)}"
    created = call(api, "POST", "/dags/waiting_dag/dagRuns", json={"dag_run_id": run_id})
    assert created.status_code == 200, created.text
    path = f"/dags/waiting_dag/dagRuns/{run_id}/taskInstances"

    def states() -> dict[str, str]:
        listed = call(api, "GET", path).json()["task_instances"]
        return {t["task_id"]: t["state"] for t in listed}

    wait_for(
        lambda: states() == {"poking": "up_for_reschedule", "until": "deferred"},
        60,
        "sensors to wait",
    )
    for state, task_id in (("up_for_reschedule", "poking"), ("deferred", "until")):
        found = call(api, "GET", path, params={"state": [state]})
        assert found.status_code == 200, found.text
        assert [t["task_id"] for t in found.json()["task_instances"]] == [task_id]
    ti = call(api, "GET", f"{path}/poking").json()
    assert ti["try_number"] == 1 and ti["end_date"] is not None


def test_bad_task_instance_queries_are_400(api: ApiServer) -> None:
    for params in ({"state": "bogus"}, {"start_date_gte": "2024-01-01T00:00:00"}, {"x": "1"}):
        response = call(api, "GET", "/dags/~/dagRuns/~/taskInstances", params=params)
        assert response.status_code == 400, params


def test_a_role_limited_to_one_dag_sees_only_it(api: ApiServer) -> None:
    result = api.slipstream("users", "add-role", "--username", LIMITED[0], "--role", "only_my_dag")
    if result.returncode != 0:
        pytest.skip(f"custom roles are not available here: {result.stderr}")
    api.slipstream("users", "remove-role", "--username", LIMITED[0], "--role", "Viewer")
    finished_run(api)
    finished_run(api, "example_bash")

    def sees_only_my_dag() -> bool:
        runs = call(api, "GET", "/dags/~/dagRuns", auth=LIMITED).json()
        return {r["dag_id"] for r in runs.get("dag_runs", [])} == {"my_dag"}

    # The server caches verified credentials up to 60 s.
    wait_for(sees_only_my_dag, 90, "the server to see the limited role")
    tis = call(api, "GET", "/dags/~/dagRuns/~/taskInstances", auth=LIMITED).json()
    assert {t["dag_id"] for t in tis["task_instances"]} == {"my_dag"}
    hidden = call(api, "GET", "/dags/example_bash/dagRuns", auth=LIMITED).json()
    assert hidden == {"dag_runs": [], "total_entries": 0}


# ------------------------------------------------------------------ logs


def test_logs_as_text_and_as_json(api: ApiServer) -> None:
    run_id = finished_run(api, conf={"marker": "xyzzy"})["dag_run_id"]
    path = f"/dags/my_dag/dagRuns/{run_id}/taskInstances/show_conf/logs/1"
    text = call(api, "GET", path, headers={"Accept": "text/plain"})
    assert text.status_code == 200
    assert text.headers["content-type"].startswith("text/plain")
    assert "xyzzy" in text.text
    as_json = call(api, "GET", path, params={"full_content": "true"})
    assert as_json.status_code == 200
    body = as_json.json()
    assert set(body) == {"continuation_token", "content"}
    assert body["content"] == text.text
    # Reading on from the token gives nothing new for a finished try.
    more = call(api, "GET", path, params={"token": body["continuation_token"]}).json()
    assert more["content"] == ""
    assert call(api, "GET", path.replace("/logs/1", "/logs/2")).status_code == 404
    assert call(api, "GET", path, params={"map_index": 3}).status_code == 404


def test_a_bad_continuation_token_is_400(api: ApiServer) -> None:
    run_id = finished_run(api)["dag_run_id"]
    path = f"/dags/my_dag/dagRuns/{run_id}/taskInstances/show_conf/logs/1"
    token = call(api, "GET", path).json()["continuation_token"]
    for bad in ("garbage", token[:-1] + ("0" if token[-1] != "0" else "1"), "x." + token):
        response = call(api, "GET", path, params={"token": bad})
        assert response.status_code == 400
        assert response.json()["detail"] == (
            "Bad Signature. Please use only the tokens provided by the API."
        )
    other = finished_run(api)["dag_run_id"]
    other_path = f"/dags/my_dag/dagRuns/{other}/taskInstances/show_conf/logs/1"
    assert call(api, "GET", other_path, params={"token": token}).status_code == 400


def test_continuation_token_reads_a_running_log_incrementally(api: ApiServer) -> None:
    run_id = running(api)
    path = f"/dags/ticking_dag/dagRuns/{run_id}/taskInstances/tick/logs/1"
    seen = ""
    token = None
    reads = 0
    while "tick 5\n" not in seen:
        params = {"token": token} if token else {}
        body = call(api, "GET", path, params=params).json()
        seen += body["content"]
        token = body["continuation_token"]
        reads += 1
        assert reads < 200, seen
        time.sleep(0.05)
    assert reads > 1
    # Pieces joined in order are the log as a whole read shows it (no gap, no repeat).
    whole = call(api, "GET", path, headers={"Accept": "text/plain"}).text
    assert whole.startswith(seen)
    assert seen.count("tick 0\n") == 1
    call(api, "PATCH", f"/dags/ticking_dag/dagRuns/{run_id}", json={"state": "failed"})


# ------------------------------------------------------------------ changing runs


def test_mark_a_running_run_failed_stops_it(api: ApiServer) -> None:
    run_id = running(api)
    response = call(api, "PATCH", f"/dags/ticking_dag/dagRuns/{run_id}", json={"state": "failed"})
    assert response.status_code == 200, response.text
    assert response.json()["state"] == "failed"
    tis = call(api, "GET", f"/dags/ticking_dag/dagRuns/{run_id}/taskInstances").json()
    states = {t["task_id"]: t["state"] for t in tis["task_instances"]}
    assert states == {"tick": "failed", "after": "skipped"}
    log = f"/dags/ticking_dag/dagRuns/{run_id}/taskInstances/tick/logs/1"
    wait_for(
        lambda: (
            "changed by a person" in call(api, "GET", log, headers={"Accept": "text/plain"}).text
        ),
        30,
        "the try to be stopped",
    )
    # The stopped try's report did not overwrite the mark.
    again = call(api, "GET", f"/dags/ticking_dag/dagRuns/{run_id}/taskInstances/tick").json()
    assert again["state"] == "failed"


@pytest.mark.parametrize(
    "body", [{"state": "running"}, {"state": "bogus"}, {}, {"state": "success", "x": 1}]
)
def test_bad_mark_is_400(api: ApiServer, body: dict[str, Any]) -> None:
    run_id = finished_run(api)["dag_run_id"]
    response = call(api, "PATCH", f"/dags/my_dag/dagRuns/{run_id}", json=body)
    assert response.status_code == 400
    assert call(api, "GET", f"/dags/my_dag/dagRuns/{run_id}").json()["state"] == "success"


def test_mark_of_a_missing_run_is_404(api: ApiServer) -> None:
    response = call(api, "PATCH", "/dags/my_dag/dagRuns/nope", json={"state": "failed"})
    assert response.status_code == 404
    assert response.json()["detail"] == "Dag Run id nope not found in dag my_dag"


def test_clear_run_dry_run_by_default_then_for_real(api: ApiServer) -> None:
    run = finished_run(api)
    run_id = run["dag_run_id"]
    dry = call(api, "POST", f"/dags/my_dag/dagRuns/{run_id}/clear", json={})
    assert dry.status_code == 200
    assert dry.json() == {
        "task_instances": [
            {
                "task_id": "show_conf",
                "dag_id": "my_dag",
                "execution_date": run["logical_date"],
                "dag_run_id": run_id,
            }
        ]
    }
    ti_path = f"/dags/my_dag/dagRuns/{run_id}/taskInstances/show_conf"
    assert call(api, "GET", ti_path).json()["try_number"] == 1
    real = call(api, "POST", f"/dags/my_dag/dagRuns/{run_id}/clear", json={"dry_run": False})
    assert real.status_code == 200
    assert real.json()["dag_run_id"] == run_id
    done = call(api, "GET", f"/dags/my_dag/dagRuns/{run_id}", params={"wait": 60}).json()
    assert done["state"] == "success"
    assert call(api, "GET", ti_path).json()["try_number"] == 2


def test_set_note_and_delete(api: ApiServer) -> None:
    run_id = finished_run(api)["dag_run_id"]
    noted = call(api, "PATCH", f"/dags/my_dag/dagRuns/{run_id}/setNote", json={"note": "hi"})
    assert noted.status_code == 200 and noted.json()["note"] == "hi"
    too_long = call(
        api, "PATCH", f"/dags/my_dag/dagRuns/{run_id}/setNote", json={"note": "x" * 1001}
    )
    assert too_long.status_code == 400
    assert call(api, "DELETE", f"/dags/my_dag/dagRuns/{run_id}", auth=VIEWER).status_code == 403
    deleted = call(api, "DELETE", f"/dags/my_dag/dagRuns/{run_id}")
    assert deleted.status_code == 204 and deleted.content == b""
    assert call(api, "GET", f"/dags/my_dag/dagRuns/{run_id}").status_code == 404
    assert call(api, "DELETE", f"/dags/my_dag/dagRuns/{run_id}").status_code == 404


def test_patch_task_instance_dry_run_by_default(api: ApiServer) -> None:
    run_id = finished_run(api)["dag_run_id"]
    path = f"/dags/my_dag/dagRuns/{run_id}/taskInstances/show_conf"
    dry = call(api, "PATCH", path, json={"new_state": "failed"})
    assert dry.status_code == 200
    assert set(dry.json()) == {"task_id", "dag_id", "execution_date", "dag_run_id"}
    assert call(api, "GET", path).json()["state"] == "success"
    real = call(api, "PATCH", path, json={"new_state": "failed", "dry_run": False})
    assert real.status_code == 200
    assert call(api, "GET", path).json()["state"] == "failed"
    assert call(api, "PATCH", path, json={"new_state": "running"}).status_code == 400
    assert call(api, "PATCH", path, json={"new_state": "failed"}, auth=VIEWER).status_code == 403


def test_update_task_instances_state_and_clear_task_instances(api: ApiServer) -> None:
    run = finished_run(api)
    run_id = run["dag_run_id"]
    body = {"task_id": "show_conf", "dag_run_id": run_id, "new_state": "failed"}
    dry = call(api, "POST", "/dags/my_dag/updateTaskInstancesState", json=body)
    assert dry.status_code == 200, dry.text
    assert [t["task_id"] for t in dry.json()["task_instances"]] == ["show_conf"]
    path = f"/dags/my_dag/dagRuns/{run_id}/taskInstances/show_conf"
    assert call(api, "GET", path).json()["state"] == "success"
    real = call(
        api, "POST", "/dags/my_dag/updateTaskInstancesState", json={**body, "dry_run": False}
    )
    assert real.status_code == 200
    assert call(api, "GET", path).json()["state"] == "failed"
    both = {**body, "execution_date": run["logical_date"]}
    assert call(api, "POST", "/dags/my_dag/updateTaskInstancesState", json=both).status_code == 400
    # Clear the failed one (only_failed is the default) and it runs again.
    clear = {"dag_run_id": run_id, "dry_run": False}
    cleared = call(api, "POST", "/dags/my_dag/clearTaskInstances", json=clear)
    assert cleared.status_code == 200, cleared.text
    assert [t["task_id"] for t in cleared.json()["task_instances"]] == ["show_conf"]
    wait_for(
        lambda: call(api, "GET", path).json()["state"] == "success", 60, "the cleared task to rerun"
    )
    assert call(api, "GET", path).json()["try_number"] == 2
    unknown = {"task_ids": ["nope"], "dry_run": True}
    assert call(api, "POST", "/dags/my_dag/clearTaskInstances", json=unknown).status_code == 404
