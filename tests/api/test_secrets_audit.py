"""The audit log of Variable and Connection changes and of key rotation, through the REST API
(a real server) and the CLI, on SQLite and PostgreSQL: one entry per action that happened,
named as Airflow names it and by whom; none for a refused one; and no value, password or extra
anywhere in the `log` table, read raw."""

from __future__ import annotations

import getpass
import json
from typing import Any

import pytest
import requests
from sqlalchemy import select

from slipstream.store.tables import log
from tests.api.conftest import ApiServer

pytestmark = pytest.mark.slow

PASSWORD = "Aud1t-secrets"
ADMIN = ("aud_admin", PASSWORD)
VIEWER = ("aud_viewer", PASSWORD)
# Values that must never reach the log table.
SECRETS = (
    "var-value-one",
    "var-value-two",
    "var-value-three",
    "conn-password-one",
    "conn-password-two",
    "client-secret-one",
    "cli-var-value",
    "cli-import-value",
    "cli-conn-password",
    "cli-import-password",
    "refused-value",
)
AUDITED = (
    "variable.create",
    "variable.edit",
    "variable.delete",
    "variable.varimport",
    "connection.create",
    "connection.edit",
    "connection.delete",
    "connection.import",
    "rotate_fernet_key",
)


@pytest.fixture(scope="module")
def server(module_home: ApiServer) -> ApiServer:
    module_home.create_user(ADMIN[0], PASSWORD, "Admin")
    module_home.create_user(VIEWER[0], PASSWORD, "Viewer")
    module_home.start()
    return module_home


def call(
    server: ApiServer, method: str, path: str, *, auth: tuple[str, str] = ADMIN, **kwargs: Any
) -> requests.Response:
    return requests.request(method, f"{server.base}/api/v1{path}", auth=auth, timeout=30, **kwargs)


def last_id(server: ApiServer) -> int:
    with server.db.read() as conn:
        return max((row.id for row in conn.execute(select(log.c.id))), default=0)


def entries_since(server: ApiServer, mark: int) -> list[tuple[str, str | None, dict[str, Any]]]:
    """(event, owner, extra) of the secrets' audit entries written after `mark`, in order."""
    with server.db.read() as conn:
        rows = conn.execute(
            select(log).where(log.c.id > mark, log.c.event.in_(AUDITED)).order_by(log.c.id)
        ).all()
    for row in rows:
        assert row.dag_id is None and row.task_id is None and row.run_id is None
    return [(r.event, r.owner, json.loads(r.extra)) for r in rows]


def assert_no_secret_in_log(server: ApiServer) -> None:
    with server.db.read() as conn:
        text = "\n".join(repr(tuple(row)) for row in conn.execute(select(log)))
    assert text  # the table was read, and holds entries
    for secret in SECRETS:
        assert secret not in text, secret


def test_variable_changes_through_the_api(server: ApiServer) -> None:
    mark = last_id(server)
    body = {"key": "aud_var", "value": "var-value-one", "description": "first"}
    assert call(server, "POST", "/variables", json=body).status_code == 200
    body = {"key": "aud_var", "value": "var-value-two", "description": "second"}
    assert call(server, "POST", "/variables", json=body).status_code == 200  # overwrites
    masked = call(
        server,
        "PATCH",
        "/variables/aud_var?update_mask=description",
        json={"key": "aud_var", "value": "var-value-three", "description": "third"},
    )
    assert masked.status_code == 200, masked.text
    body = {"key": "aud_var", "value": "var-value-three"}
    assert call(server, "PATCH", "/variables/aud_var", json=body).status_code == 200
    assert call(server, "DELETE", "/variables/aud_var").status_code == 204
    owner = ADMIN[0]
    assert entries_since(server, mark) == [
        ("variable.create", owner, {"key": "aud_var", "changed": ["description", "value"]}),
        ("variable.edit", owner, {"key": "aud_var", "changed": ["description", "value"]}),
        ("variable.edit", owner, {"key": "aud_var", "changed": ["description"]}),
        ("variable.edit", owner, {"key": "aud_var", "changed": ["value"]}),
        ("variable.delete", owner, {"key": "aud_var"}),
    ]
    # The same entries through /eventLogs.
    listed = call(server, "GET", "/eventLogs", params={"event": "variable.edit", "limit": 100})
    assert listed.status_code == 200, listed.text
    ours = [e for e in listed.json()["event_logs"] if "aud_var" in (e["extra"] or "")]
    assert len(ours) == 3 and {e["owner"] for e in ours} == {owner}
    assert_no_secret_in_log(server)


