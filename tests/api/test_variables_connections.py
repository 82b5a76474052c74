"""/api/v1/variables and /api/v1/connections on a real server (SQLite and PostgreSQL): Airflow
2.10's shapes and statuses, secrets never answered, bad input as 400/404/409 problems, and who
may call them (Admin and Op; not User, Viewer or Public)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-Pa55"
ADMIN = ("root", PASSWORD)


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    module_home.create_user("root", PASSWORD, "Admin")
    for role in ("Op", "User", "Viewer"):
        module_home.create_user(f"as_{role.lower()}", PASSWORD, role)
    module_home.start()
    return module_home


def call(
    server: ApiServer, method: str, path: str, *, auth: tuple[str, str] = ADMIN, **kwargs: Any
) -> requests.Response:
    return requests.request(method, f"{server.base}/api/v1{path}", auth=auth, timeout=30, **kwargs)


def problem(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


def test_variable_round_trip(server: ApiServer) -> None:
    created = call(server, "POST", "/variables", json={"key": "rt", "value": "v1"})
    assert created.status_code == 200, created.text
    assert created.json() == {"key": "rt", "value": "v1", "description": None}
    got = call(server, "GET", "/variables/rt").json()
    assert got == {"key": "rt", "value": "v1", "description": None}
    patched = call(
        server,
        "PATCH",
        "/variables/rt?update_mask=description",
        json={"key": "rt", "value": "ignored", "description": "d"},
    )
    assert patched.json() == {"key": "rt", "value": "v1", "description": "d"}
    patched = call(server, "PATCH", "/variables/rt", json={"key": "rt", "value": "v2"})
    assert patched.json()["value"] == "v2"
    listed = call(server, "GET", "/variables?order_by=-key&limit=1000").json()
    assert {"key": "rt", "description": "d"} in listed["variables"]
    assert listed["total_entries"] == len(listed["variables"])
    assert call(server, "DELETE", "/variables/rt").status_code == 204
    assert problem(call(server, "GET", "/variables/rt"), 404) == "Variable does not exist"
    assert problem(call(server, "DELETE", "/variables/rt"), 404) == "Variable does not exist"


def test_secret_variable_is_masked(server: ApiServer) -> None:
    call(server, "POST", "/variables", json={"key": "my_api_key", "value": "abc-def-ghi"})
    got = call(server, "GET", "/variables/my_api_key")
    assert got.json()["value"] == "***"
    assert "abc-def-ghi" not in got.text


def test_variable_bad_input(server: ApiServer) -> None:
    assert "value" in problem(call(server, "POST", "/variables", json={"key": "x"}), 400)
    assert "key" in problem(call(server, "POST", "/variables", json={"key": "", "value": "v"}), 400)
    assert "Unknown field" in problem(
        call(server, "POST", "/variables", json={"key": "x", "value": "v", "other": 1}), 400
    )
    call(server, "POST", "/variables", json={"key": "bad", "value": "v"})
    assert "doesn't match" in problem(
        call(server, "PATCH", "/variables/bad", json={"key": "other", "value": "v"}), 400
    )
    assert "cannot be updated" in problem(
        call(server, "PATCH", "/variables/bad?update_mask=key", json={"key": "bad", "value": "v"}),
        400,
    )
    assert "Ordering with 'val'" in problem(call(server, "GET", "/variables?order_by=val"), 400)
    # Nothing half-written: the variable is as it was.
    assert call(server, "GET", "/variables/bad").json()["value"] == "v"


def test_connection_round_trip_never_returns_the_password(server: ApiServer) -> None:
    body = {
        "connection_id": "pg",
        "conn_type": "postgres",
        "host": "h",
        "login": "u",
        "password": "pw-secret",
        "port": 5432,
        "schema": "db",
        "extra": json.dumps({"sslmode": "require", "token": "tok-secret"}),
    }
    created = call(server, "POST", "/connections", json=body)
    assert created.status_code == 200, created.text
    assert "pw-secret" not in created.text and "tok-secret" not in created.text
    got = call(server, "GET", "/connections/pg").json()
    assert "password" not in got
    assert got["schema"] == "db" and got["port"] == 5432 and got["host"] == "h"
    assert json.loads(got["extra"]) == {"sslmode": "require", "token": "***"}
    listed = call(server, "GET", "/connections").json()
    item = next(c for c in listed["connections"] if c["connection_id"] == "pg")
    assert item == {
        "connection_id": "pg",
        "conn_type": "postgres",
        "description": None,
        "host": "h",
        "login": "u",
        "schema": "db",
        "port": 5432,
    }
    conflict = call(server, "POST", "/connections", json=body)
    assert problem(conflict, 409) == "Connection already exist. ID: pg"
    patched = call(
        server,
        "PATCH",
        "/connections/pg?update_mask=host",
        json={"connection_id": "pg", "conn_type": "postgres", "host": "h2"},
    )
    assert patched.json()["host"] == "h2" and patched.json()["login"] == "u"
    assert "cannot be updated" in problem(
        call(server, "PATCH", "/connections/pg", json={"connection_id": "x", "conn_type": "a"}),
        400,
    )
    assert "port" in problem(
        call(server, "POST", "/connections", json={**body, "connection_id": "p2", "port": "x"}),
        400,
    )
    assert call(server, "DELETE", "/connections/pg").status_code == 204
    assert "`pg` was not found" in problem(call(server, "GET", "/connections/pg"), 404)


def test_connection_test_is_disabled_by_default(server: ApiServer) -> None:
    response = call(
        server, "POST", "/connections/test", json={"connection_id": "t", "conn_type": "http"}
    )
    assert "disabled" in problem(response, 403)


@pytest.mark.parametrize(
    ("user", "allowed"), [("as_op", True), ("as_user", False), ("as_viewer", False)]
)
def test_who_may_manage_variables_and_connections(
    server: ApiServer, user: str, allowed: bool
) -> None:
    auth = (user, PASSWORD)
    for path in ("/variables", "/connections"):
        response = call(server, "GET", path, auth=auth)
        assert response.status_code == (200 if allowed else 403), response.text
    created = call(
        server, "POST", "/variables", auth=auth, json={"key": f"by_{user}", "value": "v"}
    )
    assert created.status_code == (200 if allowed else 403)
