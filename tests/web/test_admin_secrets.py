"""Admin -> Variables and Admin -> Connections on a real server (SQLite and PostgreSQL): values
of secret-looking keys masked as the API masks them (and never anywhere in the page, a form
included), creating, changing and deleting variables through the same service (audited as
the visitor), bad input beside its field, the permissions of each action (403 otherwise);
connections listed without their passwords or the secret fields of their extra."""

from __future__ import annotations

import html
import json
from typing import Any

import httpx
import pytest
import requests

from tests.api.conftest import ApiServer
from tests.web.conftest import PASSWORD, Browser, SignIn

pytestmark = pytest.mark.slow

SECRET = "s3cret-Value-42"
CONN_PASSWORD = "conn-Pa55-word"
EXTRA_TOKEN = "xtra-Token-77"


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    home = module_home
    home.create_user("as_admin", PASSWORD, "Admin")
    home.create_user("as_op", PASSWORD, "Op")
    home.create_user("as_viewer", PASSWORD, "Viewer")
    for args in (
        ("roles", "create", "as_readers"),
        ("roles", "add-perms", "as_readers", "-r", "Variables", "Connections", "-a", "can_read"),
        ("variables", "set", "plain_var", "hello <b>world</b>", "--description", "a greeting"),
        ("variables", "set", "db_password", SECRET),
        ("variables", "set", "service_api_key", SECRET),
        (
            "connections", "add", "warehouse",
            "--conn-type", "postgres",
            "--conn-host", "db.example.com",
            "--conn-port", "5432",
            "--conn-login", "etl",
            "--conn-password", CONN_PASSWORD,
            "--conn-schema", "dw",
            "--conn-extra", json.dumps({"token": EXTRA_TOKEN, "region": "eu-west"}),
            "--conn-description", "the warehouse",
        ),
    ):  # fmt: skip
        result = home.slipstream(*args)
        assert result.returncode == 0, result.stdout + result.stderr
    home.create_user("as_reader", PASSWORD, "as_readers")
    home.sync_dags()
    home.start()
    return home


def post(browser: Browser, path: str, fields: dict[str, str]) -> httpx.Response:
    return browser.post(path, {**fields, "csrf_token": browser.csrf})


def api(server: ApiServer, path: str) -> requests.Response:
    return requests.get(f"{server.base}/api/v1{path}", auth=("as_admin", PASSWORD), timeout=30)


def stored_value(server: ApiServer, key: str) -> str | None:
    """The value as stored (the CLI prints it unmasked), or None without such a key."""
    result = server.slipstream("variables", "get", key)
    return result.stdout.rstrip("\n") if result.returncode == 0 else None


def latest_event(server: ApiServer) -> dict[str, Any]:
    answer = api(server, "/eventLogs?limit=1&order_by=-event_log_id")
    found: dict[str, Any] = answer.json()["event_logs"][0]
    return found


# ------------------------------------------------------------------ variables


def test_variables_are_listed_with_secret_values_masked_as_the_api_does(
    server: ApiServer, sign_in: SignIn
) -> None:
    op = sign_in("as_op")
    page = op.get("/admin/variables")
    assert page.status_code == 200
    assert '<a href="/admin/variables" aria-current="page">Variables</a>' in page.text
    for tab in ("/admin/pools", "/admin/connections"):
        assert f'<a href="{tab}">' in page.text
    text = html.unescape(page.text)
    assert "hello <b>world</b>" in text and "<b>world</b>" not in page.text  # escaped
    assert "a greeting" in text
    for key in ("db_password", "service_api_key"):
        assert api(server, f"/variables/{key}").json()["value"] == "***"
        row = page.text.split(f'data-key="{key}"')[1].split("</tr>")[0]
        assert '<span class="masked" title="Masked: the key looks secret">***</span>' in row
    assert SECRET not in page.text
    one = op.get("/admin/variables/db_password")
    assert one.status_code == 200 and "***" in one.text
    assert SECRET not in one.text  # nor in its form: the value field starts empty
    assert "Leave empty to keep the stored value." in one.text
    plain = html.unescape(op.get("/admin/variables/plain_var").text)
    assert '<pre class="field-value">hello <b>world</b></pre>' in plain
    assert ">\nhello <b>world</b></textarea>" in plain