def test_refused_variable_changes_write_no_entry(server: ApiServer) -> None:
    call(server, "POST", "/variables", json={"key": "aud_kept", "value": "var-value-one"})
    mark = last_id(server)
    refused = (
        ("POST", "/variables", {"key": "aud_new"}, ADMIN, 400),  # no value
        ("POST", "/variables", {"key": "", "value": "refused-value"}, ADMIN, 400),
        ("POST", "/variables", {"key": "x", "value": "refused-value", "nope": 1}, ADMIN, 400),
        ("PATCH", "/variables/aud_kept", {"key": "other", "value": "refused-value"}, ADMIN, 400),
        ("PATCH", "/variables/aud_missing", {"key": "aud_missing", "value": "v"}, ADMIN, 404),
        ("DELETE", "/variables/aud_missing", None, ADMIN, 404),
        ("POST", "/variables", {"key": "aud_new", "value": "refused-value"}, VIEWER, 403),
        ("DELETE", "/variables/aud_kept", None, VIEWER, 403),
    )
    for method, path, body, auth, status in refused:
        answer = call(server, method, path, json=body, auth=auth)
        assert answer.status_code == status, (method, path, answer.text)
    assert entries_since(server, mark) == []
    assert call(server, "GET", "/variables/aud_kept").json()["value"] == "var-value-one"


def test_connection_changes_through_the_api(server: ApiServer) -> None:
    mark = last_id(server)
    body = {
        "connection_id": "aud_conn",
        "conn_type": "postgres",
        "host": "db.example",
        "login": "etl",
        "password": "conn-password-one",
        "extra": json.dumps({"client_secret": "client-secret-one", "region": "eu"}),
    }
    assert call(server, "POST", "/connections", json=body).status_code == 200
    conflict = call(server, "POST", "/connections", json=body)
    assert conflict.status_code == 409, conflict.text
    masked = call(
        server,
        "PATCH",
        "/connections/aud_conn?update_mask=password",
        json={"connection_id": "aud_conn", "conn_type": "x", "password": "conn-password-two"},
    )
    assert masked.status_code == 200, masked.text
    whole = {"connection_id": "aud_conn", "conn_type": "http", "host": "h2"}
    assert call(server, "PATCH", "/connections/aud_conn", json=whole).status_code == 200
    for method, path, data, status in (
        ("PATCH", "/connections/aud_conn", {**whole, "port": "x"}, 400),
        ("PATCH", "/connections/aud_conn", {**whole, "connection_id": "other"}, 400),
        ("PATCH", "/connections/aud_none", {**whole, "connection_id": "aud_none"}, 404),
        ("POST", "/connections", {"connection_id": "aud_c2", "password": "refused-value"}, 400),
        ("DELETE", "/connections/aud_none", None, 404),
    ):
        answer = call(server, method, path, json=data)
        assert answer.status_code == status, (method, path, answer.text)
    viewer = call(server, "DELETE", "/connections/aud_conn", auth=VIEWER)
    assert viewer.status_code == 403, viewer.text
    assert call(server, "DELETE", "/connections/aud_conn").status_code == 204
    owner = ADMIN[0]
    every_field = ["conn_type", "description", "extra", "host", "login", "password", "port"]
    assert entries_since(server, mark) == [
        (
            "connection.create",
            owner,
            {"conn_id": "aud_conn", "changed": ["conn_type", "extra", "host", "login", "password"]},
        ),
        ("connection.edit", owner, {"conn_id": "aud_conn", "changed": ["password"]}),
        (
            "connection.edit",
            owner,
            {"conn_id": "aud_conn", "changed": sorted([*every_field, "schema"])},
        ),
        ("connection.delete", owner, {"conn_id": "aud_conn"}),
    ]
    assert_no_secret_in_log(server)


