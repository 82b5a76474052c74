"""What each of Airflow's built-in roles may do over /api/v1, on a real server (SQLite and
PostgreSQL): the allowed answers succeed, the others are 403 naming the missing permission."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

PASSWORD = "Matr1x-pass-word"
ROLES = ["Admin", "Op", "User", "Viewer", "Public"]
WRITERS = {"Admin", "Op", "User"}
READERS = WRITERS | {"Viewer"}


@pytest.fixture(scope="module", autouse=True)
def users(api: ApiServer) -> None:
    for role in ROLES:
        api.create_user(f"matrix_{role.lower()}", PASSWORD, role)


def call(api: ApiServer, role: str, method: str, path: str, **kwargs: Any) -> requests.Response:
    auth = (f"matrix_{role.lower()}", PASSWORD)
    return requests.request(method, f"{api.base}/api/v1{path}", auth=auth, timeout=60, **kwargs)


def a_run(api: ApiServer) -> str:
    made = call(api, "Admin", "POST", "/dags/example_bash/dagRuns", json={})
    assert made.status_code == 200, made.text
    run_id: str = made.json()["dag_run_id"]
    return run_id


def expect(response: requests.Response, allowed: bool, permission: str) -> None:
    if allowed:
        assert response.status_code in (200, 204), response.text
    else:
        assert response.status_code == 403, response.text
        assert permission in response.json()["detail"]


@pytest.mark.parametrize("role", ROLES)
def test_each_builtin_role_may_do_what_airflow_allows_it(api: ApiServer, role: str) -> None:
    # Reading.
    expect(call(api, role, "GET", "/dags"), role in READERS, "can_read on DAGs")
    expect(call(api, role, "GET", "/dags/~/dagRuns"), role in READERS, "can_read on DAG Runs")
    expect(call(api, role, "GET", "/importErrors"), role in READERS, "can_read on ImportError")
    # Changing DAGs and runs.
    expect(
        call(api, role, "PATCH", "/dags/example_bash", json={"is_paused": True}),
        role in WRITERS,
        "can_edit on DAGs",
    )
    expect(
        call(api, role, "POST", "/dags/example_bash/dagRuns", json={}),
        role in WRITERS,
        "can_create on DAG Runs",
    )
    run_id = a_run(api)
    expect(
        call(api, role, "POST", f"/dags/example_bash/dagRuns/{run_id}/clear", json={}),
        role in WRITERS,
        "can_edit on DAG Runs",
    )
    expect(
        call(api, role, "PATCH", f"/dags/example_bash/dagRuns/{run_id}", json={"state": "failed"}),
        role in WRITERS,
        "can_edit on DAG Runs",
    )
    expect(
        call(api, role, "DELETE", f"/dags/example_bash/dagRuns/{run_id}"),
        role in WRITERS,
        "can_delete on DAG Runs",
    )
    # Accounts are Admin's alone.
    expect(call(api, role, "GET", "/users"), role == "Admin", "can_read on Users")
    expect(call(api, role, "GET", "/roles"), role == "Admin", "can_read on Roles")


def test_no_or_wrong_credentials_are_401_with_a_basic_challenge(api: ApiServer) -> None:
    for auth in (None, ("matrix_admin", "wrong-password")):
        response = requests.get(f"{api.base}/api/v1/dags", auth=auth, timeout=30)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"] == "Basic"
        assert response.headers["content-type"] == "application/problem+json"