def test_creating_changing_and_deleting_a_variable_is_audited(
    server: ApiServer, sign_in: SignIn
) -> None:
    op = sign_in("as_op")
    made = post(op, "/admin/variables", {"key": "ui_var", "value": "v1", "description": "d1"})
    assert made.status_code == 303, made.text
    assert made.headers["location"] == "/admin/variables/ui_var?notice=created"
    assert "Variable created." in op.get(made.headers["location"]).text
    assert stored_value(server, "ui_var") == "v1"
    event = latest_event(server)
    assert (event["event"], event["owner"]) == ("variable.create", "as_op")
    assert "v1" not in (event["extra"] or "")

    saved = post(op, "/admin/variables/ui_var/edit", {"value": "v2", "description": ""})
    assert saved.status_code == 303 and saved.headers["location"].endswith("?notice=saved")
    assert stored_value(server, "ui_var") == "v2"
    assert api(server, "/variables/ui_var").json()["description"] is None
    assert (latest_event(server)["event"], latest_event(server)["owner"]) == (
        "variable.edit",
        "as_op",
    )

    gone = post(op, "/admin/variables/ui_var/delete", {})
    assert gone.status_code == 303 and gone.headers["location"] == "/admin/variables?notice=deleted"
    assert stored_value(server, "ui_var") is None
    assert latest_event(server)["event"] == "variable.delete"
    assert op.get("/admin/variables/ui_var").status_code == 404
    assert post(op, "/admin/variables/ui_var/delete", {}).status_code == 404


def test_a_secret_variable_keeps_its_value_unless_a_new_one_is_typed(
    server: ApiServer, sign_in: SignIn
) -> None:
    admin = sign_in("as_admin")
    kept = post(
        admin, "/admin/variables/service_api_key/edit", {"value": "", "description": "the key"}
    )
    assert kept.status_code == 303
    assert stored_value(server, "service_api_key") == SECRET
    assert api(server, "/variables/service_api_key").json()["description"] == "the key"
    changed = post(admin, "/admin/variables/service_api_key/edit", {"value": "new-secret-1"})
    assert changed.status_code == 303
    assert stored_value(server, "service_api_key") == "new-secret-1"
    assert api(server, "/variables/service_api_key").json()["description"] == "the key"


@pytest.mark.parametrize(
    ("fields", "field", "message", "status"),
    [
        ({"key": "", "value": "x"}, "key", "Enter a key.", 400),
        ({"key": "k" * 251, "value": "x"}, "key", "at most 250 characters", 400),
        ({"key": "plain_var", "value": "x"}, "key", "variable 'plain_var' already exists", 409),
    ],
)
def test_bad_variables_are_refused_beside_their_field(
    server: ApiServer,
    sign_in: SignIn,
    fields: dict[str, str],
    field: str,
    message: str,
    status: int,
) -> None:
    admin = sign_in("as_admin")
    answer = post(admin, "/admin/variables", fields)
    assert answer.status_code == status, answer.text
    assert f'id="{field}-error" role="alert">' in answer.text
    assert message in html.unescape(answer.text)
    assert '<details class="card create" id="create-variable" open>' in answer.text
    assert stored_value(server, "plain_var") == "hello <b>world</b>"


def test_who_may_read_and_change_variables(server: ApiServer, sign_in: SignIn) -> None:
    reader = sign_in("as_reader")
    page = reader.get("/admin/variables")
    assert page.status_code == 200
    assert "Create a variable" not in page.text
    assert '<a href="/admin/pools">' not in page.text  # no pools permission: no tab
    assert reader.get("/admin").headers["location"] == "/admin/variables"
    one = reader.get("/admin/variables/plain_var")
    assert "Save changes" not in one.text and "Delete variable" not in one.text
    for path, fields in (
        ("/admin/variables", {"key": "reader_var", "value": "x"}),
        ("/admin/variables/plain_var/edit", {"value": "changed"}),
        ("/admin/variables/plain_var/delete", {}),
    ):
        assert post(reader, path, fields).status_code == 403, path
    assert stored_value(server, "reader_var") is None
    assert stored_value(server, "plain_var") == "hello <b>world</b>"
    viewer = sign_in("as_viewer")
    assert viewer.get("/admin/variables").status_code == 403
    assert viewer.get("/admin/connections").status_code == 403
    pools = viewer.get("/admin/pools").text
    assert 'href="/admin/variables"' not in pools and 'href="/admin/connections"' not in pools
    assert viewer.get("/admin/variables?page=0").status_code == 403  # permission first
    assert reader.get("/admin/variables?page=0").status_code == 400
    assert "page must be a whole number" in reader.get("/admin/variables?page=x").text


# ------------------------------------------------------------------ connections


def test_connections_are_listed_without_passwords_or_secret_extras(
    server: ApiServer, sign_in: SignIn
) -> None:
    reader = sign_in("as_reader")
    page = reader.get("/admin/connections")
    assert page.status_code == 200
    row = page.text.split('data-conn-id="warehouse"')[1].split("</tr>")[0]
    for shown in ("postgres", "db.example.com", "5432", "dw", "etl", "the warehouse"):
        assert f"<td>{shown}</td>" in row
    assert '<span class="masked">set</span>' in row
    one = reader.get("/admin/connections/warehouse")
    assert one.status_code == 200
    extra = json.loads(html.unescape(one.text.split('<pre class="field-value">')[1].split("<")[0]))
    assert extra == {"token": "***", "region": "eu-west"}
    assert extra == json.loads(api(server, "/connections/warehouse").json()["extra"])
    for text in (page.text, one.text):
        assert CONN_PASSWORD not in text and EXTRA_TOKEN not in text
    assert reader.get("/admin/connections/nowhere").status_code == 404
