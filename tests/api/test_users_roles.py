"""/api/v1 users, roles and permissions on a real server (SQLite and PostgreSQL): Airflow 2.10's
shapes, statuses and messages, and who may call them."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.api.conftest import ApiServer, wait_for

pytestmark = pytest.mark.slow

PASSWORD = "s3cret-Pa55"
ADMIN = ("root", PASSWORD)
USER_FIELDS = {
    "first_name", "last_name", "username", "email", "active", "last_login", "login_count",
    "failed_login_count", "roles", "created_on", "changed_on",
}  # fmt: skip
BUILTIN = ["Admin", "Op", "User", "Viewer", "Public"]


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    module_home.create_user("root", PASSWORD, "Admin")
    for role in BUILTIN:
        module_home.create_user(f"as_{role.lower()}", PASSWORD, role)
    module_home.sync_dags()  # the API server never parses: DAGs are stored before it starts
    module_home.start()
    return module_home


def call(
    server: ApiServer,
    method: str,
    path: str,
    *,
    auth: tuple[str, str] | None = ADMIN,
    **kwargs: Any,
) -> requests.Response:
    return requests.request(method, f"{server.base}/api/v1{path}", auth=auth, timeout=30, **kwargs)


def new_user(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "username": name,
        "email": f"{name}@example.com",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "password": PASSWORD,
        **extra,
    }


def problem(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    detail: str = response.json()["detail"]
    return detail


# ---------------------------------------------------------------------- users


def test_create_get_and_list_users(server: ApiServer) -> None:
    created = call(server, "POST", "/users", json=new_user("ada", roles=[{"name": "Viewer"}]))
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == USER_FIELDS
    assert "password" not in created.text and PASSWORD not in created.text
    assert body["roles"] == [{"name": "Viewer"}]
    assert (body["active"], body["login_count"], body["last_login"]) == (True, 0, None)
    assert body["created_on"].endswith("+00:00")

    got = call(server, "GET", "/users/ada")
    assert got.status_code == 200 and got.json() == body

    listed = call(server, "GET", "/users", params={"order_by": "-username", "limit": 2})
    assert listed.status_code == 200
    page = listed.json()
    assert page["total_entries"] >= 7
    assert len(page["users"]) == 2
    names = [u["username"] for u in page["users"]]
    assert names == sorted(names, reverse=True)
    first = call(server, "GET", "/users", params={"order_by": "username", "limit": 1, "offset": 0})
    assert first.json()["users"][0]["username"] == "ada"

    # A new user who signs in works with the password sent.
    assert call(server, "GET", "/users/ada", auth=("ada", PASSWORD)).status_code == 403


def test_a_user_created_without_roles_is_public(server: ApiServer) -> None:
    created = call(server, "POST", "/users", json=new_user("nobody"))
    assert created.status_code == 200, created.text
    assert created.json()["roles"] == [{"name": "Public"}]


def test_create_refusals_in_airflows_words(server: ApiServer) -> None:
    call(server, "POST", "/users", json=new_user("dup"))
    taken = call(server, "POST", "/users", json=new_user("dup"))
    assert problem(taken, 409) == "Username `dup` already exists. Use PATCH to update."
    email = call(server, "POST", "/users", json=new_user("dup2", email="dup@example.com"))
    assert problem(email, 409) == "The email `dup@example.com` is already taken."
    roles = call(server, "POST", "/users", json=new_user("x1", roles=[{"name": "Nope"}]))
    assert problem(roles, 400) == "Unknown roles: 'Nope'"
    read_only = call(server, "POST", "/users", json=new_user("x2", active=False))
    assert problem(read_only, 400) == "Property is read-only - 'active'"
    unknown = call(server, "POST", "/users", json=new_user("x3", foo=1))
    assert problem(unknown, 400) == "{'foo': ['Unknown field.']}"
    missing = call(server, "POST", "/users", json={"username": "x4", "email": "x4@x.org"})
    assert "'first_name': ['Missing data for required field.']" in problem(missing, 400)
    wrong_type = call(server, "POST", "/users", json=new_user("x5", email=5))
    assert problem(wrong_type, 400) == "5 is not of type 'string' - 'email'"
    not_json = call(
        server, "POST", "/users", data="{", headers={"Content-Type": "application/json"}
    )
    problem(not_json, 400)
    a_list = call(server, "POST", "/users", json=[new_user("x6")])
    problem(a_list, 400)
    names = {u["username"] for u in call(server, "GET", "/users").json()["users"]}
    assert not names & {"dup2", "x1", "x2", "x3", "x4", "x5", "x6"}


def test_patch_user_with_and_without_update_mask(server: ApiServer) -> None:
    call(server, "POST", "/users", json=new_user("bea", roles=[{"name": "Viewer"}]))
    masked = call(
        server,
        "PATCH",
        "/users/bea",
        params={"update_mask": "first_name,roles"},
        json={"first_name": "Beatrice", "last_name": "ignored", "roles": [{"name": "User"}]},
    )
    assert masked.status_code == 200, masked.text
    body = masked.json()
    assert (body["first_name"], body["last_name"]) == ("Beatrice", "Lovelace")
    assert body["roles"] == [{"name": "User"}]
    bad_mask = call(
        server, "PATCH", "/users/bea", params={"update_mask": "email"}, json={"first_name": "x"}
    )
    assert problem(bad_mask, 400) == "Unknown update masks: 'email'"
    # A new password works at once and the old one stops working.
    new_password = "An0ther-Pa55"
    changed = call(server, "PATCH", "/users/bea", json={"password": new_password})
    assert changed.status_code == 200 and new_password not in changed.text
    assert call(server, "GET", "/roles", auth=("bea", new_password)).status_code == 403
    assert call(server, "GET", "/roles", auth=("bea", PASSWORD)).status_code == 401
    # Rename; clashes are 409 in Airflow's words.
    call(server, "POST", "/users", json=new_user("cid"))
    clash = call(server, "PATCH", "/users/bea", json={"username": "cid"})
    assert problem(clash, 409) == "The username `cid` already exists"
    email = call(server, "PATCH", "/users/bea", json={"email": "cid@example.com"})
    assert problem(email, 409) == "The email `cid@example.com` already exists"
    renamed = call(server, "PATCH", "/users/bea", json={"username": "bee"})
    assert renamed.status_code == 200 and renamed.json()["username"] == "bee"
    assert call(server, "GET", "/users/bea").status_code == 404
    unknown_role = call(server, "PATCH", "/users/bee", json={"roles": [{"name": "Nope"}]})
    assert problem(unknown_role, 400) == "Unknown roles: 'Nope'"
    assert call(server, "GET", "/users/bee").json()["roles"] == [{"name": "User"}]
    missing = call(server, "PATCH", "/users/ghost", json={"first_name": "x"})
    assert problem(missing, 404) == "The User with username `ghost` was not found"


def test_delete_user(server: ApiServer) -> None:
    call(server, "POST", "/users", json=new_user("dan"))
    deleted = call(server, "DELETE", "/users/dan")
    assert deleted.status_code == 204 and deleted.content == b""
    assert problem(call(server, "GET", "/users/dan"), 404) == (
        "The User with username `dan` was not found"
    )
    problem(call(server, "DELETE", "/users/dan"), 404)


def test_names_with_nul_are_not_found_not_errors(server: ApiServer) -> None:
    for method in ("GET", "PATCH", "DELETE"):
        for path in ("/users/a%00b", "/roles/a%00b"):
            body = {"first_name": "x"} if path.startswith("/users") else {"actions": []}
            problem(call(server, method, path, json=body), 404)
    refused = call(server, "POST", "/users", json=new_user("a\x00b"))
    assert "NUL" in problem(refused, 400)
    refused = call(server, "POST", "/roles", json={"name": "r\x00"})
    assert "NUL" in problem(refused, 400)


def test_users_list_refuses_an_unknown_order(server: ApiServer) -> None:
    response = call(server, "GET", "/users", params={"order_by": "password_hash"})
    assert "Ordering with 'password_hash' is disallowed" in problem(response, 400)
    assert problem(call(server, "GET", "/users", params={"nope": "1"}), 400)


# ---------------------------------------------------------------------- roles


def pairs(role: dict[str, Any]) -> set[tuple[str, str]]:
    return {(a["action"]["name"], a["resource"]["name"]) for a in role["actions"]}


def actions(*items: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"action": {"name": v}, "resource": {"name": r}} for v, r in items]


def test_builtin_roles_are_listed_with_their_permissions(server: ApiServer) -> None:
    listed = call(server, "GET", "/roles")
    assert listed.status_code == 200
    body = listed.json()
    names = [r["name"] for r in body["roles"]]
    assert names[:5] == sorted(BUILTIN)
    assert body["total_entries"] == len(names)
    viewer = call(server, "GET", "/roles/Viewer").json()
    assert set(viewer) == {"name", "actions"}
    assert ("can_read", "DAGs") in pairs(viewer) and ("can_edit", "DAGs") not in pairs(viewer)
    by_id = call(server, "GET", "/roles", params={"order_by": "role_id", "limit": 2}).json()
    assert [r["name"] for r in by_id["roles"]] == ["Admin", "Public"]


def test_create_patch_and_delete_a_custom_role(server: ApiServer) -> None:
    created = call(
        server, "POST", "/roles", json={"name": "etl", "actions": actions(("can_read", "DAG:a"))}
    )
    assert created.status_code == 200, created.text
    assert created.json() == {"name": "etl", "actions": actions(("can_read", "DAG:a"))}
    duplicate = call(server, "POST", "/roles", json={"name": "etl"})
    assert problem(duplicate, 409) == (
        "Role with name 'etl' already exists; please update with the PATCH endpoint"
    )
    patched = call(
        server,
        "PATCH",
        "/roles/etl",
        params={"update_mask": "actions"},
        json={
            "name": "ignored",
            "actions": actions(("can_read", "DAG tag:x"), ("can_edit", "DAGs")),
        },
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["name"] == "etl"
    assert pairs(patched.json()) == {("can_read", "DAG tag:x"), ("can_edit", "DAGs")}
    bad_mask = call(server, "PATCH", "/roles/etl", params={"update_mask": "foo"}, json={})
    assert problem(bad_mask, 400) == "'foo' in update_mask is unknown"
    renamed = call(server, "PATCH", "/roles/etl", json={"name": "pipelines"})
    assert renamed.json()["name"] == "pipelines"
    assert pairs(renamed.json()) == {("can_read", "DAG tag:x"), ("can_edit", "DAGs")}
    assert problem(call(server, "GET", "/roles/etl"), 404) == "Role with name 'etl' was not found"
    assert call(server, "DELETE", "/roles/pipelines").status_code == 204
    problem(call(server, "DELETE", "/roles/pipelines"), 404)


def test_role_refusals(server: ApiServer) -> None:
    bad_action = call(
        server, "POST", "/roles", json={"name": "r1", "actions": actions(("can_fly", "DAGs"))}
    )
    assert "The specified action: 'can_fly' was not found" in problem(bad_action, 400)
    bad_resource = call(
        server, "POST", "/roles", json={"name": "r1", "actions": actions(("can_read", "Nope"))}
    )
    assert "The specified resource: 'Nope' was not found" in problem(bad_resource, 400)
    malformed = call(server, "POST", "/roles", json={"name": "r1", "actions": [{"action": "x"}]})
    problem(malformed, 400)
    missing = call(server, "POST", "/roles", json={"actions": []})
    assert problem(missing, 400) == "{'name': ['Missing data for required field.']}"
    assert "built in" in problem(call(server, "DELETE", "/roles/Admin"), 400)
    edit_builtin = call(server, "PATCH", "/roles/Viewer", json={"actions": []})
    assert "built in" in problem(edit_builtin, 400)
    assert problem(call(server, "POST", "/roles", json={"name": "Op"}), 409)
    assert call(server, "GET", "/roles/r1").status_code == 404
    assert ("can_read", "DAGs") in pairs(call(server, "GET", "/roles/Viewer").json())


def test_permissions_list_each_action_with_its_resources(server: ApiServer) -> None:
    response = call(server, "GET", "/permissions")
    assert response.status_code == 200
    body = response.json()
    assert body["total_entries"] == 4
    by_name = {a["name"]: {r["name"] for r in a["resources"]} for a in body["actions"]}
    assert set(by_name) == {"can_read", "can_edit", "can_create", "can_delete"}
    assert {"DAGs", "DAG Runs", "Users", "Roles"} <= by_name["can_read"]
    assert by_name["can_create"] == {"DAG Runs", "Variables", "Connections", "Datasets"}
    paged = call(server, "GET", "/permissions", params={"limit": 1, "offset": 1}).json()
    assert len(paged["actions"]) == 1 and paged["total_entries"] == 4


# ---------------------------------------------------------------------- who may


ROUTES = [
    ("GET", "/users", None),
    ("GET", "/users/root", None),
    ("PATCH", "/users/nobody-here", {"first_name": "x"}),
    ("GET", "/roles", None),
    ("GET", "/roles/Admin", None),
    ("POST", "/roles", {"name": "matrix-probe", "actions": [{"x": 1}]}),
    ("DELETE", "/roles/nobody-here", None),
    ("GET", "/permissions", None),
]


@pytest.mark.parametrize("role", BUILTIN)
def test_only_admin_manages_users_and_roles(server: ApiServer, role: str) -> None:
    auth = (f"as_{role.lower()}", PASSWORD)
    for method, path, body in ROUTES:
        response = call(server, method, path, auth=auth, json=body)
        if role == "Admin":
            # Past authorization: the route's own answer (the probes are refused or missing).
            assert response.status_code in (200, 400, 404), (method, path, response.text)
        else:
            detail = problem(response, 403)
            assert detail.startswith(f"user 'as_{role.lower()}' lacks the permission can_")
            assert ("Users" in detail) == path.startswith("/users")


def test_no_or_wrong_credentials_are_401(server: ApiServer) -> None:
    for method, path, body in ROUTES:
        anonymous = call(server, method, path, auth=None, json=body)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"] == "Basic"
        assert call(server, method, path, auth=("root", "wrong"), json=body).status_code == 401


# ---------------------------------------------------------------------- one DAG only


def test_a_cli_made_role_limited_to_one_dag_sees_only_that_dag(server: ApiServer) -> None:
    for args in (
        ("roles", "create", "only_my_dag"),
        ("roles", "add-perms", "only_my_dag", "-r", "DAG:my_dag", "-a", "can_read"),
        ("roles", "add-perms", "only_my_dag", "-r", "DAG Runs", "Task Instances", "-a", "can_read"),
    ):
        result = server.slipstream(*args)
        assert result.returncode == 0, result.stderr
    server.create_user("limited", PASSWORD, "only_my_dag")
    limited = ("limited", PASSWORD)
    # Every DAG is there for an admin; the limited user sees my_dag alone.
    every = {d["dag_id"] for d in call(server, "GET", "/dags").json()["dags"]}
    assert {"my_dag", "example_bash"} <= every
    # The server sees a role made by another process once its role cache expires (5 s).
    wait_for(
        lambda: call(server, "GET", "/dags", auth=limited).status_code == 200,
        15,
        "the server to see the new role",
    )
    listed = call(server, "GET", "/dags", auth=limited)
    assert [d["dag_id"] for d in listed.json()["dags"]] == ["my_dag"]
    assert listed.json()["total_entries"] == 1
    assert call(server, "GET", "/dags/my_dag", auth=limited).status_code == 200
    problem(call(server, "GET", "/dags/example_bash", auth=limited), 404)
    # Listing runs of a DAG answers as for an unknown DAG (Airflow's 200, empty): nothing leaks.
    triggered = call(server, "POST", "/dags/example_bash/dagRuns", json={"conf": {}})
    assert triggered.status_code == 200, triggered.text
    assert call(server, "GET", "/dags/example_bash/dagRuns").json()["total_entries"] >= 1
    runs = call(server, "GET", "/dags/example_bash/dagRuns", auth=limited)
    assert runs.status_code == 200 and runs.json() == {"dag_runs": [], "total_entries": 0}
    # Reading is not pausing: 403 naming what is missing.
    paused = call(server, "PATCH", "/dags/my_dag", auth=limited, json={"is_paused": True})
    assert "lacks the permission can_edit" in problem(paused, 403)