def test_cli_changes_are_audited_as_the_os_user(server: ApiServer) -> None:
    me = getpass.getuser()
    mark = last_id(server)

    def ok(*args: str) -> None:
        result = server.slipstream(*args)
        assert result.returncode == 0, (args, result.stderr)

    def refused(*args: str) -> None:
        result = server.slipstream(*args)
        assert result.returncode != 0, (args, result.stdout)
        assert "Traceback" not in result.stderr

    ok("variables", "set", "cli_var", "cli-var-value", "--description", "d")
    ok("variables", "set", "cli_var", "cli-var-value")
    ok("variables", "delete", "cli_var")
    refused("variables", "delete", "cli_var")
    refused("variables", "set", "", "refused-value")
    source = server.home / "vars.json"
    source.write_text(json.dumps({"cli_a": "cli-import-value", "cli_b": {"value": "x"}}))
    ok("variables", "import", str(source))
    ok("variables", "import", str(source), "-a", "skip")
    # `fail` on an existing key: refused in the import's transaction, so no entry either.
    refused("variables", "import", str(source), "-a", "fail")
    ok(
        "connections", "add", "cli_conn",
        "--conn-uri", "postgres://etl:cli-conn-password@db.example:5432/warehouse",
    )  # fmt: skip
    refused("connections", "add", "cli_conn", "--conn-type", "http")  # exists
    refused("connections", "add", "cli_bad", "--conn-password", "refused-value")  # no type
    conns = server.home / "conns.json"
    conns.write_text(
        json.dumps(
            {
                "cli_conn": "http://u:cli-import-password@h",
                "cli_new": {"conn_type": "http", "password": "cli-import-password"},
            }
        )
    )
    ok("connections", "import", str(conns), "--overwrite")
    ok("connections", "import", str(conns))
    refused("connections", "delete", "cli_none")
    ok("connections", "delete", "cli_new")
    ok("rotate-fernet-key")
    found = entries_since(server, mark)
    rotated = found[-1]
    assert rotated[:2] == ("rotate_fernet_key", me)
    assert rotated[2]["variables"] >= 2 and rotated[2]["connections"] >= 1
    assert found[:-1] == [
        ("variable.create", me, {"key": "cli_var", "changed": ["description", "value"]}),
        ("variable.edit", me, {"key": "cli_var", "changed": ["description", "value"]}),
        ("variable.delete", me, {"key": "cli_var"}),
        (
            "variable.varimport",
            me,
            {
                "action_on_existing_key": "overwrite",
                "created": ["cli_a", "cli_b"],
                "overwritten": [],
                "skipped": [],
            },
        ),
        (
            "variable.varimport",
            me,
            {
                "action_on_existing_key": "skip",
                "created": [],
                "overwritten": [],
                "skipped": ["cli_a", "cli_b"],
            },
        ),
        (
            "connection.create",
            me,
            {
                "conn_id": "cli_conn",
                "changed": ["conn_type", "host", "login", "password", "port", "schema"],
            },
        ),
        (
            "connection.import",
            me,
            {
                "overwrite": True,
                "created": ["cli_new"],
                "overwritten": ["cli_conn"],
                "skipped": [],
            },
        ),
        (
            "connection.import",
            me,
            {
                "overwrite": False,
                "created": [],
                "overwritten": [],
                "skipped": ["cli_conn", "cli_new"],
            },
        ),
        ("connection.delete", me, {"conn_id": "cli_new"}),
    ]
    assert_no_secret_in_log(server)
