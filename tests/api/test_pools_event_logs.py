"""/api/v1 pools and eventLogs, the experimental API's pool routes, and the permission checks
of XCom entries, on a real server (SQLite and PostgreSQL): Airflow 2.10's shapes and statuses,
bad input refused with nothing written, and an audit entry for each action that happened and
none for one refused."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

PASSWORD = "Po0ls-and-audit"
ADMIN = ("pa_admin", PASSWORD)
VIEWER = ("pa_viewer", PASSWORD)
USER = ("pa_user", PASSWORD)
PUBLIC = ("pa_public", PASSWORD)
SCOPED = ("pa_scoped", PASSWORD)  # may read example_etl alone, and its audit entries
POOL_FIELDS = {
    "name", "slots", "occupied_slots", "running_slots", "queued_slots", "scheduled_slots",
    "deferred_slots", "open_slots", "description", "include_deferred",
}  # fmt: skip


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    for (name, _), role in (
        (ADMIN, "Admin"),
        (VIEWER, "Viewer"),
        (USER, "User"),
        (PUBLIC, "Public"),
    ):
        module_home.create_user(name, PASSWORD, role)
    pairs = ["-a", "can_read", "-r", "DAG:example_etl", "Audit Logs", "XComs", "Task Instances"]
    for args in (("roles", "create", "etl_only"), ("roles", "add-perms", "etl_only", *pairs)):
        assert module_home.slipstream(*args).returncode == 0
    module_home.create_user(SCOPED[0], PASSWORD, "etl_only")
    module_home.sync_dags()
    module_home.start()
    return module_home


def call(
    server: ApiServer, method: str, path: str, *, auth: tuple[str, str] = ADMIN, **kwargs: Any
) -> requests.Response:
    return requests.request(method, f"{server.base}{path}", auth=auth, timeout=30, **kwargs)


def v1(server: ApiServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    return call(server, method, f"/api/v1{path}", **kwargs)


def problem(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


def events(server: ApiServer, **params: Any) -> list[dict[str, Any]]:
    answer = v1(server, "GET", "/eventLogs", params={"limit": 100, **params})
    assert answer.status_code == 200, answer.text
    found: list[dict[str, Any]] = answer.json()["event_logs"]
    return found


# ----------------------------------------------------------------- pools


def test_default_pool_is_listed_with_its_counts(server: ApiServer) -> None:
    answer = v1(server, "GET", "/pools")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    default = next(p for p in body["pools"] if p["name"] == "default_pool")
    assert set(default) == POOL_FIELDS
    assert default["slots"] == 128 and default["open_slots"] == 128 - default["occupied_slots"]
    assert body["total_entries"] >= 1
    assert v1(server, "GET", "/pools/default_pool", auth=VIEWER).json()["name"] == "default_pool"


def test_a_pool_round_trip(server: ApiServer) -> None:
    made = v1(server, "POST", "/pools", json={"name": "rt", "slots": 3, "description": "d"})
    assert made.status_code == 200, made.text
    assert made.json() == {
        "name": "rt", "slots": 3, "occupied_slots": 0, "running_slots": 0, "queued_slots": 0,
        "scheduled_slots": 0, "deferred_slots": 0, "open_slots": 3, "description": "d",
        "include_deferred": False,
    }  # fmt: skip
    changed = v1(server, "PATCH", "/pools/rt", params={"update_mask": "slots"}, json={"slots": 5})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["slots"], changed.json()["description"]) == (5, "d")
    whole = v1(
        server,
        "PATCH",
        "/pools/rt",
        json={"name": "rt2", "slots": 1, "include_deferred": True},
    )
    assert whole.status_code == 200, whole.text
    assert (whole.json()["name"], whole.json()["include_deferred"]) == ("rt2", True)
    problem(v1(server, "GET", "/pools/rt"), 404)
    assert v1(server, "DELETE", "/pools/rt2").status_code == 204
    detail = problem(v1(server, "GET", "/pools/rt2"), 404)
    assert detail == "Pool with name:'rt2' not found"
    audit = [(e["event"], e["owner"]) for e in events(server, event="pool_set")]
    assert audit.count(("pool_set", ADMIN[0])) >= 3
    deleted = events(server, event="pool_delete")
    assert any('"pool": "rt2"' in (e["extra"] or "") for e in deleted)


def test_listing_pages_and_orders(server: ApiServer) -> None:
    for name, slots in (("ord_b", 9), ("ord_a", 4)):
        assert v1(server, "POST", "/pools", json={"name": name, "slots": slots}).ok
    by_name = v1(server, "GET", "/pools", params={"order_by": "-name", "limit": 1}).json()
    assert by_name["pools"][0]["name"] > "ord_a" and len(by_name["pools"]) == 1
    assert by_name["total_entries"] >= 3
    problem(v1(server, "GET", "/pools", params={"order_by": "nope"}), 400)
    problem(v1(server, "GET", "/pools", params={"limit": -1}), 400)
    problem(v1(server, "GET", "/pools", params={"pool_name_pattern": "x"}), 400)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"slots": 2}, "name"),
        ({"name": "bad"}, "slots"),
        ({"name": "bad", "slots": "two"}, "slots"),
        ({"name": "bad", "slots": -1}, "slots"),
        ({"name": "bad", "slots": -5}, "slots"),
        ({"name": "", "slots": 1}, "empty"),
        ({"name": "bad", "slots": 1, "include_deferred": "yes"}, "include_deferred"),
        ({"name": "bad", "slots": 1, "open_slots": 4}, "open_slots"),
        ({"name": "bad", "slots": 1, "colour": "red"}, "colour"),
    ],
)
def test_bad_pools_are_refused_and_nothing_is_written(
    server: ApiServer, body: dict[str, Any], field: str
) -> None:
    before = len(events(server))
    detail = problem(v1(server, "POST", "/pools", json=body), 400)
    assert field in detail
    problem(v1(server, "GET", "/pools/bad"), 404)
    assert len(events(server)) == before  # a refusal leaves no audit entry


def test_conflicts_and_default_pool_rules(server: ApiServer) -> None:
    assert v1(server, "POST", "/pools", json={"name": "dup", "slots": 1}).ok
    before = len(events(server))
    assert problem(v1(server, "POST", "/pools", json={"name": "dup", "slots": 2}), 409) == (
        "Pool: dup already exists"
    )
    assert v1(server, "POST", "/pools", json={"name": "dup2", "slots": 1}).ok
    renamed = v1(server, "PATCH", "/pools/dup2", json={"name": "dup", "slots": 1})
    problem(renamed, 409)
    assert "Default Pool can't be deleted" in problem(
        v1(server, "DELETE", "/pools/default_pool"), 400
    )
    assert "name can't be modified" in problem(
        v1(server, "PATCH", "/pools/default_pool", json={"name": "other", "slots": 3}), 400
    )
    assert len(events(server)) == before + 1  # dup2's creation, and nothing refused
    resized = v1(
        server,
        "PATCH",
        "/pools/default_pool",
        params={"update_mask": "slots"},
        json={"slots": 64},
    )
    assert resized.status_code == 200 and resized.json()["slots"] == 64
    assert v1(
        server, "PATCH", "/pools/default_pool", json={"name": "default_pool", "slots": 128}
    ).ok
    problem(v1(server, "DELETE", "/pools/never"), 404)
    problem(v1(server, "PATCH", "/pools/never", json={"name": "never", "slots": 1}), 404)
    mask = v1(server, "PATCH", "/pools/dup", params={"update_mask": "colour"}, json={})
    assert "colour" in problem(mask, 400)


def test_who_may_read_and_change_pools(server: ApiServer) -> None:
    assert v1(server, "GET", "/pools", auth=VIEWER).status_code == 200
    assert "can_edit on Pools" in problem(
        v1(server, "POST", "/pools", auth=VIEWER, json={"name": "v", "slots": 1}), 403
    )
    assert "can_edit on Pools" in problem(
        v1(server, "DELETE", "/pools/default_pool", auth=USER), 403
    )
    assert "can_read on Pools" in problem(v1(server, "GET", "/pools", auth=PUBLIC), 403)


def test_experimental_pool_routes(server: ApiServer) -> None:
    base = "/api/experimental/pools"
    made = call(server, "POST", base, json={"name": "exp", "slots": "4", "description": "x"})
    assert made.status_code == 200, made.text
    assert {k: made.json()[k] for k in ("pool", "slots", "description")} == {
        "pool": "exp", "slots": 4, "description": "x"
    }  # fmt: skip
    upserted = call(server, "POST", base, json={"name": "exp", "slots": 6, "description": "y"})
    assert upserted.json()["slots"] == 6  # 1.10's POST replaces an existing pool
    listed = call(server, "GET", base).json()
    assert {p["pool"] for p in listed} >= {"default_pool", "exp"}
    assert call(server, "GET", f"{base}/exp").json()["slots"] == 6
    bad = call(server, "POST", base, json={"name": "exp", "slots": "x", "description": ""})
    assert bad.status_code == 400 and bad.json() == {"error": "Bad value for `slots`: x"}
    missing = call(server, "POST", base, json={"name": "exp", "slots": 1})
    assert missing.status_code == 400 and "description" in missing.json()["error"]
    gone = call(server, "GET", f"{base}/nope")
    assert gone.status_code == 404 and gone.json() == {"error": "Pool 'nope' doesn't exist"}
    default = call(server, "DELETE", f"{base}/default_pool")
    assert default.status_code == 400
    assert default.json() == {"error": "default_pool cannot be deleted"}
    deleted = call(server, "DELETE", f"{base}/exp")
    assert deleted.status_code == 200 and deleted.json()["pool"] == "exp"
    assert call(server, "DELETE", f"{base}/exp").status_code == 404
    viewer = call(
        server, "POST", base, auth=VIEWER, json={"name": "v", "slots": 1, "description": ""}
    )
    assert viewer.status_code == 403


# ----------------------------------------------------------------- event log


def test_actions_leave_audit_entries_and_refusals_none(server: ApiServer) -> None:
    run = v1(server, "POST", "/dags/example_bash/dagRuns", json={"dag_run_id": "audited"})
    assert run.status_code == 200, run.text
    trigger = events(server, dag_id="example_bash", event="trigger", run_id="audited")
    assert len(trigger) == 1
    assert (trigger[0]["owner"], trigger[0]["run_id"]) == (ADMIN[0], "audited")
    assert '"triggered_by": "rest_api"' in trigger[0]["extra"]
    # A refused trigger (the run id is taken) writes nothing.
    again = v1(server, "POST", "/dags/example_bash/dagRuns", json={"dag_run_id": "audited"})
    problem(again, 409)
    assert len(events(server, dag_id="example_bash", event="trigger", run_id="audited")) == 1
    assert v1(server, "PATCH", "/dags/example_bash", json={"is_paused": True}).ok
    assert v1(server, "PATCH", "/dags/example_bash", json={"is_paused": False}).ok
    path = "/dags/example_bash/dagRuns/audited"
    assert v1(server, "PATCH", path, json={"state": "failed"}).ok
    assert v1(server, "POST", f"{path}/clear", json={"dry_run": True}).ok  # changes nothing
    assert v1(server, "POST", f"{path}/clear", json={"dry_run": False}).ok
    assert v1(server, "DELETE", path).status_code == 204
    problem(v1(server, "DELETE", path), 404)
    seen = [e["event"] for e in events(server, dag_id="example_bash", order_by="event_log_id")]
    tail = seen[seen.index("trigger") :]
    assert tail == ["trigger", "paused", "unpaused", "mark_run", "clear", "delete_dag_run"]


def test_account_changes_and_sign_ins_are_audited_without_secrets(server: ApiServer) -> None:
    user = {
        "username": "audited_user", "email": "au@example.com", "first_name": "A",
        "last_name": "U", "password": "Secret-Value-123", "roles": [{"name": "Viewer"}],
    }  # fmt: skip
    assert v1(server, "POST", "/users", json=user).status_code == 200
    patch = v1(
        server,
        "PATCH",
        "/users/audited_user",
        params={"update_mask": "password"},
        json={"password": "Another-Secret-456"},
    )
    assert patch.status_code == 200, patch.text
    wrong = requests.get(f"{server.base}/api/v1/pools", auth=("audited_user", "not-it"), timeout=30)
    assert wrong.status_code == 401
    right = requests.get(
        f"{server.base}/api/v1/pools", auth=("audited_user", "Another-Secret-456"), timeout=30
    )
    assert right.status_code == 200
    assert v1(server, "POST", "/roles", json={"name": "audited_role", "actions": []}).ok
    assert v1(server, "DELETE", "/roles/audited_role").status_code == 204
    assert v1(server, "DELETE", "/users/audited_user").status_code == 204
    mine = [
        e
        for e in events(server)
        if "audited_" in (e["extra"] or "") or e["owner"] == "audited_user"
    ]
    kinds = [e["event"] for e in mine]
    for expected in (
        "user_create", "user_change", "login_failed", "login", "role_create", "role_delete",
        "user_delete",
    ):  # fmt: skip
        assert expected in kinds, kinds
    every = v1(server, "GET", "/eventLogs", params={"limit": 100, "order_by": "-event_log_id"})
    text = every.text
    assert (
        "Secret-Value-123" not in text and "Another-Secret-456" not in text and "not-it" not in text
    )


def test_event_log_filters_and_one_entry(server: ApiServer) -> None:
    assert v1(server, "POST", "/dags/example_etl/dagRuns", json={"dag_run_id": "etl1"}).ok
    assert v1(server, "POST", "/dags/my_dag/dagRuns", json={"dag_run_id": "mine1"}).ok
    only = events(server, included_events="trigger", dag_id="example_etl")
    assert only and all(e["event"] == "trigger" and e["dag_id"] == "example_etl" for e in only)
    without = events(server, excluded_events="trigger,login")
    assert without and all(e["event"] not in ("trigger", "login") for e in without)
    newest = events(server, order_by="-event_log_id", limit=1)[0]
    assert events(server, after=newest["when"], event=newest["event"]) == []
    assert newest in events(
        server, before="2999-01-01T00:00:00+00:00", limit=100, order_by="-event_log_id"
    )
    one = v1(server, "GET", f"/eventLogs/{newest['event_log_id']}")
    assert one.status_code == 200 and one.json() == newest
    assert set(newest) == {
        "event_log_id", "when", "dag_id", "task_id", "run_id", "map_index", "try_number",
        "event", "execution_date", "owner", "extra",
    }  # fmt: skip
    assert "not found" in problem(v1(server, "GET", "/eventLogs/999999"), 404)
    assert "date-time" in problem(
        v1(server, "GET", "/eventLogs", params={"after": "yesterday"}), 400
    )
    problem(v1(server, "GET", "/eventLogs", params={"order_by": "password"}), 400)
    problem(v1(server, "GET", "/eventLogs", params={"map_index": 1}), 400)


def test_who_may_read_the_event_log(server: ApiServer) -> None:
    assert v1(server, "POST", "/dags/example_etl/dagRuns", json={"dag_run_id": "etl2"}).ok
    assert v1(server, "POST", "/dags/my_dag/dagRuns", json={"dag_run_id": "mine2"}).ok
    assert v1(server, "GET", "/eventLogs", auth=VIEWER).status_code == 200
    assert "can_read on Audit Logs" in problem(v1(server, "GET", "/eventLogs", auth=PUBLIC), 403)
    scoped = v1(server, "GET", "/eventLogs", auth=SCOPED, params={"limit": 100}).json()
    dags = {e["dag_id"] for e in scoped["event_logs"]}
    assert "example_etl" in dags and dags <= {"example_etl", None}
    assert scoped["total_entries"] == len(scoped["event_logs"]) or scoped["total_entries"] > 100
    hidden = events(server, dag_id="my_dag", run_id="mine2")[0]
    problem(v1(server, "GET", f"/eventLogs/{hidden['event_log_id']}", auth=SCOPED), 404)
    seen = events(server, dag_id="example_etl", run_id="etl2")[0]
    assert v1(server, "GET", f"/eventLogs/{seen['event_log_id']}", auth=SCOPED).ok


# ----------------------------------------------------------------- XCom entries


def test_xcom_entries_are_checked_by_dag(server: ApiServer) -> None:
    for dag_id, run_id in (("example_etl", "x_etl"), ("my_dag", "x_mine")):
        assert v1(server, "POST", f"/dags/{dag_id}/dagRuns", json={"dag_run_id": run_id}).ok
    etl = "/dags/example_etl/dagRuns/x_etl/taskInstances/extract/xcomEntries"
    listed = v1(server, "GET", etl, auth=SCOPED)
    assert listed.status_code == 200, listed.text
    assert listed.json() == {"xcom_entries": [], "total_entries": 0}  # not run yet
    assert "XCom entry" in problem(v1(server, "GET", f"{etl}/return_value", auth=SCOPED), 404)
    mine = "/dags/my_dag/dagRuns/x_mine/taskInstances/show_conf/xcomEntries"
    problem(v1(server, "GET", mine, auth=SCOPED), 404)  # a DAG hidden from them
    assert "can_read on XComs" in problem(v1(server, "GET", etl, auth=PUBLIC), 403)
    assert v1(server, "GET", etl, auth=VIEWER).status_code == 200
    gone = "/dags/example_etl/dagRuns/nope/taskInstances/extract/xcomEntries"
    problem(v1(server, "GET", gone), 404)
    problem(v1(server, "GET", etl, params={"limit": -1}), 400)
    problem(v1(server, "GET", etl, params={"map_index": "x"}), 400)
